"""`seqkit run` end to end in a real process: kill -9 mid-run, --resume, same final numbers."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from _tiny_runs import ONE_THREAD_ENV, metric_lines, tiny_recipe, write_tiny_recipe
from conftest import REPO, SAME_KERNELS, cli_here, make_plugin_dist, run_cli

from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.run import start_run

ENV = {**os.environ, **ONE_THREAD_ENV, **SAME_KERNELS}  # bit for bit across processes


def seqkit(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "seqkit", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


# 60 steps, a checkpoint every 10: each killed run has something to resume and more to do.
KILL_SETTINGS = ("train.steps=60", "train.eval_every=10", "train.log_every=5")
SLOW_WRITES = [sys.executable, str(REPO / "tests" / "_slow_checkpoints.py")]


def wait_for(proc, ready, seconds=120):
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(0.005)


def torn_files(folder):
    return sorted(folder.glob(".*.tmp-*"))


def kill_9(run_dir, recipe, moment, rng):
    """Start a run (checkpoint writes paused halfway) and kill -9 it after its first checkpoint:
    ``mid-write`` while one of the next writes of last.pt is half done, ``random`` at a random time."""
    proc = subprocess.Popen([*SLOW_WRITES, "run", str(recipe), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    checkpoints = run_dir / "checkpoints"

    def writing_last():
        return any(checkpoints.glob(".last.pt.tmp-*"))

    try:
        wait_for(proc, (checkpoints / "last.pt").exists)
        if moment == "mid-write":
            for _ in range(rng.randint(1, 4)):  # the write of step 20, 30, 40 or 50
                wait_for(proc, lambda: not writing_last())
                wait_for(proc, writing_last)
        else:
            time.sleep(rng.uniform(0.0, 0.8))
    finally:
        proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"


def assert_identical(a, b, where="checkpoint"):
    """Exactly equal: tensors by torch.equal, containers item by item, everything else by ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_is_bit_for_bit_an_uninterrupted_run(tmp_path):
    """One torch thread on CPU (ONE_THREAD_ENV, and conftest's for this process): the same
    operations in the same order, so a resumed run must give exactly the same numbers."""
    whole = start_run(tiny_recipe(tmp_path / "whole", *KILL_SETTINGS), display="silent")
    whole_checkpoint = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    rng = random.Random(9)
    for trial, moment in enumerate(["mid-write", "random"]):
        run_dir = tmp_path / f"killed-{trial}"
        recipe = write_tiny_recipe(tmp_path / f"killed-{trial}.yaml", run_dir, *KILL_SETTINGS)
        kill_9(run_dir, recipe, moment, rng)
        stopped_at = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
        assert 10 <= stopped_at < 60
        if moment == "mid-write":
            assert any((run_dir / "checkpoints").glob(".last.pt.tmp-*")), "the kill missed the write"

        resumed = seqkit("run", "--resume", run_dir, "--quiet", "--json")
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout)
        context = f"trial {trial} ({moment}), resumed from step {stopped_at}"
        assert result["step"] == 60 and result["stopped"] == "finished", context
        assert not torn_files(run_dir / "checkpoints"), context
        assert result["final"] == whole.final, context
        assert result["sample"] == whole.sample, context
        assert metric_lines(run_dir) == metric_lines(tmp_path / "whole"), context
        checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        for key in ("step", "model", "optimizer", "scheduler", "task", "rng", "metrics"):
            assert_identical(checkpoint[key], whole_checkpoint[key], f"{context}: {key}")


@pytest.mark.slow
def test_cli_errors_are_single_lines(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "train.steps=4",
                               "train.eval_every=2")
    ok = seqkit("run", recipe, "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert "finished at step 4" in ok.stdout and "sample:" in ok.stdout
    assert [json.loads(l)["split"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] \
        == ["train", "val", "train", "val", "end"]

    # the refusals below come before any training: the command in this process (conftest.cli_here)
    again = cli_here("run", recipe, "--quiet", env=ONE_THREAD_ENV)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "already holds a run" in again.stderr

    changed = cli_here("run", "--resume", tmp_path / "run", "--set", "train.lr=0.5", env=ONE_THREAD_ENV)
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    assert changed.stderr.splitlines()[0] == f"{tmp_path / 'run'}: recipe differs from the run's: train.lr: 0.01 -> 0.5"

    missing = cli_here("run", "--resume", tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.strip() == f"{tmp_path / 'nowhere'}: no such run directory"


def test_without_a_terminal_the_run_prints_log_lines_instead_of_a_bar(tmp_path):
    # stderr is a pipe here, as in CI or `seqkit run ... 2> log`: a bar would stay blank to the end
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "train.steps=8",
                               "train.eval_every=4")
    proc = seqkit("run", recipe)
    assert proc.returncode == 0, proc.stderr
    assert [line.split("  val loss ")[0] for line in proc.stderr.splitlines()] == ["step 4/8", "step 8/8"]


def test_a_loss_that_explodes_but_stays_finite_stops_the_run_in_one_line(tmp_path):
    # SGD at lr 1e30 without clipping: losses near 1e30, weights and gradients still finite
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "train.lr=1e30",
                               "train.optimizer=sgd", "train.clip_grad_norm=0")
    proc = seqkit("run", recipe, "--quiet")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"{recipe}: training stopped: the training loss became ")
    assert "e+" in proc.stderr and "times the untrained model's" in proc.stderr


