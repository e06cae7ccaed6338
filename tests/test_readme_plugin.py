"""README's "Writing a plugin": its mycell.py and pyproject.toml, with a test file beside the
module, installed with pip into a folder of their own, listed, trained one step, and tested.

pip builds the package without build isolation and without an index (no network), with the
setuptools of this environment, and installs it with --target into tmp_path, which the
subprocesses put on PYTHONPATH: the environment's installed packages are left as they are.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from _tiny_runs import ONE_THREAD_ENV, TINY
from conftest import SAME_KERNELS

README = Path(__file__).resolve().parent.parent / "README.md"

# The package's own test file, beside the module (what broke setuptools' flat-layout discovery).
TEST_MYCELL = '''\
import torch
from seqkit import Recurrent
from seqkit.testing import check_cell

from mycell import MyCell


def test_conformance():
    check_cell(MyCell)
    check_cell(MyCell, scale=0.5)


def test_usable_by_name_once_installed():
    outputs, states = Recurrent("mycell", 3, 4, layers=2)(torch.randn(2, 5, 3))
    assert outputs.shape == (2, 5, 4) and len(states) == 2
'''


def readme_block(first_line: str) -> str:
    """The README's one fenced code block whose first line is ``first_line``."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Writing a plugin\n", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in re.findall(r"^```[a-z]*\n(.*?)^```$", section, re.M | re.S)
              if b.splitlines()[0].strip() == first_line]
    assert len(blocks) == 1, f"README's 'Writing a plugin' has {len(blocks)} blocks starting {first_line!r}"
    return blocks[0]


def run(args: list[str], env: dict, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(env with the package's site folder on PYTHONPATH, package folder, its pyproject data)."""
    root = tmp_path_factory.mktemp("readme_plugin")
    src = root / "seqkit-mycell"
    src.mkdir()
    (src / "mycell.py").write_text(readme_block("# mycell.py"))
    (src / "pyproject.toml").write_text(readme_block("# pyproject.toml of your package"))
    (src / "test_mycell.py").write_text(TEST_MYCELL)
    project = tomllib.loads((src / "pyproject.toml").read_text())

    site = root / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQKIT_")} | SAME_KERNELS
    env.update(ONE_THREAD_ENV, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    pip = run(["-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation",
               "--target", str(site), str(src)], env, root)
    assert pip.returncode == 0, (
        "pip could not build the README's package without build isolation; it needs "
        "setuptools>=70.1 (or the wheel package) in this environment: "
        "pip install -e '.[test]'\n" + pip.stdout[-3000:] + pip.stderr[-3000:])
    installed_files = {p.name for p in site.iterdir()}
    assert "mycell.py" in installed_files and "test_mycell.py" not in installed_files, installed_files

    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env, src, project


def test_the_snippet_is_a_complete_project():
    project = tomllib.loads(readme_block("# pyproject.toml of your package"))
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert {"name", "version"} <= project["project"].keys()
    assert project["project"]["dependencies"] == ["seqkit"]
    assert project["tool"]["setuptools"]["py-modules"] == ["mycell"]
    assert project["project"]["entry-points"]["seqkit"] == {"mycell": "mycell"}


def test_listed_by_seqkit_plugins_with_its_distribution(installed):
    env, src, project = installed
    result = run(["-m", "seqkit", "plugins", "--json"], env, src.parent)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["mycell"]["source"] == project["project"]["name"]
    assert plugins["mycell"]["version"] == project["project"]["version"]
    assert plugins["mycell"]["components"] == {"cell": ["mycell"]}
    assert plugins["mycell"]["error"] is None


def test_trains_one_step_with_the_cell(installed, tmp_path):
    env, src, _ = installed
    recipe = json.loads(json.dumps(TINY))
    recipe["output"] = str(tmp_path / "run")
    recipe["model"].update(cell="mycell", cell_options={"scale": 0.5})
    recipe["train"].update(steps=1, eval_every=1)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run(["-m", "seqkit", "run", str(path), "--quiet", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    done = json.loads(result.stdout)
    assert done["step"] == 1 and done["stopped"] == "finished", done
    assert math.isfinite(done["final"]["loss"]), done
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m.get("split") == "train"]
    assert [m["step"] for m in train] == [1] and math.isfinite(train[0]["loss"]), metrics


def test_the_packages_own_tests_pass(installed):
    """Against the installed module: run from outside the package folder, whose importlib mode
    keeps off sys.path."""
    env, src, _ = installed
    result = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                  str(src / "test_mycell.py")], env, src.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout
