"""Sequences held flat in a prepared corpus (``seqkit.corpus``): every token end to end, and where
each sequence starts and how long it is. Tagging (sentences and their tags), translation (sources
and targets) and the language model (one long text) read the same storage: a batch is one gather
by index arithmetic on the memory maps, and only the batch is copied to the device.

Writing streams: ``SequenceWriter.append`` takes one sequence at a time and keeps only a block of
lengths in memory.
"""
from __future__ import annotations

import numpy as np
import torch

_BLOCK = 1 << 16  # sequences whose lengths are written at once


def as_long(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Token ids read from a memory map (or any array) as an int64 tensor on ``device``: only
    this batch is copied, pinned and sent without waiting on CUDA."""
    batch = torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


class SequenceWriter:
    """Writes the sequences of ``name`` into a ``seqkit.corpus.CorpusWriter``: arrays
    ``NAME_ids`` (``dtype``), ``NAME_starts`` and ``NAME_lengths`` (int64)."""

    def __init__(self, writer, name: str, dtype):
        self.ids = writer.array(f"{name}_ids", dtype)
        self.starts = writer.array(f"{name}_starts", np.int64)
        self.lengths = writer.array(f"{name}_lengths", np.int64)
        self._pending: list[int] = []
        self._position = 0

    def append(self, ids) -> None:
        ids = np.asarray(ids)
        self.ids.append(ids)
        self._pending.append(len(ids))
        if len(self._pending) >= _BLOCK:
            self.flush()

    def flush(self) -> None:
        """Write the lengths and starts held so far (call once after the last ``append``)."""
        if self._pending:
            lengths = np.array(self._pending, dtype=np.int64)
            self.starts.append(self._position + np.cumsum(lengths) - lengths)
            self.lengths.append(lengths)
            self._position += int(lengths.sum())
            self._pending = []

    @property
    def count(self) -> int:
        """Sequences written."""
        return self.lengths.count + len(self._pending)


class FlatSequences:
    """The sequences ``name`` of a prepared corpus, read through its memory maps."""

    def __init__(self, corpus, name: str):
        self.ids = corpus[f"{name}_ids"]
        self.starts = corpus[f"{name}_starts"]
        self.lengths = corpus[f"{name}_lengths"]

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, index: int) -> np.ndarray:
        start = int(self.starts[index])
        return self.ids[start:start + int(self.lengths[index])]

    def gather(self, rows: np.ndarray, time: int, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(ids (len(rows), time) int64, lengths (len(rows),)): the sequences ``rows``, cut or
        padded with ``pad`` to ``time``, by one gather."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.asarray(self.lengths[rows])
        steps = np.arange(time)
        inside = steps < lengths[:, None]
        at = np.where(inside, np.asarray(self.starts[rows])[:, None] + steps, 0)
        ids = self.ids[at].astype(np.int64) if len(self.ids) else np.zeros(at.shape, dtype=np.int64)
        return np.where(inside, ids, pad), lengths
