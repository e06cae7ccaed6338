"""``whitespace``: the words of a text, split on whitespace (``str.split()``), are its tokens.

The ids are those of translation's ``space`` tokens (``Vocabulary.build`` in
``plugins/tasks/common/vocabulary.py``): the task's specials first, then the training words, most
frequent first, ties in code point order. Every word outside the vocabulary reads as ``<unk>``:
where the task's specials lack it, ``<unk>`` is added right after them (id ``len(specials)``),
so that an unseen word, or one that ``min_frequency`` or ``vocab_size`` left out, is never lost.
``decode`` joins the words with single spaces, so whitespace itself is not kept.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

import seqkit
from seqkit.contracts.tokenizer import id_list
from seqkit.plugins.tokenizers._symbols import checked_symbols

UNKNOWN = "<unk>"


class Whitespace(seqkit.Tokenizer):
    """Whitespace-separated words as tokens, most frequent first after the specials."""

    options = {
        "lowercase": seqkit.Option(False, help="lowercase every text before reading it"),
        "min_frequency": seqkit.Option(1, min=1, help="keep only words seen at least this often in training"),
        "vocab_size": seqkit.Option(0, min=0, help="at most this many ids, the specials and <unk> "
                                                   "included: the most frequent words (0: every word)"),
    }

    def __init__(self, specials: tuple[str, ...] = (), **options):
        super().__init__(specials, **options)
        self.symbols: list[str] | None = None
        self.index: dict[str, int] = {}

    @property
    def _leading(self) -> tuple[str, ...]:
        return self.specials if UNKNOWN in self.specials else (*self.specials, UNKNOWN)

    def _words(self, text: str) -> list[str]:
        return (text.lower() if self.config["lowercase"] else text).split()

    def train(self, texts: Iterable[str], progress: Callable[[int], None] | None = None) -> None:
        """Count the words of each chunk; a word cut by the end of a chunk is joined to the start
        of the next, so that chunks may end anywhere."""
        counts: Counter = Counter()
        carry = ""  # the last word of the chunks so far, when it may go on in the next chunk
        for text in texts:
            if progress is not None:
                progress(len(text))
            if not text:
                continue
            words = self._words(text)
            if carry and words and not text[0].isspace():
                words[0] = carry + words[0]
            elif carry:
                counts[carry] += 1
            carry = words.pop() if words and not text[-1].isspace() else ""
            counts.update(words)
        if carry:
            counts[carry] += 1
        leading = self._leading
        least = self.config["min_frequency"]
        words = sorted((w for w, n in counts.items() if n >= least and w not in leading),
                       key=lambda w: (-counts[w], w))
        if self.config["vocab_size"]:
            if self.config["vocab_size"] <= len(leading):
                raise seqkit.SeqkitError(f"vocab_size: {self.config['vocab_size']} leaves no id for a word "
                                         f"beside the {len(leading)} special symbols {list(leading)}")
            words = words[:self.config["vocab_size"] - len(leading)]
        self._set_symbols([*leading, *words])

    def _set_symbols(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.index = {s: i for i, s in enumerate(symbols)}

    def _trained(self) -> list[str]:
        if self.symbols is None:
            raise seqkit.SeqkitError("the whitespace tokenizer is not trained: train() or load_state_dict() first")
        return self.symbols

    @property
    def vocab_size(self) -> int:
        return len(self._trained())

    @property
    def unknown_id(self) -> int:
        return self._leading.index(UNKNOWN)

    def encode(self, text: str) -> np.ndarray:
        self._trained()
        get, unknown = self.index.get, self.unknown_id
        return np.array([get(w, unknown) for w in self._words(text)], dtype=np.int64)

    def decode(self, ids) -> str:
        symbols, skip, unknown = self._trained(), len(self.specials), self.unknown_id
        return " ".join(symbols[i] for i in id_list(ids) if i >= skip or i == unknown)

    def read(self, texts: list[str]) -> tuple[list[str], str | None]:
        """Each text's words joined by single spaces (lowercased if asked), and one line naming
        the words never seen in training, which read as ``<unk>``."""
        self._trained()
        words = [self._words(text) for text in texts]
        unseen = list(dict.fromkeys(w for ws in words for w in ws if w not in self.index))
        note = None
        if unseen:
            more = f" and {len(unseen) - 10} more" if len(unseen) > 10 else ""
            note = (f"words not in the vocabulary read as {UNKNOWN!r}: "
                    f"{', '.join(map(repr, unseen[:10]))}{more}")
        return [" ".join(ws) for ws in words], note

    def state_dict(self) -> dict:
        return {"symbols": list(self._trained())}

    def load_state_dict(self, state: dict) -> None:
        self._set_symbols(checked_symbols("whitespace", state, self._leading))


@seqkit.hookimpl
def register_tokenizers(register):
    register("whitespace", Whitespace)
