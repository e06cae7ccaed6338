"""Tokens (characters, words, phones) <-> ids, shared by the tasks that read token sequences.

Ids start with the special symbols (padding 0, unknown 1, and any a task adds, such as a
translator's start and end symbols), then the training tokens, most frequent first.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

PADDING, UNKNOWN = "<pad>", "<unk>"
PADDING_ID, UNKNOWN_ID = 0, 1  # UNKNOWN_ID: what every token never seen in training reads as


class Symbols:
    """Tokens <-> ids: ``symbols[i]`` is the token of id i."""

    def __init__(self, symbols: list[str]):
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, counts: Counter, specials: tuple[str, ...] = (PADDING, UNKNOWN)) -> Symbols:
        """``specials`` (padding and unknown first), then the tokens of ``counts``, most frequent
        first (ties in code point order)."""
        ordered = sorted(counts, key=lambda s: (-counts[s], s))
        return cls(list(specials) + [s for s in ordered if s not in specials])

    def __len__(self) -> int:
        return len(self.symbols)

    def ids(self, tokens) -> list[int]:
        get = self.index.get
        return [get(t, UNKNOWN_ID) for t in tokens]

    def char_ids(self, text: str) -> np.ndarray:
        """The ids of every character of ``text``, without a Python loop over the characters."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        known = np.array(sorted(ord(s) for s in self.symbols[2:] if len(s) == 1), dtype=np.uint32)
        ids = np.array([self.index[chr(c)] for c in known], dtype=np.int64)
        where = np.searchsorted(known, codes).clip(max=max(len(known) - 1, 0))
        found = known[where] == codes if len(known) else np.zeros(len(codes), bool)
        return np.where(found, ids[where] if len(known) else 0, UNKNOWN_ID)

    def state_dict(self) -> list[str]:
        return list(self.symbols)

    @classmethod
    def from_state_dict(cls, state: list[str]) -> Symbols:
        return cls(state)
