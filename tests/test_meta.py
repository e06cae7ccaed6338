"""Every hook a plugin can implement is documented in the README and exercised by a test."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from seqkit import hookspecs

REPO = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
               if name.startswith("register_"))


def test_there_are_hooks():
    assert HOOKS == ["register_cells", "register_datasets", "register_decoders", "register_loggers",
                     "register_tasks"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    assert f"`{hook}" in (REPO / "README.md").read_text(), f"README.md does not document {hook}"
    assert getattr(hookspecs, hook).__doc__, f"hookspec {hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    this = Path(__file__).name
    users = [p.name for p in (REPO / "tests").glob("test_*.py")
             if p.name != this and f"def {hook}(" in p.read_text()]
    assert users, f"no test implements the {hook} hook"


def _recipe_keys(registry) -> list[str]:
    """Every recipe key of the core and of the built-in tasks, datasets, decoders and cells."""
    from seqkit.options import options_of
    from seqkit.recipe import DECODE_OPTIONS, MODEL_OPTIONS, TOP_OPTIONS, TRAIN_OPTIONS

    keys = [*TOP_OPTIONS, *MODEL_OPTIONS, *TRAIN_OPTIONS, *DECODE_OPTIONS]
    for name in registry.names("task"):
        keys += [key for section in registry.get("task", name).options.values() for key in section]
    for kind in ("dataset", "decoder"):
        keys += [key for name in registry.names(kind) for key in options_of(registry.get(kind, name))]
    for name in registry.names("cell"):
        keys += options_of(registry.get("cell", name), skip=("self", "input_size", "hidden_size"))
    return sorted(set(keys))


def test_every_builtin_recipe_key_is_documented(registry):
    readme = (REPO / "README.md").read_text()
    undocumented = [key for key in _recipe_keys(registry)
                    if not re.search(rf"`[^`\n]*\b{re.escape(key)}\b[^`\n]*`", readme)]
    assert not undocumented, f"README.md does not document the recipe keys {undocumented}"


def _readme_test_command() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("Run the tests:"):]
    block = section[section.index("```bash\n") + len("```bash\n"):]
    return block[:block.index("```")].strip()


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    command = _readme_test_command()
    assert command.endswith("pytest"), command
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in ci, f".ci/run does not run the README's test command {command!r}"
    venv = next(i for i, line in enumerate(ci) if line.startswith("python3 -m venv"))
    assert "--system-site-packages" not in ci[venv]
    assert venv < ci.index(command)


def test_the_install_declares_numpy_so_importing_torch_stays_quiet():
    """torch's CPU wheel does not depend on numpy but warns on import without it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-W", "default", "-c", "import seqkit"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert '"numpy' in (REPO / "pyproject.toml").read_text()
