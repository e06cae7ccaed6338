"""seqkit's side of ``benchmarks.tagging_quality``: a tagging recipe trained through its real path
(``seqkit.training.run.start_run`` into a run folder) for a wall-clock budget, and its best checkpoint
scored through ``Tagging.evaluate``, as ``seqkit eval`` scores it.

The recipe's cosine schedule should end when the budget does, so ``train.steps`` is set from what
one step and one validation pass take on this machine (measured on the same task and model before
the run); ``train.time_limit`` stops the run at the budget whatever the estimate.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from seqkit.decoding import build_decoder
from seqkit.recipe import load_recipe
from seqkit.registry import get_registry
from seqkit.training.run import load_run, start_run

WARMUP_STEPS = 2  # probe steps not timed: allocator and kernel warm-up


@dataclass
class SeqkitRun:
    run_dir: Path
    steps: int        # optimizer steps taken
    planned: int      # train.steps, from the measured step and validation times
    seconds: float    # the trainer's elapsed time: training and its validations
    tokens: int       # real tokens read in training
    stopped: str      # "finished" or "time_limit"


def planned_steps(recipe: dict, seconds: float, probe_steps: int):
    """(train.steps that fill ``seconds``, the prepared task). A step's time is the median of
    ``probe_steps`` timed optimizer steps. The trainer's clock also runs through the validations
    every ``eval_every`` steps, but not through the last one (after the last step), so a validation
    pass is timed too where the run would make one on the way."""
    train = recipe["train"]
    task = get_registry().get("task", recipe["task"])(recipe, torch.device(recipe["device"]))
    task.prepare()
    torch.manual_seed(recipe["seed"])
    model = task.build_model().to(task.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=train["lr"])
    times = []
    model.train()
    for step in range(WARMUP_STEPS + probe_steps):
        started = time.perf_counter()
        loss, _ = task.loss(model, task.train_batch(step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train["clip_grad_norm"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), train["clip_grad_norm"])
        optimizer.step()
        times.append(time.perf_counter() - started)
    step = statistics.median(times[WARMUP_STEPS:])
    steps, every = max(1, int(seconds / step)), train["eval_every"]
    if steps > every:
        model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            task.evaluate(model)
        validation = time.perf_counter() - started
        while steps > 1 and steps * step + (steps - 1) // every * validation > seconds:
            steps -= 1
    return steps, task


def train_recipe(path: Path, overrides: list[str], seconds: float, run_dir: Path,
                 probe_steps: int) -> SeqkitRun:
    """Train the recipe at ``path`` with ``overrides`` for ``seconds`` into ``run_dir``."""
    budget = [f"output={run_dir}", f"train.time_limit={seconds}", *overrides]
    steps, task = planned_steps(load_recipe(path, budget), seconds, probe_steps)
    # the step schedule planned to end at the budget, as the published figures were measured
    # (benchmarks/time_budget.py compares it with the recipes' own schedule_by: time)
    planned = [*budget, f"train.steps={steps}", "train.schedule_by=steps"]
    result = start_run(load_recipe(path, planned), display="silent")
    tokens = sum(int(task.train_batch(step).lengths.sum()) for step in range(result.step))
    return SeqkitRun(run_dir, result.step, steps, result.elapsed, tokens, result.stopped)


def score(run_dir: Path, split: str, device: str, strategy: str | None = None, options: dict | None = None,
          path: Path | None = None):
    """(metrics, TagCounts) of the run's best checkpoint on ``split`` of its dataset, or on the
    labelled file ``path`` (held as ``split``), decoded by ``strategy`` where given."""
    run = load_run(run_dir, "best", device=device)
    run.task.load_split(split, path)
    decoder = build_decoder(strategy, options or {}) if strategy else None
    with torch.no_grad():
        metrics = run.task.evaluate(run.model, split, decoder)
    return metrics, run.task.counts[split]

