"""benchmarks/serve.py, tiny: a real server on a tiny translation run, a few clients, the mixed load."""
from __future__ import annotations

import pytest
from _translation_runs import cache_folder, translation_recipe
from conftest import needs_extra

from benchmarks.serve import main
from seqkit.training.run import start_run

pytestmark = pytest.mark.slow  # end to end: trains a run, starts a server, drives it


def test_a_tiny_load_measures_every_level_memory_and_a_mixed_load(tmp_path):
    needs_extra("starlette", "serve")
    with cache_folder(tmp_path / "cache"):
        start_run(translation_recipe(tmp_path, tmp_path / "g2p"), display="silent")
    result = main(["--run", str(tmp_path / "g2p"), "--clients", "1,4", "--requests", "60", "--seconds", "120",
                   "--rss-requests", "1100", "--worker-batches", "1,16", "--no-write"])
    assert [row["clients"] for row in result["rows"]] == [1, 4]
    assert all(row["answered"] == 60 and row["per_s"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0
               for row in result["rows"])
    assert [row["mean_batch"] for row in result["rows"]][0] == 1.0  # one client: never company
    assert 1.0 <= result["rows"][1]["mean_batch"] <= 4.0
    assert result["in_process"] > result["cli"] > 0 and all(rss > 0 for rss in result["rss"])
    assert list(result["ceiling"]) == [1, 16] and all(rate > 0 for rate in result["ceiling"].values())
    assert result["mixed"] == {"good_right": 54, "good_wrong": 0, "bad_4xx": 6, "bad_other": 0, "5xx": 0}
