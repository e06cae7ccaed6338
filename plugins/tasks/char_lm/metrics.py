"""char_lm's losses and metrics: nats per character, bits per character and perplexity.

The loss of a window is that of every position (``loss_on: every``) or only of the character after
it (``loss_on: last``, the lecture's procedure). Validation reads the split the way training does:
as ``streams`` parallel streams with the state carried, as independent windows, or (``last``) as
fixed random windows. Under several processes each rank scores its block of the streams (or
windows) and the sums are added over the ranks.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from seqkit.distributed import all_reduce_sum

from .data import as_long, share_bounds

_EVAL_SEED = 1234  # validation windows are the same for every run, whatever the training seed


def window_loss(model, x: torch.Tensor, y: torch.Tensor, states, last_only: bool):
    """(summed loss in nats, count, final states) of the characters ``y`` that follow the windows
    ``x``: at every position, or ``last_only`` after the window."""
    outputs, states = model.features(x, states)
    if last_only:
        logits, targets = model.head(outputs[:, -1]), y[:, -1]
    else:
        logits, targets = model.head(outputs).flatten(0, 1), y.flatten()
    return F.cross_entropy(logits.float(), targets, reduction="sum"), targets.numel(), states


def char_metrics(nats: float, chars_per_token: float = 1.0) -> dict[str, float]:
    """Loss and perplexity per token; bits per character of the text, whatever the tokens
    (``chars_per_token`` of the scored text: 1 for characters), so that models compare."""
    return {"loss": nats, "bits_per_char": nats / chars_per_token / math.log(2),
            "perplexity": math.exp(min(nats, 700.0))}


def _mean_over_ranks(total: float, n: int, device) -> float:
    """``total / n`` with both summed over every rank's share."""
    sums = all_reduce_sum(torch.tensor([total, n], dtype=torch.float64, device=device))
    return float(sums[0] / sums[1])


@torch.no_grad()
def stream_loss(model, tokens: np.ndarray | torch.Tensor, window: int, streams: int, carry: bool,
                rank: int = 0, world_size: int = 1, device: torch.device | None = None) -> float:
    """Mean loss in nats over every position of ``tokens``.

    With ``carry`` the text is cut into ``streams`` parallel streams read window after window
    with the state carried (each character sees all text before it in its stream); without,
    into independent windows that each start from the initial state, as in training. ``tokens``
    (a memory map) are read a window at a time, so the split is never on ``device`` whole. Under
    several processes ``rank`` scores its block of the streams (or windows) and the sums are
    added over the ranks.
    """
    if carry:
        streams = min(streams, len(tokens) - 1)  # a short text: fewer streams, none empty
        length = (len(tokens) - 1) // streams
        first, end = share_bounds(streams, rank, world_size)
        x = tokens[first * length:end * length].reshape(end - first, length)
        y = tokens[first * length + 1:end * length + 1].reshape(end - first, length)
        chunks = [(x[:, i:i + window], y[:, i:i + window]) for i in range(0, length, window)] if end > first else []
    else:
        count = (len(tokens) - 1) // window
        first, end = share_bounds(count, rank, world_size)
        x = tokens[first * window:end * window].reshape(end - first, window)
        y = tokens[first * window + 1:end * window + 1].reshape(end - first, window)
        rows = max(1, streams * 4)  # bound memory: a few training batches at a time
        chunks = [(x[i:i + rows], y[i:i + rows]) for i in range(0, end - first, rows)]
    device = device or next(model.parameters()).device
    total, n, states = 0.0, 0, None
    for xs, ys in chunks:
        xs, ys = as_long(xs, device), as_long(ys, device)
        logits, new_states = model(xs, states if carry else None)
        states = new_states
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), ys.flatten(), reduction="sum"))
        n += ys.numel()
    return _mean_over_ranks(total, n, device) if world_size > 1 else total / n


@torch.no_grad()
def next_char_loss(model, tokens: np.ndarray | torch.Tensor, window: int, count: int, rank: int = 0,
                   world_size: int = 1, device: torch.device | None = None) -> float:
    """Mean loss in nats of the character after each of ``count`` fixed random windows (the
    lecture's); under several processes ``rank`` scores its block of them."""
    generator = torch.Generator().manual_seed(_EVAL_SEED)
    starts = torch.randint(0, len(tokens) - window, (count,), generator=generator)
    first, end = share_bounds(count, rank, world_size)
    device = device or next(model.parameters()).device
    chunk = as_long(np.asarray(tokens)[starts[first:end].numpy()[:, None] + np.arange(window + 1)], device)
    total = 0.0
    if end > first:
        outputs, _ = model.features(chunk[:, :-1])
        total = float(F.cross_entropy(model.head(outputs[:, -1]).float(), chunk[:, -1], reduction="sum"))
    return _mean_over_ranks(total, end - first, device) if world_size > 1 else total / count
