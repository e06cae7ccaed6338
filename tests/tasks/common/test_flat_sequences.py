"""Sequences stored flat in a prepared corpus: written one at a time, gathered as padded batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqkit.corpus import open_prepared, smallest_uint
from seqkit.plugins.tasks.common.flat_sequences import FlatSequences, SequenceWriter, as_long


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_sequences_written_one_at_a_time_come_back_padded_by_one_gather(monkeypatch):
    monkeypatch.setattr("seqkit.plugins.tasks.common.flat_sequences._BLOCK", 7)  # several flushes
    rng = np.random.default_rng(0)
    sequences = [rng.integers(1, 300, size=rng.integers(0, 12)) for _ in range(50)]

    def build(writer):
        out = SequenceWriter(writer, "source", smallest_uint(300))
        for s in sequences:
            out.append(s)
        out.flush()
        assert out.count == 50
        return {}

    flat = FlatSequences(open_prepared("test", {"n": 50}, build), "source")
    assert len(flat) == 50 and flat.ids.dtype == np.uint16
    for i in (0, 17, 49):
        assert np.array_equal(flat.sequence(i), sequences[i])
    rows = np.array([3, 0, 41, 41])
    ids, lengths = flat.gather(rows, time=12, pad=-1)
    assert ids.shape == (4, 12) and lengths.tolist() == [len(sequences[r]) for r in rows]
    for row, r in zip(ids, rows):
        n = len(sequences[r])
        assert np.array_equal(row[:n], sequences[r]) and (row[n:] == -1).all()
    batch = as_long(ids, torch.device("cpu"))
    assert batch.dtype == torch.int64 and torch.equal(batch, torch.from_numpy(ids.astype(np.int64)))
