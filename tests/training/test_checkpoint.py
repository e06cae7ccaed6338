"""Checkpoints: atomic writes, and loading that never runs code from the file."""
from __future__ import annotations

import os

import pytest
import torch
from _tiny_runs import tiny_recipe

import seqkit.atomic
from seqkit import SeqkitError
from seqkit.training.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from seqkit.training.run import load_run, resume_run, start_run


def test_round_trip_keeps_tensors_rng_states_and_plain_values(tmp_path):
    state = {"model": {"w": torch.randn(3, 2)}, "rng": torch.get_rng_state(), "step": 7,
             "recipe": {"train": {"lr": 0.1}, "output": None}, "carry": (torch.ones(2), torch.zeros(2))}
    save_checkpoint(state, tmp_path / "c" / "last.pt")
    loaded = load_checkpoint(tmp_path / "c" / "last.pt")
    assert loaded["format"] == FORMAT and loaded["step"] == 7 and loaded["recipe"] == state["recipe"]
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert torch.equal(loaded["rng"], state["rng"])
    assert os.listdir(tmp_path / "c") == ["last.pt"]  # no temporary file left behind


def test_a_write_killed_midway_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    real_save = torch.save

    def dies_halfway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(f.tell() // 2)  # half the bytes reached the disk, then the process died
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2, "big": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_run_files_are_fsynced_and_a_write_cut_short_leaves_no_temporary_file(tmp_path, monkeypatch):
    # recipe.yaml and metrics.jsonl go through the checkpoints' atomic writer: the data is
    # fsynced before the rename (here the fsync is where the process "dies"), and the
    # temporary file of the cut-short write is removed on the way out.
    run = tmp_path / "run"
    start_run(tiny_recipe(run, "train.steps=2", "train.eval_every=2"), display="silent")
    before = {name: (run / name).read_bytes() for name in ("recipe.yaml", "metrics.jsonl")}

    def dies(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(seqkit.atomic.os, "fsync", dies)
    with pytest.raises(KeyboardInterrupt):
        resume_run(run, display="silent")
    monkeypatch.undo()
    assert sorted(os.listdir(run)) == ["checkpoints", "metrics.jsonl", "recipe.yaml"]
    assert {name: (run / name).read_bytes() for name in before} == before


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch HACKED",))


def test_a_pickle_that_needs_code_is_refused_and_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": FORMAT, "payload": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(SeqkitError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    assert str(info.value).startswith(f"{tmp_path / 'evil.pt'}: refused")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "HACKED").exists()


@pytest.mark.parametrize("content, reason", [
    (b"", "not a readable checkpoint"),
    (b"\x80\x04not really a pickle", "not a readable checkpoint"),
])
def test_corrupt_files_are_one_line_errors_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(SeqkitError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"{path}: {reason}") and "\n" not in str(info.value)


def test_a_truncated_checkpoint_is_reported_as_corrupt(tmp_path):
    save_checkpoint({"step": 1, "w": torch.zeros(500)}, tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqkitError, match="c.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_foreign_and_missing_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(SeqkitError, match="plain.pt: not a seqkit checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(SeqkitError, match="nothing.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "nothing.pt")
    with pytest.raises(SeqkitError, match="no such run directory"):
        load_run(tmp_path / "no-run")
    save_checkpoint({"step": 3}, tmp_path / "partial.pt")
    with pytest.raises(SeqkitError, match="partial.pt: checkpoint lacks recipe, model, task"):
        load_run(tmp_path, checkpoint=tmp_path / "partial.pt")


def test_load_run_reports_weights_that_do_not_fit_the_recipe(tmp_path):
    start_run(tiny_recipe(tmp_path / "run", "train.steps=2", "train.eval_every=2"), display="silent")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    state["recipe"]["model"]["hidden_size"] = 32  # the stored weights are 16 wide
    save_checkpoint(state, tmp_path / "edited.pt")
    with pytest.raises(SeqkitError) as info:
        load_run(tmp_path / "run", checkpoint=tmp_path / "edited.pt")
    assert str(info.value).startswith(f"{tmp_path / 'edited.pt'}: checkpoint does not match its recipe")
    assert "\n" not in str(info.value)
