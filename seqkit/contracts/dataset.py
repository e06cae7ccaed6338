"""The base class of data sources, and what they return.

A dataset is built with its own ``options`` (its keys of the recipe's ``data`` section) and its
``load()`` returns what a task consumes: one ``str`` for a text dataset, a ``TaggedCorpus``
(``seqkit.contracts.tagged_corpus``) for tagging, a ``ParallelCorpus``
(``seqkit.contracts.parallel_corpus``) for translation. User files are read with
``read_text_file``, whose one-line errors name the file and what to do.

Tasks prepare a dataset once and keep it on disk (``seqkit.corpus``): a text dataset's ``texts()``
streams it in pieces, a corpus dataset's ``stream()`` gives its splits as ``Split``s read again
from the files at each pass, so that a corpus larger than memory is never held whole, and its
``identity()`` says what the data is, so that a change to it is noticed and prepared again.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from seqkit.options import Option
from seqkit.text_files import read_text_file

__all__ = ["Dataset", "Split", "read_text_file"]


class Split:
    """A split of the corpus that ``Dataset.stream()`` returns, read again from the dataset's files
    each time it is iterated, never held whole: ``read()`` gives a new iterable of its items
    (sentences, examples), ``count`` their number, known when the dataset was opened (``len()``
    says it without reading)."""

    def __init__(self, read: Callable[[], Iterable], count: int):
        self.read, self.count = read, count

    def __iter__(self) -> Iterator:
        return iter(self.read())

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"Split({self.count} items)"


class Dataset(ABC):
    """A data source, built with its own ``options`` from the recipe's ``data`` section.

    ``Dataset(**options).load()`` returns the raw data a task consumes: text datasets return
    one ``str``. Problems the user can fix (missing file, binary or empty input) are raised as
    ``seqkit.SeqkitError`` naming the file.
    """

    options: dict[str, Option] = {}

    @classmethod
    def check(cls, options: dict) -> list[str]:
        """Problems with ``options`` (this dataset's keys of the recipe's ``data`` section) found
        without reading the data, such as a missing or unreadable file, as ``"data.key: message"``.
        ``seqkit validate`` and ``seqkit run`` call it before anything is read or written."""
        return []

    def __init__(self, **options):
        self.config = options

    @abstractmethod
    def load(self) -> Any:
        """The data: one ``str`` for a text dataset."""

    def stream(self) -> Any:
        """The data as preparing reads it (``seqkit.corpus``): what ``load()`` returns, except that
        a corpus's splits may be ``Split``s, read again from the files at each pass, so that
        memory holds one block of items, not the corpus. Datasets that read users' files override
        it (``pairs``, ``conll``: problems found as ``load()`` finds them, with the same lines);
        the default returns ``load()``, whose lists are read again just as well."""
        return self.load()

    def texts(self) -> Iterator[str]:
        """A text dataset's text in pieces (a few MB each, in order), joined equal to ``load()``.
        Override it to stream data larger than memory; the default yields ``load()`` whole."""
        yield self.load()

    def identity(self) -> dict:
        """What the data is, as JSON-able values that change whenever the data does: the key of
        its prepared copy. Datasets reading files give the files' names, sizes and modification
        times; the default hashes the streamed text (one extra read)."""
        digest = hashlib.sha256()
        for piece in self.texts():  # (data that is not text: its type, for the task to refuse)
            digest.update(piece.encode("utf-8", "surrogatepass") if isinstance(piece, str) else
                          type(piece).__name__.encode())
        return {"dataset": f"{type(self).__module__}.{type(self).__qualname__}", "options": self.config,
                "sha256": digest.hexdigest()}
