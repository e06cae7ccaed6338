"""seqkit export: the weights, recipe and task state without training state; decode, eval and
load_run take the file wherever they take a checkpoint, and decode exactly as the run does."""
from __future__ import annotations

import json

import pytest
import torch
from _tiny_runs import tiny_recipe
from conftest import cli_here, run_cli

from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.run import load_run, start_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    start_run(tiny_recipe(run), display="silent")
    return run


def test_the_export_keeps_what_decoding_needs_and_drops_training_state(trained, tmp_path):
    out = tmp_path / "model.pt"
    done = cli_here("export", trained, "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    best = load_checkpoint(trained / "checkpoints" / "best.pt")
    exported = load_checkpoint(out)  # weights_only=True, as every checkpoint is read
    assert sorted(exported) == ["format", "metrics", "model", "recipe", "step", "task"]
    assert exported["step"] == best["step"] == report["step"]
    assert exported["recipe"] == best["recipe"] and exported["task"]["vocab"] == best["task"]["vocab"]
    for name, tensor in best["model"].items():
        assert torch.equal(exported["model"][name], tensor), name
    # Adam keeps two moments per weight: the export is about a third of the checkpoint
    assert report["bytes"] == out.stat().st_size < 0.5 * report["source_bytes"]


@pytest.mark.slow
def test_decode_and_eval_read_the_exported_file_as_they_read_the_run(trained, tmp_path):
    out = tmp_path / "model.pt"
    assert run_cli("export", trained, "-o", out).returncode == 0
    for command in (["decode", "--strategy", "greedy", "--length", "30", "--json"], ["eval", "--json"]):
        from_run = run_cli(command[0], trained, *command[1:])
        from_file = cli_here(command[0], out, *command[1:])
        by_flag = cli_here(command[0], trained, "--checkpoint", out, *command[1:])
        assert from_run.returncode == from_file.returncode == by_flag.returncode == 0, from_file.stderr
        run_json, file_json = json.loads(from_run.stdout), json.loads(from_file.stdout)
        for key in ("run", "checkpoint"):  # they say which file was read; the rest is identical
            run_json.pop(key, None), file_json.pop(key, None)
        assert run_json == file_json, command
        assert json.loads(by_flag.stdout).get("checkpoint", str(out)) == str(out)


def test_load_run_takes_the_exported_file(trained, tmp_path):
    out = tmp_path / "model.pt"
    assert cli_here("export", trained, "--checkpoint", "last", "-o", out).returncode == 0
    exported, last = load_run(out), load_run(trained, "last")
    assert exported.recipe == last.recipe
    for (name, a), (_, b) in zip(exported.model.state_dict().items(), last.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_export_never_replaces_a_checkpoint_and_reports_bad_input_in_one_line(trained, tmp_path):
    for target in (trained / "checkpoints" / "last.pt", trained / "checkpoints" / "copy.pt"):
        before = (trained / "checkpoints" / "last.pt").read_bytes()
        done = cli_here("export", trained, "-o", target)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "would replace a checkpoint" in done.stderr and not (trained / "checkpoints" / "copy.pt").exists()
        assert (trained / "checkpoints" / "last.pt").read_bytes() == before
    missing = cli_here("export", tmp_path / "nowhere", "-o", tmp_path / "m.pt")
    assert missing.returncode == 2 and missing.stderr.strip() == f"{tmp_path / 'nowhere'}: no such run directory"
    folder = cli_here("export", trained, "-o", tmp_path)
    assert folder.returncode == 2 and "is a folder" in folder.stderr


def test_default_output_is_model_pt_in_the_run(trained):
    done = cli_here("export", trained)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {trained / 'model.pt'} (")
    assert load_run(trained / "model.pt").recipe == load_run(trained).recipe
