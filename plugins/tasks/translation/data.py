"""A translation split read from its prepared arrays (memory maps, ``corpus.py``), and its batches
by index arithmetic on them.

An example is a source with one or more references (``ParallelCorpus``); each (source, reference)
is a *pair*, the unit of training and of the validation loss. A split holds all its pairs flat:
every source token end to end, every target token end to end (each target followed by the end
symbol), and per pair where its two sequences start and how long they are
(``common.flat_sequences``). A batch is a list of pair ids: padding it is one gather per side from
the memory maps, and only the batch is copied to the device. Decoding reads each example once,
through its first pair (``first_pairs``); outputs are scored against the references' text.

Batches are planned on the host from the lengths alone (``common.length_batches.plan_batches``):
pairs sorted by their longer side and cut into runs of ``batch_size`` (or as many as fit
``batch_tokens`` padded tokens of that side); training visits them in an order drawn from
``(seed, epoch)``, so the batch of a step is a pure function of the step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seqkit.plugins.tasks.common.flat_sequences import FlatSequences, as_long
from seqkit.plugins.tasks.common.length_batches import epoch_order, share_rows
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID


class References:
    """Each example's references as outputs are scored against them: a ``str`` (a ``char`` target)
    or a list of tokens (``space``: its words), read from the references' stored text."""

    def __init__(self, text: FlatSequences, first_pairs: np.ndarray, level: str):
        self.text, self.first_pairs, self.level = text, first_pairs, level

    def __len__(self) -> int:
        return len(self.first_pairs)

    def __getitem__(self, example: int) -> list:
        first = int(self.first_pairs[example])
        end = int(self.first_pairs[example + 1]) if example + 1 < len(self.first_pairs) else len(self.text)
        texts = [self.text.sequence(pair).tobytes().decode("utf-8", "surrogatepass") for pair in range(first, end)]
        return texts if self.level == "char" else [text.split() for text in texts]


class PairSplit:
    """One split's pairs, from a prepared corpus (memory maps) or a mapping of the same arrays in
    memory: ``source`` and ``target`` (``FlatSequences``; no target for sources alone), per pair
    its ``examples``, per example ``first_pairs``, and ``references`` (dev and test) or None."""

    def __init__(self, arrays, split: str, target_level: str = "space"):
        self.source = FlatSequences(arrays, f"{split}_source")
        self.target = FlatSequences(arrays, f"{split}_target") if f"{split}_target_ids" in arrays else None
        self.examples = arrays[f"{split}_examples"]
        self.first_pairs = arrays[f"{split}_first"]
        self.references = (References(FlatSequences(arrays, f"{split}_reference"), self.first_pairs, target_level)
                           if f"{split}_reference_ids" in arrays else None)

    def __len__(self) -> int:
        """Pairs."""
        return len(self.source)

    @property
    def example_count(self) -> int:
        return len(self.first_pairs)

    def longer_lengths(self) -> list[int]:
        """Per pair, the longer of its source and target (end symbol included): what batches are planned by."""
        return np.maximum(np.asarray(self.source.lengths), np.asarray(self.target.lengths)).tolist()


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
    """The batches of one split, planned once: ``batch(i)`` gathers the i-th from the split's arrays
    and copies it to ``device``. ``batches`` are lists of pair ids (``common.length_batches.plan_batches``)."""

    def __init__(self, split: PairSplit, batches: list[list[int]], device):
        self.split, self.device = split, torch.device(device)
        self.ids = np.array([i for batch in batches for i in batch], dtype=np.int64)
        self.bounds = np.cumsum([0] + [len(b) for b in batches]).tolist()
        starts = np.array(self.bounds[:-1], dtype=np.int64)
        if len(batches):  # each batch's longest sequence of each side
            self.source_times = np.maximum.reduceat(np.asarray(split.source.lengths)[self.ids], starts).tolist()
            self.target_times = np.maximum.reduceat(np.asarray(split.target.lengths)[self.ids], starts).tolist()
        else:
            self.source_times = self.target_times = []

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def batch(self, index: int) -> PairBatch:
        pairs = self.ids[self.bounds[index]:self.bounds[index + 1]]
        source, source_lengths = self.split.source.gather(pairs, self.source_times[index], PADDING_ID)
        target, target_lengths = self.split.target.gather(pairs, self.target_times[index], PADDING_ID)
        device = self.device
        return PairBatch(as_long(source, device), as_long(source_lengths, device), as_long(target, device),
                         as_long(target_lengths, device), as_long(pairs, device))

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        """The order batches are visited in during ``epoch``: drawn from (seed, epoch) alone."""
        return epoch_order(len(self), seed, epoch)
