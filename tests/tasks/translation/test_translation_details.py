"""``decode --details`` for translation: each output step's log-probability and attention weights
over the source, by teacher-forced rescoring after the search, whatever the strategy."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from _translation_runs import cli_env, translation_recipe
from conftest import cli_here, run_cli

import seqkit
from seqkit.api import Run
from seqkit.plugins.tasks.translation.output import sources_of
from seqkit.plugins.tasks.translation.step import TranslationStepModel, start_decoding
from seqkit.plugins.tasks.translation.task import Translation
from seqkit.training.run import start_run

INPUTS = ["cab", "dot", "a", "escobaddo"]
STRATEGIES = [("greedy", {}), ("beam", {"beam_size": 3, "n_best": 2}),
              ("beam", {"beam_size": 3, "n_best": 2, "length_penalty": 1.0}),
              ("sample", {"num_samples": 2, "seed": 3, "temperature": 1.5}), ("exact", {"n_best": 2, "length": 3})]
# untrained models of each decoder shape: input feeding (a step at a time), without it (whole
# sequences), additive attention, no attention
VARIANTS = {"feeding": (), "no_feeding": ("model.input_feeding=false",),
            "additive": ("model.attention=additive",), "none": ("model.attention=none",)}
DETAILS = ("token_log_probs", "attention")


pytestmark = pytest.mark.usefixtures("module_cache")  # every run here prepares into one cache


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny translator with general attention and input feeding, trained a few steps."""
    folder = tmp_path_factory.mktemp("details")
    recipe = translation_recipe(folder, folder / "run", "train.steps=6", "train.eval_every=6")
    start_run(recipe, "silent")
    return folder / "run"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained) -> dict[str, Run]:
    """name -> a Run: the trained one, and untrained models of the other shapes."""
    folder = tmp_path_factory.mktemp("variants")
    found = {"trained": seqkit.load_run(trained, device="cpu")}
    for name, overrides in VARIANTS.items():
        recipe = translation_recipe(folder, folder / name, *overrides)
        task = Translation(recipe)
        task.prepare()
        torch.manual_seed(1)
        found[name] = Run(folder / name, folder / name / "none.pt", recipe, task, task.build_model().eval())
    return found


def without_details(report: dict) -> dict:
    """``report`` as a decode without ``details`` gives it."""
    report = json.loads(json.dumps(report))
    for entry in report["results"]:
        entry.pop("source_tokens")
        for output in entry["outputs"]:
            for key in DETAILS:
                output.pop(key, None)
    return report


@pytest.mark.parametrize("name", ["trained", *VARIANTS])
@pytest.mark.parametrize("strategy, options", STRATEGIES, ids=[f"{s}{len(o)}" for s, o in STRATEGIES])
def test_each_step_has_its_log_prob_and_a_distribution_over_the_source(runs, name, strategy, options):
    run = runs[name]
    report = run.decode(INPUTS, strategy, details=True, **options)
    attends = run.model.attention is not None
    for entry in report["results"]:
        assert entry["source_tokens"] == list(entry["normalized_input"])  # characters, as typed
        assert entry["outputs"]
        for output in entry["outputs"]:
            steps = len(output["tokens"]) + output["finished"]  # the end symbol's step last
            assert len(output["token_log_probs"]) == steps
            assert all(value <= 0.0 for value in output["token_log_probs"])
            assert math.fsum(output["token_log_probs"]) == pytest.approx(output["log_prob"], abs=1e-4)
            if not attends:
                assert "attention" not in output
                continue
            assert len(output["attention"]) == steps
            for row in output["attention"]:
                assert len(row) == len(entry["source_tokens"])
                assert min(row) >= 0.0 and math.fsum(row) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["trained", "no_feeding", "additive", "none"])
def test_the_details_are_what_stepping_the_model_by_hand_gives(runs, name):
    run = runs[name]
    task, model = run.task, run.model
    report = run.decode(INPUTS, "beam", beam_size=3, n_best=2, details=True)
    seen: list[torch.Tensor] = []
    hook = (model.attention.register_forward_hook(lambda module, args, out: seen.append(out[1]))
            if model.attention is not None else None)
    try:
        for text, entry in zip(INPUTS, report["results"]):
            source = torch.tensor([[int(i) for i in task.source_tokenizer.encode_batch(sources_of(task, [text]))[0]]])
            for output in entry["outputs"]:
                ids = [task.target_tokenizer.index[token] for token in output["tokens"]]
                ids += [3] if output["finished"] else []  # END_ID
                with torch.no_grad():
                    state, tokens = start_decoding(model, source, torch.tensor([source.shape[1]]))
                    step_model, by_hand = TranslationStepModel(model), []
                    seen.clear()
                    for token in ids:
                        log_probs, state = step_model.step(tokens, state)
                        by_hand.append(float(log_probs[0, token]))
                        tokens = torch.tensor([token])
                assert output["token_log_probs"] == pytest.approx(by_hand, abs=1e-5)
                if hook is not None:
                    weights = [w.reshape(-1).tolist() for w in seen]
                    assert len(weights) == len(ids)
                    for mine, theirs in zip(output["attention"], weights):
                        assert mine == pytest.approx(theirs, abs=1e-5)
    finally:
        if hook is not None:
            hook.remove()


def test_without_details_the_report_is_unchanged_and_an_empty_input_has_no_outputs(runs):
    run = runs["trained"]
    for strategy, options in STRATEGIES:
        plain = run.decode(["", *INPUTS], strategy, **options)
        detailed = run.decode(["", *INPUTS], strategy, details=True, **options)
        assert json.dumps(without_details(detailed)) == json.dumps(plain)
        assert detailed["results"][0]["outputs"] == [] and detailed["results"][0]["source_tokens"] == []
        assert not any(key in output for entry in plain["results"] for output in entry["outputs"]
                       for key in DETAILS) and all("source_tokens" not in e for e in plain["results"])


def test_seqkit_decode_details_json_in_a_subprocess(trained):
    args = ["decode", trained, "--input", "cab", "--input", "dot", "--strategy", "beam", "--beam-size", "3",
            "--n-best", "2", "--json", "--device", "cpu"]
    plain = cli_here(*args, env=cli_env())  # this process's, against a subprocess's --details
    detailed = run_cli(*args, "--details", env=cli_env())
    assert plain.returncode == 0 and detailed.returncode == 0, plain.stderr + detailed.stderr
    report = json.loads(detailed.stdout)
    assert json.dumps(without_details(report)) + "\n" == plain.stdout
    output = report["results"][0]["outputs"][0]
    assert report["results"][0]["source_tokens"] == ["c", "a", "b"]
    assert len(output["attention"]) == len(output["token_log_probs"]) == len(output["tokens"]) + output["finished"]
    assert all(len(row) == 3 for row in output["attention"])
