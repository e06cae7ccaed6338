"""The generic trainer: schedules, optimizers, determinism, resume, NaN stop, patience, the
loss per token, the task's best metric and resume check."""
from __future__ import annotations

import math

import pytest
import torch
from _tiny_runs import metric_lines, tiny_recipe

import seqkit.training.run as run_module
from seqkit import SeqkitError, Task
from seqkit.errors import SeqkitWarning
from seqkit.training.checkpoint import load_checkpoint, save_checkpoint
from seqkit.training.progress import Silent
from seqkit.training.run import resume_run, start_run
from seqkit.training.trainer import Trainer, build_optimizer, lr_factor


def test_lr_factor_warms_up_linearly_then_follows_a_cosine_to_zero():
    train = {"warmup_steps": 4, "steps": 104, "schedule": "cosine"}
    assert [lr_factor(s, train) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(54, train) == pytest.approx(0.5)
    assert lr_factor(104, train) == pytest.approx(0.0)
    constant = {"warmup_steps": 0, "steps": 10, "schedule": "constant"}
    assert {lr_factor(s, constant) for s in range(10)} == {1.0}


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("sgd", torch.optim.SGD)])
def test_build_optimizer_uses_the_recipe_settings(name, cls):
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(params, {"optimizer": name, "lr": 0.3, "weight_decay": 0.01, "momentum": 0.9})
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["weight_decay"] == 0.01
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9


