"""benchmarks/time_budget.py, tiny: both schedules of the tagging recipe on a slowed machine (each
run pinned to one core) and a busy one (beside a spinning process), with a 2-second budget and a
small model."""
from __future__ import annotations

import shutil

import pytest

from benchmarks.time_budget import char_lm_limit, main, report

pytestmark = pytest.mark.slow  # end to end: two training processes


@pytest.mark.parametrize("condition", ["slowed", "busy"])
def test_both_schedules_run_slowed_and_report_their_test_scores(condition):
    if condition == "slowed" and shutil.which("taskset") is None:
        pytest.skip("taskset (util-linux) is not installed")
    tiny = ["data.max_files=12", "data.test_files=0", "data.max_length=64", "model.hidden_size=16",
            "model.layers=1", "train.eval_every=20", "train.batch_size=16", "train.batch_tokens=1024"]
    result = main(["--recipes", "tagging", "--conditions", condition, "--budget", "2",
                   *[arg for value in tiny for arg in ("--set", value)]])
    timed, stepped = (result["results"]["tagging", condition, s] for s in ("time", "steps"))
    assert timed["stopped"] == "time_limit" and timed["budget_used"] == 1.0 and timed["steps"] > 0
    assert stepped["steps"] > 0 and 0 < stepped["budget_used"] <= 1.0
    assert all(0.0 <= r["test"]["accuracy"] <= 1.0 for r in (timed, stepped))
    report = result["report"]
    assert f"| tagging | {condition} | time |" in report and f"| tagging | {condition} | steps |" in report
    assert "tagging 800 steps" in report


def test_the_char_lm_table_names_the_time_limit_its_runs_had():
    lm = {("quiet", "time"): {"steps": 1588, "stopped": "time_limit", "bits_per_char": 1.39},
          ("quiet", "steps"): {"steps": 900, "stopped": "finished", "bits_per_char": 1.46}}
    assert char_lm_limit([]) == 240 and char_lm_limit(["train.time_limit=436", "model.layers=1"]) == 436
    given = report({}, [], ["quiet"], lm, char_lm_limit(["train.time_limit=436"]))
    assert "with `train.time_limit: 436`" in given and "| quiet | time | 1,588 | time_limit | 1.3900 |" in given
    assert "with `train.time_limit: 240`" in report({}, [], ["quiet"], lm)
