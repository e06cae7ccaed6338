"""The base class of tokenizers: text <-> token ids, learned from the training text.

A tokenizer is registered by the ``register_tokenizers`` hook and chosen in a recipe by a mapping
such as ``data.tokenizer: {name: bpe, vocab_size: 8000}`` (or a bare name, ``char``), whose keys
beside ``name`` are its ``options``. A task builds it (``seqkit.tokenization.build_tokenizer``)
with the special symbols it needs, trains it once on its training text, and keeps its
``state_dict()`` in checkpoints and exports, so that ``seqkit eval`` and ``seqkit decode`` read
text with exactly the ids the run trained on.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

import numpy as np

from seqkit.options import Option


class Tokenizer(ABC):
    """Text <-> ids. ``Tokenizer(specials, **options)`` is untrained; ``train`` or
    ``load_state_dict`` gives it its vocabulary.

    ``specials`` are the special symbols the task asks for (tagging and translation
    ``("<pad>", "<unk>")``, a translator's target adds ``"<s>", "</s>"``, char_lm none): they get
    the ids 0 to len(specials) - 1, in that order, and ``pad_id``, ``unknown_id``, ``start_id``
    and ``end_id`` name theirs (None for one that is absent). ``config`` holds the options,
    defaults filled in. A tokenizer needing an optional package names it in ``packages``
    (import name -> the command that installs it), so that validation reports it before any data
    is read; the tokenizer imports it inside its functions.
    """

    # the keys of the recipe's tokenizer mapping beside ``name``
    options: dict[str, Option] = {}
    # optional packages it imports: {"tokenizers": 'pip install -e ".[subword]"'}
    packages: dict[str, str] = {}

    def __init__(self, specials: tuple[str, ...] = (), **options):
        """Untrained, with the task's ``specials`` and this tokenizer's ``options`` (an option it
        does not declare is a TypeError; ``seqkit.tokenization.build_tokenizer`` validates a
        recipe's first, one line a problem)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"{type(self).__name__} takes no option {', '.join(unknown)}; "
                            f"it takes: {', '.join(self.options) or 'none'}")
        self.config = {key: options.get(key, option.default) for key, option in self.options.items()}
        self.specials = tuple(specials)

    @abstractmethod
    def train(self, texts: Iterable[str], progress: Callable[[int], None] | None = None) -> None:
        """Learn the vocabulary from ``texts``, the training text in chunks (each may be many MB),
        read once and never held together; call ``progress(n)`` with the ``n`` characters of each
        chunk as it is consumed."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """How many ids there are, the specials included: every id is below it."""

    def special_id(self, symbol: str) -> int | None:
        """The id of the special ``symbol`` the task asked for, or None."""
        return self.specials.index(symbol) if symbol in self.specials else None

    @property
    def pad_id(self) -> int | None:
        """The id of ``<pad>``, or None."""
        return self.special_id("<pad>")

    @property
    def unknown_id(self) -> int | None:
        """The id every token outside the vocabulary reads as (``<unk>``), or None when nothing
        can be unknown or unknown text is removed."""
        return self.special_id("<unk>")

    @property
    def start_id(self) -> int | None:
        """The id of ``<s>``, or None."""
        return self.special_id("<s>")

    @property
    def end_id(self) -> int | None:
        """The id of ``</s>``, or None."""
        return self.special_id("</s>")

    @abstractmethod
    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``, 1-D int64, without any special symbol added."""

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """``encode`` of each text (a tokenizer may encode them in parallel)."""
        return [self.encode(text) for text in texts]

    @abstractmethod
    def decode(self, ids) -> str:
        """The text of ``ids`` (ints, a 1-D tensor or array); special ids other than the unknown
        one are skipped."""

    def read(self, texts: list[str]) -> tuple[list[str], str | None]:
        """Each text as the model reads it (lowercased, unknown characters shown or removed), and
        one line saying what reading changed, or None."""
        return list(texts), None

    @abstractmethod
    def state_dict(self) -> dict:
        """The trained vocabulary, in plain types only (str, int, float, bool, None, list, dict,
        bytes), so that checkpoints load with ``torch.load(weights_only=True)``."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Take the vocabulary of ``state_dict()``: encode and decode as the trained one did."""


def id_list(ids) -> list[int]:
    """``ids`` (ints, a 1-D tensor or array) as a list of Python ints."""
    return ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]
