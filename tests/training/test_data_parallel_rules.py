"""Data parallelism without processes: which share of a batch each rank takes, and the rules the
core applies before several processes train (global batch, world size on resume, restarts)."""
from __future__ import annotations

import pytest
import torch
from _tagging_runs import tagging_recipe
from _tiny_runs import metric_lines, tiny_recipe
from _translation_runs import translation_recipe

from seqkit import SeqkitError, distributed
from seqkit.errors import SeqkitWarning
from seqkit.plugins.tasks.char_lm.task import CharLM
from seqkit.plugins.tasks.tagging.task import Tagging
from seqkit.plugins.tasks.translation.task import Translation
from seqkit.training.checkpoint import load_checkpoint, save_checkpoint
from seqkit.training.run import resume_run, start_run


def _task(cls, recipe, rank, world):
    task = cls(recipe)
    task.rank, task.world_size = rank, world
    task.prepare()
    return task


@pytest.mark.parametrize("overrides", [(), ("train.sampling=random", "train.carry_state=false"),
                                       ("train.sampling=random", "train.carry_state=false", "train.pool=6")])
def test_char_lm_ranks_take_blocks_of_the_batch_that_make_it_whole(tmp_path, overrides):
    recipe = tiny_recipe(tmp_path / "r", *overrides)
    whole = _task(CharLM, recipe, 0, 1)
    ranks = [_task(CharLM, recipe, rank, 2) for rank in (0, 1)]
    for step in (0, 1, 5, 40):  # 40: a later epoch
        x, y, fresh = whole.train_batch(step)
        shares = [task.train_batch(step) for task in ranks]
        assert all(len(share[0]) == 2 for share in shares)
        assert torch.equal(torch.cat([share[0] for share in shares]), x)
        assert torch.equal(torch.cat([share[1] for share in shares]), y)
        assert all(share[2] == fresh for share in shares)


def test_a_carried_state_goes_back_only_to_the_rank_that_reads_its_streams(tmp_path):
    recipe = tiny_recipe(tmp_path / "r")
    second = _task(CharLM, recipe, 1, 2)
    second.carry = (torch.ones(2, 16), torch.ones(2, 16))
    saved = second.state_dict()
    assert saved["carry_streams"] == [2, 4, 4]  # streams 2 and 3 of 4
    for rank, world, kept in ((1, 2, True), (0, 2, False), (0, 1, False)):
        task = CharLM(recipe)
        task.rank, task.world_size = rank, world
        task.load_state_dict(saved)
        assert (task.carry is not None) == kept
    # a checkpoint of one process from before carry_streams: all the streams
    alone = CharLM(recipe)
    alone.load_state_dict({"vocab": saved["vocab"], "carry": (torch.ones(4, 16), torch.ones(4, 16))})
    assert alone.carry is not None


def test_tagging_ranks_take_every_other_sentence_and_an_empty_share_counts_nothing(tmp_path):
    # batch_tokens=8: five-word sentences get a batch of their own, which leaves rank 1 nothing
    recipe = tagging_recipe(tmp_path, tmp_path / "r", "train.batch_tokens=8", "train.word_dropout=0.5")
    whole = _task(Tagging, recipe, 0, 1)
    ranks = [_task(Tagging, recipe, rank, 2) for rank in (0, 1)]
    model = whole.build_model()
    seen_single = False
    for step in range(len(whole.train_plan)):
        batch = whole.train_batch(step)
        shares = [task.train_batch(step) for task in ranks]
        for rank, share in enumerate(shares):
            rows = torch.arange(rank, len(batch.lengths), 2)
            if len(rows) == 0:  # the empty share: one sentence of the batch, counted as none
                seen_single = True
                assert not share.counted and torch.equal(share.sentences, batch.sentences[:1])
                loss, tokens = ranks[rank].loss(model, share)
                loss.backward()
                assert tokens == 0 and loss.item() == 0
                assert all(not p.grad.any() for p in model.parameters() if p.grad is not None)
                continue
            assert share.counted and torch.equal(share.sentences, batch.sentences[rows])
            time = int(batch.lengths[rows].max())
            assert share.tokens.shape[1] == time  # padded to its own longest sentence only
            assert torch.equal(share.tokens, batch.tokens[rows, :time])  # the same word dropout
            assert torch.equal(share.tags, batch.tags[rows, :time])
    assert seen_single


