"""Left-to-right decoding that picks one token per step: greedy and sampling share it."""
from __future__ import annotations

from collections.abc import Callable

import torch

from seqkit.contracts import DecodeResult, StepModel
from seqkit.state import State

from ._common import pack, sequence_lengths

# log_probs (batch, V) -> (chosen tokens (batch,), their log-probabilities (batch,))
Chooser = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def most_probable(log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The argmax token of each row and its log-probability (one reduction gives both)."""
    values, indices = log_probs.max(1)
    return indices, values


def rollout(model: StepModel, state: State, tokens: torch.Tensor, length: int, choose: Chooser,
            groups: int) -> list[DecodeResult]:
    """Carry ``state`` for up to ``length`` steps, feeding back the chosen token.

    A row that has produced the end token keeps emitting it at log-probability 0 (so it adds
    nothing), and the loop stops as soon as every row has ended.
    """
    end = model.end_token
    chosen, log_probs = [], []
    ended = None
    for _ in range(length):
        step_log_probs, state = model.step(tokens, state)
        tokens, token_log_probs = choose(step_log_probs)
        if end is not None:
            if ended is not None:
                tokens = tokens.masked_fill(ended, end)
                token_log_probs = token_log_probs.masked_fill(ended, 0.0)
                ended = ended | (tokens == end)
            else:
                ended = tokens == end
        chosen.append(tokens)
        log_probs.append(token_log_probs)
        if ended is not None and bool(ended.all()):
            break
    out = torch.stack(chosen, 1)
    total = torch.stack(log_probs, 1).sum(1)
    return pack(out, sequence_lengths(out, end), total, groups)