def test_same_seed_gives_the_same_numbers_and_writes_the_run_directory(tmp_path):
    first = start_run(tiny_recipe(tmp_path / "a"), display="silent")
    second = start_run(tiny_recipe(tmp_path / "b"), display="silent")
    assert first.final == second.final and first.sample == second.sample
    assert metric_lines(tmp_path / "a") == metric_lines(tmp_path / "b")
    lines = metric_lines(tmp_path / "a")
    assert [l["step"] for l in lines if l["split"] == "val"] == [4, 8, 12]
    assert lines[-1] == {"step": 12, "split": "end", "stopped": "finished"}  # it ended as planned
    assert {"loss", "bits_per_char", "perplexity"} <= set(lines[-2])
    assert lines[-2]["bits_per_char"] == pytest.approx(lines[-2]["loss"] / math.log(2))
    for name in ("recipe.yaml", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (tmp_path / "a" / name).is_file()
    assert load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["step"] == 12
    different = start_run(tiny_recipe(tmp_path / "c", "seed=4"), display="silent")
    assert different.final != first.final


class _Interrupt(Silent):
    """Stands in for a kill: stops the loop right after ``at`` steps."""

    def __init__(self, total, start=0, at=10):
        super().__init__(total, start)
        self.at = at

    def advance(self, step):
        if step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("overrides", [(), ("train.sampling=random", "train.carry_state=false"),
                                       ("train.sampling=random", "train.carry_state=false",
                                        "train.pool=12", "train.loss_on=last"),
                                       ("train.precision=bf16-mixed",)])
def test_resume_reproduces_an_uninterrupted_run(tmp_path, monkeypatch, overrides):
    # eval_every 4 and a stop after step 10: the resumed run restarts from step 8 and must
    # replay steps 9-10 identically (dropout RNG, carried state, running loss sum, schedule).
    whole = start_run(tiny_recipe(tmp_path / "whole", *overrides), display="silent")
    monkeypatch.setattr(run_module, "make_display", lambda mode, total, start=0: _Interrupt(total, start))
    with pytest.raises(KeyboardInterrupt):
        start_run(tiny_recipe(tmp_path / "cut", *overrides), display="silent")
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 8
    torn = [tmp_path / "cut" / "checkpoints" / ".last.pt.tmp-999",  # as kills during writes leave
            tmp_path / "cut" / ".metrics.jsonl.tmp-999", tmp_path / "cut" / ".recipe.yaml.tmp-999"]
    for path in torn:
        path.write_bytes(b"half a file")
    monkeypatch.undo()
    resumed = resume_run(tmp_path / "cut", display="silent")
    assert resumed.step == 12 and not any(path.exists() for path in torn)
    assert resumed.final == whole.final  # bit for bit: one torch thread (conftest)
    assert resumed.sample == whole.sample
    assert metric_lines(tmp_path / "cut") == metric_lines(tmp_path / "whole")
    # the divergence check's reference, the untrained model's loss, survives the resume
    reference = [load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")["trainer"]["initial_loss"]
                 for run in ("cut", "whole")]
    assert reference[0] == reference[1] > 0


def test_resume_refuses_a_changed_recipe_unless_forced(tmp_path):
    start_run(tiny_recipe(tmp_path / "r"), display="silent")
    with pytest.raises(SeqkitError) as info:
        resume_run(tmp_path / "r", overrides=["train.steps=16", "train.lr=0.02"], display="silent")
    text = str(info.value)
    assert "train.steps: 12 -> 16" in text and "train.lr: 0.01 -> 0.02" in text and "--force" in text
    result = resume_run(tmp_path / "r", overrides=["train.steps=16"], force=True, display="silent")
    assert result.step == 16
    assert "steps: 16" in (tmp_path / "r" / "recipe.yaml").read_text()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_forced_resume_trains_with_the_new_optimizer_settings(tmp_path, optimizer):
    start_run(tiny_recipe(tmp_path / "r", f"train.optimizer={optimizer}"), display="silent")
    changed = ["train.steps=16", "train.lr=0.05", "train.weight_decay=0.001"]
    if optimizer == "sgd":
        changed.append("train.momentum=0.5")
    resume_run(tmp_path / "r", overrides=changed, force=True, display="silent")
    train = tiny_recipe(tmp_path / "r", f"train.optimizer={optimizer}", *changed)["train"]
    logged = {line["step"]: line["lr"] for line in metric_lines(tmp_path / "r") if line["split"] == "train"}
    assert [logged[s] for s in (14, 16)] == [0.05 * lr_factor(s, train) for s in (14, 16)]
    group = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["optimizer"]["param_groups"][0]
    assert group["weight_decay"] == 0.001 and group["initial_lr"] == 0.05
    assert group.get("momentum", 0.5) == 0.5


def test_a_fresh_run_refuses_to_overwrite_an_existing_one(tmp_path):
    start_run(tiny_recipe(tmp_path / "r"), display="silent")
    with pytest.raises(SeqkitError, match="already holds a run.*--resume"):
        start_run(tiny_recipe(tmp_path / "r"), display="silent")


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from seqkit.plugins.tasks.char_lm.task import CharLM

    real_loss, calls = CharLM.loss, []

    def loss_that_breaks_at_step_7(self, model, batch):
        loss, count = real_loss(self, model, batch)
        calls.append(1)
        return (loss * float("nan") if len(calls) >= 7 else loss), count

    monkeypatch.setattr(CharLM, "loss", loss_that_breaks_at_step_7)
    with pytest.raises(SeqkitError) as info:
        start_run(tiny_recipe(tmp_path / "r"), display="silent")
    message = str(info.value)
    assert "loss became nan between steps 7 and 8" in message
    assert "step 4" in message and "last.pt" in message
    kept = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert kept["step"] == 4
    assert all(torch.isfinite(t).all() for t in kept["model"].values())


def test_a_failing_end_of_run_sample_is_a_one_line_note(tmp_path, monkeypatch, capsys):
    from seqkit.plugins.tasks.char_lm.task import CharLM

    def sample(self, model):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0\nmore")

    monkeypatch.setattr(CharLM, "sample", sample)
    result = start_run(tiny_recipe(tmp_path / "r"), display="log")
    assert result.step == 12 and result.sample is None
    assert capsys.readouterr().err.splitlines()[-1] == (
        "sample skipped: RuntimeError: probability tensor contains either `inf`, `nan` or element < 0")


def test_patience_stops_after_evaluations_without_improvement(tmp_path, monkeypatch):
    from seqkit.plugins.tasks.char_lm.task import CharLM

    losses = iter([3.0, 2.0, 2.5, 2.4, 2.1, 1.0])
    monkeypatch.setattr(CharLM, "evaluate", lambda self, model: {"loss": next(losses)})
    result = start_run(tiny_recipe(tmp_path / "r", "train.steps=40", "train.patience=3"),
                       display="silent")
    assert result.stopped == "patience" and result.step == 20
    assert result.best == {"step": 8, "loss": 2.0}
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["step"] == 8


def test_time_limit_stops_and_evaluates(tmp_path):
    result = start_run(tiny_recipe(tmp_path / "r", "train.steps=100000", "train.time_limit=0.5"),
                       display="silent")
    assert result.stopped == "time_limit" and result.step < 100000
    assert metric_lines(tmp_path / "r")[-2:] == [{"step": result.step, "split": "val", **result.final},
                                                 {"step": result.step, "split": "end", "stopped": "time_limit"}]


def test_a_run_that_used_its_time_limit_resumes_only_with_a_larger_one(tmp_path):
    run = tmp_path / "r"
    first = start_run(tiny_recipe(run, "train.steps=100000", "train.time_limit=0.3"), display="silent")
    assert first.stopped == "time_limit"
    logged = (run / "metrics.jsonl").read_text()
    with pytest.raises(SeqkitError) as info:
        resume_run(run, display="silent")
    assert str(info.value) == (
        f"{run}: train.time_limit: the run used its 0.3 s at step {first.step} of 100000; to train "
        f"on, raise it: seqkit run --resume {run} --set train.time_limit=0.6 --force (0: no limit)")
    assert (run / "metrics.jsonl").read_text() == logged  # not one more step, evaluation or sample
    more = resume_run(run, overrides=["train.time_limit=0", f"train.steps={first.step + 3}"],
                      force=True, display="silent")
    assert more.stopped == "finished" and more.step == first.step + 3


class _FixedLossTask(Task):
    """Batches whose per-token losses are fixed numbers, whatever the weights: even steps one
    token of loss 4, odd steps three tokens of loss 1. ``scores`` are its evaluations in turn."""

    def __init__(self, recipe, device="cpu", scores=()):
        super().__init__(recipe, device)
        self.scores = iter(scores)

    def prepare(self):
        pass

    def train_batch(self, step):
        return torch.full((1,), 4.0) if step % 2 == 0 else torch.ones(3)

    def build_model(self):
        return torch.nn.Linear(1, 1)

    def loss(self, model, batch):
        return batch.mean() + 0 * model.weight.sum(), batch.numel()

    def evaluate(self, model):
        return dict(next(self.scores))


def _fit(task, run_dir, *overrides):
    recipe = tiny_recipe(run_dir, *overrides)
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("")
    trainer = Trainer(recipe, task, task.build_model(), run_dir, Silent(recipe["train"]["steps"]),
                      torch.device("cpu"))
    return trainer.fit()


def test_the_logged_training_loss_is_a_mean_per_token_not_per_step(tmp_path):
    scores = [{"loss": 1.0}] * 2
    _fit(_FixedLossTask({}, scores=scores), tmp_path / "r", "train.steps=4", "train.log_every=2",
         "train.eval_every=2")
    train_lines = [line for line in metric_lines(tmp_path / "r") if line["split"] == "train"]
    # (4 * 1 + 1 * 3) / 4 tokens; the mean of the two steps' means would be 2.5
    assert [line["loss"] for line in train_lines] == [1.75, 1.75]


def test_best_metric_max_keeps_the_highest_and_patience_waits_for_it(tmp_path):
    task = _FixedLossTask({}, scores=[{"loss": 3.0, "accuracy": 0.5}, {"loss": 2.5, "accuracy": 0.7},
                                      {"loss": 2.0, "accuracy": 0.6}, {"loss": 1.5, "accuracy": 0.65}])
    task.best_metric = ("accuracy", "max")
    result = _fit(task, tmp_path / "r", "train.steps=8", "train.eval_every=1", "train.patience=2")
    # the loss fell at every evaluation: a min-loss rule would keep step 4 and never stop
    assert result.stopped == "patience" and result.step == 4
    assert result.best == {"step": 2, "loss": 2.5, "accuracy": 0.7}
    assert result.best_metric == ("accuracy", "max")
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["step"] == 2


def test_a_missing_or_malformed_best_metric_is_one_line_naming_the_task(tmp_path):
    task = _FixedLossTask({}, scores=[{"loss": 3.0}])
    task.best_metric = ("f1", "max")
    with pytest.raises(SeqkitError, match=r"^task 'char_lm': evaluate\(\) returned no 'f1' "
                                          r"\(it returned loss\)$"):
        _fit(task, tmp_path / "r", "train.steps=1", "train.eval_every=1")
    task.best_metric = ("f1", "highest")
    with pytest.raises(SeqkitError, match=r"best_metric must be \(metric name, 'min' or 'max'\); "
                                          r"got \('f1', 'highest'\)"):
        _fit(task, tmp_path / "s")


def test_the_resume_check_is_the_tasks(tmp_path, monkeypatch):
    from seqkit.plugins.tasks.char_lm.task import CharLM

    start_run(tiny_recipe(tmp_path / "r"), display="silent")
    monkeypatch.setattr(CharLM, "check_resume", lambda self, stored: ["its tag set differs"])
    with pytest.raises(SeqkitError) as info:
        resume_run(tmp_path / "r", overrides=["train.steps=16"], force=True, display="silent")
    assert info.value.problems == [f"{tmp_path / 'r'}: its tag set differs"]
    monkeypatch.undo()
    with pytest.raises(SeqkitError, match="vocabulary differs"):  # char_lm's own check
        resume_run(tmp_path / "r", overrides=["data.lowercase=true"], force=True, display="silent")


def test_a_resume_with_another_batch_size_starts_the_carried_state_afresh(tmp_path):
    from seqkit.plugins.tasks.char_lm.task import CharLM

    start_run(tiny_recipe(tmp_path / "r"), display="silent")
    stored = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["task"]
    same = CharLM(tiny_recipe(tmp_path / "x"))
    other = CharLM(tiny_recipe(tmp_path / "x", "train.batch_size=3"))
    same.load_state_dict(stored)
    other.load_state_dict(stored)
    assert torch.equal(same.carry[0][0], stored["carry"][0][0])  # 4 streams, as saved
    assert other.carry is None  # the 4 saved rows would continue streams that no longer exist


def test_checkpoints_from_before_token_weighting_resume(tmp_path):
    """Older checkpoints kept 'best_loss' and no 'running_tokens'; all were written right after a
    log line, so nothing was running: they resume exactly as new ones do."""
    for name in ("new", "old"):
        start_run(tiny_recipe(tmp_path / name), display="silent")
    path = tmp_path / "old" / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    del state["trainer"]["running_tokens"]
    state["trainer"]["best_loss"] = state["trainer"]["best_metrics"]["loss"]
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, path)
    for name in ("new", "old"):
        resume_run(tmp_path / name, overrides=["train.steps=16"], force=True, display="silent")
    assert metric_lines(tmp_path / "old") == metric_lines(tmp_path / "new")
    # one stopped by a signal between log lines: a sum of 1 step's mean, no token count to weigh it
    state["trainer"].update(running=torch.tensor(99.0), running_steps=1)
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, path)
    with pytest.warns(SeqkitWarning, match="the training loss logged next covers only the steps "
                                           "after step 12"):
        resume_run(tmp_path / "old", overrides=["train.steps=16"], force=True, display="silent")
    assert metric_lines(tmp_path / "old") == metric_lines(tmp_path / "new")  # the 99 was dropped
