"""Reading a run folder without opening a checkpoint: its recipe, its metrics, its state.

What ``seqkit runs`` lists and ``seqkit plot`` draws comes from the files a run writes
(``recipe.yaml``, ``metrics.jsonl``) and its lock (``seqkit.training.run_lock``), so listing stays
fast for large models.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from seqkit.errors import SeqkitError
from seqkit.registry import get_registry
from seqkit.training.run_lock import is_training


def describe_run(run_dir: Path) -> dict:
    """One run's row: from its recipe and metrics, nothing else."""
    recipe = _recipe(run_dir)
    records = read_metrics(run_dir / "metrics.jsonl")
    train = recipe.get("train") or {}
    model = recipe.get("model") or {}
    metric, mode = _best_metric(recipe)
    vals = [r for r in records if r.get("split") == "val" and isinstance(r.get(metric), (int, float))]
    best = (min if mode == "min" else max)(vals, key=lambda r: r[metric]) if vals else None
    test = next((r for r in reversed(records) if r.get("split") == "test"), None)
    end = next((r for r in reversed(records) if r.get("split") == "end"), None)
    stop = next((r for r in reversed(records) if r.get("split") == "stop"), None)
    timed = [r["elapsed"] for r in records if isinstance(r.get("elapsed"), (int, float))]
    if is_training(run_dir):
        state = "running"
    elif end is not None:
        state = "finished" if end.get("stopped") == "finished" else f"finished ({end.get('stopped')})"
    else:  # by a signal (its line says which), or killed
        state = "stopped" if stop is None else f"stopped ({stop.get('signal')})"
    decoder_cell = (model.get("decoder") or {}).get("cell") if isinstance(model.get("decoder"), dict) else None
    return {
        "run": str(run_dir), "task": recipe.get("task"), "cell": model.get("cell"),
        **({"decoder_cell": decoder_cell} if decoder_cell and decoder_cell != model.get("cell") else {}),
        # the step reached: a signal's stop line has it where the last log line falls short
        "step": max((r.get("step", 0) for r in records), default=0), "steps": train.get("steps"),
        "best_metric": metric,
        "best": None if best is None else {k: v for k, v in best.items() if k not in ("split", "elapsed")},
        "test": None if test is None else {k: v for k, v in test.items() if k != "split"},
        "elapsed": max(timed, default=0.0), "state": state,
        # with a train.time_limit: the seconds and the share of them used (schedule_by: time follows it)
        "time_limit": train.get("time_limit") or None, "schedule_by": train.get("schedule_by", "steps"),
        "budget_used": max((r["budget_used"] for r in records if isinstance(r.get("budget_used"), (int, float))),
                           default=None),
    }


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl``; a line torn by a kill (the last) is left out."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def _recipe(run_dir: Path) -> dict:
    try:
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SeqkitError(f"{run_dir / 'recipe.yaml'}: cannot read it ({type(exc).__name__}); "
                          f"is this a seqkit run?") from None
    return recipe if isinstance(recipe, dict) else {}


def _best_metric(recipe: dict) -> tuple[str, str]:
    """The task's own choice of best checkpoint, as the trainer made it; loss where the task
    cannot be built here (its plugin is not installed)."""
    try:
        task = get_registry().get("task", recipe["task"])(recipe, torch.device("cpu"))
        metric, mode = task.best_metric
        return str(metric), mode
    except Exception:  # any plugin's failure only costs the column its choice
        return "loss", "min"
