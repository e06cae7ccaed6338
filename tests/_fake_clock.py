"""A fake clock for the trainer: every optimizer step takes exactly ``step_seconds``, validation
and everything else take none, so a time schedule is tested without sleeping (and exactly)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from seqkit.training.trainer import Trainer


class StepClock:
    def __init__(self, step_seconds: float):
        self.now, self.step_seconds = 1000.0, step_seconds

    def __call__(self) -> float:
        return self.now


def install(monkeypatch, step_seconds: float) -> StepClock:
    """Make ``Trainer`` read a ``StepClock`` that each optimizer step advances."""
    clock = StepClock(step_seconds)
    original = Trainer._optimizer_step

    def timed_step(self, params):
        clock.now += clock.step_seconds
        return original(self, params)

    monkeypatch.setattr(Trainer, "clock", clock)
    monkeypatch.setattr(Trainer, "_optimizer_step", timed_step)
    return clock


class _Patch:
    """``monkeypatch`` for a spawned process, which has no pytest fixture."""

    def setattr(self, target, name, value):
        setattr(target, name, value)


def train_with_rank_clocks(rank: int, world: int, recipe: dict, port: int, seconds_per_rank: list[float],
                           out: str) -> None:
    """One rank of a data-parallel run whose clock runs at its own speed; writes the learning rate
    it took at every step to ``out``/lr-RANK.json."""
    from _ddp import rank_environment

    from seqkit.training.run import start_run

    torch.set_num_threads(1)
    os.environ.update(rank_environment(rank, world, port))
    install(_Patch(), seconds_per_rank[rank])
    taken = []
    timed_step = Trainer._optimizer_step

    def recording_step(self, params):
        taken.append(self.optimizer.param_groups[0]["lr"])
        return timed_step(self, params)

    Trainer._optimizer_step = recording_step
    start_run(recipe, display="silent")
    Path(out, f"lr-{rank}.json").write_text(json.dumps(taken))
