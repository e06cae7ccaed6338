"""Every hook a plugin can implement is documented in the README and exercised by a test."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from seqkit import hookspecs

REPO = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
               if name.startswith("register_"))


def test_there_are_hooks():
    assert HOOKS == ["register_cells", "register_datasets", "register_decoders", "register_tasks"]


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
