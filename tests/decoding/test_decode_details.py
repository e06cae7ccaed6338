"""``decode --details`` for a continuation (char_lm): each output token's log-probability, by
rescoring after the search whatever the strategy; a task without the capability is one line."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from _tagging_runs import tagging_recipe
from _tiny_runs import tiny_recipe
from _translation_runs import cli_env
from conftest import cli_here, run_cli

import seqkit
from seqkit.api import Run
from seqkit.errors import SeqkitError
from seqkit.plugins.tasks.tagging.task import Tagging
from seqkit.training.run import start_run

INPUTS = ["The ", "a", ""]
STRATEGIES = [("greedy", {}), ("beam", {"beam_size": 4, "n_best": 3}),
              ("sample", {"num_samples": 2, "seed": 4, "temperature": 0.7, "top_k": 5}),
              ("exact", {"n_best": 2, "length": 2})]


pytestmark = pytest.mark.usefixtures("module_cache")  # every run here prepares into one cache


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny char LM trained a few steps."""
    folder = tmp_path_factory.mktemp("details")
    start_run(tiny_recipe(folder / "lm", "train.steps=4", "train.eval_every=4", "train.sample_chars=0",
                          "decode.length=8"), "silent")
    return folder / "lm"


@pytest.fixture(scope="module")
def run(trained) -> Run:
    return seqkit.load_run(trained, device="cpu")


def without_details(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    for entry in report["results"]:
        for output in entry["outputs"]:
            output.pop("token_log_probs")
            output.pop("token_texts")
    return report


@pytest.mark.parametrize("strategy, options", STRATEGIES, ids=[s for s, _ in STRATEGIES])
def test_token_log_probs_sum_to_log_prob_and_the_rest_is_unchanged(run, strategy, options):
    detailed = run.decode(INPUTS, strategy, details=True, **options)
    plain = run.decode(INPUTS, strategy, **options)
    assert json.dumps(without_details(detailed)) == json.dumps(plain)  # the report, byte for byte
    assert not any("token_log_probs" in output for entry in plain["results"] for output in entry["outputs"])
    for entry in detailed["results"]:
        for output in entry["outputs"]:
            assert len(output["token_log_probs"]) == len(output["tokens"])
            assert all(value <= 0.0 for value in output["token_log_probs"])
            assert math.fsum(output["token_log_probs"]) == pytest.approx(output["log_prob"], abs=1e-4)
            assert "".join(output["token_texts"]) == output["text"]  # a character per token
            assert len(output["token_texts"]) == len(output["tokens"])


def test_token_log_probs_are_what_stepping_the_model_by_hand_gives(run):
    report = run.decode(INPUTS, "beam", beam_size=3, n_best=2, length=6, details=True)
    task, model = run.task, run.model
    step_model = task.step_model(model)
    for text, entry in zip(INPUTS, report["results"]):
        for output in entry["outputs"]:
            by_hand = []
            with torch.no_grad():
                state, tokens = task.start_decoding(model, [text])
                for token in output["tokens"]:
                    log_probs, state = step_model.step(tokens, state)
                    by_hand.append(float(log_probs[0, token]))
                    tokens = torch.tensor([token])
            assert output["token_log_probs"] == pytest.approx(by_hand, abs=1e-5)


def test_seqkit_decode_details_json_in_a_subprocess(trained):
    args = ["decode", trained, "--prompt", "The ", "--strategy", "beam", "--beam-size", "3", "--n-best", "2",
            "--length", "5", "--json", "--device", "cpu"]
    plain = cli_here(*args, env=cli_env())  # this process's, against a subprocess's --details
    detailed = run_cli(*args, "--details", env=cli_env())
    assert plain.returncode == 0 and detailed.returncode == 0, plain.stderr + detailed.stderr
    report = json.loads(detailed.stdout)
    assert json.dumps(without_details(report)) + "\n" == plain.stdout
    for output in report["results"][0]["outputs"]:
        assert len(output["token_log_probs"]) == len(output["tokens"]) == 5
        assert math.fsum(output["token_log_probs"]) == pytest.approx(output["log_prob"], abs=1e-4)
    text_only = run_cli(*args[:-3], "--details", env=cli_env())  # no --json
    assert text_only.returncode == 2 and text_only.stderr.strip().count("\n") == 0
    assert "--details" in text_only.stderr and "--json" in text_only.stderr


def test_a_task_without_the_capability_is_a_one_line_error_naming_details(tmp_path):
    recipe = tagging_recipe(tmp_path, tmp_path / "tagger")
    task = Tagging(recipe)
    task.prepare()
    tagger = Run(tmp_path / "tagger", tmp_path / "tagger" / "none.pt", recipe, task, task.build_model().eval())
    assert tagger.decode(["the dog sees Anna"])["results"]  # it decodes without details
    with pytest.raises(SeqkitError) as raised:
        tagger.decode(["the dog sees Anna"], details=True)
    assert len(raised.value.problems) == 1 and "\n" not in str(raised.value)
    assert str(raised.value).startswith("details: a tagging run cannot report per-token details")
    with pytest.raises(SeqkitError, match="^details: must be true or false"):
        tagger.decode(["the dog"], details="yes")
