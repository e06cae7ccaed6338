"""``seqkit plugins``: every loaded plugin, its version and source, and what it registered."""
from __future__ import annotations

import argparse
import json

from rich.table import Table
from rich.text import Text

from seqkit.cli._common import stdout_console
from seqkit.registry import get_registry


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("plugins", parents=[common], help="list plugins and what they register")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    plugins = list(get_registry().plugins.values())
    if args.json:
        print(json.dumps([vars(p) for p in plugins], indent=2))
        return 0
    table = Table(title="seqkit plugins")
    for column in ("plugin", "version", "source", "hooks", "registers"):
        # Names are typed into recipes and commands: a narrow terminal folds them, never cuts them.
        table.add_column(column, overflow="fold")
    for p in plugins:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in p.components.items())
        # Built-ins are all seqkit.plugins.*; the short name keeps the table readable.
        table.add_row(p.name.removeprefix("seqkit.plugins."), p.version or "", p.source,
                      ", ".join(p.hooks),
                      Text(f"failed: {p.error}", style="red") if p.error else registers)
    stdout_console().print(table)
    return 0
