"""Metric loggers: plugins that receive what the trainer records, besides ``metrics.jsonl``.

A logger is registered by the ``register_loggers`` hook and chosen in a recipe by
``train.loggers: [name, ...]``. On rank 0 only, a run calls ``start`` once with the resolved
recipe, ``log`` with every record it appends to ``metrics.jsonl`` and ``close`` at its end,
whatever ends it. ``metrics.jsonl`` stays the record a run always keeps: a logger that fails
is switched off with a warning, and the run goes on.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from seqkit.errors import SeqkitWarning


class MetricLogger:
    """Base class of metric loggers. ``run_dir`` is the run's folder (write under it)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    @classmethod
    def check(cls) -> list[str]:
        """Problems to report before a run starts, such as a missing package and how to install
        it; ``seqkit validate`` reports them too. [] when the logger can run."""
        return []

    def start(self, recipe: dict, step: int) -> None:
        """Called once with the resolved recipe. ``step`` is where the run goes on from: 0 for a
        new run, the checkpoint's step on resume (records past it will come again)."""

    def log(self, record: dict) -> None:
        """One record as written to ``metrics.jsonl``: ``step``, ``split`` (train, val, test,
        end, or stop for a signal's) and its values."""

    def close(self) -> None:
        """The run has ended (finished, stopped or failed): flush and release files."""


class Loggers:
    """The recipe's loggers behind one object; each failure is a warning, once, naming it."""

    def __init__(self, loggers: dict[str, MetricLogger]):
        self.active = dict(loggers)

    @classmethod
    def open(cls, names: list[str], run_dir: Path, recipe: dict, step: int) -> "Loggers":
        from seqkit.registry import get_registry

        loggers = cls({})
        for name in names:
            try:
                logger = get_registry().get("logger", name)(run_dir)
                logger.start(recipe, step)
            except Exception as exc:
                loggers._failed(name, exc)
            else:
                loggers.active[name] = logger
        return loggers

    def log(self, record: dict) -> None:
        for name, logger in list(self.active.items()):
            self._call(name, lambda: logger.log(record))

    def close(self) -> None:
        for name, logger in list(self.active.items()):
            self._call(name, logger.close)
        self.active.clear()

    def _call(self, name: str, action) -> None:
        try:
            action()
        except Exception as exc:
            self._failed(name, exc)

    def _failed(self, name: str, exc: Exception) -> None:
        self.active.pop(name, None)
        first = (str(exc).strip().splitlines() or [""])[0]
        warnings.warn(f"logger '{name}' failed ({type(exc).__name__}: {first}); it is off for "
                          f"the rest of the run, metrics.jsonl has every record", SeqkitWarning)
