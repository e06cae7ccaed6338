"""What both hand-written taggers share: a training loop bounded by wall-clock time, and batching.

The loop is what a careful user writes in plain torch: Adam, a linear warm-up over the first steps,
then a cosine decay of the learning rate over the time budget (not over a step count, which a
budget does not know), gradient clipping by norm. Only the taggers' own models and batches differ.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Trained:
    steps: int
    seconds: float
    tokens: int  # real (unpadded) tokens read in training


def train_for(model: torch.nn.Module, loss_of_step: Callable[[int], tuple[torch.Tensor, int]],
              seconds: float, lr: float, warmup_steps: int, clip_grad_norm: float) -> Trained:
    """Take optimizer steps until ``seconds`` have passed; ``loss_of_step(step)`` gives the mean
    loss of that step's batch and its number of tokens."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    step, tokens, started = 0, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        warmup = (step + 1) / warmup_steps if step < warmup_steps else 1.0
        for group in optimizer.param_groups:
            group["lr"] = lr * warmup * 0.5 * (1.0 + math.cos(math.pi * elapsed / seconds))
        loss, count = loss_of_step(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        step, tokens = step + 1, tokens + count
    model.eval()
    return Trained(step, time.perf_counter() - started, tokens)


def length_batches(lengths: list[int], tokens_per_batch: int, max_sentences: int) -> list[list[int]]:
    """Sentence indices sorted by length and cut into batches of at most ``max_sentences``
    sentences and ``tokens_per_batch`` padded tokens (0: no token bound)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current = [], []
    for i in order:
        too_many = len(current) >= max_sentences or (
            tokens_per_batch and (len(current) + 1) * lengths[i] > tokens_per_batch)
        if current and too_many:
            batches.append(current)
            current = []
        current.append(i)
    return batches + [current] if current else batches


def padded(rows: list[list[int]], device, fill: int = 0) -> torch.Tensor:
    """(len(rows), longest) long tensor, ``fill`` past each row's end."""
    out = torch.full((len(rows), max(map(len, rows))), fill, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out.to(device)

