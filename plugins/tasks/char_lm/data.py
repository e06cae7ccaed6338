"""char_lm's vocabulary: the characters of the training split, stored with the run.

Ids follow ``common.vocabulary``: the unknown symbol U+FFFD at 0 (``data.unknown: map``; none with
``drop``), then every character of the training text in code point order.
"""
from __future__ import annotations

from collections import Counter

from seqkit.errors import SeqkitError
from seqkit.plugins.tasks.common.vocabulary import UNKNOWN_CHAR, Vocabulary


def build_vocabulary(text: str, lowercase: bool = False, alphabet: str = "", unknown: str = "map") -> Vocabulary:
    """Every distinct character of ``text`` (after lowercasing), or only those in ``alphabet``.
    With ``unknown="map"`` id 0 is the unknown symbol; with ``"drop"`` characters outside the
    vocabulary are removed from a text instead (the lecture's choice)."""
    if unknown not in ("map", "drop"):
        raise ValueError(f"unknown must be 'map' or 'drop', got {unknown!r}")
    if lowercase:
        text = text.lower()
    seen = set(text)
    if unknown == "drop" and any(c.isspace() for c in seen):
        seen.add(" ")  # other whitespace will be written as a space
    if alphabet:
        seen &= set(alphabet.lower() if lowercase else alphabet)
    if not seen:
        raise SeqkitError("data: no characters of the alphabet occur in the training text")
    specials = (UNKNOWN_CHAR,) if unknown == "map" else ()
    return Vocabulary.build(Counter(seen - {UNKNOWN_CHAR}), specials, specials[0] if specials else None, lowercase)


def vocabulary_state(vocab: Vocabulary) -> dict:
    """The vocabulary as char_lm's checkpoints hold it."""
    return {"symbols": list(vocab.symbols), "lowercase": vocab.lowercase,
            "unknown": "drop" if vocab.unknown is None else "map"}


def vocabulary_from_state(state: dict) -> Vocabulary:
    specials = (UNKNOWN_CHAR,) if state["unknown"] == "map" else ()
    return Vocabulary(state["symbols"], specials, specials[0] if specials else None, state["lowercase"])
