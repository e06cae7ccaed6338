"""The shape of the code: layers that import only downward, no import circles, a CLI nothing imports,
a core that knows no concrete plugin. Read from the source (ast), so a new module is checked too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

# Lowest first. A module may import its own layer's modules and those below, never above.
LAYERS = [
    ("leaves", {"seqkit.errors", "seqkit.atomic", "seqkit.device", "seqkit.memory", "seqkit.distributed",
                "seqkit.state", "seqkit.text_files", "seqkit.options", "seqkit.hookspecs", "seqkit.version",
                "seqkit.corpus"}),
    ("contracts", {"seqkit.contracts"}),
    ("registry", {"seqkit.registry", "seqkit.plugin_errors"}),
    ("library", {"seqkit.nn", "seqkit.recipe", "seqkit.decoding", "seqkit.analysis", "seqkit.tokenization"}),
    ("training", {"seqkit.training"}),
    ("api", {"seqkit.api", "seqkit.testing", "seqkit.run"}),
    ("serve", {"seqkit.serve"}),
    ("cli", {"seqkit.cli", "seqkit.__main__"}),
]


def modules() -> dict[str, Path]:
    """Dotted name -> file, for seqkit/ and plugins/ (installed as seqkit.plugins)."""
    found = {}
    for folder, package in (("seqkit", "seqkit"), ("plugins", "seqkit.plugins")):
        for path in (REPO / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def imports(name: str) -> list[tuple[str, bool]]:
    """(imported seqkit module, inside a function?) for each import of module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            # `from seqkit.cli import run` imports the module seqkit.cli.run, after the package
            # seqkit.cli itself: `from seqkit import Option` runs all of seqkit/__init__.py
            targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        else:
            continue
        found += [(t, id(node) in in_function) for t in targets if t.split(".")[0] == "seqkit"]
    return found


def resolved(target: str) -> str | None:
    """The module ``target`` names (``seqkit.contracts.Cell`` -> ``seqkit.contracts``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def layer_of(name: str) -> int | None:
    for index, (_, members) in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return index
    return None


CORE = sorted(n for n in MODULES if not n.startswith("seqkit.plugins") and n != "seqkit")


@pytest.mark.parametrize("name", CORE)
def test_every_core_module_has_a_layer_and_imports_only_downward(name):
    own = layer_of(name)
    assert own is not None, f"{name}: add it to a layer of tests/test_architecture.py"
    targets = {resolved(target) for target, _ in imports(name)} - {None, "seqkit"}
    above = {t for t in targets if layer_of(t) is not None and layer_of(t) > own}
    assert not above, f"{name} ({LAYERS[own][0]}) imports {sorted(above)} from a layer above it"


def test_nothing_imports_the_cli_and_the_core_imports_no_concrete_plugin():
    for name in MODULES:
        for target, _ in imports(name):
            module = resolved(target) or target
            if module.startswith("seqkit.cli") and not name.startswith("seqkit.cli"):
                assert name == "seqkit.__main__", f"{name} imports {module}: nothing but the CLI may"
            if module.startswith("seqkit.plugins") and name in CORE:
                pytest.fail(f"{name} imports the plugin {module}: the core knows no concrete plugin")


def test_no_import_circles():
    """No module reaches itself through its imports, where importing ``from a.b import c`` also runs
    the package ``a.b``; a package's ``__init__`` importing its own modules (and they importing
    their siblings through it) is how packages work, not a circle."""
    graph = {name: {m for t, _ in imports(name) if (m := resolved(t)) and m != name} for name in MODULES}

    def path_between(start, goal):
        seen, stack = {start}, [[start]]
        while stack:
            path = stack.pop()
            for nxt in sorted(graph.get(path[-1], ())):
                if nxt == goal:
                    return path + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(path + [nxt])
        return None

    for a in sorted(graph):
        for b in sorted(graph[a]):
            if b.startswith(a + ".") or a.startswith(b + "."):
                continue
            back = path_between(b, a)
            assert back is None, "import circle: " + " -> ".join([a, *back])


def test_the_core_imports_seqkit_at_module_top():
    """Imports inside functions hide a module's dependencies; only optional packages go there."""
    inside = [(name, target) for name in CORE for target, in_function in imports(name) if in_function]
    assert not inside, inside
