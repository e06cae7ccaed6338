"""The character language model as a seqkit step model, so that every decoder (greedy, sample,
beam, exact) continues a prompt: ``start_decoding`` reads the prompts, ``CharStepModel`` steps the
recurrence one character at a time."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from seqkit import Tokenizer
from seqkit.state import where_state

from .model import CharLanguageModel


class CharStepModel:
    """``seqkit.decoding.StepModel`` over a trained ``CharLanguageModel``: one cell step per token."""

    end_token = None  # a character model has no end symbol; decoding stops at a length

    def __init__(self, model: CharLanguageModel):
        self.model = model
        self.vocab_size = model.vocab_size

    def step(self, tokens: torch.Tensor, state):
        # No no_grad here: decoders already run under inference mode, and a decorator per token
        # costs as much as a small kernel at batch 1.
        h, state = self.model.recurrent.step(self.model.embed(tokens), list(state))
        return F.log_softmax(self.model.head(h).float(), dim=-1), tuple(state)


def start_decoding(model: CharLanguageModel, tokenizer: Tokenizer, inputs: list[str], device):
    """Run each prompt but its last character in one batched pass (``lengths`` masks padding).

    Returns the state before each prompt's last character and that character, so the first
    decoder step predicts the first new one. A prompt that is empty (or empty once
    normalized) starts from the initial state with a newline, else a space, else token 0, as its
    last token: the model continues as if at the start of a line.
    """
    encoded = [torch.from_numpy(tokenizer.encode(text)) for text in inputs]
    encoded = [ids if len(ids) else torch.tensor([_start_token(tokenizer)]) for ids in encoded]
    lengths = torch.tensor([len(ids) for ids in encoded])
    padded = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True).to(device)
    last = padded[torch.arange(len(encoded), device=device), (lengths - 1).to(device)]
    batch, prefix = len(encoded), int(lengths.max()) - 1
    initial = model.recurrent.initial_states(batch, device=device, dtype=model.head.weight.dtype)
    if prefix == 0:
        return tuple(initial), last
    with torch.no_grad():
        # rows with a one-character prompt run one masked-out step, then take the initial state
        _, states = model.features(padded[:, :prefix], None, (lengths - 1).clamp(min=1))
    has_prefix = (lengths > 1).to(device)
    return tuple(where_state(has_prefix, s, s0) for s, s0 in zip(states, initial)), last


def _start_token(tokenizer: Tokenizer) -> int:
    """A newline's token, else a space's, else 0: what an empty prompt continues after."""
    for text in ("\n", " "):
        ids = tokenizer.encode(text)
        if len(ids) == 1 and ids[0] != tokenizer.unknown_id:
            return int(ids[0])
    return 0
