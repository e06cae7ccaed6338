"""Recipes: every problem reported at once, one line each, through the real CLI; overrides; round-trip."""
from __future__ import annotations

import textwrap

import pytest
import yaml
from conftest import TOY_PLUGIN, cli_here, run_cli

from seqkit.errors import SeqkitError
from seqkit.recipe import apply_overrides, dump_recipe, load_recipe, resolve

GOOD = """
task: toy
seed: 3
model: {cell: toycell, hidden_size: 8, cell_options: {scale: 0.5}}
train: {steps: 5}
data: {size: 4}
decode: {strategy: toydec}
"""


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def toy_registry(registry):
    namespace = {}
    exec(textwrap.dedent(TOY_PLUGIN), namespace)
    hooks = ("register_tasks", "register_cells", "register_decoders")
    plugin = type("Toy", (), {k: staticmethod(namespace[k]) for k in hooks})
    registry.add(plugin, "toy", source="tests")
    return registry


def test_good_recipe_validates(tmp_path, toy_site):
    path = write(tmp_path, GOOD)
    result = run_cli("validate", path, site=toy_site)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, f"{path}: ok", "")


@pytest.mark.parametrize("edit, line", [
    ({"sed": 1}, "sed: unknown key (did you mean 'seed'?)"),
    ({"seed": "abc"}, "seed: expected an integer, got str 'abc'"),
    ({"seed": True}, "seed: expected an integer, got bool True"),
    ({"task": "toi"}, "task: unknown task 'toi' (did you mean 'toy'?); registered: "),
    ({"model": {"cell": "toycel"}}, "model.cell: unknown cell 'toycel' (did you mean 'toycell'?); registered: "),
    ({"model": {"dropout": 1.5}}, "model.dropout: must be <= 0.99; got 1.5"),
    ({"model": {"hidden_size": 0}}, "model.hidden_size: must be >= 1; got 0"),
    ({"model": {"cell": "toycell", "cell_options": {"scal": 2.0}}},
     "model.cell_options.scal: unknown key (did you mean 'scale'?)"),
    ({"model": {"cell": "toycell", "cell_options": {"scale": "big"}}},
     "model.cell_options.scale: expected a number, got str 'big'"),
    ({"data": {"size": 0}}, "data.size: must be >= 1; got 0"),
    ({"data": {"sise": 2}}, "data.sise: unknown key (did you mean 'size'?)"),
    ({"train": {"optimizer": "adamm"}}, "train.optimizer: must be one of adam, adamw, sgd; got 'adamm'"),
    ({"train": "fast"}, "train: expected a mapping, got str"),
    ({"decode": {"strategy": "nope"}}, "decode.strategy: unknown decoder 'nope'"),
    ({"decode": {"width": 0}}, "decode.width: must be >= 1; got 0"),
    ({"decode": {"prompt": 5}}, "decode.prompt: expected a string, got int 5"),
    ({"train": {"lr": float("nan")}}, "train.lr: must be a finite number; got nan"),
])
def test_each_problem_is_one_line_and_exit_2(tmp_path, toy_site, edit, line):
    data = yaml.safe_load(GOOD)
    for key, value in edit.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    path = write(tmp_path, yaml.safe_dump(data))
    result = cli_here("validate", path, site=toy_site)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: {line}"), result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_reported_at_once(tmp_path, toy_site):
    path = write(tmp_path, """
        task: toy
        sed: 1
        device: gpu0
        model: {hidden_size: -3, cell: toycell, cell_options: {nope: 1}}
        train: {lr: fast, stepz: 3}
    """)
    result = cli_here("validate", path, site=toy_site)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [l.split(": ")[1] for l in lines] == [
        "sed", "device", "model.hidden_size", "model.cell_options.nope", "train.stepz", "train.lr"]
    assert all(l.startswith(f"{path}: ") for l in lines)


@pytest.mark.parametrize("text, line", [
    ("task: toy\nmodel: [1, 2\n", "line 3: invalid YAML"),
    ("", "recipe is empty; it needs at least 'task:'"),
    ("- task\n", "a recipe is a mapping of keys, got list"),
    ("seed: 1\n", "task: required key is missing"),
])
def test_unreadable_recipes(tmp_path, toy_site, text, line):
    path = write(tmp_path, text)
    result = cli_here("validate", path, site=toy_site)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"{path}: {line}"] or \
        result.stderr.startswith(f"{path}: {line}"), result.stderr


def test_missing_file(tmp_path):
    result = cli_here("validate", tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}: no such recipe file"


def test_overrides_through_cli(tmp_path, toy_site):
    path = write(tmp_path, GOOD)
    ok = cli_here("validate", path, "--set", "train.steps=7", "--set", "model.cell_options.scale=2",
                 site=toy_site)
    assert ok.returncode == 0, ok.stderr
    bad = cli_here("validate", path, "--set", "train.steps=-1", "--set", "model.layers=two",
                  "--set", "oops", site=toy_site)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["--set oops: needs KEY=VALUE, e.g. --set oops=VALUE"]
    bad = cli_here("validate", path, "--set", "train.steps=-1", "--set", "model.layers=two", site=toy_site)
    assert bad.stderr.strip().splitlines() == [
        f"{path}: model.layers: expected an integer, got str 'two'",
        f"{path}: train.steps: must be >= 1; got -1"]


