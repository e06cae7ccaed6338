"""Batches of sequences of similar length, planned once from the lengths alone, the order an
epoch visits them in, and each process's share of a batch: shared by the tasks that pad batches
(tagging, translation).

Sorting by length before cutting keeps padding small; drawing the visiting order from
``(seed, epoch)`` alone makes the batch of a training step a pure function of the step, so a
resumed run reads exactly the batches an uninterrupted one would have, on any number of processes.
"""
from __future__ import annotations

import torch


def plan_batches(lengths: list[int], batch_size: int, batch_tokens: int = 0,
                 same_length: bool = False) -> list[list[int]]:
    """Sentence ids in batches: sorted by length (ties by id), cut into runs of ``batch_size``
    sentences, or fewer where ``batch_tokens`` > 0 bounds the padded tokens (a sentence longer than
    the budget gets a batch of its own); with ``same_length`` a batch never mixes lengths."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches, current = [], []
    for i in order:
        longest = lengths[i]  # sorted: the newcomer is the longest
        full = len(current) >= batch_size or (batch_tokens and (len(current) + 1) * longest > batch_tokens)
        if current and (full or (same_length and lengths[current[-1]] != longest)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def epoch_order(batches: int, seed: int, epoch: int) -> torch.Tensor:
    """The order ``batches`` planned batches are visited in during ``epoch``, from (seed, epoch) alone."""
    return torch.randperm(batches, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def share_rows(batch_size: int, rank: int, world_size: int, device=None) -> tuple[torch.Tensor, bool]:
    """(rows, counted): the rows of a batch of ``batch_size`` sequences that are ``rank``'s among
    ``world_size`` processes, every ``world_size``-th from the ``rank``-th (the batch is sorted by
    length, so the shares pad alike). A rank left without one (fewer sequences than processes)
    gets the first row with ``counted`` false: it runs the model, and its loss counts for nothing."""
    rows = torch.arange(rank, batch_size, world_size, device=device)
    if len(rows):
        return rows, True
    return rows.new_zeros(1), False
