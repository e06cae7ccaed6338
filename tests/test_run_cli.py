"""`seqkit run` end to end in a real process: kill -9 mid-run, --resume, same final numbers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from seqkit.checkpoint import load_checkpoint
from seqkit.run import start_run

from _tiny_runs import ONE_THREAD_ENV, metric_lines, tiny_recipe, write_tiny_recipe

ENV = {**os.environ, **ONE_THREAD_ENV}
SETTINGS = ("train.steps=160", "train.eval_every=20", "train.log_every=10")


def seqkit(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "seqkit", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "killed", *SETTINGS)
    proc = subprocess.Popen([sys.executable, "-m", "seqkit", "run", str(recipe), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"
    stopped_at = load_checkpoint(last)["step"]
    assert 0 < stopped_at < 160

    resumed = seqkit("run", "--resume", tmp_path / "killed", "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["step"] == 160 and result["stopped"] == "finished"

    whole = start_run(tiny_recipe(tmp_path / "whole", *SETTINGS), display="silent")
    for key, value in whole.final.items():
        assert result["final"][key] == pytest.approx(value, rel=0, abs=1e-6)
    assert result["sample"] == whole.sample
    killed_lines, whole_lines = metric_lines(tmp_path / "killed"), metric_lines(tmp_path / "whole")
    assert [(l["step"], l["split"]) for l in killed_lines] == [(l["step"], l["split"]) for l in whole_lines]
    for a, b in zip(killed_lines, whole_lines):
        assert a["loss"] == pytest.approx(b["loss"], rel=0, abs=1e-6)


def test_cli_errors_are_single_lines(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "train.steps=4",
                               "train.eval_every=2")
    ok = seqkit("run", recipe, "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert "finished at step 4" in ok.stdout and "sample:" in ok.stdout
    assert [json.loads(l)["split"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] \
        == ["train", "val", "train", "val"]

    again = seqkit("run", recipe, "--quiet")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "already holds a run" in again.stderr

    changed = seqkit("run", "--resume", tmp_path / "run", "--set", "train.lr=0.5")
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    assert changed.stderr.splitlines()[0] == f"{tmp_path / 'run'}: recipe differs from the run's: train.lr: 0.01 -> 0.5"

    missing = seqkit("run", "--resume", tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.strip() == f"{tmp_path / 'nowhere'}: no such run directory"


def test_without_a_terminal_the_run_prints_log_lines_instead_of_a_bar(tmp_path):
    # stderr is a pipe here, as in CI or `seqkit run ... 2> log`: a bar would stay blank to the end
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "train.steps=8",
                               "train.eval_every=4")
    proc = seqkit("run", recipe)
    assert proc.returncode == 0, proc.stderr
    assert [line.split("  val loss ")[0] for line in proc.stderr.splitlines()] == ["step 4/8", "step 8/8"]
