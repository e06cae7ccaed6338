"""A character vocabulary built from the training split, stored with the run."""
from __future__ import annotations

import torch

from seqkit.errors import SeqkitError

UNKNOWN = "\ufffd"  # the Unicode replacement character stands for every symbol not in the vocabulary


class Vocabulary:
    """Characters <-> ids. With ``unknown="map"`` id 0 is the unknown symbol; with ``"drop"``
    characters outside the vocabulary are removed from the text instead (the lecture's choice).
    """

    def __init__(self, symbols: list[str], lowercase: bool = False, unknown: str = "map"):
        if unknown not in ("map", "drop"):
            raise ValueError(f"unknown must be 'map' or 'drop', got {unknown!r}")
        self.symbols = list(symbols)
        self.lowercase = lowercase
        self.unknown = unknown
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, text: str, lowercase: bool = False, alphabet: str = "",
              unknown: str = "map") -> Vocabulary:
        """Every distinct character of ``text`` (after lowercasing), or only those in ``alphabet``."""
        if lowercase:
            text = text.lower()
        seen = set(text)
        if unknown == "drop" and any(c.isspace() for c in seen):
            seen.add(" ")  # other whitespace will be written as a space
        if alphabet:
            seen &= set(alphabet.lower() if lowercase else alphabet)
        if not seen:
            raise SeqkitError("data: no characters of the alphabet occur in the training text")
        symbols = sorted(seen - {UNKNOWN})
        if unknown == "map":
            symbols = [UNKNOWN] + symbols
        return cls(symbols, lowercase, unknown)

    def __len__(self) -> int:
        return len(self.symbols)

    def normalize(self, text: str) -> str:
        """Lowercase if asked. With ``unknown="drop"``, whitespace outside the vocabulary becomes a
        space (so words on two lines stay two words) and other unknown characters are removed."""
        if self.lowercase:
            text = text.lower()
        if self.unknown == "drop":
            space = " " if " " in self.index else ""
            text = "".join(c if c in self.index else space if c.isspace() else "" for c in text)
        return text

    def read(self, texts: list[str]) -> tuple[list[str], str | None]:
        """Each text as the model reads it: normalized, and with ``unknown="map"`` every character
        outside the vocabulary shown as the unknown symbol (``encode`` maps them there too). Also one
        line naming those characters, each once, or None when every character is known."""
        outside = {}
        for text in texts:
            normalized = text.lower() if self.lowercase else text
            outside.update(dict.fromkeys(c for c in normalized if c not in self.index))
        if not outside:
            return [self.normalize(text) for text in texts], None
        listed = ", ".join(map(repr, outside))
        if self.unknown == "drop":
            spaced = " (whitespace read as a space)" if any(c.isspace() for c in outside) else ""
            return ([self.normalize(text) for text in texts],
                    f"characters not in the vocabulary dropped{spaced}: {listed}")
        read = ["".join(UNKNOWN if c in outside else c for c in self.normalize(text)) for text in texts]
        return read, f"characters not in the vocabulary replaced by {UNKNOWN!r}: {listed}"

    def encode(self, text: str) -> torch.Tensor:
        """(len,) int64 ids of the normalized text."""
        text = self.normalize(text)
        if not text:
            return torch.zeros(0, dtype=torch.long)
        # bytes -> code points -> ids through a lookup table: no per-character Python call
        codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).long()
        table = torch.zeros(int(codes.max()) + 1 if len(codes) else 1, dtype=torch.long)
        for symbol, i in self.index.items():
            if ord(symbol) < len(table):
                table[ord(symbol)] = i
        return table[codes]

    def decode(self, ids) -> str:
        return "".join(self.symbols[int(i)] for i in ids)

    def state_dict(self) -> dict:
        return {"symbols": self.symbols, "lowercase": self.lowercase, "unknown": self.unknown}

    @classmethod
    def from_state_dict(cls, state: dict) -> Vocabulary:
        return cls(state["symbols"], state["lowercase"], state["unknown"])
