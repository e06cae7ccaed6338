"""A translation dataset as tensors on the device, and its batches by index arithmetic.

An example is a source with one or more references (``ParallelCorpus``); each (source, reference)
is a *pair*, the unit of training and of the validation loss. A split holds all its pairs flat:
every source token end to end, every target token end to end (each target followed by the end
symbol), and per pair where its two sequences start and how long they are. A batch is a list of
pair ids: padding it is one gather per side. Decoding reads each example once, through the first
pair of each example (``first_pairs``).

Batches are planned on the host from the lengths alone (``common.length_batches.plan_batches``):
pairs sorted by their longer side and cut into runs of ``batch_size`` (or as many as fit
``batch_tokens`` padded tokens of that side); training visits them in an order drawn from
``(seed, epoch)``, so the batch of a step is a pure function of the step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seqkit.plugins.tasks.common.length_batches import epoch_order, share_rows
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, Vocabulary

from .model import END_ID


@dataclass
class EncodedPairs:
    """One split on the device. ``source``, ``target``: (all tokens,) long; per pair (pairs,):
    ``source_starts``, ``source_lengths``, ``target_starts``, ``target_lengths`` (end symbol
    included) and ``examples`` (the example each pair belongs to); ``first_pairs`` (examples,):
    each example's first pair. ``host_*_lengths``: the lengths as lists, for planning."""

    source: torch.Tensor
    source_starts: torch.Tensor
    source_lengths: torch.Tensor
    target: torch.Tensor
    target_starts: torch.Tensor
    target_lengths: torch.Tensor
    examples: torch.Tensor
    first_pairs: torch.Tensor
    host_source_lengths: list[int]
    host_target_lengths: list[int]

    def __len__(self) -> int:
        return len(self.host_source_lengths)


def _flat_ids(sequences: list, symbols: Vocabulary, level: str) -> torch.Tensor:
    if level == "char":
        return symbols.encode("".join(sequences))
    return torch.tensor(symbols.ids(t for sequence in sequences for t in sequence), dtype=torch.long)


def _starts(lengths: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(lengths, 0) - lengths


def encode_pairs(examples: list, source_symbols: Vocabulary, target_symbols: Vocabulary, source_level: str,
                 target_level: str, device) -> EncodedPairs:
    """``examples`` (source, references) as an ``EncodedPairs`` on ``device``; tokens a vocabulary
    lacks read as the unknown symbol."""
    sources = [source for source, references in examples for _ in references]
    targets = [reference for _, references in examples for reference in references]
    per_example = torch.tensor([len(references) for _, references in examples], dtype=torch.long)
    source_lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    # each target then its end symbol: place the tokens, then the ends, in one flat tensor
    target_starts = _starts(target_lengths + 1)
    target = torch.full((int((target_lengths + 1).sum()),), END_ID, dtype=torch.long)
    inside = torch.ones(len(target), dtype=torch.bool)
    inside[target_starts + target_lengths] = False
    target[inside] = _flat_ids(targets, target_symbols, target_level)
    return EncodedPairs(
        _flat_ids(sources, source_symbols, source_level).to(device), _starts(source_lengths).to(device),
        source_lengths.to(device), target.to(device), target_starts.to(device), (target_lengths + 1).to(device),
        torch.repeat_interleave(torch.arange(len(examples)), per_example).to(device),
        _starts(per_example).to(device), source_lengths.tolist(), (target_lengths + 1).tolist())


def gather_padded(flat: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor, time: int) -> torch.Tensor:
    """Rows of ``flat`` (rows, time) from ``starts`` and ``lengths`` (rows,), ``PADDING_ID`` after
    each row's length; ``time`` must be at least the longest."""
    mask = torch.arange(time, device=flat.device) < lengths.unsqueeze(1)
    at = (starts.unsqueeze(1) + torch.arange(time, device=flat.device)).masked_fill(~mask, 0)
    return flat[at].masked_fill(~mask, PADDING_ID)


@dataclass
class PairBatch:
    """A padded batch: ``source`` (batch, source_time), ``target`` (batch, target_time, each
    ending with the end symbol), their ``*_lengths`` (batch,), and ``pairs`` (batch,), their ids.
    ``counted`` is false for a rank's empty share, which holds a pair only to run the model."""

    source: torch.Tensor
    source_lengths: torch.Tensor
    target: torch.Tensor
    target_lengths: torch.Tensor
    pairs: torch.Tensor
    counted: bool = True

    def share(self, rank: int, world_size: int) -> PairBatch:
        """``rank``'s pairs among ``world_size`` processes (``common.length_batches.share_rows``), each
        side cut to its longest."""
        if world_size == 1:
            return self
        rows, counted = share_rows(len(self.pairs), rank, world_size, self.pairs.device)
        source_lengths, target_lengths = self.source_lengths[rows], self.target_lengths[rows]
        return PairBatch(self.source[rows, :int(source_lengths.max())], source_lengths,
                         self.target[rows, :int(target_lengths.max())], target_lengths,
                         self.pairs[rows], counted)


class PairPlan:
    """The batches of one split, planned once: ``batch(i)`` gathers the i-th. ``batches`` are
    lists of pair ids (``common.length_batches.plan_batches``)."""

    def __init__(self, split: EncodedPairs, batches: list[list[int]]):
        self.split = split
        flat = [i for batch in batches for i in batch]
        self.ids = torch.tensor(flat, dtype=torch.long, device=split.source.device)
        self.bounds = np.cumsum([0] + [len(b) for b in batches]).tolist()
        self.source_times = [max(split.host_source_lengths[i] for i in b) for b in batches]
        self.target_times = [max(split.host_target_lengths[i] for i in b) for b in batches]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def batch(self, index: int) -> PairBatch:
        pairs = self.ids[self.bounds[index]:self.bounds[index + 1]]
        s = self.split
        source_lengths, target_lengths = s.source_lengths[pairs], s.target_lengths[pairs]
        return PairBatch(gather_padded(s.source, s.source_starts[pairs], source_lengths, self.source_times[index]),
                         source_lengths,
                         gather_padded(s.target, s.target_starts[pairs], target_lengths, self.target_times[index]),
                         target_lengths, pairs)

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        """The order batches are visited in during ``epoch``: drawn from (seed, epoch) alone."""
        return epoch_order(len(self), seed, epoch)
