"""The base class of data sources, and what they return.

A dataset is built with its own ``options`` (its keys of the recipe's ``data`` section) and its
``load()`` returns what a task consumes: one ``str`` for a text dataset, a ``TaggedCorpus``
(``seqkit.contracts.tagged_corpus``) for tagging, a ``ParallelCorpus``
(``seqkit.contracts.parallel_corpus``) for translation. User files are read with
``read_text_file``, whose one-line errors name the file and what to do.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from seqkit.options import Option
from seqkit.text_files import read_text_file

__all__ = ["Dataset", "read_text_file"]


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
