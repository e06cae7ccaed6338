"""The learning-rate schedule: over optimizer steps, or over the time budget (``train.schedule_by``).

With ``schedule_by: steps`` the decay runs from the end of the warm-up to ``train.steps``. With
``schedule_by: time`` it runs over the fraction of ``train.time_limit`` used, so a slower machine
takes fewer steps at the right learning rates and a faster one spends its whole budget; ``train.steps``
is then only an upper bound. The warm-up is counted in steps in both: it is there to protect the first
updates (Adam's moments start from nothing), whose number, not their duration, is what matters.
"""
from __future__ import annotations

import math


def budget_fraction(elapsed: float, train: dict) -> float | None:
    """The share of ``train.time_limit`` that ``elapsed`` seconds used (up to 1); None without a limit."""
    limit = train["time_limit"]
    return min(1.0, elapsed / limit) if limit else None


def lr_factor(step: int, train: dict, elapsed: float = 0.0) -> float:
    """Multiplier of the base learning rate at ``step`` (``elapsed`` seconds of training into the
    run): a linear warm-up over ``warmup_steps``, then constant, or a cosine that reaches 0 at the
    last step (``schedule_by: steps``) or when the time budget is spent (``schedule_by: time``)."""
    warmup = train["warmup_steps"]
    if train.get("schedule_by", "steps") == "time":
        warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return warm * _decay(train["schedule"], budget_fraction(elapsed, train))
    if step < warmup:
        return (step + 1) / warmup
    return _decay(train["schedule"], min(1.0, (step - warmup) / max(1, train["steps"] - warmup)))


def _decay(schedule: str, progress: float) -> float:
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * progress))

