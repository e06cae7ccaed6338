"""seqkit runs (a table of runs with their state) and seqkit plot (a PNG of metrics against step
or time), on real runs: finished, stopped by a signal, stopped by its time limit, training now."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time

import pytest
from _tiny_runs import ONE_THREAD_ENV, tiny_recipe, write_tiny_recipe
from conftest import cli_here, needs_extra, run_cli, site_without

from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.run import start_run
from seqkit.training.run_lock import training_lock


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs/finished (12 steps), runs/timed (stopped by train.time_limit), runs/killed (no end:
    a signal or a kill leaves its metrics without the end line), runs/other/deep (nested)."""
    root = tmp_path_factory.mktemp("runs") / "runs"
    start_run(tiny_recipe(root / "finished"), display="silent")
    start_run(tiny_recipe(root / "timed", "train.steps=100000", "train.time_limit=0.5"), display="silent")
    start_run(tiny_recipe(root / "killed", "train.steps=8"), display="silent")
    metrics = root / "killed" / "metrics.jsonl"
    metrics.write_text("".join(line + "\n" for line in metrics.read_text().splitlines()[:-1]))
    start_run(tiny_recipe(root / "other" / "deep", "train.steps=4", "model.cell=gru"), display="silent")
    return root


def test_runs_lists_each_run_with_its_state_progress_and_best_metrics(runs):
    done = cli_here("runs", runs, "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["run"]: row for row in json.loads(done.stdout)}
    assert sorted(rows) == [str(runs / n) for n in ("finished", "killed", "other/deep", "timed")]
    finished = rows[str(runs / "finished")]
    assert finished["state"] == "finished" and (finished["step"], finished["steps"]) == (12, 12)
    val = [json.loads(l) for l in (runs / "finished" / "metrics.jsonl").read_text().splitlines()
           if json.loads(l)["split"] == "val"]
    best = min(val, key=lambda r: r["loss"])
    assert finished["best_metric"] == "loss" and finished["best"]["step"] == best["step"]
    assert finished["best"]["loss"] == best["loss"] and finished["elapsed"] == val[-1]["elapsed"]
    assert rows[str(runs / "timed")]["state"] == "finished (time_limit)"
    assert rows[str(runs / "timed")]["step"] < 100000
    timed = rows[str(runs / "timed")]  # the share of train.time_limit used, as metrics.jsonl says
    last = json.loads((runs / "timed" / "metrics.jsonl").read_text().splitlines()[-2])
    assert (timed["time_limit"], timed["schedule_by"]) == (0.5, "steps")
    assert timed["budget_used"] == last["budget_used"] == min(1.0, last["elapsed"] / 0.5) == 1.0
    assert finished["time_limit"] is None and finished["budget_used"] is None
    assert rows[str(runs / "killed")]["state"] == "stopped"
    assert rows[str(runs / "other/deep")]["cell"] == "gru"


@pytest.mark.slow
def test_a_run_stopped_by_a_signal_shows_the_step_it_saved_not_its_last_log_line(tmp_path):
    """SIGINT after step 241 of 300 used to list as 240/300: the training line of step 240 was
    the last in metrics.jsonl, the checkpoint held 241."""
    run_dir = tmp_path / "runs" / "stopped"
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", run_dir, "train.steps=300",
                               "train.eval_every=300", "train.log_every=10")
    proc = subprocess.Popen([sys.executable, "-m", "seqkit", "run", str(recipe), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **ONE_THREAD_ENV})
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text()):  # step 10's training line
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the signal"
        time.sleep(0.005)
    time.sleep(0.05)  # a few steps past the line
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert 10 <= saved < 300
    [row] = json.loads(cli_here("runs", tmp_path / "runs", "--json").stdout)
    assert (row["step"], row["steps"], row["state"]) == (saved, 300, "stopped (SIGINT)")
    last = json.loads(metrics.read_text().splitlines()[-1])
    assert last["step"] == saved and row["elapsed"] == last["elapsed"]
    table = run_cli("runs", tmp_path / "runs").stdout
    assert f"{saved}/300" in table and "stopped (SIGINT)" in table


