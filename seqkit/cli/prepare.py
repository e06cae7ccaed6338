"""``seqkit prepare``: read, split and tokenize a recipe's data once, onto disk, so that runs start
at once (``seqkit run`` prepares it too when it is missing, and reuses it when it is there)."""
from __future__ import annotations

import argparse
import json

from rich.table import Table

from seqkit.api import prepare_resolved
from seqkit.cli._common import add_recipe_args, overrides, stdout_console
from seqkit.recipe import load_recipe


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("prepare", parents=[common], help="prepare a recipe's data on disk ahead of training",
                       description="Read the recipe's dataset, train its tokenizer on the training "
                                   "split and write the token ids to the cache folder "
                                   "($SEQKIT_CACHE_DIR), where runs read them through memory maps.")
    p.add_argument("recipe", help="the recipe (YAML) whose data to prepare")
    add_recipe_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    summary = prepare_resolved(args.recipe, load_recipe(args.recipe, overrides(args)), progress=not args.json)
    if args.json:
        print(json.dumps(summary))
        return 0
    table = Table(title=f"{args.recipe}: prepared data" + (" (already there)" if summary["reused"] else ""),
                  title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for split in summary["tokens"]:
        table.add_row(f"{split} tokens", f"{_counts(summary['tokens'][split])} "
                                         f"({_counts(summary['characters'][split])} characters)")
    table.add_row("vocabulary", f"{_counts(summary['vocabulary'])} ({summary['tokenizer']})")
    table.add_row("text", f"{summary['text_megabytes']:,.1f} MB in {summary['files']:,} file(s)")
    table.add_row("prepared", f"{summary['prepared_megabytes']:,.1f} MB in {summary['path']}")
    table.add_row("seconds", f"{summary['seconds']:,.1f}")
    stdout_console().print(table)
    return 0


def _counts(value) -> str:
    """A count, or a task's counts per side (translation: ``{"source": ..., "target": ...}``)."""
    if isinstance(value, dict):
        return ", ".join(f"{name} {count:,}" for name, count in value.items())
    return f"{value:,}"
