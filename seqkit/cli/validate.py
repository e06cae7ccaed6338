"""``seqkit validate``: check a recipe without running it (every problem at once, exit 0 or 2)."""
from __future__ import annotations

import argparse

from seqkit.cli._common import add_recipe_args, overrides
from seqkit.recipe import load_recipe


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", parents=[common], help="check a recipe without running it")
    p.add_argument("recipe")
    add_recipe_args(p)
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    load_recipe(args.recipe, overrides(args))
    print(f"{args.recipe}: ok")
    return 0