def test_the_table_shows_the_share_of_the_time_limit_used():
    from seqkit.cli.runs import _time
    assert _time({"elapsed": 245.2, "time_limit": 350.0, "budget_used": 0.7006}) == "4m05s (70% of 5m50s)"
    assert _time({"elapsed": 245.2, "time_limit": None, "budget_used": None}) == "4m05s"


def test_a_run_being_trained_reads_as_running_and_cannot_be_resumed_meanwhile(runs):
    with training_lock(runs / "finished"):  # what a training process holds
        listed = {r["run"]: r["state"] for r in json.loads(cli_here("runs", runs, "--json").stdout)}
        resumed = run_cli("run", "--resume", runs / "finished")
    assert listed[str(runs / "finished")] == "running"
    assert resumed.returncode == 2 and "is training this run now" in resumed.stderr
    assert len(resumed.stderr.strip().splitlines()) == 1
    listed = {r["run"]: r["state"] for r in json.loads(cli_here("runs", runs, "--json").stdout)}
    assert listed[str(runs / "finished")] == "finished"  # the lock went with its holder


def test_runs_prints_a_table_and_says_when_there_is_nothing(runs, tmp_path):
    table = run_cli("runs", runs)
    assert table.returncode == 0, table.stderr
    for text in ("finished (time_limit)", "stopped", "12/12", "loss ", "other/deep"):
        assert text in table.stdout, text
    empty = cli_here("runs", tmp_path)
    assert empty.returncode == 0 and empty.stdout.strip() == f"no runs under {tmp_path}"
    missing = cli_here("runs", tmp_path / "nope")
    assert missing.returncode == 2 and missing.stderr.startswith(f"{tmp_path / 'nope'}: no such folder")


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_plot_draws_several_runs_into_one_png(runs, tmp_path):
    needs_extra("matplotlib", "plot")
    out = tmp_path / "cmp.png"
    done = cli_here("plot", runs / "finished", runs / "other" / "deep", "--metric", "bits_per_char",
                   "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    width, height = _png_size(out)
    assert width > 300 and height > 200 and out.stat().st_size > 5000
    curves = json.loads(done.stdout)["curves"]
    val = [json.loads(l) for l in (runs / "finished" / "metrics.jsonl").read_text().splitlines()]
    assert curves["finished"] == [[r["step"], r["bits_per_char"]] for r in val if r["split"] == "val"]
    assert [step for step, _ in curves["deep"]] == [4]


def test_plot_without_output_writes_into_the_run_and_time_is_in_minutes(runs):
    needs_extra("matplotlib", "plot")
    done = cli_here("plot", runs / "finished", "--split", "train", "--x", "time", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["output"] == str(runs / "finished" / "plot.png") and _png_size(runs / "finished" / "plot.png")
    train = [json.loads(l) for l in (runs / "finished" / "metrics.jsonl").read_text().splitlines()]
    assert report["curves"]["finished"] == [[r["elapsed"] / 60, r["loss"]] for r in train if r["split"] == "train"]


def test_plot_errors_are_one_line(runs, tmp_path):
    wrong = cli_here("plot", runs / "finished", "--metric", "word_error_rate")
    assert wrong.returncode == 2 and wrong.stderr.strip() == (
        f"{runs / 'finished' / 'metrics.jsonl'}: no 'word_error_rate' in its val lines; logged there: "
        f"bits_per_char, loss, perplexity (choose with --metric)")
    nowhere = cli_here("plot", tmp_path)
    assert nowhere.returncode == 2 and "no metrics.jsonl" in nowhere.stderr
    without = run_cli("plot", runs / "finished", "-o", tmp_path / "x.png",
                      site=site_without("matplotlib", tmp_path / "hide"))
    assert without.returncode == 2
    assert without.stderr.strip() == 'matplotlib is not installed: pip install "seqkit[plot]"'
