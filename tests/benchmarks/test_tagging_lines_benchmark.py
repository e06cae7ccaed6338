"""benchmarks/tagging_lines.py: the lines it draws, their reference classes, and its figures against
a direct count over ``seqkit decode --json`` of the same lines, on a tiny python-tokens run."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml
from _tagging_runs import tagging_recipe
from _tiny_runs import ONE_THREAD_ENV
from _token_labels import expected_labels
from conftest import REPO, run_cli

from benchmarks import tagging_lines

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains

LINES = 120


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lines")
    recipe = tagging_recipe(folder, folder / "run", "train.steps=30", "train.eval_every=30", "train.lr=0.05")
    recipe["data"] = {"dataset": "python-tokens", "max_files": 12, "max_length": 64, "scheme": "auto"}
    path = folder / "chars.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**ONE_THREAD_ENV, "SEQKIT_CACHE_DIR": str(folder / "cache")}
    result = run_cli("run", path, "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    return folder, env


def test_single_lines_are_one_line_statements_without_indentation():
    source = ("import os\n\nclass A:\n    '''One line.'''\n    # only a comment\n    x = (1,\n         2)\n"
              "    y = 1; z = 2  # two\n    s = '''a\nb'''\n    t = 1 + \\\n        2\n\tif x: pass\n"
              "print(f'{x!r}')")
    assert tagging_lines.single_lines(source) == ["import os", "class A:", "'''One line.'''",
                                                  "y = 1; z = 2  # two", "if x: pass", "print(f'{x!r}')"]


def test_reference_classes_are_what_tokenize_gives_the_line_alone():
    line = "def area(r): return 3.14 * r ** 2  # circle"
    assert tagging_lines.letters(tagging_lines.reference(line)) == "kkkwnnnnonoowkkkkkkwuuuuwownwoowuwwcccccccc"
    for line in ("x = f'{a}' if b else None", "@cache", "async def g(): await h()  # é"):
        assert tagging_lines.reference(line) == expected_labels(line)


def test_the_example_lines_are_the_readme_docs_and_recipe_decode_inputs():
    found = tagging_lines.example_lines()
    assert "def area(r): return 3.14 * r ** 2  # circle" in found  # the README's quick start
    assert "def f(x): return x  # done" in found  # docs/tasks/tagging.md
    texts = "".join((REPO / path).read_text() for path in ("README.md", "docs/tasks/tagging.md",
                                                          "recipes/tagging.yaml"))
    assert all(f'--input "{line}"' in texts for line in found)


def test_a_standard_library_package_is_refused():
    with pytest.raises(SystemExit, match="standard library"):
        tagging_lines.package_files("json")


def test_the_figures_are_a_count_of_the_lines_tags_against_tokenize(char_run, tmp_path, capsys):
    folder, env = char_run
    tagging_lines.main(["--run", str(folder / "run"), "--compare", str(folder / "run"), "--lines", str(LINES),
                        "--json", "--no-write", "--threads", "1"])
    report = json.loads(capsys.readouterr().out)
    lines = tagging_lines.draw_lines("rich", LINES, seed=0)
    assert report["lines"] == LINES == len(set(lines)) and report["package"] == "rich"
    inputs = tmp_path / "lines.txt"
    inputs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    decoded = run_cli("decode", folder / "run", "--input-file", inputs, "--json", env=env)
    assert decoded.returncode == 0, decoded.stderr
    results = json.loads(decoded.stdout)["results"]
    assert [r["input"] for r in results] == lines
    right, total, lines_right, per_class = 0, 0, 0, Counter()
    for line, result in zip(lines, results):
        gold = expected_labels(line)
        hits = [g == p for g, p in zip(gold, result["tags"], strict=True)]
        right, total, lines_right = right + sum(hits), total + len(hits), lines_right + all(hits)
        per_class.update(gold)
    assert report["characters"] == total and report["accuracy"] == pytest.approx(right / total, abs=1e-12)
    assert report["lines_right"] == pytest.approx(lines_right / LINES)
    assert {name: row["characters"] for name, row in report["per_class"].items()} == dict(per_class)
    assert 0 < right < total  # 30 steps: some characters right, not all
    examples = tagging_lines.example_lines()
    assert [e["line"] for e in report["examples"]] == examples
    for entry in report["examples"]:
        assert entry["exact"] == (entry["tags"] == entry["reference"])
        assert entry["reference"] == tagging_lines.letters(expected_labels(entry["line"]))
    assert report["run"]["steps"] == 30 and report["run"]["stopped"] == "finished"
    [again] = report["compared"]  # the same run compared with itself: the same figures
    assert again["accuracy"] == report["accuracy"] and again["run"]["path"] == str(folder / "run")
    table = tagging_lines.comparison([report, again])
    assert table[-1] == table[-2] and f"| {folder / 'run'} |" in table[-1]
