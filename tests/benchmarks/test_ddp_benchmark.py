"""benchmarks/ddp.py measures what a run logs: one process here (two run in test_data_parallel)."""
from __future__ import annotations

import json
import statistics

import pytest
import yaml

from benchmarks.ddp import train, write_recipe

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains


def test_a_benchmark_run_reports_the_tokens_per_second_it_logged(tmp_path):
    recipe = write_recipe(tmp_path, "run", 12, 4, quick=True)
    settings = yaml.safe_load(recipe.read_text())
    assert settings["train"]["batch_size"] == 4 and settings["model"]["hidden_size"] == 32
    speed = train(recipe, 1, tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [line["tokens_per_s"] for line in lines if line["split"] == "train"]
    assert len(logged) == 6  # a line every 2 steps: the first, a warm-up, is left out
    assert speed == statistics.median(logged[1:]) > 0