def test_device_flag_is_validated(tmp_path, toy_site):
    path = write(tmp_path, GOOD)
    result = cli_here("validate", path, "--device", "tpu", site=toy_site)
    assert result.returncode == 2
    assert result.stderr.strip() == f"{path}: device: 'tpu' is not one of auto, cpu, cuda, cuda:N, mps"


def test_apply_overrides_parses_yaml_values():
    data = {"train": {"steps": 1}}
    assert apply_overrides(data, ["train.steps=20", "train.lr=1e-3", "model.cell=gru",
                                  'decode.prompt="The "', "model.cell_options={a: 1}"]) == []
    assert data == {"train": {"steps": 20, "lr": 1e-3},
                    "model": {"cell": "gru", "cell_options": {"a": 1}}, "decode": {"prompt": "The "}}
    assert apply_overrides({"seed": 1}, ["seed.x=2"]) == ["--set seed.x=2: seed is not a mapping"]


def test_null_removes_a_key():
    data = {"seed": 1, "decode": {"strategy": "sample", "temperature": 0.8}}
    assert apply_overrides(data, ["decode.temperature=null", "seed=~", "train.lr=null",
                                  "model.cell_options.scale=null"]) == []
    assert data == {"decode": {"strategy": "sample"}}  # absent keys stay absent, no empty sections
    assert apply_overrides({"seed": 1}, ["seed.x=null"]) == ["--set seed.x=null: seed is not a mapping"]


def test_null_lets_a_recipe_switch_decoder(tmp_path):
    """recipes/char_lm.yaml sets decode.temperature and seed, which beam search does not take."""
    clash = cli_here("validate", "recipes/char_lm.yaml", "--set", "decode.strategy=beam")
    assert clash.returncode == 2 and "decode.temperature: " in clash.stderr
    result = cli_here("validate", "recipes/char_lm.yaml", "--set", "decode.strategy=beam",
                     "--set", "decode.temperature=null", "--set", "decode.seed=null", "--device", "cpu")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_scientific_notation_is_a_number():
    from seqkit.recipe import parse_yaml

    assert parse_yaml("{lr: 3e-4, a: 1.5E+2, b: 2, c: .5, d: 1_000, e: '1e-3'}") == \
        {"lr": 3e-4, "a": 150.0, "b": 2, "c": 0.5, "d": 1000, "e": "1e-3"}


def test_resolved_recipe_round_trips(tmp_path, toy_registry):
    path = write(tmp_path, GOOD)
    resolved = load_recipe(path, ["train.lr=0.01"], registry=toy_registry)
    assert resolved["output"] == "runs/toy"
    assert resolved["train"]["lr"] == 0.01 and resolved["train"]["optimizer"] == "adam"
    assert resolved["model"]["cell_options"] == {"scale": 0.5}
    assert resolved["data"] == {"size": 4}
    assert resolved["decode"] == {"strategy": "toydec", "length": 100, "prompt": "a", "width": 2}
    again = resolve(yaml.safe_load(dump_recipe(resolved)), toy_registry, "again")
    assert again == resolved


def test_integral_float_is_an_integer(tmp_path, toy_registry):
    path = write(tmp_path, GOOD)
    resolved = load_recipe(path, ["train.steps=1e3", "model.layers=2.0"], registry=toy_registry)
    assert (resolved["train"]["steps"], resolved["model"]["layers"]) == (1000, 2)
    assert type(resolved["train"]["steps"]) is int and type(resolved["model"]["layers"]) is int
    assert type(resolved["train"]["lr"]) is float  # a number option keeps its float
    with pytest.raises(SeqkitError) as info:
        load_recipe(path, ["train.steps=2.5", "model.layers=.inf"], registry=toy_registry)
    assert info.value.problems == [f"{path}: model.layers: expected an integer, got float inf",
                                   f"{path}: train.steps: expected an integer, got float 2.5"]


def test_every_float_must_be_finite(tmp_path, toy_registry):
    path = write(tmp_path, GOOD)
    with pytest.raises(SeqkitError) as info:
        load_recipe(path, ["train.lr=.nan", "train.time_limit=.inf", "model.cell_options.scale=-.inf",
                           "decode.width=.nan"], registry=toy_registry)
    assert info.value.problems == [
        f"{path}: model.cell_options.scale: must be a finite number; got -inf",
        f"{path}: train.lr: must be a finite number; got nan",
        f"{path}: train.time_limit: must be a finite number; got inf",
        f"{path}: decode.width: expected an integer, got float nan"]


def test_resolve_raises_all_problems(toy_registry):
    with pytest.raises(SeqkitError) as info:
        resolve({"task": "toy", "seed": -1, "model": {"layers": 0}}, toy_registry, "r.yaml")
    assert info.value.problems == ["r.yaml: seed: must be >= 0; got -1",
                                   "r.yaml: model.layers: must be >= 1; got 0"]
