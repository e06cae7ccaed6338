"""The one vocabulary convention of the tasks: tokens (characters, words, phones) <-> ids.

Ids start with the special symbols the task asks for, in its order, then the training tokens, most
frequent first (ties in code point order):

* tagging and translation: padding ``<pad>`` 0 and unknown ``<unk>`` 1, then a translator's target
  adds its start ``<s>`` 2 and end ``</s>`` 3;
* char_lm: the unknown symbol U+FFFD at 0 (``data.unknown: map``) or no special at all (``drop``);
  it counts each character once, so its characters follow in code point order.

The unknown symbol, one of the specials, is what every token outside the vocabulary reads as; a
vocabulary without one (char_lm's ``drop``) removes such characters from a text instead.

Checkpoints hold a vocabulary as its list of symbols (``state_dict``; tagging, translation) or, for
char_lm, as ``{"symbols", "lowercase", "unknown": "map" | "drop"}`` (``char_lm.data``), as they
always have: the ids of every run stay what they were.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

PADDING, UNKNOWN = "<pad>", "<unk>"
PADDING_ID, UNKNOWN_ID = 0, 1  # UNKNOWN_ID: what every token never seen in training reads as
UNKNOWN_CHAR = "\ufffd"  # char_lm's unknown symbol: the Unicode replacement character


class Vocabulary:
    """Tokens <-> ids: ``symbols[i]`` is the token of id i, and ``specials`` its first ids.

    ``unknown`` (one of the specials, or None) is what a token outside the vocabulary reads as;
    with None, ``normalize`` removes such characters from a text (whitespace becomes a space where
    the vocabulary has one, so that words on two lines stay two words). ``lowercase``: a text is
    lowercased before it is read.
    """

    def __init__(self, symbols: list[str], specials: tuple[str, ...] = (PADDING, UNKNOWN),
                 unknown: str | None = UNKNOWN, lowercase: bool = False):
        if tuple(symbols[:len(specials)]) != tuple(specials) or (unknown is not None and unknown not in specials):
            raise ValueError(f"a vocabulary starts with its specials {specials}, unknown among them; "
                             f"got {symbols[:len(specials)]} and unknown {unknown!r}")
        self.symbols = list(symbols)
        self.specials = tuple(specials)
        self.unknown = unknown
        self.lowercase = lowercase
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.unknown_id = None if unknown is None else self.index[unknown]

    @classmethod
    def build(cls, counts: Mapping[str, int], specials: tuple[str, ...] = (PADDING, UNKNOWN),
              unknown: str | None = UNKNOWN, lowercase: bool = False) -> Vocabulary:
        """``specials``, then the tokens of ``counts``, most frequent first (ties in code point order)."""
        ordered = sorted(counts, key=lambda s: (-counts[s], s))
        return cls(list(specials) + [s for s in ordered if s not in specials], specials, unknown, lowercase)

    def __len__(self) -> int:
        return len(self.symbols)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        """The ids of a sequence of tokens (words, phones)."""
        get, unknown = self.index.get, self.unknown_id
        return [get(t, unknown) for t in tokens]

    def normalize(self, text: str) -> str:
        """A text as it is read: lowercased if asked; without an unknown symbol, whitespace outside
        the vocabulary becomes a space and other characters outside it are removed."""
        if self.lowercase:
            text = text.lower()
        if self.unknown is None:
            space = " " if " " in self.index else ""
            text = "".join(c if c in self.index else space if c.isspace() else "" for c in text)
        return text

    def read(self, texts: list[str]) -> tuple[list[str], str | None]:
        """Each text as the model reads it: normalized, and every character outside the vocabulary
        shown as the unknown symbol (``encode`` maps them there too). Also one line naming those
        characters, each once, or None when every character is known."""
        outside = {}
        for text in texts:
            normalized = text.lower() if self.lowercase else text
            outside.update(dict.fromkeys(c for c in normalized if c not in self.index))
        if not outside:
            return [self.normalize(text) for text in texts], None
        listed = ", ".join(map(repr, outside))
        if self.unknown is None:
            spaced = " (whitespace read as a space)" if any(c.isspace() for c in outside) else ""
            return ([self.normalize(text) for text in texts],
                    f"characters not in the vocabulary dropped{spaced}: {listed}")
        read = ["".join(self.unknown if c in outside else c for c in self.normalize(text)) for text in texts]
        return read, f"characters not in the vocabulary replaced by {self.unknown!r}: {listed}"

    def encode(self, text: str) -> torch.Tensor:
        """(characters,) int64: the id of every character of the normalized text, looked up
        without a Python loop over the characters."""
        codes = np.frombuffer(self.normalize(text).encode("utf-32-le"), dtype=np.uint32)
        known = np.array(sorted(ord(s) for s in self.symbols[len(self.specials):] if len(s) == 1),
                         dtype=np.uint32)
        ids = np.array([self.index[chr(c)] for c in known], dtype=np.int64)
        where = np.searchsorted(known, codes).clip(max=max(len(known) - 1, 0))
        found = known[where] == codes if len(known) else np.zeros(len(codes), bool)
        # normalize has removed every character outside a vocabulary without an unknown symbol
        unknown = 0 if self.unknown_id is None else self.unknown_id
        return torch.from_numpy(np.where(found, ids[where] if len(known) else 0, unknown))

    def decode(self, ids) -> str:
        """The text of a sequence of character ids."""
        return "".join(self.symbols[int(i)] for i in ids)

    def state_dict(self) -> list[str]:
        return list(self.symbols)

    @classmethod
    def from_state_dict(cls, state: list[str], specials: tuple[str, ...] = (PADDING, UNKNOWN)) -> Vocabulary:
        """A vocabulary stored as its list of symbols, whose first ids are ``specials``."""
        return cls(state, specials)
