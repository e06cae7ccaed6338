"""Preparing streams the datasets that read users' files (``Dataset.stream``: ``conll``, ``pairs``):
the splits read again at each pass equal ``load()``'s lists, with the same one-line problems; the
prepared corpus is byte for byte the one prepared from ``load()``; ``load()`` is never called; and
memory stays at a block of sentences however long the file is."""
from __future__ import annotations

import random
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from _tagging_runs import tagging_recipe
from _translation_runs import translation_recipe
from conftest import needs_extra

from seqkit import Dataset, SeqkitError
from seqkit.contracts import Split
from seqkit.contracts.tagged_corpus import TaggedCorpus
from seqkit.plugins.datasets import _repeats, _text_files, pairs
from seqkit.plugins.datasets.conll import Conll
from seqkit.plugins.datasets.pairs import Pairs
from seqkit.plugins.tasks.common import flat_sequences
from seqkit.plugins.tasks.tagging import corpus as tagging
from seqkit.plugins.tasks.translation import corpus as translation


@pytest.fixture
def small_pieces(monkeypatch):
    """Files read 7 bytes at a time (lines and characters cut across pieces), a bucket of source
    hashes per 40 bytes of a pairs file, written to their buckets 5 at a time."""
    monkeypatch.setattr(_text_files, "LINES_CHUNK", 7)
    monkeypatch.setattr(pairs, "BUCKET_BYTES", 40)
    monkeypatch.setattr(_repeats, "PENDING", 5)


def write(path: Path, text: str) -> str:
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def assert_same_corpus(dataset: Dataset) -> None:
    whole, streamed = dataset.load(), dataset.stream()
    assert type(streamed) is type(whole)
    assert list(streamed.splits) == list(whole.splits)
    for split, items in whole.splits.items():
        assert isinstance(streamed.splits[split], Split) and len(streamed.splits[split]) == len(items)
        assert list(streamed.splits[split]) == items, split
        assert list(streamed.splits[split]) == items, split  # read again: the same
    facts = ("level", "tag_set", "tag_styles") if isinstance(whole, TaggedCorpus) else \
        ("source_tokens", "target_tokens", "text")
    assert [getattr(streamed, f) for f in facts] == [getattr(whole, f) for f in facts]


# -- the datasets: stream() gives load()'s splits ------------------------------------------------

CONLL = "-DOCSTART- -X- O\n\n" + "\n\n".join(
    "\n".join(f"{w} X {t}" for w, t in zip(f"Élan {noun} sees the 中文 tree".split(), "B-N I-N O O B-X O".split()))
    for noun in ("dog", "cat", "man", "Dog", "house")) + "\r\n\r\n"
CONLLU = ("# text = The dog\n1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_\n2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n"
          "2\tdo\tdo\tAUX\tVB\t_\t0\troot\t_\t_\n3\tn't\tnot\tPART\tRB\t_\t2\tadv\t_\t_\n"
          "3.1\tgone\t_\tX\t_\t_\t_\t_\t_\t_\n\n")


@pytest.mark.parametrize("case", ["held out", "dev and test", "lowercase", "conllu", "conllu xpos"])
def test_conll_streams_the_sentences_that_load_reads(tmp_path, small_pieces, case):
    train = write(tmp_path / "train.conll", CONLL * 5)
    dev = write(tmp_path / "dev.conll", CONLL)
    conllu = write(tmp_path / "train.conllu", CONLLU * 12)
    options = {"held out": {"path": train}, "dev and test": {"path": train, "dev": dev, "test": dev},
               "lowercase": {"path": train, "lowercase": True}, "conllu": {"path": conllu},
               "conllu xpos": {"path": conllu, "tag_column": "xpos", "word_column": 2}}[case]
    assert_same_corpus(Conll(**options))


PAIRS = ("\ufeffcafé\tK AE F EY\r\n\nb a\tB  A\nzé\tZ\ncafé\tK AE F\ncafé\tK AE F EY\nab\tA B\n"
         "b  a\tB A\nb a\tB AH\r\n中文\tZH W\nab\tAH B\n") + "".join(f"w{i}\tW {i % 3}\n" for i in range(30))


