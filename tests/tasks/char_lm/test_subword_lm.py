"""A language model on BPE tokens: trained, decoded to text, scored per character, exported, resumed."""
from __future__ import annotations

import json
import math

import pytest
import torch
from _tiny_runs import write_tiny_recipe
from conftest import cli_here, run_cli

pytestmark = pytest.mark.slow  # end to end: trains, decodes, exports in subprocesses

BPE = ("data.tokenizer={name: bpe, vocab_size: 300}", "data.max_chars=20000", "train.steps=8",
       "train.sample_chars=12")


@pytest.fixture(scope="module")
def subword_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subword")
    recipe = write_tiny_recipe(folder / "r.yaml", folder / "run", *BPE)
    env = {"SEQKIT_CACHE_DIR": str(folder / "cache")}
    ran = run_cli("run", recipe, "--quiet", env=env)
    assert ran.returncode == 0, ran.stderr
    return folder, env


def test_the_run_keeps_its_tokenizer_and_reports_bits_per_character(subword_run):
    folder, env = subword_run
    checkpoint = torch.load(folder / "run" / "checkpoints" / "best.pt", weights_only=True)
    state = checkpoint["task"]["tokenizer"]
    assert state["name"] == "bpe" and "vocab" not in checkpoint["task"]
    lines = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [line for line in lines if line["split"] == "val"][-1]
    summary = json.loads(cli_here("prepare", folder / "r.yaml", "--json", env=env).stdout)
    assert summary["reused"] and summary["tokenizer"] == "bpe" and summary["vocabulary"] <= 300
    chars_per_token = summary["characters"]["dev"] / summary["tokens"]["dev"]
    assert chars_per_token > 1.3  # pieces longer than characters
    # bits per character: the loss per token spread over the characters the tokens stand for
    assert val["bits_per_char"] == pytest.approx(val["loss"] / chars_per_token / math.log(2), rel=1e-3)
    evaluated = json.loads(cli_here("eval", folder / "run", "--json", env=env).stdout)
    assert evaluated["metrics"]["loss"] == pytest.approx(val["loss"], rel=1e-5)


def test_decode_prints_text_and_eval_scores_any_file(subword_run, tmp_path):
    folder, env = subword_run
    decoded = cli_here("decode", folder / "run", "--prompt", "The ", "--strategy", "greedy", "--length", "10",
                       "--json", "--details", env=env)
    assert decoded.returncode == 0, decoded.stderr
    [result] = json.loads(decoded.stdout)["results"]
    [output] = result["outputs"]
    assert len(output["tokens"]) == 10 and len(output["text"]) > 10  # ten tokens, text of several characters each
    # --details labels each token with its own text: pieces of several characters that make the text
    assert len(output["token_texts"]) == 10 and max(len(piece) for piece in output["token_texts"]) > 1
    assert "".join(output["token_texts"]) == output["text"]
    other = tmp_path / "other.txt"
    other.write_text("Any UTF-8 text: naïve café, 😀 emoji and all, is read without unknown tokens. " * 40)
    scored = cli_here("eval", folder / "run", "--input-file", other, "--json", env=env)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["metrics"]["bits_per_char"] > 0


def test_an_export_decodes_the_same_and_a_resumed_run_continues(subword_run, tmp_path):
    folder, env = subword_run
    exported = tmp_path / "model.pt"
    assert run_cli("export", folder / "run", "-o", exported, env=env).returncode == 0
    args = ("--prompt", "def ", "--strategy", "greedy", "--length", "6", "--json")
    from_run = json.loads(run_cli("decode", folder / "run", *args, env=env).stdout)
    from_export = json.loads(cli_here("decode", exported, *args, env=env).stdout)
    assert from_run["results"] == from_export["results"]
    resumed = run_cli("run", "--resume", folder / "run", "--set", "train.steps=10", "--force", "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(line["step"] for line in lines if "step" in line) == 10
