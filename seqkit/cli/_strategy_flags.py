"""Decoding strategies on the command line, for every command that decodes (``decode``, ``eval``).

Every option a registered decoder declares becomes a flag (``top_k`` -> ``--top-k``), so a
third-party decoder's options work on the command line too. Values come from, in order: the
flags, the run's recipe ``decode:`` section (when it chose the same strategy), the defaults
(``seqkit.decoding.recipe_decoder``).
"""
from __future__ import annotations

import argparse
import os
import warnings

import yaml

from seqkit.cli._common import one_line_warning
from seqkit.decoding import Naming
from seqkit.options import Option
from seqkit.registry import get_registry


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


# How the Python API's problems and warnings name what a command's user typed (its flags).
CLI_NAMING = Naming(option=flag, strategy="--strategy", strategy_hint="--strategy NAME",
                    inputs="--input", split="--split", file_hint="--input-file FILE")


def given_options(args) -> dict:
    """The strategy options given as flags: ``{key: value}``."""
    return {key[len("option_"):]: value for key, value in vars(args).items()
            if key.startswith("option_")}


def _decoder_options(own_flags: set[str]) -> dict[str, tuple[Option, list[str]]]:
    """Every registered decoder option: its schema (from the first decoder declaring it) and owners.
    One named like a flag of the command itself (``own_flags``) is only settable in a recipe."""
    registry = get_registry()
    found: dict[str, tuple[Option, list[str]]] = {}
    for name in registry.names("decoder"):
        for key, option in getattr(registry.get("decoder", name), "options", {}).items():
            if key not in own_flags:
                found.setdefault(key, (option, []))[1].append(name)
    return found


def _parse_as(option: Option):
    """An argparse ``type`` for the option's first accepted type (mappings and lists as YAML)."""
    types = option.types()
    kind = types[0] if types else str
    if kind in (int, float, str):
        return kind

    def parse(text: str):
        return yaml.safe_load(text)
    return parse


class StrategyFlagsParser(argparse.ArgumentParser):
    """Adds the registered decoders' option flags only when its command is the one being parsed,
    so the other commands never load plugins to build their parsers."""

    own_flags: set[str] = set()
    strategy_flags_added = False

    def parse_known_args(self, args=None, namespace=None):
        if not self.strategy_flags_added:
            self.strategy_flags_added = True
            with warnings.catch_warnings():  # plugins load here, before main() sets its warning format
                if os.environ.get("SEQKIT_DEBUG", "") in ("", "0"):
                    warnings.showwarning = one_line_warning
                _add_strategy_flags(self)
        return super().parse_known_args(args, namespace)


def use_strategy_flags(parser: argparse.ArgumentParser, own_flags: set[str]) -> None:
    """Give a command's ``parser`` every registered decoder option as a flag, added when it parses.
    ``own_flags``: the command's own flags (as keys: ``input_file``), which no option may shadow."""
    parser.__class__ = StrategyFlagsParser
    parser.own_flags = set(own_flags)


def _add_strategy_flags(p: StrategyFlagsParser) -> None:
    group = p.add_argument_group("strategy options (in brackets: the strategies they apply to)")
    for key, (option, owners) in _decoder_options(p.own_flags).items():
        help_text = f"{option.help} [{', '.join(owners)}]".strip()
        if bool in option.types():
            group.add_argument(flag(key), dest=f"option_{key}", default=argparse.SUPPRESS,
                               action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(flag(key), dest=f"option_{key}", default=argparse.SUPPRESS,
                               type=_parse_as(option), choices=option.choices,
                               metavar=key.upper(), help=help_text)