@pytest.mark.parametrize("levels", [("space", "space"), ("char", "char"), ("char", "space"), ("space", "char")])
@pytest.mark.parametrize("files", ["held out", "dev and test"])
def test_pairs_streams_the_examples_that_load_reads(tmp_path, small_pieces, levels, files):
    """A source's lines are one example at its first line, its targets in line order, each once,
    whatever bucket of hashes they fall in and wherever the pieces cut the file."""
    train = write(tmp_path / "train.tsv", PAIRS)
    dev = write(tmp_path / "dev.tsv", PAIRS[::-1].replace("\ufeff", "") + "\nx\ty\n")
    options = {"path": train, "source_tokens": levels[0], "target_tokens": levels[1]}
    if files == "dev and test":
        options.update(dev=dev, test=train)
    dataset = Pairs(**options)
    assert_same_corpus(dataset)
    if levels == ("space", "space"):
        assert dataset.load().splits["train"][0] == (["café"], [["K", "AE", "F", "EY"], ["K", "AE", "F"]])


def test_the_fixed_size_datasets_stream_what_they_load(tmp_path):
    """The default ``stream()``: ``load()``'s lists, which every pass reads again."""
    from seqkit.plugins.datasets.roles import Roles

    dataset = Roles(train_sentences=40, dev_sentences=5, test_sentences=5)
    assert dataset.stream() == dataset.load()


CONLL_PROBLEMS = {
    "empty.conll": " \n\n",
    "blank.conll": "-DOCSTART- -X- O\n\n",
    "short.conll": "a X O\nb X B\n\n" * 8 + "c X O\nd O\n",
    "few.conll": "a X O\nb X B\n\n",
    "one_tag.conll": "a X O\n\n" * 12,
    "binary.conll": "a X O\n\x00",
    "untagged.conllu": "1\ta\t_\t_\t_\t_\t_\t_\t_\t_\n",
    "columns.conllu": "1\ta\t_\tX\n",
}


@pytest.mark.parametrize("name", list(CONLL_PROBLEMS))
def test_conll_problems_found_while_streaming_are_the_lines_load_gives(tmp_path, small_pieces, name):
    path = write(tmp_path / name, CONLL_PROBLEMS[name])
    problems = []
    for read in (Conll(path=path).load, Conll(path=path).stream):
        with pytest.raises(SeqkitError) as caught:
            read()
        problems.append(caught.value.problems)
    assert problems[0] == problems[1] and len(problems[0]) == 1 and problems[0][0].startswith("data.")


PAIRS_PROBLEMS = {
    "empty.tsv": "\ufeff \r\n\n",
    "no_tab.tsv": "a\tb\n" * 20 + "ab\n",
    "tabs.tsv": "é\tb\n\na\tb\tc\n",
    "source.tsv": "a\tb\n \tb\n",
    "target.tsv": "a\tb\na\t \n",
    "few.tsv": "a\tb\nc\td\na\te\n",
    "utf8.tsv": "a\tb\n" * 9 + "c\t\udcff\n",
}


@pytest.mark.parametrize("name", list(PAIRS_PROBLEMS))
def test_pairs_problems_found_while_streaming_are_the_lines_load_gives(tmp_path, small_pieces, name):
    path = tmp_path / name
    path.write_bytes(PAIRS_PROBLEMS[name].encode("utf-8", "surrogateescape"))
    problems = []
    for read in (Pairs(path=str(path)).load, Pairs(path=str(path)).stream):
        with pytest.raises(SeqkitError) as caught:
            read()
        problems.append(caught.value.problems)
    assert problems[0] == problems[1] and len(problems[0]) == 1 and problems[0][0].startswith("data.")


# -- the prepared corpus: byte for byte what load() gave -----------------------------------------

