"""``char``: every character of the training text is a token, in code point order.

The ids are char_lm's (``plugins/tasks/char_lm/data.py``), so that its runs and checkpoints keep
their ids: the task's specials first, then the unknown symbol where the task asked for none
(U+FFFD, with ``unknown: map``), then the characters of the training text (lowercased with
``lowercase``, only those in ``alphabet`` when it is given) in code point order. A character
outside the vocabulary reads as the unknown symbol (``map``: ``<unk>`` where the task's specials
hold it, else U+FFFD), or is removed (``drop``; whitespace then becomes a space where the
vocabulary has one, so that words on two lines stay two words).

Its ``state_dict()`` without specials is char_lm's checkpoint format, ``{"symbols", "lowercase",
"unknown"}``. Encoding looks every code point up in a table of all 0x110000 of them (8.9 MB, built
once per vocabulary), hundreds of MB of text a second.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import numpy as np

import seqkit
from seqkit.contracts.tokenizer import id_list
from seqkit.plugins.tokenizers._symbols import checked_symbols

UNKNOWN_CHAR = "\ufffd"  # the unknown symbol where the task asks for none: the replacement character
CODE_POINTS = 0x110000
BLOCK = 1 << 18  # characters encoded at a time


def _blocks(text: str):
    """``text`` in slices of ``BLOCK`` characters (their code points stay in the processor's cache)."""
    return (text[start:start + BLOCK] for start in range(0, len(text), BLOCK))


def _code_points(block: str) -> np.ndarray:
    """The code points of ``block``: uint8 when it is ASCII (a copy of its bytes; CPython knows
    it without a scan), else uint32."""
    if block.isascii():
        return np.frombuffer(block.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(block.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _mark_present(block: str, present: np.ndarray) -> None:
    """Set ``present`` at the code points of ``block``. Counting 8- or 16-bit code units (a block
    without characters beyond U+FFFF, most of them) is twice as fast as scattering code points."""
    if block.isascii():
        present[:128] |= np.bincount(np.frombuffer(block.encode("ascii"), dtype=np.uint8), minlength=128) > 0
        return
    units = np.frombuffer(block.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    counts = np.bincount(units, minlength=1 << 16)
    if counts[0xD800:0xE000].any():  # a character beyond U+FFFF (a surrogate pair): its code point
        present[_code_points(block)] = True
    else:
        present[:1 << 16] |= counts > 0


@functools.cache
def _whitespace() -> np.ndarray:
    """The code points ``str.isspace`` calls whitespace (found once: 0.2 s)."""
    return np.array([c for c in range(CODE_POINTS) if chr(c).isspace()], dtype=np.int64)


class Char(seqkit.Tokenizer):
    """Characters as tokens, in code point order after the specials (char_lm's ids)."""

    options = {
        "lowercase": seqkit.Option(False, help="lowercase every text before reading it"),
        "alphabet": seqkit.Option("", help="keep only these characters (empty: every character of "
                                           "the training text)"),
        "unknown": seqkit.Option("map", choices=("map", "drop"),
                                 help="a character outside the vocabulary: map it to the unknown symbol, "
                                      "or drop it (whitespace becomes a space)"),
    }

    def __init__(self, specials: tuple[str, ...] = (), **options):
        super().__init__(specials, **options)
        self._set_symbols(None)

    # -- vocabulary ----------------------------------------------------------------------------
    @property
    def unknown_symbol(self) -> str | None:
        """What a character outside the vocabulary reads as, or None (``unknown: drop``)."""
        if self.config["unknown"] == "drop":
            return None
        return "<unk>" if "<unk>" in self.specials else UNKNOWN_CHAR

    @property
    def _leading(self) -> tuple[str, ...]:
        """The symbols before the characters: the specials, and U+FFFD where it is the unknown."""
        unknown = self.unknown_symbol
        return self.specials + ((unknown,) if unknown is not None and unknown not in self.specials else ())

    def train(self, texts: Iterable[str], progress: Callable[[int], None] | None = None) -> None:
        """Every distinct character of ``texts``, the union of each chunk's set."""
        lowercase, present = self.config["lowercase"], np.zeros(CODE_POINTS, dtype=bool)
        for text in texts:
            for block in _blocks(text.lower() if lowercase else text):
                _mark_present(block, present)
            if progress is not None:
                progress(len(text))
        seen = set(map(chr, np.flatnonzero(present)))
        if self.config["unknown"] == "drop" and any(c.isspace() for c in seen):
            seen.add(" ")  # other whitespace will be written as a space
        alphabet = self.config["alphabet"]
        if alphabet:
            seen &= set(alphabet.lower() if lowercase else alphabet)
        if not seen:
            raise seqkit.SeqkitError("data: no characters of the alphabet occur in the training text")
        leading = self._leading
        self._set_symbols(list(leading) + sorted(seen - {UNKNOWN_CHAR} - set(leading)))

    def _set_symbols(self, symbols: list[str] | None) -> None:
        self.symbols = symbols
        self.index = {} if symbols is None else {s: i for i, s in enumerate(symbols)}
        self._table = None  # code point -> id, built on first use

    @property
    def vocab_size(self) -> int:
        return len(self._trained())

    @property
    def unknown_id(self) -> int | None:
        unknown = self.unknown_symbol
        return None if unknown is None else self.index.get(unknown, self._leading.index(unknown))

    def _trained(self) -> list[str]:
        if self.symbols is None:
            raise seqkit.SeqkitError("the char tokenizer is not trained: train() or load_state_dict() first")
        return self.symbols

    def _lookup(self) -> np.ndarray:
        """The id of every code point: its character's, else the unknown id (``map``), else the
        space's for whitespace, -1 for the rest (``drop``)."""
        if self._table is None:
            symbols, first = self._trained(), len(self._leading)
            unknown = self.unknown_id
            table = np.full(CODE_POINTS, -1 if unknown is None else unknown, dtype=np.int64)
            if unknown is None and " " in self.index:
                table[_whitespace()] = self.index[" "]
            characters = [(ord(s), i) for i, s in enumerate(symbols[first:], first) if len(s) == 1]
            if characters:
                codes, ids = np.array(characters, dtype=np.int64).T
                table[codes] = ids
            self._table = table
        return self._table

    # -- text <-> ids --------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """The id of every character, looked up without a Python loop over them, ``BLOCK``
        characters at a time (the code points of a block stay in the processor's cache)."""
        if self.config["lowercase"]:
            text = text.lower()
        table, ids = self._lookup(), np.empty(len(text), dtype=np.int64)
        ascii_table = table[:128]  # most blocks of most texts: one byte per character, a small table
        for start, block in zip(range(0, len(text), BLOCK), _blocks(text)):
            codes = _code_points(block)
            np.take(ascii_table if codes.dtype == np.uint8 else table, codes, out=ids[start:start + len(codes)])
        return ids[ids >= 0] if self.unknown_symbol is None else ids

    def decode(self, ids) -> str:
        symbols, skip = self._trained(), len(self.specials)
        unknown = self.unknown_id
        return "".join(symbols[i] for i in id_list(ids) if i >= skip or i == unknown)

    def normalize(self, text: str) -> str:
        """A text as it is read: lowercased if asked; with ``unknown: drop``, whitespace outside
        the vocabulary becomes a space and other characters outside it are removed."""
        if self.config["lowercase"]:
            text = text.lower()
        if self.unknown_symbol is None:
            index = self.index
            space = " " if " " in index else ""
            text = "".join(c if c in index else space if c.isspace() else "" for c in text)
        return text

    def read(self, texts: list[str]) -> tuple[list[str], str | None]:
        """Each text normalized, every character outside the vocabulary shown as the unknown
        symbol; and one line naming those characters, each once, or None when all are known."""
        index, outside = self.index, {}
        for text in texts:
            normalized = text.lower() if self.config["lowercase"] else text
            outside.update(dict.fromkeys(c for c in normalized if c not in index))
        if not outside:
            return [self.normalize(text) for text in texts], None
        listed = ", ".join(map(repr, outside))
        unknown = self.unknown_symbol
        if unknown is None:
            spaced = " (whitespace read as a space)" if any(c.isspace() for c in outside) else ""
            return ([self.normalize(text) for text in texts],
                    f"characters not in the vocabulary dropped{spaced}: {listed}")
        read = ["".join(unknown if c in outside else c for c in self.normalize(text)) for text in texts]
        return read, f"characters not in the vocabulary replaced by {unknown!r}: {listed}"

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """char_lm's vocabulary format: ``{"symbols", "lowercase", "unknown": "map" | "drop"}``."""
        return {"symbols": list(self._trained()), "lowercase": self.config["lowercase"],
                "unknown": self.config["unknown"]}

    def load_state_dict(self, state: dict) -> None:
        self.config = {**self.config, "lowercase": bool(state["lowercase"]), "unknown": state["unknown"]}
        self._set_symbols(checked_symbols("char", state, self._leading))


@seqkit.hookimpl
def register_tokenizers(register):
    register("char", Char)
