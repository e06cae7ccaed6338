"""``seqkit decode`` of a character tagger off a terminal: the tags survive as a line of one letter
per character under each input, with a legend, and parse back to ``--json``'s tags."""
from __future__ import annotations

import io
import json
import os
from types import SimpleNamespace

import pytest
import yaml
from _tagging_runs import tagging_recipe
from _tiny_runs import ONE_THREAD_ENV
from conftest import run_cli
from rich.console import Console

from seqkit.plugins.tasks.tagging.output import show, tag_letters

CLASSES = ("name", "keyword", "operator", "number", "string", "comment", "whitespace")
INPUTS = ["def f(x): return x  # done", "s = 'a\tb' + 12", ""]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """A python-tokens run trained just enough (30 steps) that its tags differ along a line."""
    folder = tmp_path_factory.mktemp("plain")
    recipe = tagging_recipe(folder, folder / "run", "train.steps=30", "train.eval_every=30", "train.lr=0.05")
    recipe["data"] = {"dataset": "python-tokens", "max_files": 12, "max_length": 64, "scheme": "auto"}
    path = folder / "chars.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = plain_env(folder)
    result = run_cli("run", path, "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    return folder / "run", env


def plain_env(folder) -> dict:
    """The test process's environment without what would make rich treat a pipe as a terminal."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**env, **ONE_THREAD_ENV, "SEQKIT_CACHE_DIR": str(folder / "cache")}


def parse_plain(stdout: str, inputs: list[str]) -> tuple[list[list[str]], dict]:
    """(each input's tags, the legend), read from the piped output alone: the line under each
    input holds one letter per character, and the last line maps the letters to tags."""
    lines = stdout.split("\n")
    assert lines[-1] == "" and lines[-2].startswith("tags: ")
    legend = dict(pair.split("=", 1) for pair in lines[-2].removeprefix("tags: ").split(" "))
    tagged = iter(lines[1:-2])
    parsed = []
    for text in inputs:
        if not text:  # nothing to tag: one line says so
            assert next(tagged) == "'': empty input, nothing to decode"
            parsed.append([])
            continue
        shown, letters = next(tagged), next(tagged)
        assert shown.startswith(text + "   log p = ")
        assert len(letters) == len(text)
        parsed.append([legend[letter] for letter in letters])
    assert next(tagged, None) is None
    return parsed, legend


def test_piped_decode_keeps_the_tags_and_they_parse_back_to_the_json_tags(char_run):
    run_dir, env = char_run
    flags = [flag for text in INPUTS for flag in ("--input", text)]
    piped = run_cli("decode", run_dir, *flags, env=env)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout  # no colour codes in a pipe
    parsed, legend = parse_plain(piped.stdout, INPUTS)
    assert sorted(legend.values()) == sorted(CLASSES)
    as_json = run_cli("decode", run_dir, *flags, "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    expected = [entry["tags"] for entry in json.loads(as_json.stdout)["results"]]
    assert parsed == expected
    assert len(set(expected[0])) > 1  # the run tells classes apart: the letters carry information


def test_letters_are_distinct_and_taken_from_the_tag_names():
    letters = tag_letters(CLASSES)
    assert letters == {"name": "n", "keyword": "k", "operator": "o", "number": "u", "string": "s",
                       "comment": "c", "whitespace": "w"}
    many = [f"T{i}" for i in range(90)]
    assert len(set(tag_letters(many).values())) == 90 and "=" not in tag_letters(many).values()
    assert tag_letters([f"T{i}" for i in range(200)]) is None


def rendered(renderables, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, color_system="standard" if terminal else None,
                      soft_wrap=True, width=10**6)
    for renderable in renderables:
        console.print(renderable)
    return out.getvalue()


def test_ranked_outputs_keep_their_letters_under_their_characters_and_a_terminal_gets_colours():
    task = SimpleNamespace(level="char", tag_names=("A", "B", "O"), tag_styles={})
    report = {"results": [{"tokens": list("ab c"), "outputs": [
        {"tags": ["A", "B", "O", "A"], "log_prob": -0.5}, {"tags": ["B", "B", "O", "O"], "log_prob": -1.25}]}]}
    plain = rendered(show(task, report), terminal=False)
    assert plain == ("1. ab c   log p = -0.500\n   ABOA\n"
                     "2. ab c   log p = -1.250\n   BBOO\n"
                     "tags: A=A B=B O=O\n")
    coloured = rendered(show(task, report), terminal=True)
    assert "\x1b[" in coloured and "ABOA" not in coloured and "A=A" not in coloured


def test_word_runs_print_word_slash_tag_on_and_off_a_terminal():
    task = SimpleNamespace(level="word", tag_names=("O", "B-PER"), tag_styles={})
    report = {"results": [{"tokens": ["Anna", "runs"],
                           "outputs": [{"tags": ["B-PER", "O"], "log_prob": -0.1}]}]}
    assert rendered(show(task, report), terminal=False) == "Anna/B-PER runs/O   log p = -0.100\n"
