"""How problems and warnings name what a caller gave: Python keywords, a command's flags, JSON fields.

The same checks serve ``seqkit.Run.decode`` (``top_p: ...``), ``seqkit decode`` (``--top-p: ...``)
and a server, each naming the values the way its user typed them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    """``option`` names a strategy option (``beam_size`` or ``--beam-size``); the other fields name
    the strategy, the inputs, the split, and what to give instead."""

    option: Callable[[str], str] = str
    strategy: str = "strategy"
    strategy_hint: str = "strategy=NAME"
    inputs: str = "inputs"
    no_inputs: str = "inputs: give one or more texts (the run's recipe has no decode.prompt)"
    split: str = "split"
    file_hint: str = "file=PATH"

    def problem(self, text: str) -> str:
        """'decode.top_p: ...' -> 'top_p: ...' (or '--top-p: ...')."""
        key, sep, rest = text.partition(": ")
        return self.option(key[len("decode."):]) + sep + rest if key.startswith("decode.") else text


PYTHON = Naming()
