"""Tiny char_lm recipes for the trainer tests: a few thousand characters, a 16-unit model."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from seqkit.recipe import apply_overrides, resolve
from seqkit.registry import get_registry

# Subprocesses get one torch thread too, as conftest gives the tests (tiny models).
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1"}


TINY = {
    "task": "char_lm",
    "seed": 3,
    "device": "cpu",
    "data": {"dataset": "python-docs", "max_chars": 6000, "val_fraction": 0.2},
    "model": {"cell": "lstm", "hidden_size": 16, "layers": 2, "dropout": 0.1, "embedding_size": 8},
    "train": {"steps": 12, "batch_size": 4, "window": 16, "lr": 0.01, "eval_every": 4,
              "log_every": 2, "schedule": "cosine", "warmup_steps": 2, "sample_chars": 20},
}


def tiny_recipe(output: Path, *overrides: str) -> dict:
    data = json.loads(json.dumps(TINY))
    data["output"] = str(output)
    assert not apply_overrides(data, list(overrides))
    return resolve(data, get_registry())


def write_tiny_recipe(path: Path, output: Path, *overrides: str) -> Path:
    data = json.loads(json.dumps(TINY))
    data["output"] = str(output)
    assert not apply_overrides(data, list(overrides))
    path.write_text(yaml.safe_dump(data))
    return path


def metric_lines(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the timing fields, which differ between any two runs."""
    timing = ("elapsed", "tokens_per_s", "budget_used")
    lines = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in timing} for line in lines]
