"""The autoregressive tagger as a seqkit step model, so that every decoder (greedy, sample, beam,
exact) decodes it unchanged.

The step model's vocabulary is the ``K`` tags plus an end symbol (id ``K``, which also stands for
"no previous tag" at the start). A sentence of length L must get exactly L tags, while a decoder
takes one ``length`` for the whole batch. So the step model forbids the end symbol (log-probability
-inf) before position L and forces it at L and after (log-probability 0 for the end, -inf for every
tag): decoding with ``length = max(lengths) + 1`` then ends each sentence right after its own L tags,
with every row still a normalised distribution, and adds nothing to a sequence's log-probability.
(``exact`` still steps a short sentence's zero-probability prefixes up to the batch's longest
length: decode sentences of similar lengths together.)

The state is ``(Shared((memory, lengths)), rows, positions, decoder states)``. The encoder's outputs
and the lengths are the same for every hypothesis of a sentence: kept once, as
``seqkit.state.Shared``, and read through ``rows`` (the input each hypothesis belongs to), so beam
search reorders three small tensors per step instead of copying the memory per beam.
"""
from __future__ import annotations

import torch

from seqkit.state import Shared


class TaggerStepModel:
    """``seqkit.decoding.StepModel`` over an autoregressive ``TaggerModel``: one decoder step per tag."""

    def __init__(self, model):
        if model.output != "autoregressive":
            raise ValueError(f"only the autoregressive output is decoded step by step, not {model.output}")
        self.model = model
        self.num_tags = model.num_tags
        self.vocab_size = model.num_tags + 1
        self.end_token = model.num_tags

    def step(self, tokens: torch.Tensor, state):
        shared, rows, positions, decoder_states = state
        memory, lengths = shared.value
        # Past the last position the end is forced anyway: any position's memory will do there.
        here = memory[rows, positions.clamp(max=memory.shape[1] - 1)]
        hidden, decoder_states = self.model.decoder.step(self.model.decoder_input(here, tokens),
                                                         list(decoder_states))
        logits = self.model.head(hidden)
        log_probs = logits.log_softmax(1, dtype=torch.promote_types(logits.dtype, torch.float32))
        ended = (positions >= lengths[rows]).unsqueeze(1)
        log_probs = torch.cat([log_probs.masked_fill(ended, float("-inf")),
                               torch.where(ended, 0.0, float("-inf")).to(log_probs.dtype)], dim=1)
        return log_probs, (shared, rows, positions + 1, tuple(decoder_states))


def start_decoding(model, tokens, lengths, chars=None) -> tuple[tuple, torch.Tensor]:
    """(state, first tokens) for a padded batch of sentences: the encoder has read each whole
    sentence, the decoder nothing yet. Decode with ``length = max(lengths) + 1``."""
    memory = model.encode(tokens, lengths, chars)  # checks the batch
    lengths = torch.as_tensor(lengths).to(device=tokens.device, dtype=torch.long)
    batch = tokens.shape[0]
    rows = torch.arange(batch, device=tokens.device)
    state = (Shared((memory, lengths)), rows, torch.zeros_like(rows),
             tuple(model.decoder.initial_states(batch, device=memory.device, dtype=memory.dtype)))
    return state, torch.full_like(rows, model.num_tags)


def greedy_tags(step_model: TaggerStepModel, tokens, lengths, chars=None) -> torch.Tensor:
    """The most probable tag at each position given the tags chosen before it, (batch, time); what
    the ``greedy`` decoder returns, as a tensor. Positions past a sentence's length hold 0."""
    state, previous = start_decoding(step_model.model, tokens, lengths, chars)
    chosen = []
    for _ in range(tokens.shape[1]):
        log_probs, state = step_model.step(previous, state)
        previous = log_probs[:, :step_model.num_tags].argmax(1)
        chosen.append(previous)
    return torch.stack(chosen, 1)
