"""Sequences stored flat in a prepared corpus: written one at a time, gathered as padded batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqkit.corpus import open_prepared, smallest_uint
from seqkit.plugins.tasks.common.flat_sequences import FlatSequences, SequenceWriter, as_long, flat_arrays, take


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


def test_aligned_values_and_a_nested_level_are_gathered_by_the_same_arithmetic():
    """Sentences of words with a tag per word (aligned) and each word's characters (one sequence
    per word): written in blocks, read back from the memory maps and from the same arrays in memory."""
    sentences = [["ab", "c"], ["dddd", "e", "ff"], ["g"]]
    ids = np.arange(6)  # word i of the corpus has id i
    tags = np.array([1, 2, 1, 1, 2, 1])
    words = [w for s in sentences for w in s]
    chars = np.array([ord(c) for c in "".join(words)])

    def build(writer):
        out = SequenceWriter(writer, "train", np.uint8, aligned={"tags": np.uint8})
        out.extend(ids[:2], [2], tags=tags[:2])
        out.extend(ids[2:], [3, 1], tags=tags[2:])
        out.flush()
        spelled = SequenceWriter(writer, "train_chars", np.uint8)
        spelled.extend(chars, [len(w) for w in words])
        spelled.flush()
        with pytest.raises(ValueError, match="give the aligned arrays"):
            out.append(ids[:1])
        with pytest.raises(ValueError, match="lengths add up to 3"):
            out.extend(ids[:2], [3], tags=tags[:2])
        return {}

    corpus = open_prepared("test", {"aligned": 1}, build)
    in_memory = {**flat_arrays("train", ids, [2, 3, 1], tags=tags),
                 **flat_arrays("train_chars", chars, [len(w) for w in words])}
    for arrays in (corpus, in_memory):
        flat = FlatSequences(arrays, "train", aligned=("tags",))
        spelled = FlatSequences(arrays, "train_chars")
        at, inside, lengths = flat.positions(np.array([1, 2]), 3)
        assert lengths.tolist() == [3, 1]
        assert take(flat.ids, at, inside, -1).tolist() == [[2, 3, 4], [5, -1, -1]]
        assert take(flat.aligned["tags"], at, inside).tolist() == [[1, 1, 2], [1, 0, 0]]
        char_at, char_inside, word_lengths = spelled.positions(at, 4, within=inside)
        assert word_lengths.tolist() == [[4, 1, 2], [1, 0, 0]]
        text = np.where(char_inside, take(spelled.ids, char_at, char_inside), ord("."))
        assert ["".join(map(chr, word)) for word in text.reshape(-1, 4)] == \
            ["dddd", "e...", "ff..", "g...", "....", "...."]
