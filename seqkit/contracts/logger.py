"""Metric loggers: plugins that receive what the trainer records, besides ``metrics.jsonl``.

A logger is registered by the ``register_loggers`` hook and chosen in a recipe by
``train.loggers: [name, ...]``. On rank 0 only, a run calls ``start`` once with the resolved
recipe, ``log`` with every record it appends to ``metrics.jsonl`` and ``close`` at its end,
whatever ends it. ``metrics.jsonl`` stays the record a run always keeps: a logger that fails
is switched off with a warning, and the run goes on (``seqkit.training.loggers``).
"""
from __future__ import annotations

from pathlib import Path


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
