"""Sequences held flat in a prepared corpus (``seqkit.corpus``): every token end to end, and where
each sequence starts and how long it is. Tagging (sentences and their tags), translation (sources
and targets) and the language model (one long text) read the same storage: a batch is one gather
by index arithmetic on the memory maps, and only the batch is copied to the device.

Writing streams: ``SequenceWriter.append`` takes one sequence at a time (``extend`` a block of
them) and keeps only a block of lengths in memory. Arrays *aligned* with the ids (tagging's tags: one
value per token) share their starts and lengths. A nested level, such as each word's characters, is
a second set of sequences with one sequence per token: ``positions`` of any shape of rows gathers it
by the same arithmetic. ``flat_arrays`` holds the same arrays in memory, for data read whole (one
file to score, a few lines to decode), so that both read through ``FlatSequences``.
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


def take(flat: np.ndarray, at: np.ndarray, inside: np.ndarray, pad: int = 0) -> np.ndarray:
    """``flat[at]`` as int64 where ``inside``, ``pad`` elsewhere: one gather from a memory map (an
    empty array gives ``pad`` everywhere)."""
    values = flat[at].astype(np.int64) if len(flat) else np.zeros(at.shape, dtype=np.int64)
    return np.where(inside, values, pad)


def flat_arrays(name: str, ids, lengths, **aligned) -> dict[str, np.ndarray]:
    """The arrays ``SequenceWriter`` would write for the sequences ``ids`` (end to end) of
    ``lengths``, held in memory: ``FlatSequences(flat_arrays(...), name)`` reads them."""
    lengths = np.asarray(lengths, dtype=np.int64)
    arrays = {f"{name}_ids": np.asarray(ids), f"{name}_starts": np.cumsum(lengths) - lengths,
              f"{name}_lengths": lengths}
    arrays.update({f"{name}_{key}": np.asarray(values) for key, values in aligned.items()})
    return arrays


class SequenceWriter:
    """Writes the sequences of ``name`` into a ``seqkit.corpus.CorpusWriter``: arrays
    ``NAME_ids`` (``dtype``), ``NAME_starts`` and ``NAME_lengths`` (int64), and for each
    ``aligned`` key (name -> dtype) an array ``NAME_KEY`` of one value per id (a token's tag)."""

    def __init__(self, writer, name: str, dtype, aligned: dict | None = None):
        self.ids = writer.array(f"{name}_ids", dtype)
        self.starts = writer.array(f"{name}_starts", np.int64)
        self.lengths = writer.array(f"{name}_lengths", np.int64)
        self.aligned = {key: writer.array(f"{name}_{key}", kind) for key, kind in (aligned or {}).items()}
        self._pending: list[int] = []
        self._position = 0

    def append(self, ids, **aligned) -> None:
        """One sequence, and its ``aligned`` values (one per id)."""
        ids = np.asarray(ids)
        self._append(ids, aligned)
        self._pending.append(len(ids))
        if len(self._pending) >= _BLOCK:
            self.flush()

    def extend(self, ids, lengths, **aligned) -> None:
        """Many sequences at once: their ``ids`` end to end, each one's length in ``lengths``, and
        the ``aligned`` values (one per id)."""
        ids, lengths = np.asarray(ids), np.asarray(lengths, dtype=np.int64).reshape(-1)
        if int(lengths.sum()) != ids.size or (lengths < 0).any():
            raise ValueError(f"{self.ids.name}: the lengths add up to {int(lengths.sum())}, "
                             f"not the {ids.size} ids given")
        self._append(ids, aligned)
        self._pending.extend(lengths.tolist())
        if len(self._pending) >= _BLOCK:
            self.flush()

    def _append(self, ids: np.ndarray, aligned: dict) -> None:
        if set(aligned) != set(self.aligned):
            raise ValueError(f"{self.ids.name}: give the aligned arrays {sorted(self.aligned)}, "
                             f"got {sorted(aligned)}")
        values = {key: np.asarray(v) for key, v in aligned.items()}
        for key, v in values.items():
            if v.size != ids.size:
                raise ValueError(f"{self.aligned[key].name}: {v.size} values for {ids.size} ids")
        self.ids.append(ids)
        for key, v in values.items():
            self.aligned[key].append(v)

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
    """The sequences ``name`` of a prepared corpus, read through its memory maps (or of any
    mapping of the same arrays: ``flat_arrays``); ``aligned[KEY]``: the array ``NAME_KEY``."""

    def __init__(self, corpus, name: str, aligned: tuple[str, ...] = ()):
        self.ids = corpus[f"{name}_ids"]
        self.starts = corpus[f"{name}_starts"]
        self.lengths = corpus[f"{name}_lengths"]
        self.aligned = {key: corpus[f"{name}_{key}"] for key in aligned}

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, index: int) -> np.ndarray:
        start = int(self.starts[index])
        return self.ids[start:start + int(self.lengths[index])]

    def positions(self, rows, time: int, within: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(at, inside, lengths) of the sequences ``rows`` (an array of any shape) cut or padded to
        ``time``: ``at`` (rows' shape + (time,)) indexes the flat arrays (0 outside a sequence),
        ``inside`` says where a sequence is, ``lengths`` (rows' shape) their lengths. ``within``
        (rows' shape, bool): only those rows are sequences, the others empty (a padded batch's
        tokens, whose characters are gathered)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.asarray(self.lengths[rows])
        if within is not None:
            lengths = np.where(within, lengths, 0)
        steps = np.arange(time)
        inside = steps < lengths[..., None]
        at = np.where(inside, np.asarray(self.starts[rows])[..., None] + steps, 0)
        return at, inside, lengths

    def gather(self, rows: np.ndarray, time: int, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(ids (len(rows), time) int64, lengths (len(rows),)): the sequences ``rows``, cut or
        padded with ``pad`` to ``time``, by one gather."""
        at, inside, lengths = self.positions(rows, time)
        return take(self.ids, at, inside, pad), lengths
