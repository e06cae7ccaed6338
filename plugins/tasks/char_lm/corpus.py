"""char_lm's prepared corpus: the dataset's text cut into training and dev text (``split_segments``),
the tokenizer trained on the training text alone, and both texts as flat token ids on disk
(``seqkit.corpus``), read through memory maps.

Three streamed passes over the text, one piece (a few MB) in memory at a time: count its
characters (the blocks of the split need the length), train the tokenizer on the training pieces,
encode every piece into its split's array. The key of the prepared copy is the data's identity,
the split and the tokenizer, so a second run with the same data reuses it, and a changed file is
prepared again.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from seqkit import SeqkitError
from seqkit.corpus import PreparedCorpus, open_prepared, smallest_uint
from seqkit.plugins.tasks.common.dataset_splits import recipe_dataset
from seqkit.tokenization import build_tokenizer, spec_identity, tokenizer_state

from .data import split_segments

FORMAT = 1  # bump when what is written changes, so that older prepared copies are not reused

Progress = Callable[[str, int, int], None]  # (stage, bytes done, bytes in all)


def tokenizer_spec(data: dict) -> dict:
    """``data.tokenizer`` as a mapping; by default the ``char`` tokenizer with char_lm's own
    ``data.lowercase``, ``data.alphabet`` and ``data.unknown``."""
    spec = data.get("tokenizer")
    if spec is None:
        return {"name": "char", "lowercase": data["lowercase"], "alphabet": data["alphabet"],
                "unknown": data["unknown"]}
    return {"name": spec} if isinstance(spec, str) else dict(spec)


def split_options(data: dict, window: int) -> dict:
    """What decides the split: its fraction and kind, and, for a fraction finer than 100 blocks,
    the shortest block (a few windows, so that validation windows fit inside one)."""
    fine = data["val_split"] == "blocks" and data["val_fraction"] * 100 < 1
    return {"val_fraction": data["val_fraction"], "val_split": data["val_split"],
            "min_block": 4 * (window + 1) if fine else 1}


def lm_corpus(data: dict, window: int, progress: Progress | None = None) -> PreparedCorpus:
    """The prepared corpus of the recipe's ``data`` section, built if it is not on disk yet.
    Arrays ``train`` and ``dev``; meta: the trained tokenizer's state, characters and tokens per
    split, the text's size in bytes."""
    dataset, spec, split = recipe_dataset(data), tokenizer_spec(data), split_options(data, window)
    identity = {"format": FORMAT, "data": dataset.identity(), "split": split, "tokenizer": spec_identity(spec)}
    files = len(identity["data"].get("files", [])) or 1  # a dataset that names no files: one text
    return open_prepared("lm", identity, lambda writer: _build(writer, data["dataset"], dataset, spec, split,
                                                               files, progress or _quiet))


def corpus_summary(corpus: PreparedCorpus) -> dict:
    """What ``seqkit prepare`` reports of a prepared corpus."""
    meta = corpus.meta
    return {"path": str(corpus.path), "reused": corpus.reused, "tokenizer": meta["tokenizer"]["name"],
            "vocabulary": meta["vocab_size"], "tokens": meta["tokens"], "characters": meta["chars"],
            "files": meta["files"], "text_megabytes": meta["bytes"] / 1e6,
            "prepared_megabytes": corpus.nbytes / 1e6, "seconds": meta["prepare_seconds"]}


def _quiet(stage: str, done: int, total: int) -> None:
    """No one watches."""


def _build(writer, name: str, dataset, spec: dict, split: dict, files: int, progress: Progress) -> dict:
    start = time.perf_counter()
    n_chars = n_bytes = 0
    for piece in _texts(dataset, name):
        n_chars += len(piece)
        n_bytes += len(piece) if piece.isascii() else len(piece.encode("utf-8", "surrogatepass"))
        progress("reading", n_bytes, 0)
    if not n_chars:
        raise SeqkitError(f"data.dataset: '{name}' returned no text")
    segments = split_segments(n_chars, split["val_fraction"], split["val_split"], split["min_block"])
    scale = n_bytes / n_chars  # progress in bytes, from characters read

    tokenizer = build_tokenizer(spec, "data.tokenizer")
    done = 0

    def training_pieces() -> Iterator[str]:
        nonlocal done
        for piece, held in _cut(_texts(dataset, name), segments):
            done += len(piece)
            progress("training tokenizer", int(done * scale), n_bytes)
            if not held:
                yield piece

    tokenizer.train(training_pieces())
    dtype = smallest_uint(tokenizer.vocab_size)
    arrays = {False: writer.array("train", dtype), True: writer.array("dev", dtype)}
    chars = {False: 0, True: 0}
    done = 0
    for piece, held in _cut(_texts(dataset, name), segments):
        ids = tokenizer.encode(piece)
        arrays[held].append(ids)
        # characters as the model reads them (what bits per character divides by): the dev
        # text's, as the tokenizer gives it back
        chars[held] += len(tokenizer.decode(ids)) if held else len(piece)
        done += len(piece)
        progress("encoding", int(done * scale), n_bytes)
    return {"tokenizer": tokenizer_state(tokenizer), "vocab_size": tokenizer.vocab_size,
            "chars": {"train": chars[False], "dev": chars[True]},
            "tokens": {"train": arrays[False].count, "dev": arrays[True].count},
            "bytes": n_bytes, "files": files,
            "prepare_seconds": time.perf_counter() - start}


def _texts(dataset, name: str) -> Iterator[str]:
    for piece in dataset.texts():
        if not isinstance(piece, str):
            raise SeqkitError(f"data.dataset: '{name}' gives {type(piece).__name__} data, not text; "
                              f"char_lm reads a text dataset such as python-docs, python-source or text")
        yield piece


def _cut(pieces: Iterable[str], segments: list[tuple[int, int, bool]]) -> Iterator[tuple[str, bool]]:
    """The text's pieces cut where the split's segments meet: (piece, held out?)."""
    index, position = 0, 0  # the segment, and where the piece starts in the text
    for piece in pieces:
        offset = 0  # read up to here of this piece
        while offset < len(piece):
            end = segments[index][1] - position  # the segment's end, in this piece
            part = piece[offset:end]
            yield part, segments[index][2]
            offset += len(part)
            if offset == end and index + 1 < len(segments):
                index += 1
        position += len(piece)
