"""Which items of a long stream repeat the key of an earlier item, with memory bounded by a bucket of
the stream, not the stream: ``pairs`` groups the lines of one source this way.

Each item's key is hashed (BLAKE2b, 128 bits: two keys that differ never meet in practice) and the
hash is written, with the item's position, to one of ``buckets`` temporary files (in ``TMPDIR``)
chosen by the hash, so equal keys share a file. Once every item is added, the files are sorted one
at a time: the items whose hash an earlier item has, and that first item, are what remains in
memory (``Repeated``).
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RECORD = np.dtype([("high", "<u8"), ("low", "<u8"), ("at", "<i8")])  # a key's hash, the item's position
PENDING = 1 << 16  # items hashed before they are written to their buckets


@dataclass
class Repeated:
    """The items that repeat an earlier item's key, by position: ``later`` (ascending) are skipped
    where they stand; ``heads`` (ascending) are the first items of keys that come again, and
    ``members[bounds[i]:bounds[i + 1]]`` the later items of ``heads[i]``, in order."""

    later: np.ndarray
    heads: np.ndarray
    bounds: np.ndarray
    members: np.ndarray


class Repeats:
    """``add(key, at)`` for each item in order, ``at`` its position (increasing: a byte offset),
    then ``found()``; a context manager that removes its temporary files on leaving."""

    def __init__(self, buckets: int = 1):
        self.buckets = max(1, int(buckets))
        self._folder = tempfile.TemporaryDirectory(prefix="seqkit-repeats-")
        self._digests: list[bytes] = []
        self._at: list[int] = []

    def __enter__(self) -> Repeats:
        return self

    def __exit__(self, *exc) -> None:
        self._folder.cleanup()

    def add(self, key: str, at: int) -> None:
        self._digests.append(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest())
        self._at.append(at)
        if len(self._at) >= PENDING:
            self._spill()

    def _bucket(self, index: int) -> Path:
        return Path(self._folder.name) / f"{index}.records"

    def _spill(self) -> None:
        """Write the items hashed so far to their buckets (appended: each bucket stays in order)."""
        if not self._at:
            return
        digests = np.frombuffer(b"".join(self._digests), dtype="<u8").reshape(-1, 2)
        records = np.empty(len(self._at), dtype=RECORD)
        records["high"], records["low"], records["at"] = digests[:, 0], digests[:, 1], self._at
        self._digests, self._at = [], []
        bucket = records["low"] % np.uint64(self.buckets)
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(self.buckets + 1, dtype=np.uint64))
        for index in range(self.buckets):
            if bounds[index] < bounds[index + 1]:
                with open(self._bucket(index), "ab") as file:
                    file.write(records[order[bounds[index]:bounds[index + 1]]].tobytes())

    def found(self) -> Repeated:
        """Every item added that repeats an earlier item's key, and the first item of its key."""
        self._spill()
        later, heads = [], []
        for index in range(self.buckets):
            path = self._bucket(index)
            if not path.exists():
                continue
            records = np.fromfile(path, dtype=RECORD)
            path.unlink()
            records = records[np.lexsort((records["at"], records["low"], records["high"]))]
            first = np.ones(len(records), dtype=bool)  # the first item of its key
            first[1:] = (records["high"][1:] != records["high"][:-1]) | (records["low"][1:] != records["low"][:-1])
            head = records["at"][np.maximum.accumulate(np.where(first, np.arange(len(records)), 0))]
            later.append(records["at"][~first])
            heads.append(head[~first])
        later = np.concatenate(later) if later else np.empty(0, dtype=np.int64)
        heads = np.concatenate(heads) if heads else np.empty(0, dtype=np.int64)
        order = np.lexsort((later, heads))
        unique, starts = np.unique(heads[order], return_index=True)
        return Repeated(np.sort(later), unique, np.append(starts, len(order)), later[order])
