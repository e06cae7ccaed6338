"""The Python API (``seqkit.load_run``, ``Run.decode``, ``Run.evaluate``, ``seqkit.train``) gives
exactly what the CLI prints with ``--json``, for a tiny run of every task."""
from __future__ import annotations

import json

import pytest
import yaml
from _tagging_runs import tagging_recipe
from _tiny_runs import TINY, metric_lines, tiny_recipe
from _translation_runs import translation_recipe
from conftest import run_cli

import seqkit
from seqkit.cli import main
from seqkit.training.run import start_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> run folder: a char LM, softmax, crf and autoregressive taggers, a translator."""
    root = tmp_path_factory.mktemp("api")
    recipes = {"char_lm": tiny_recipe(root / "char_lm", "decode.length=6"),
               "softmax": tagging_recipe(root, root / "softmax"),
               "crf": tagging_recipe(root, root / "crf", "model.output=crf"),
               "autoregressive": tagging_recipe(root, root / "autoregressive", "model.output=autoregressive"),
               "translation": translation_recipe(root, root / "translation")}
    for recipe in recipes.values():
        start_run(recipe, "silent")
    return {name: root / name for name in recipes}


def cli_json(capsys, *args) -> dict:
    """``seqkit ARGS --json`` through the CLI's own entry point, in this process."""
    capsys.readouterr()
    assert main([*map(str, args), "--json", "--device", "cpu"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def same(report: dict) -> dict:
    """``report`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(report))


# (run, inputs, strategy and its options as flags and as keyword arguments)
DECODES = [
    ("char_lm", ["The ", "a"], "greedy", {}),
    ("char_lm", ["The "], "sample", {"temperature": 0.7, "top_k": 5, "num_samples": 3, "seed": 4}),
    ("char_lm", ["The ", "in"], "beam", {"beam_size": 4, "n_best": 2}),
    ("char_lm", ["x"], "exact", {"n_best": 2, "length": 2}),
    ("softmax", ["the dog sees Anna", "a cat"], "greedy", {}),
    ("softmax", ["Bob eats the tree"], "exact", {}),
    ("crf", ["the dog sees Anna", "Rome"], "greedy", {}),
    ("crf", ["Bob eats the tree"], "exact", {}),
    ("autoregressive", ["the dog sees Anna", "a cat"], "greedy", {}),
    ("autoregressive", ["the man likes Paris"], "beam", {"beam_size": 3, "n_best": 3}),
    ("autoregressive", ["Bob eats"], "sample", {"num_samples": 2, "seed": 1}),
    ("autoregressive", ["Bob eats"], "exact", {"n_best": 2}),
    ("translation", ["abc", "dot", ""], "greedy", {}),
    ("translation", ["abc"], "sample", {"num_samples": 2, "seed": 3, "length": 5}),
    ("translation", ["abc", "cabs"], "beam", {"beam_size": 3, "n_best": 2, "length_penalty": 1.0}),
    ("translation", ["cab"], "exact", {"length": 4}),
]


def flags(options: dict) -> list[str]:
    return [arg for key, value in options.items() for arg in (f"--{key.replace('_', '-')}", str(value))]


@pytest.mark.parametrize("name, inputs, strategy, options", DECODES,
                         ids=[f"{d[0]}-{d[2]}" for d in DECODES])
def test_run_decode_is_what_seqkit_decode_json_prints(runs, capsys, name, inputs, strategy, options):
    run = seqkit.load_run(runs[name], device="cpu")
    inputs_flags = [arg for text in inputs for arg in ("--input", text)]
    printed = cli_json(capsys, "decode", runs[name], "--strategy", strategy, *inputs_flags, *flags(options))
    report = run.decode(inputs, strategy, **options)
    assert same(report) == printed
    assert report["strategy"] == strategy and len(report["results"]) == len(inputs)
    assert [entry["input"] for entry in report["results"]] == inputs


def test_a_single_text_and_the_recipes_defaults(runs, capsys):
    """One text is one input; no strategy or inputs: the recipe's decode section, as the CLI."""
    run = seqkit.load_run(runs["char_lm"], device="cpu")
    assert run.decode("The ", "greedy") == run.decode(["The "], "greedy")
    printed = cli_json(capsys, "decode", runs["char_lm"])
    assert same(run.decode()) == printed
    assert printed["strategy"] == TINY.get("decode", {}).get("strategy", "greedy")
    assert printed["length"] == 6 and printed["results"][0]["input"] == run.recipe["decode"].get("prompt")


@pytest.mark.parametrize("name, split, strategy, options", [
    ("char_lm", "dev", None, {}),
    ("softmax", "dev", None, {}),
    ("softmax", "test", "exact", {}),
    ("crf", "test", None, {}),
    ("autoregressive", "dev", "beam", {"beam_size": 2}),
    ("translation", "dev", None, {}),
    ("translation", "test", "beam", {"beam_size": 3, "length_penalty": 0.5}),
])
def test_run_evaluate_is_what_seqkit_eval_json_prints(runs, capsys, name, split, strategy, options):
    run = seqkit.load_run(runs[name], device="cpu")
    strategy_flags = ["--strategy", strategy, *flags(options)] if strategy else []
    printed = cli_json(capsys, "eval", runs[name], "--split", split, *strategy_flags)
    report = run.evaluate(split, strategy=strategy, **options)
    assert same(report) == printed
    assert report["split"] == split and report["metrics"]["loss"] > 0


def test_evaluate_loads_its_split_itself_and_scores_files(runs, capsys, tmp_path):
    """A fresh run holds no split until asked (the task's evaluate alone raised KeyError)."""
    run = seqkit.load_run(runs["char_lm"], device="cpu")
    dev = run.evaluate()
    assert dev["split"] == "dev" and dev == run.evaluate("dev")
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog; " * 20, encoding="utf-8")
    printed = cli_json(capsys, "eval", runs["char_lm"], "--input-file", text)
    assert same(run.evaluate(file=text)) == printed and printed["file"] == str(text)


@pytest.mark.parametrize("call, message", [
    (lambda run: run.decode("x", "gredy"), "strategy: unknown strategy 'gredy' (did you mean 'greedy'?)"),
    (lambda run: run.decode("x", "greedy", top_p=0.5), "top_p: does not apply to strategy 'greedy'"),
    (lambda run: run.decode("x", "sample", top_p=2.0), "top_p: must be <= 1"),
    (lambda run: run.decode("x", length=0), "length: must be >= 1; got 0"),
    (lambda run: run.decode([]), "inputs: expected a text or a non-empty list of texts"),
    (lambda run: run.evaluate("test"), "split: a char_lm run holds no split 'test' (it holds: dev); "
                                       "score a file with file=PATH"),
    (lambda run: run.evaluate(beam_size=3), "beam_size: an option of a decoding strategy; give "
                                            "strategy=NAME too"),
    (lambda run: run.evaluate(strategy="greedy"), "strategy: 'greedy' does not apply to evaluating a "
                                                  "char_lm run"),
])
def test_problems_are_one_line_errors_naming_the_keyword(runs, call, message):
    run = seqkit.load_run(runs["char_lm"], device="cpu")
    with pytest.raises(seqkit.SeqkitError) as caught:
        call(run)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(message)


def test_the_parts_and_an_exported_file(runs, tmp_path):
    run = seqkit.load_run(runs["translation"], checkpoint="last", device="cpu")
    assert run.path == runs["translation"] and run.checkpoint == runs["translation"] / "checkpoints" / "last.pt"
    assert run.recipe["task"] == "translation" and isinstance(run.task, seqkit.Task)
    assert not run.model.training and run.device.type == "cpu"
    assert "task='translation'" in repr(run)
    exported = tmp_path / "model.pt"
    assert main(["export", str(runs["translation"]), "--checkpoint", "last", "-o", str(exported)]) == 0
    from_file = seqkit.load_run(exported, device="cpu")
    assert from_file.checkpoint == exported
    assert from_file.decode(["abc", "bad"], "beam", beam_size=2)["results"] == \
        run.decode(["abc", "bad"], "beam", beam_size=2)["results"]


def test_train_from_a_dict_gives_the_metrics_of_seqkit_run(tmp_path):
    """The same recipe: `seqkit run` in a subprocess, `seqkit.train` here; the same numbers."""
    recipe = json.loads(json.dumps(TINY))
    recipe["output"] = str(tmp_path / "by_cli")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run_cli("run", tmp_path / "recipe.yaml", "--quiet", "--set", "train.steps=8")
    assert result.returncode == 0, result.stderr

    run = seqkit.train(recipe, overrides={"train.steps": 8}, output=tmp_path / "by_python")
    assert isinstance(run, seqkit.Run) and run.path == tmp_path / "by_python"
    assert run.checkpoint == tmp_path / "by_python" / "checkpoints" / "best.pt"
    assert run.recipe["train"]["steps"] == 8 and recipe["output"] == str(tmp_path / "by_cli")
    assert metric_lines(tmp_path / "by_python") == metric_lines(tmp_path / "by_cli")
    assert run.evaluate()["metrics"]["loss"] == pytest.approx(
        min(line["loss"] for line in metric_lines(tmp_path / "by_cli") if line["split"] == "val"))


def test_train_refuses_a_bad_recipe_with_the_clis_lines(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "run")}))
    with pytest.raises(seqkit.SeqkitError) as caught:
        seqkit.train(path, overrides={"model.hiden_size": 4, "train.steps": 0})
    cli = run_cli("validate", path, "--set", "model.hiden_size=4", "--set", "train.steps=0")
    assert cli.returncode == 2
    assert caught.value.problems == cli.stderr.splitlines() and len(caught.value.problems) == 2
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["softmax", "crf", "autoregressive", "translation"])
def test_an_empty_input_gets_no_outputs_in_every_task_that_reads_one(runs, capsys, name):
    """A tagger and a translator say so alike; a language model continues an empty prompt."""
    text = "bad" if name == "translation" else "the dog"  # tokens each has seen
    report = seqkit.load_run(runs[name], device="cpu").decode(["", text])
    empty, filled = report["results"]
    assert empty["outputs"] == [] and filled["outputs"]
    capsys.readouterr()
    assert main(["decode", str(runs[name]), "--input", "", "--device", "cpu"]) == 0
    assert "'': empty input, nothing to decode" in capsys.readouterr().out.splitlines()
    lm = seqkit.load_run(runs["char_lm"], device="cpu").decode("", length=3)
    assert len(lm["results"][0]["outputs"][0]["tokens"]) == 3