@contextmanager
def whole_load(dataset_class):
    """Preparing as before: the dataset read whole, ``load()``'s lists (the default ``stream``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dataset_class, "stream", Dataset.stream)
        yield


def prepared_twice(prepare, dataset_class, cache: Path, monkeypatch) -> tuple:
    """(streamed, whole): the corpus ``prepare()`` writes, each into a cache of its own: its arrays'
    manifest entries (dtype, count, checksum), the arrays themselves and the meta."""
    found = []
    for way in ("streamed", "whole"):
        monkeypatch.setenv("SEQKIT_CACHE_DIR", str(cache / way))
        if way == "streamed":
            corpus = prepare()
        else:
            with whole_load(dataset_class):
                corpus = prepare()
        assert not corpus.reused
        entries = {name: (e["dtype"], e["count"], e["checksum"]) for name, e in corpus.manifest["arrays"].items()}
        arrays = {name: np.asarray(corpus[name]) for name in corpus.names}
        found.append((entries, arrays, {k: v for k, v in corpus.meta.items() if k != "prepare_seconds"}))
    return tuple(found)


@pytest.mark.parametrize("case", ["words, dev and test", "words and characters, held out"])
def test_a_conll_corpus_prepared_streamed_is_the_one_prepared_whole(tmp_path, monkeypatch, case):
    recipe = tagging_recipe(tmp_path, tmp_path / "run")
    data = dict(recipe["data"])
    char_features = case.startswith("words and characters")
    if "held out" in case:
        del data["dev"], data["test"]
    monkeypatch.setattr(tagging, "BLOCK", 7)  # blocks of sentences that do not divide the splits
    (entries, arrays, meta), (whole_entries, whole_arrays, whole_meta) = prepared_twice(
        lambda: tagging.tagging_corpus(data, char_features), Conll, tmp_path / "cache", monkeypatch)
    assert list(entries) == list(whole_entries) and entries == whole_entries
    assert all(arrays[name].dtype == whole_arrays[name].dtype and np.array_equal(arrays[name], whole_arrays[name])
               for name in arrays)
    assert meta == whole_meta
    assert meta["splits"]["dev"]["sentences"] == (30 if "held out" not in case else 12)
    assert ("train_chars_ids" in entries) == char_features


PAIRS_CASES = {
    "char to space, dev and test": {},
    "space to char, held out": {"source_tokens": "space", "target_tokens": "char", "dev": None, "test": None},
    "bpe": {"source_tokens": "space", "source_tokenizer": {"name": "bpe", "vocab_size": 270},
            "target_tokenizer": {"name": "bpe", "vocab_size": 290}},  # (unigram trains differently each time)
    "joint bpe, held out": {"tokenizer": {"name": "bpe", "vocab_size": 280}, "dev": None},
    "joint char": {"tokenizer": {"name": "char"}},
}


@pytest.mark.parametrize("case", list(PAIRS_CASES))
def test_a_pairs_corpus_prepared_streamed_is_the_one_prepared_whole(tmp_path, monkeypatch, case):
    if "bpe" in case:
        needs_extra("tokenizers", "subword")
    recipe = translation_recipe(tmp_path, tmp_path / "run")
    data = {key: value for key, value in {**recipe["data"], **PAIRS_CASES[case]}.items() if value is not None}
    train = tmp_path / "train.tsv"  # a repeated source far from its first line, a character cut by a bucket
    train.write_text("café\tK AE F\n" + train.read_text() + "café\tK AH F\nbé\tB EH\n", encoding="utf-8")
    monkeypatch.setattr(translation, "BLOCK", 7)
    monkeypatch.setattr(pairs, "BUCKET_BYTES", 200)
    (entries, arrays, meta), (whole_entries, whole_arrays, whole_meta) = prepared_twice(
        lambda: translation.translation_corpus(data), Pairs, tmp_path / "cache", monkeypatch)
    assert list(entries) == list(whole_entries) and entries == whole_entries
    assert all(arrays[name].dtype == whole_arrays[name].dtype and np.array_equal(arrays[name], whole_arrays[name])
               for name in arrays)
    assert meta == whole_meta
    assert set(meta["splits"]) == ({"train", "dev"} if "held out" in case and "test" not in data else
                                   {"train", "dev", "test"})


def test_preparing_never_calls_load(tmp_path, cache, monkeypatch):
    def refuse(self):
        raise AssertionError("load() was called")

    monkeypatch.setattr(Conll, "load", refuse)
    monkeypatch.setattr(Pairs, "load", refuse)
    tagging_data = dict(tagging_recipe(tmp_path, tmp_path / "run")["data"])
    del tagging_data["dev"]
    assert tagging.tagging_corpus(tagging_data, True).meta["splits"]["dev"]["sentences"] == 12
    translation_data = dict(translation_recipe(tmp_path, tmp_path / "run")["data"])
    assert translation.translation_corpus(translation_data).meta["splits"]["test"]["examples"] > 0


@pytest.mark.parametrize("kind, empty, message", [
    ("tagging", "train", "data.dataset: 'conll' gave no training sentences"),
    ("tagging", "dev", "data.dataset: 'conll' gave no dev sentences to validate on; give a dev split "
                       "(conll: data.dev)"),
    ("translation", "train", "data.dataset: 'pairs' gave no training examples"),
    ("translation", "dev", "data.dataset: 'pairs' gave no dev examples to validate on; give a dev split "
                           "(pairs: data.dev)"),
])
def test_a_streamed_split_without_sentences_is_refused_as_before(tmp_path, cache, monkeypatch, kind, empty, message):
    if kind == "tagging":
        data, dataset_class = dict(tagging_recipe(tmp_path, tmp_path / "run")["data"]), Conll
        prepare = lambda: tagging.tagging_corpus(data, False)  # noqa: E731
    else:
        data, dataset_class = dict(translation_recipe(tmp_path, tmp_path / "run")["data"]), Pairs
        prepare = lambda: translation.translation_corpus(data)  # noqa: E731
    streamed = dataset_class.stream

    def without(self):
        corpus = streamed(self)
        corpus.splits[empty] = Split(lambda: iter(()), 0)
        return corpus

    monkeypatch.setattr(dataset_class, "stream", without)
    with pytest.raises(SeqkitError) as caught:
        prepare()
    assert caught.value.problems == [message]


# -- memory: a block of sentences, not the file --------------------------------------------------

WORDS = [f"w{i}" for i in range(200)]


def write_conll_lines(path: Path, lines: int) -> Path:
    rng = random.Random(lines)
    with open(path, "w", encoding="utf-8") as file:
        for i in range(lines):
            file.write(f"{rng.choice(WORDS)} X {rng.choice('ABC')}\n" + ("\n" if i % 12 == 11 else ""))
    return path


def write_pairs_lines(path: Path, lines: int) -> Path:
    rng = random.Random(lines)
    with open(path, "w", encoding="utf-8") as file:
        for _ in range(lines):
            source = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=10))
            file.write(f"{source}\t{' '.join(source[:5].upper())}\n")
    return path


def peak_bytes(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["conll", "pairs"])
def test_preparing_holds_a_block_of_sentences_not_the_file(tmp_path, cache, monkeypatch, kind):
    """Preparing a file four times as long takes no more memory (small pieces, blocks and buckets
    make the bound small beside the file), where the lists of ``load()`` grow with the file."""
    monkeypatch.setattr(_text_files, "LINES_CHUNK", 4096)
    monkeypatch.setattr(tagging, "BLOCK", 64)
    monkeypatch.setattr(translation, "BLOCK", 64)
    monkeypatch.setattr(pairs, "BUCKET_BYTES", 16384)
    monkeypatch.setattr(_repeats, "PENDING", 256)
    monkeypatch.setattr(flat_sequences, "_BLOCK", 256)
    if kind == "conll":
        write_file, dataset_class, suffix = write_conll_lines, Conll, "conll"
        prepare = lambda path: tagging.tagging_corpus({"dataset": "conll", "path": str(path)}, True)  # noqa: E731
    else:
        write_file, dataset_class, suffix = write_pairs_lines, Pairs, "tsv"
        prepare = lambda path: translation.translation_corpus(  # noqa: E731
            {"dataset": "pairs", "path": str(path), "source_tokens": "char"})
    prepare(write_file(tmp_path / f"warm.{suffix}", 400))  # imports and first calls, outside the count
    short, long = write_file(tmp_path / f"short.{suffix}", 5_000), write_file(tmp_path / f"long.{suffix}", 20_000)
    loaded_peak = peak_bytes(dataset_class(path=str(long)).load)
    with monkeypatch.context() as patch:
        patch.setattr(dataset_class, "load", lambda self: pytest.fail("load() was called"))
        short_peak, long_peak = peak_bytes(lambda: prepare(short)), peak_bytes(lambda: prepare(long))
    assert loaded_peak > 3 * long.stat().st_size  # the lists: several times the file
    assert long_peak - short_peak < (long.stat().st_size - short.stat().st_size) / 10
