"""``train.schedule_by: time``: the learning rate follows the share of ``train.time_limit`` used.

A fake clock (tests/_fake_clock.py) makes every optimizer step take a fixed time, so the schedule,
the stop at the budget and the resume are checked exactly and without sleeping.
"""
from __future__ import annotations

import io
import json
import math

import pytest
import torch.multiprocessing as mp
from _ddp import free_port
from _fake_clock import install, train_with_rank_clocks
from _tiny_runs import tiny_recipe
from rich.console import Console

import seqkit.training.run as run_module
from seqkit import SeqkitError
from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.progress import ProgressBar, Silent
from seqkit.training.run import resume_run, start_run
from seqkit.training.schedule import lr_factor

# 0.25 s a step against a 10 s budget: the budget ends after step 40, long before train.steps.
TIMED = ("train.schedule_by=time", "train.time_limit=10", "train.steps=1000", "train.log_every=1",
         "train.eval_every=8", "train.warmup_steps=0")
STEP = 0.25


def records(run, split="train"):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["split"] == split]


def test_the_time_schedule_is_the_step_schedule_over_the_share_of_the_budget_used():
    train = {"schedule_by": "time", "time_limit": 200.0, "steps": 10, "warmup_steps": 0, "schedule": "cosine"}
    assert lr_factor(0, train, 0.0) == 1.0
    assert lr_factor(3, train, 50.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(5, train, 100.0) == pytest.approx(0.5)
    assert lr_factor(9, train, 200.0) == pytest.approx(0.0)
    assert lr_factor(99, train, 500.0) == pytest.approx(0.0)  # past the budget: the end of the schedule
    # the warm-up counts steps: its first updates are small however long they take
    warm = {**train, "warmup_steps": 4}
    assert [lr_factor(s, warm, 0.0) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor(1, warm, 100.0) == pytest.approx(0.5 * 0.5)
    assert {lr_factor(s, {**train, "schedule": "constant"}, 150.0 * s) for s in range(3)} == {1.0}


def test_the_run_follows_the_budget_and_stops_when_it_is_spent(tmp_path, monkeypatch):
    install(monkeypatch, STEP)
    result = start_run(tiny_recipe(tmp_path / "r", *TIMED), display="silent")
    assert result.stopped == "time_limit" and result.step == 40 and result.elapsed == 10.0
    train = records(tmp_path / "r")
    assert [line["step"] for line in train] == list(range(1, 41))
    for line in train:  # the logged rate is the one the next step takes: after `step` steps of 0.25 s
        used = line["step"] * STEP / 10
        assert line["budget_used"] == used
        assert line["lr"] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * used)), abs=1e-12)
    assert train[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert [line["budget_used"] for line in records(tmp_path / "r", "val")] == [0.2, 0.4, 0.6, 0.8, 1.0]


def test_a_slower_machine_takes_fewer_steps_over_the_same_learning_rates(tmp_path, monkeypatch):
    install(monkeypatch, 2 * STEP)
    start_run(tiny_recipe(tmp_path / "slow", *TIMED), display="silent")
    slow = {line["budget_used"]: line["lr"] for line in records(tmp_path / "slow")}
    assert len(slow) == 20
    monkeypatch.undo()
    install(monkeypatch, STEP)
    start_run(tiny_recipe(tmp_path / "fast", *TIMED), display="silent")
    fast = {line["budget_used"]: line["lr"] for line in records(tmp_path / "fast")}
    assert len(fast) == 40 and all(fast[used] == pytest.approx(lr, abs=1e-12) for used, lr in slow.items())


class _Interrupt(Silent):
    """Stands in for a kill right after step 12 (the last checkpoint is step 8's)."""

    def advance(self, step):
        if step == 12:
            raise KeyboardInterrupt


def test_a_resumed_run_takes_exactly_the_steps_of_an_uninterrupted_one(tmp_path, monkeypatch):
    install(monkeypatch, STEP)
    whole = start_run(tiny_recipe(tmp_path / "whole", *TIMED), display="silent")
    monkeypatch.setattr(run_module, "make_display", lambda mode, total, start=0: _Interrupt(total, start))
    with pytest.raises(KeyboardInterrupt):
        start_run(tiny_recipe(tmp_path / "cut", *TIMED), display="silent")
    checkpoint = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert (checkpoint["step"], checkpoint["trainer"]["elapsed"]) == (8, 2.0)
    monkeypatch.undo()
    install(monkeypatch, STEP)  # another process, with its clock somewhere else
    resumed = resume_run(tmp_path / "cut", display="silent")
    assert (resumed.step, resumed.stopped, resumed.final) == (whole.step, "time_limit", whole.final)
    lines = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    wanted = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in line.items() if k != "tokens_per_s"} for line in lines] == \
           [{k: v for k, v in line.items() if k != "tokens_per_s"} for line in wanted]


def test_a_run_resumed_on_a_slower_machine_continues_from_the_same_share_of_the_budget(tmp_path, monkeypatch):
    install(monkeypatch, STEP)
    monkeypatch.setattr(run_module, "make_display", lambda mode, total, start=0: _Interrupt(total, start))
    with pytest.raises(KeyboardInterrupt):
        start_run(tiny_recipe(tmp_path / "r", *TIMED), display="silent")
    monkeypatch.undo()
    install(monkeypatch, 4 * STEP)  # 1 s a step: the 8 s left take 8 steps
    resumed = resume_run(tmp_path / "r", display="silent")
    after = [line for line in records(tmp_path / "r") if line["step"] > 8]
    assert [line["step"] for line in after] == list(range(9, 17)) and resumed.step == 16
    assert [line["budget_used"] for line in after] == pytest.approx([0.2 + 0.1 * k for k in range(1, 9)])


def test_a_time_schedule_without_a_budget_is_a_one_line_error(tmp_path):
    with pytest.raises(SeqkitError) as info:
        tiny_recipe(tmp_path / "r", "train.schedule_by=time", "train.time_limit=0")
    assert str(info.value) == ("recipe: train.schedule_by: time needs a time budget; set train.time_limit "
                               "to the seconds of training (validation included), or use schedule_by: steps")
    with pytest.raises(SeqkitError, match="train.schedule_by: must be one of steps, time; got 'hours'"):
        tiny_recipe(tmp_path / "r", "train.schedule_by=hours")


def test_two_processes_take_rank_0s_learning_rate_at_every_step_whatever_their_clocks(tmp_path):
    recipe = tiny_recipe(tmp_path / "run", *TIMED, "model.dropout=0")
    # rank 1's clock runs three times as fast: alone, it would decay sooner and stop at step 14
    args = (2, recipe, free_port(), [STEP, 3 * STEP], str(tmp_path))
    mp.start_processes(train_with_rank_clocks, args, nprocs=2, join=True, start_method="spawn")
    taken = [json.loads((tmp_path / f"lr-{rank}.json").read_text()) for rank in (0, 1)]
    assert len(taken[0]) == 40 and taken[0] == taken[1]
    assert records(tmp_path / "run")[-1]["budget_used"] == 1.0


def test_the_bar_fills_by_whichever_bound_ends_the_run_and_shows_the_time_left():
    out = io.StringIO()
    bar = ProgressBar(1000, console=Console(file=out, width=200, force_terminal=False))
    bar.time_used(150.0, 600.0)
    bar.advance(30)
    assert bar.bar.tasks[0].completed == 0.25  # 3 % of the steps, 25 % of the budget
    bar.close()
    assert "30/1000" in out.getvalue() and "budget 7:30 left" in out.getvalue()