HUGE_PERPLEXITY_TASK = """
    import seqkit
    from seqkit.plugins.tasks.char_lm.task import CharLM


    class HugePerplexity(CharLM):
        def evaluate(self, model):
            return {**super().evaluate(model), "perplexity": 9.1e30}


    @seqkit.hookimpl
    def register_tasks(register):
        register("huge_lm", HugePerplexity)
"""


def test_large_metrics_print_in_exponent_form(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "seqkit-huge", "huge_lm_plugin", HUGE_PERPLEXITY_TASK)
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "task=huge_lm",
                               "train.steps=4", "train.eval_every=4")
    proc = run_cli("run", recipe, "--quiet", site=site, env=ONE_THREAD_ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith("  perplexity 9.1e+30")  # the --quiet log line
    printed = [line for line in proc.stdout.splitlines() if line.startswith(("validation:", "best"))]
    assert len(printed) == 2 and all(line.endswith("  perplexity 9.1e+30") for line in printed)
    assert printed[1].startswith("best (step 4, lowest loss): loss ")  # the task's best_metric


BROKEN_CELL = """
    import seqkit


    class BrokenCell(seqkit.Cell):
        def step(self, x_t, state):
            scale = 1 / 0
            return state * scale, state


    @seqkit.hookimpl
    def register_cells(register):
        register("brokencell", BrokenCell)
"""


def test_an_exception_in_a_plugin_cell_names_the_cell_and_its_plugin(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "seqkit-brokencell", "brokencell_plugin", BROKEN_CELL)
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run", "model.cell=brokencell")
    proc = cli_here("run", recipe, "--quiet", site=site, env=ONE_THREAD_ENV)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "seqkit run: cell 'brokencell' (plugin seqkit-brokencell) raised ZeroDivisionError: "
        "division by zero in step(); run with --debug for the traceback"]
    debug = run_cli("run", recipe, "--quiet", "--debug", "--set", f"output={tmp_path / 'debug'}",
                    site=site, env=ONE_THREAD_ENV)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == "ZeroDivisionError: division by zero"


# One evaluation at step 100 of 200: a checkpoint before it can only be the signal's.
SIGNAL_SETTINGS = ("train.steps=200", "train.eval_every=100", "train.log_every=10")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(result, folder): the signal tests' run trained start to end in this process, once."""
    folder = tmp_path_factory.mktemp("uninterrupted") / "whole"
    return start_run(tiny_recipe(folder, *SIGNAL_SETTINGS), display="silent"), folder


@pytest.mark.slow
@pytest.mark.parametrize("stop, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_checkpoints_the_current_step_and_resume_is_an_uninterrupted_run(
        tmp_path, uninterrupted, stop, status):
    run_dir = tmp_path / "stopped"
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", run_dir, *SIGNAL_SETTINGS)
    proc = subprocess.Popen([sys.executable, "-m", "seqkit", "run", str(recipe), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    metrics = run_dir / "metrics.jsonl"
    wait_for(proc, lambda: metrics.exists() and metrics.read_text())  # step 10's training line
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert 10 <= saved < 100, "the signal came too late to land between evaluations"
    assert stderr.splitlines() == [
        f"seqkit: {stop.name}: stopped after step {saved}, saved in {run_dir / 'checkpoints' / 'last.pt'}; "
        f"continue with: seqkit run --resume {run_dir}"]

    resumed = seqkit("run", "--resume", run_dir, "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    whole, folder = uninterrupted
    assert result["step"] == 200 and result["final"] == whole.final and result["sample"] == whole.sample
    assert metric_lines(run_dir) == metric_lines(folder)
