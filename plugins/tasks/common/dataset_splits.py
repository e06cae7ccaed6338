"""A task's data through the dataset plugin its recipe names (``data.dataset``), built with that
plugin's own options (every task), and its splits for the tasks that read corpora (tagging,
translation): loaded whole, or streamed (``Dataset.stream``) and read a block at a time."""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from seqkit import Dataset, SeqkitError
from seqkit.registry import get_registry


def recipe_dataset(data: dict) -> Dataset:
    """The dataset of the recipe's ``data`` section, given the keys it declares."""
    dataset_cls = get_registry().get("dataset", data["dataset"])
    return dataset_cls(**{k: data[k] for k in dataset_cls.options if k in data})


def load_corpus(data: dict, kind: type, what: str, items: str):
    """The recipe's dataset loaded, checked to give ``kind`` (``what`` names it for the task:
    "tagged sentences; tagging reads a tagging dataset such as ...") and a training split."""
    return _checked(recipe_dataset(data).load(), data, kind, what, items)


def stream_corpus(data: dict, kind: type, what: str, items: str):
    """``load_corpus``, streamed: the recipe's dataset as ``Dataset.stream()`` gives it (each split
    read again at each pass, or a list), checked the same way."""
    return _checked(recipe_dataset(data).stream(), data, kind, what, items)


def blocks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter), read one list at a time."""
    items = iter(items)
    while block := list(itertools.islice(items, size)):
        yield block


def _checked(corpus, data: dict, kind: type, what: str, items: str):
    if not isinstance(corpus, kind):
        raise SeqkitError(f"data.dataset: '{data['dataset']}' gives {type(corpus).__name__} data, not {what}")
    if not corpus.splits["train"]:
        raise SeqkitError(f"data.dataset: '{data['dataset']}' gave no training {items}")
    return corpus


def read_split(data: dict, split: str, path: str | Path | None, items: str, test_hint: str) -> list:
    """For ``seqkit eval``: the ``split`` of the recipe's dataset (read again), or with ``path``
    one file in the dataset's own format (its ``read_file``). ``items`` names what a split holds
    ("sentences") and ``test_hint`` how a dataset gets a test split, for the one-line errors."""
    dataset = recipe_dataset(data)
    if path is not None:
        if not hasattr(dataset, "read_file"):
            raise SeqkitError(f"--input-file: the dataset '{data['dataset']}' of this run reads no "
                              f"files of its own; score its dev or test split with --split")
        return dataset.read_file(Path(path), "--input-file")
    found = dataset.load().splits.get(split)
    if not found:
        raise SeqkitError(f"--split: the dataset '{data['dataset']}' of this run has no {split} {items}"
                          + (f" ({test_hint})" if split == "test" else ""))
    return found
