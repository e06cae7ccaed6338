"""A run's metric loggers (``train.loggers``), behind one object that never stops the run.

``metrics.jsonl`` is the record a run always keeps: a logger that fails is switched off with one
warning naming it, and the run goes on.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from seqkit.contracts.logger import MetricLogger
from seqkit.errors import SeqkitWarning
from seqkit.registry import get_registry


class Loggers:
    """The recipe's loggers behind one object; each failure is a warning, once, naming it."""

    def __init__(self, loggers: dict[str, MetricLogger]):
        self.active = dict(loggers)

    @classmethod
    def open(cls, names: list[str], run_dir: Path, recipe: dict, step: int) -> Loggers:
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
