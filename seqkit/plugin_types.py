"""Base classes of tasks and datasets (cells: seqkit.cell; decoders: seqkit.decoding).

Each declares ``options``: the recipe keys it owns, validated by seqkit before it is built.
"""
from __future__ import annotations

from seqkit.options import Option


class Task:
    """Owns data, model assembly, loss and metrics for one kind of problem.

    ``options`` maps a recipe section (``data``, ``model``, ``train``, ``decode``) to the extra
    keys this task adds to it.
    """

    options: dict[str, dict[str, Option]] = {}


class Dataset:
    """A data source, built with its own ``options`` from the recipe's ``data`` section."""

    options: dict[str, Option] = {}