def test_translation_ranks_take_every_other_pair_and_an_empty_share_counts_nothing(tmp_path):
    # batch_tokens=8: pairs five tokens long or more get a batch of their own
    recipe = translation_recipe(tmp_path, tmp_path / "r", "train.batch_tokens=8")
    whole = _task(Translation, recipe, 0, 1)
    ranks = [_task(Translation, recipe, rank, 2) for rank in (0, 1)]
    model = whole.build_model()
    seen_single = False
    for step in range(len(whole.train_plan)):
        batch = whole.train_batch(step)
        for rank, share in enumerate(task.train_batch(step) for task in ranks):
            rows = torch.arange(rank, len(batch.pairs), 2)
            if len(rows) == 0:
                seen_single = True
                assert not share.counted and torch.equal(share.pairs, batch.pairs[:1])
                loss, tokens = ranks[rank].loss(model, share)
                assert tokens == 0 and loss.item() == 0
                continue
            assert share.counted and torch.equal(share.pairs, batch.pairs[rows])
            source_time, target_time = int(batch.source_lengths[rows].max()), int(batch.target_lengths[rows].max())
            assert torch.equal(share.source, batch.source[rows, :source_time])
            assert torch.equal(share.target, batch.target[rows, :target_time])
    assert seen_single


def test_the_batch_is_the_global_one_and_must_divide_by_the_number_of_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "placement", lambda: (0, 3))
    with pytest.raises(SeqkitError) as info:
        start_run(tiny_recipe(tmp_path / "r"), display="silent", source="tiny.yaml")
    assert info.value.problems == ["tiny.yaml: train.batch_size: 4 is the batch of all 3 processes "
                                   "together and must divide by 3; use a multiple of 3"]
    assert not (tmp_path / "r").exists()


def test_another_number_of_processes_resumes_only_when_forced(tmp_path):
    run = tmp_path / "r"
    start_run(tiny_recipe(run), display="silent")
    path = run / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    own = {"rng": state["rng"], "task": state["task"]}
    state["ranks"] = [own, own]  # as two processes write it
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, path)
    with pytest.raises(SeqkitError) as info:
        resume_run(run, display="silent")
    assert info.value.problems == [
        f"{run}: trained on 2 process(es), resumed on 1; resume it on 2 (torchrun --nproc-per-node "
        f"...), or add --force to go on with 1, which does not continue exactly"]
    with pytest.warns(SeqkitWarning, match="going on with 1: each starts with fresh random streams"):
        result = resume_run(run, overrides=["train.steps=16"], force=True, display="silent")
    assert result.step == 16


def test_after_a_torchrun_restart_the_run_resumes_by_itself_and_says_so(tmp_path, monkeypatch, capsys):
    run = tmp_path / "r"
    start_run(tiny_recipe(run, "train.steps=8"), display="silent")
    logged = metric_lines(run)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    result = start_run(tiny_recipe(run, "train.steps=8"), display="silent")
    assert result.step == 8 and metric_lines(run) == logged
    assert f"seqkit: torchrun restarted the job (restart 1): resuming {run} from step 8" in capsys.readouterr().err
    with pytest.raises(SeqkitError, match="already holds a run"):
        start_run(tiny_recipe(run, "train.steps=8", "train.resume=never"), display="silent")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")  # a first start never resumes
    with pytest.raises(SeqkitError, match="already holds a run"):
        start_run(tiny_recipe(run, "train.steps=8"), display="silent")


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf"])
def test_a_bad_timeout_is_one_line(tmp_path, monkeypatch, value):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("SEQKIT_DDP_TIMEOUT", value)
    with pytest.raises(SeqkitError) as info:
        start_run(tiny_recipe(tmp_path / "r"), display="silent")
    assert info.value.problems == [f"SEQKIT_DDP_TIMEOUT: expected a number of seconds above 0, got {value!r}"]


def test_torchrun_restarts_that_share_a_store_are_warned_about_and_named_when_joining_fails(
        tmp_path, monkeypatch):
    # torchrun's environment with --max-restarts and its store shared across attempts; no
    # MASTER_ADDR, so joining fails at once
    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "TORCHELASTIC_MAX_RESTARTS": "1",
                       "TORCHELASTIC_USE_AGENT_STORE": "True", "TORCHELASTIC_RESTART_COUNT": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.warns(SeqkitWarning, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        with pytest.raises(SeqkitError) as info:
            start_run(tiny_recipe(tmp_path / "r"), display="silent")
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE" not in str(info.value)  # a first attempt: not the cause
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    with pytest.raises(SeqkitError) as info:
        start_run(tiny_recipe(tmp_path / "r"), display="silent")
    [problem] = info.value.problems
    assert problem.startswith("torch.distributed: cannot join the other 1 process(es) (RANK=0")
    assert problem.endswith("start torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1")


@pytest.mark.parametrize("rank, printed", [("0", True), ("1", False)])
def test_a_stop_signal_is_reported_by_rank_0_alone(monkeypatch, capsys, rank, printed):
    from seqkit import cli
    from seqkit.cli import run as run_cli
    from seqkit.errors import RunInterrupted

    def interrupted(args):
        raise RunInterrupted("seqkit: SIGTERM: stopped after step 6", 15)

    monkeypatch.setenv("RANK", rank)
    monkeypatch.setattr(run_cli, "command", interrupted)
    assert cli.main(["run", "recipe.yaml"]) == 143
    assert (capsys.readouterr().err == "seqkit: SIGTERM: stopped after step 6\n") == printed
