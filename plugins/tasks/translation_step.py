"""The encoder–decoder as a seqkit step model, so that every decoder (greedy, sample, beam, exact)
decodes it unchanged, batched over many sources.

``start_decoding`` runs the encoder once per source. The state is ``(Shared(encoded), rows,
decoder states[, previous attentional vector])``: the encoded sources (memory, keys, mask, context)
are kept once, as ``seqkit.state.Shared``, and each row (hypothesis) reads its own through ``rows``,
the source it belongs to. Beam search and exact enumeration, which reorder and repeat rows every
step, so move ``rows``, the decoder states and the fed-back vector, never the memory. (A step reads
its rows' memory as one gather, which lives for that step only.)

The step model's vocabulary is the target vocabulary; its end token is ``END_ID``. The padding and
start symbols get log-probability -inf (``translation_model.NEVER_PREDICTED``): decoders never
emit them, and each row is still a normalised distribution.
"""
from __future__ import annotations

import torch

from seqkit.state import Shared

from .translation_model import END_ID, START_ID, Seq2SeqModel


class TranslationStepModel:
    """``seqkit.decoding.StepModel`` over a ``Seq2SeqModel``: one decoder step per target token."""

    end_token = END_ID

    def __init__(self, model: Seq2SeqModel):
        self.model = model
        self.vocab_size = model.target_vocab_size

    def step(self, tokens: torch.Tensor, state):
        shared, rows, states, *feed = state
        attentional, states = self.model.decode_step(self.model.target_embedding(tokens), list(states),
                                                     feed[0] if feed else None, shared.value.select(rows))
        state = (shared, rows, tuple(states)) + ((attentional,) if feed else ())
        return self.model.output_log_probs(attentional), state


@torch.no_grad()
def start_decoding(model: Seq2SeqModel, source: torch.Tensor, lengths) -> tuple[tuple, torch.Tensor]:
    """(state, first tokens) for a padded batch of sources (batch, time) with their ``lengths``:
    the encoder has read each source once, the decoder nothing yet; the first tokens are the start
    symbol."""
    encoded, states = model.encode(source, lengths)
    rows = torch.arange(source.shape[0], device=source.device)
    state = (Shared(encoded), rows, tuple(states))
    if model.input_feeding:  # a_0 = 0
        state += (encoded.context.new_zeros(rows.shape[0], model.decoder.hidden_size),)
    return state, torch.full_like(rows, START_ID)
