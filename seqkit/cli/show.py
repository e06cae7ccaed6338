"""``seqkit show KIND [NAME]``: the recipe keys a cell, decoder, task, dataset or tokenizer takes.

Read from the same ``Option`` schemas that validate recipes, so what it lists is what a recipe
accepts: each key under its full path, with its type, default, allowed values and help.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys

from rich.table import Table
from rich.text import Text

from seqkit.cli._common import stdout_console
from seqkit.errors import SeqkitError
from seqkit.options import Option, describe, suggest, type_label
from seqkit.recipe import core_keys, recipe_keys
from seqkit.registry import get_registry

KINDS = ("cell", "decoder", "task", "dataset", "logger", "tokenizer", "recipe")


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("show", parents=[common],
                       help="list the recipe keys of a cell, decoder, task, dataset or tokenizer",
                       description="List the recipe keys a registered component takes (its type, "
                                   "default, allowed values and help); without NAME, the registered "
                                   "names of KIND. 'seqkit show recipe' lists the core keys.")
    p.add_argument("kind", metavar="KIND", help="cell | decoder | task | dataset | logger | tokenizer | recipe")
    p.add_argument("name", nargs="?", metavar="NAME", help="a registered name, e.g. gru, beam, char_lm, bpe")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=command)
    return p


def _summary(cls) -> str:
    """The first paragraph of the class's own docstring, else of its module's."""
    doc = cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def command(args) -> int:
    if args.kind not in KINDS:
        raise SeqkitError(f"seqkit show: unknown kind '{args.kind}'{suggest(args.kind, KINDS)}; "
                          f"choose one of {', '.join(KINDS)}")
    if args.kind == "recipe":
        return _print_keys({"kind": "recipe", "name": None, "summary": "the core keys of every recipe",
                            "options": core_keys()}, args.json)
    registry = get_registry()
    if args.name is None:
        return _print_names(registry, args.kind, args.json)
    try:
        cls = registry.get(args.kind, args.name)
    except SeqkitError as exc:
        raise SeqkitError(f"seqkit show {args.kind}: {exc}") from None
    plugin = registry.plugins[registry.owner(args.kind, args.name)]
    return _print_keys({"kind": args.kind, "name": args.name, "plugin": plugin.name,
                        "source": plugin.source, "summary": _summary(cls),
                        "options": recipe_keys(args.kind, cls)}, args.json)


def _print_names(registry, kind: str, as_json: bool) -> int:
    rows = [{"name": name, "plugin": registry.owner(kind, name), "summary": _summary(registry.get(kind, name))}
            for name in registry.names(kind)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0

    table = Table(title=f"registered {kind}s (seqkit show {kind} NAME lists one's keys)", title_justify="left")
    for column in ("name", "plugin", "summary"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["plugin"].removeprefix("seqkit.plugins."), row["summary"])
    stdout_console().print(table)
    return 0


def _print_keys(component: dict, as_json: bool) -> int:
    if as_json:
        described = {key: describe(option) for key, option in component["options"].items()}
        print(json.dumps({**component, "options": described}, indent=2, default=repr))
        return 0

    console = stdout_console()
    title = " ".join(filter(None, (component["kind"], component["name"])))
    origin = f" (plugin {component['plugin']}, {component['source']})" if "plugin" in component else ""
    console.print(Text(title + origin, style="bold"))
    if component["summary"]:
        console.print(component["summary"], markup=False, highlight=False)
    if not component["options"]:
        console.print("no recipe keys", style="dim")
        return 0
    table = Table()
    for column in ("key", "type", "default", "allowed", "help"):
        # keys are typed into recipes: a narrow terminal folds them, never cuts them
        table.add_column(column, overflow="fold")
    for key, option in component["options"].items():
        table.add_row(key, type_label(option.types()), _default(option), _allowed(option), Text(option.help))
    console.print(table)
    return 0


def _default(option: Option) -> str:
    if option.required:
        return "(required)"
    return json.dumps(option.default, default=repr)  # as in a recipe: "text" quoted, null, true


def _allowed(option: Option) -> str:
    if option.choices is not None:
        return " | ".join(map(str, option.choices))
    bounds = [f">= {option.min}" if option.min is not None else "",
              f"<= {option.max}" if option.max is not None else ""]
    return ", ".join(filter(None, bounds))
