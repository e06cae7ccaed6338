"""``seqkit show``: a component's recipe keys, from the schemas that validate recipes."""
from __future__ import annotations

import json

import pytest
from conftest import cli_here, run_cli

from seqkit.options import type_label
from seqkit.plugins.decoders.beam import Beam
from seqkit.plugins.tasks.char_lm.task import CharLM
from seqkit.recipe import TRAIN_OPTIONS


def shown(*args, **kwargs) -> dict:
    result = cli_here("show", *args, "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_task_lists_exactly_the_keys_it_declares_with_their_schema():
    listed = shown("task", "char_lm")["options"]
    declared = {f"{section}.{key}": option for section, keys in CharLM.options.items()
                for key, option in keys.items()}
    assert list(listed) == list(declared)
    for key, option in declared.items():
        assert listed[key]["default"] == option.default and listed[key]["help"] == option.help
        assert listed[key]["type"] == type_label(option.types())
        assert listed[key]["min"] == option.min and listed[key]["max"] == option.max
    assert listed["data.unknown"]["choices"] == ["map", "drop"]


def test_a_third_party_cell_lists_its_constructor_options(toy_site):
    component = shown("cell", "toycell", site=toy_site)
    assert component["source"] == "seqkit-toy"
    assert component["options"] == {"model.cell_options.scale": {
        "type": "number", "default": 1.0, "required": False, "choices": None, "min": None,
        "max": None, "help": ""}}


def test_decoders_and_the_core_keys():
    assert list(shown("decoder", "beam")["options"]) == [f"decode.{key}" for key in Beam.options]
    core = shown("recipe")["options"]
    assert core["task"]["required"] and core["train.lr"]["default"] == TRAIN_OPTIONS["lr"].default
    assert {row["name"] for row in shown("decoder")} >= {"beam", "exact", "greedy", "sample"}


def test_the_table_shows_every_key_whole_when_piped():
    result = run_cli("show", "task", "char_lm", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    for section, keys in CharLM.options.items():
        for key, option in keys.items():
            assert f" {section}.{key} " in result.stdout and option.help in result.stdout


@pytest.mark.parametrize("args,message", [
    (["cel", "gru"], "seqkit show: unknown kind 'cel' (did you mean 'cell'?); choose one of cell, "
                     "decoder, task, dataset, logger, tokenizer, recipe"),
    (["cell", "gruu"], "seqkit show cell: unknown cell 'gruu' (did you mean 'gru'?); registered: "),
])
def test_unknown_names_are_one_line(args, message):
    result = cli_here("show", *args)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message)
