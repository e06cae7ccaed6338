"""Every hook, command and built-in recipe key is documented in the hand-written docs (README.md and
docs/, not the generated reference, which lists them but explains nothing), every hook is exercised
by a test, and CI runs the README's test command."""
from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest

from seqkit import hookspecs

REPO = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
               if name.startswith("register_"))
# Generated (docs/generate.py, the benchmark scripts) or a log of runs: listing is not documenting.
NOT_HAND_WRITTEN = ("reference", "benchmarks", "experiments")


def hand_written_pages() -> list[Path]:
    docs = REPO / "docs"
    return [REPO / "README.md", *sorted(p for p in docs.rglob("*.md")
                                        if p.relative_to(docs).parts[0] not in NOT_HAND_WRITTEN)]


def documentation() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in hand_written_pages())


def test_the_docs_are_more_than_the_readme():
    pages = {str(p.relative_to(REPO)) for p in hand_written_pages()}
    assert {"docs/README.md", "docs/recipes.md", "docs/plugins.md", "docs/tasks/char_lm.md",
            "docs/tasks/tagging.md", "docs/tasks/translation.md"} <= pages, pages

def test_there_are_hooks():
    assert HOOKS == ["register_cells", "register_datasets", "register_decoders", "register_loggers",
                     "register_tasks", "register_tokenizers"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    assert f"`{hook}" in documentation(), f"neither README.md nor docs/ documents {hook}"
    assert f"`{hook}" in (REPO / "docs" / "plugins.md").read_text(), f"docs/plugins.md does not document {hook}"
    assert getattr(hookspecs, hook).__doc__, f"hookspec {hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    this = Path(__file__).name
    users = [p.name for p in (REPO / "tests").rglob("test_*.py")
             if p.name != this and f"def {hook}(" in p.read_text()]
    assert users, f"no test implements the {hook} hook"


def _recipe_keys(registry) -> list[str]:
    """Every recipe key of the core and of the built-in tasks, datasets, decoders, tokenizers and cells."""
    from seqkit.options import options_of
    from seqkit.recipe import DECODE_OPTIONS, MODEL_OPTIONS, TOP_OPTIONS, TRAIN_OPTIONS

    keys = [*TOP_OPTIONS, *MODEL_OPTIONS, *TRAIN_OPTIONS, *DECODE_OPTIONS]
    for name in registry.names("task"):
        keys += [key for section in registry.get("task", name).options.values() for key in section]
    for kind in ("dataset", "decoder", "tokenizer"):
        keys += [key for name in registry.names(kind) for key in options_of(registry.get(kind, name))]
    for name in registry.names("cell"):
        keys += options_of(registry.get("cell", name), skip=("self", "input_size", "hidden_size"))
    return sorted(set(keys))


def test_every_builtin_recipe_key_is_documented(registry):
    docs = documentation()
    undocumented = [key for key in _recipe_keys(registry)
                    if not re.search(rf"`[^`\n]*\b{re.escape(key)}\b[^`\n]*`", docs)]
    assert not undocumented, f"neither README.md nor docs/ documents the recipe keys {undocumented}"


def _commands(parser, prefix: str = "seqkit") -> list[str]:
    """Every command of the parser, nested ones too: ``seqkit probe gradients``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [f"{prefix} {name}", *_commands(sub, f"{prefix} {name}")]
    return found


def test_every_command_is_documented():
    from seqkit.cli import build_parser

    docs = documentation()
    commands = _commands(build_parser())
    assert "seqkit probe gradients" in commands and len(commands) >= 11, commands
    undocumented = [c for c in commands if not re.search(rf"`{re.escape(c)}\b[^`\n]*`", docs)]
    assert not undocumented, f"neither README.md nor docs/ documents the commands {undocumented}"


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
