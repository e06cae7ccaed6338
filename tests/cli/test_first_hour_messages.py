"""What a new user met in a first hour (issue 24): each mistake is one line on stderr that names
the file and the key or flag and says what to do, with exit status 2, through the real CLI."""
from __future__ import annotations

import importlib.util

import pytest
import yaml
from _tiny_runs import tiny_recipe
from conftest import cli_here, needs_extra, run_cli, site_without

from seqkit.errors import SeqkitError
from seqkit.recipe import load_recipe, parse_yaml
from seqkit.training.run import start_run

CHAR_LM = "recipes/char_lm.yaml"
TAGGING = "recipes/tagging.yaml"
PAIRS = "recipes/translation_pairs.yaml"
SACREBLEU_INSTALL = 'pip install -e ".[bleu]" (or pip install "seqkit[bleu]")'


def one_line(result) -> str:
    """The single stderr line of a command refused with exit status 2."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# -- 1. a typo in a top-level key ----------------------------------------------------------------
@pytest.mark.parametrize("typo, meant", [("trian", "train"), ("modle", "model"), ("sed", "seed")])
def test_a_misspelt_section_lists_every_top_level_key_and_suggests_the_near_one(tmp_path, typo, meant):
    recipe = write(tmp_path / "r.yaml", f"task: char_lm\n{typo}: {{}}\n")
    assert one_line(cli_here("validate", recipe)) == (
        f"{recipe}: {typo}: unknown key (did you mean '{meant}'?); allowed: task, seed, device, "
        f"output, data, model, train, decode")


# -- 2. a key given twice ------------------------------------------------------------------------
def test_a_key_given_twice_names_it_and_both_lines(tmp_path):
    recipe = write(tmp_path / "r.yaml", "task: char_lm\ntrain:\n  steps: 100\n  steps: 200\n")
    assert one_line(cli_here("validate", recipe)) == (
        f"{recipe}: line 4: invalid YAML: train.steps given twice (lines 3 and 4); keep one")


@pytest.mark.parametrize("text, problem", [
    ("task: a\ntask: b\n", "task given twice (lines 1 and 2)"),
    ("train: {steps: 1}\ntrain: {lr: 2}\n", "train given twice (lines 1 and 2)"),
    ("train: {loggers: [{a: 1, a: 2}]}\n", "train.loggers[0].a given twice (lines 1 and 1)"),
    ("a: 1\n'a': 2\n", "a given twice (lines 1 and 2)"),  # the same string, quoted or not
])
def test_every_mapping_of_a_recipe_is_checked(text, problem):
    with pytest.raises(yaml.YAMLError) as info:
        parse_yaml(text)
    assert info.value.problem == f"{problem}; keep one"


def test_keys_merged_from_an_anchor_may_be_overridden():
    text = "base: &b {lr: 1, steps: 2}\ntrain:\n  <<: *b\n  lr: 3\nagain: *b\n"
    assert parse_yaml(text)["train"] == {"lr": 3, "steps": 2}
    assert parse_yaml("1: a\n'1': b\n") == {1: "a", "1": "b"}  # a number and a string differ


# -- 3. --set without = --------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["validate", "run"])
def test_set_without_an_equals_sign_says_how_to_write_it(tmp_path, command):
    result = run_cli(command, CHAR_LM, "--set", "train.steps", "100", "--set", f"output={tmp_path}/r")
    assert one_line(result) == "--set train.steps: needs KEY=VALUE, e.g. --set train.steps=VALUE"
    assert not (tmp_path / "r").exists()


def test_overrides_given_in_python_are_held_to_the_same_rule():
    with pytest.raises(SeqkitError) as info:
        load_recipe(CHAR_LM, ["=3"])
    assert info.value.problems == [f"{CHAR_LM}: --set =3: needs KEY=VALUE, e.g. --set train.steps=VALUE"]


# -- 4. a key of another dataset, cell or strategy -------------------------------------------------
def test_a_key_of_another_dataset_names_the_datasets_that_take_it():
    assert one_line(cli_here("validate", CHAR_LM, "--set", "data.path=book.txt")) == (
        f"{CHAR_LM}: data.path: does not apply to dataset 'python-docs' (it is an option of cmudict, "
        f"conll, pairs, text); 'python-docs' accepts: max_chars; to use it, set data.dataset to "
        f"one of those")


def test_a_key_of_another_cell_names_the_cell_that_takes_it(toy_site):
    result = cli_here("validate", CHAR_LM, "--set", "model.cell_options.scale=2", site=toy_site)
    assert one_line(result) == (
        f"{CHAR_LM}: model.cell_options.scale: does not apply to cell 'lstm' (it is an option of "
        f"toycell); 'lstm' accepts: no options; to use it, set model.cell=toycell")


def test_a_key_of_another_strategy_names_the_strategy_that_takes_it(tmp_path):
    recipe = write(tmp_path / "r.yaml", "task: char_lm\ndecode: {strategy: beam, top_k: 3}\n")
    assert one_line(cli_here("validate", recipe)) == (
        f"{recipe}: decode.top_k: does not apply to strategy 'beam' (it is an option of sample); "
        f"'beam' accepts: beam_size, n_best, length_penalty; to use it, set decode.strategy=sample")


# -- 5. an optional package the run will need ------------------------------------------------------
def pairs_file(tmp_path):
    return write(tmp_path / "train.tsv", "".join(f"w{i} x\tv{i} y\n" for i in range(20)))


def test_validate_asks_for_the_bleu_extra_that_the_run_needs(tmp_path):
    needs_extra("rapidfuzz", "translation")  # else validation asks for it too
    result = run_cli("validate", PAIRS, "--set", f"data.path={pairs_file(tmp_path)}",
                     site=site_without("sacrebleu", tmp_path / "hide"))
    assert one_line(result) == (
        f"{PAIRS}: train.best_metric: chrf needs sacrebleu, which is not installed: {SACREBLEU_INSTALL}")


@pytest.fixture
def hide(monkeypatch):
    """``hide(name)``: the package looks not installed to ``importlib.util.find_spec``."""
    find_spec, hidden = importlib.util.find_spec, set()
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else find_spec(name, *a))
    return hidden.add


@pytest.mark.parametrize("overrides, problem", [
    # every validation scores BLEU and chrF of word-level targets, whatever the best metric
    (["train.best_metric=word_error_rate"], "data.dataset: BLEU and chrF score pairs's word-level "
                                            f"targets and need sacrebleu, which is not installed: "
                                            f"{SACREBLEU_INSTALL}"),
    (["train.best_metric=word_error_rate", "data.target_tokens=char"], None),  # nothing needs it
])
def test_sacrebleu_is_asked_for_where_the_targets_are_text(tmp_path, hide, overrides, problem):
    hide("sacrebleu")
    needs_extra("rapidfuzz", "translation")
    overrides = [f"data.path={pairs_file(tmp_path)}", "device=cpu", *overrides]
    if problem is None:
        load_recipe(PAIRS, overrides)
        return
    with pytest.raises(SeqkitError) as info:
        load_recipe(PAIRS, overrides)
    assert info.value.problems == [f"{PAIRS}: {problem}"]


def test_rapidfuzz_is_asked_for_by_every_translation_recipe(tmp_path, hide):
    hide("rapidfuzz")
    with pytest.raises(SeqkitError) as info:
        load_recipe(PAIRS, [f"data.path={pairs_file(tmp_path)}", "device=cpu",
                            "train.best_metric=word_error_rate", "data.target_tokens=char"])
    assert info.value.problems == [
        f'{PAIRS}: task: translation scores its outputs with rapidfuzz (edit distances), which is '
        f'not installed: pip install -e ".[translation]" (or pip install "seqkit[translation]")']


# -- 6. a decode strategy that does not apply to the task's output ---------------------------------
def test_a_search_strategy_for_a_softmax_tagger_is_refused_at_validation():
    assert one_line(cli_here("validate", TAGGING, "--set", "decode.strategy=beam")) == (
        f"{TAGGING}: decode.strategy: 'beam' does not apply to model.output=softmax: a softmax tagger "
        f"is decoded exactly by its per-position argmax, which greedy and exact both give; search "
        f"strategies apply to model.output=autoregressive")
    for ok in (["model.output=autoregressive", "decode.strategy=beam"], ["decode.strategy=exact"]):
        assert load_recipe(TAGGING, [*ok, "device=cpu"])["decode"]["strategy"] == ok[-1].split("=")[1]


# -- 7. output that is a file --------------------------------------------------------------------
@pytest.mark.parametrize("below", ["", "/run"])
def test_an_output_that_is_a_file_is_refused_before_the_run(tmp_path, below):
    file = write(tmp_path / "notes.txt", "mine\n")
    result = run_cli("run", CHAR_LM, "--set", f"output={file}{below}")
    assert one_line(result) == (f"{CHAR_LM}: output: {file} is a file, not a folder; name a folder "
                                f"for the run, e.g. --set output=runs/NAME")
    assert file.read_text() == "mine\n"


def test_a_file_that_appears_after_validation_is_one_line_too(tmp_path):
    recipe = tiny_recipe(tmp_path / "run")
    write(tmp_path / "run", "mine\n")
    with pytest.raises(SeqkitError) as info:
        start_run(recipe, display="silent", source="r.yaml")
    assert info.value.problems == [f"r.yaml: output: cannot make the run folder {tmp_path / 'run'}: "
                                   f"File exists; name another folder, e.g. --set output=runs/NAME"]
    assert (tmp_path / "run").read_text() == "mine\n"
