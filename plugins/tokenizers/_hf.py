"""What ``bpe`` and ``unigram`` share: byte-level subword tokenizers of Hugging Face ``tokenizers``
(Apache-2.0; the optional extra ``seqkit[subword]``).

Byte-level: a text is read as its UTF-8 bytes, each byte a symbol of a 256-symbol alphabet that is
always in the vocabulary (the ``ByteLevel`` pre-tokenizer and decoder), so no input is ever
unknown and ``decode(encode(text)) == text`` for any text (unless ``lowercase``; with
``add_prefix_space`` the decoded text starts with a space). Before the model learns its pieces,
the text is split into words and the whitespace between them (GPT-2's rule); a piece never crosses
such a split. The task's specials are the trainer's special tokens, at ids 0, 1, ...; they are
never read from a text, where ``<s>`` is three characters like any others.

A trained tokenizer is kept as its JSON (``Tokenizer.to_str()``), a string.
"""
from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator

import numpy as np

import seqkit
from seqkit.contracts.tokenizer import id_list
from seqkit.errors import MissingPackage

INSTALL = 'pip install -e ".[subword]"'
PIECE = 4096  # characters: what the trainer is given at a time, a chunk cut at line ends
ENCODE_PIECE = 1 << 16  # characters: a long text is encoded in pieces of about this size, in parallel
# Where a text can be cut without changing how it is encoded: after a line end between two
# non-blank characters, which the pre-tokenizer splits there anyway.
_SAFE_CUT = re.compile(r"\S\n(?=\S)")


def hf_tokenizers():
    """The ``tokenizers`` package, or MissingPackage saying how to install it."""
    try:
        import tokenizers  # an optional extra (seqkit[subword]): imported where it is used
    except ImportError:
        raise MissingPackage(f"the byte-level subword tokenizers need the tokenizers package, which is "
                             f"not installed: {INSTALL}", "tokenizers", INSTALL) from None
    return tokenizers


def training_pieces(texts: Iterable[str], progress: Callable[[int], None] | None) -> Iterator[str]:
    """Each chunk of ``texts`` cut after line ends into pieces of about ``PIECE`` characters (the
    trainer's iterator is quickest on those), calling ``progress`` once a chunk is handed over."""
    for text in texts:
        start = 0
        while len(text) - start > PIECE:
            cut = text.find("\n", start + PIECE, start + 16 * PIECE) + 1
            if not cut:
                cut = text.find(" ", start + PIECE, start + 16 * PIECE) + 1 or start + 16 * PIECE
            yield text[start:cut]
            start = cut
        if start < len(text):
            yield text[start:]
        if progress is not None:
            progress(len(text))


def encoding_pieces(text: str, size: int = ENCODE_PIECE) -> list[str]:
    """``text`` cut where cutting changes no id (``_SAFE_CUT``), into pieces of about ``size``."""
    pieces, start = [], 0
    while len(text) - start > size:
        found = _SAFE_CUT.search(text, start + size)
        if found is None:
            break
        pieces.append(text[start:found.end()])
        start = found.end()
    pieces.append(text[start:])
    return pieces


class ByteLevel(seqkit.Tokenizer):
    """A byte-level subword tokenizer of Hugging Face ``tokenizers``; subclasses give the model
    and its trainer."""

    packages = {"tokenizers": INSTALL}
    common_options = {
        "lowercase": seqkit.Option(False, help="lowercase every text before reading it"),
        "add_prefix_space": seqkit.Option(False, help="read a space before every text, so that its first word "
                                                      "is split as one after a space (decoded texts then "
                                                      "start with it)"),
    }

    def __init__(self, specials: tuple[str, ...] = (), **options):
        super().__init__(specials, **options)
        self._tokenizer = None

    @abstractmethod
    def _model_and_trainer(self, hf, alphabet: list[str]):
        """The untrained model and its trainer, with ``self.specials`` as special tokens."""

    def train(self, texts: Iterable[str], progress: Callable[[int], None] | None = None) -> None:
        hf = hf_tokenizers()
        size = self.config["vocab_size"]
        if size < 256 + len(self.specials):
            raise seqkit.SeqkitError(f"vocab_size: {size} is below the 256 bytes and {len(self.specials)} "
                                     f"special symbols it must hold; ask for at least {256 + len(self.specials)}")
        alphabet = hf.pre_tokenizers.ByteLevel.alphabet()
        model, trainer = self._model_and_trainer(hf, alphabet)
        tokenizer = hf.Tokenizer(model)
        if self.config["lowercase"]:
            tokenizer.normalizer = hf.normalizers.Lowercase()
        tokenizer.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=self.config["add_prefix_space"],
                                                              use_regex=True)
        tokenizer.decoder = hf.decoders.ByteLevel()
        tokenizer.encode_special_tokens = True  # "<s>" in a training text is text
        tokenizer.train_from_iterator(training_pieces(texts, progress), trainer)
        self._take(tokenizer)

    def _take(self, tokenizer) -> None:
        tokenizer.encode_special_tokens = True  # not saved in its JSON
        found = [tokenizer.id_to_token(i) for i in range(len(self.specials))]
        if found != list(self.specials):
            raise seqkit.SeqkitError(f"a {type(self).__name__.lower()} tokenizer starts with the specials "
                                     f"{list(self.specials)}; this one starts with {found}")
        self._tokenizer = tokenizer

    def _trained(self):
        if self._tokenizer is None:
            raise seqkit.SeqkitError(f"the {type(self).__name__.lower()} tokenizer is not trained: train() or "
                                     f"load_state_dict() first")
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self._trained().get_vocab_size()

    def _encode_many(self, texts: list[str]) -> list[list[int]]:
        tokenizer = self._trained()
        fast = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # 0.21+: no offsets
        return [encoding.ids for encoding in fast(texts, add_special_tokens=False)]

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``; a long one in pieces encoded in parallel, with the same ids."""
        pieces = [text] if self.config["add_prefix_space"] else encoding_pieces(text)
        ids = self._encode_many(pieces)
        return np.concatenate([np.array(piece, dtype=np.int64) for piece in ids])

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.array(ids, dtype=np.int64) for ids in self._encode_many(list(texts))]

    def decode(self, ids) -> str:
        skip, unknown = len(self.specials), self.unknown_id
        kept = [i for i in id_list(ids) if i >= skip or i == unknown]
        return self._trained().decode(kept, skip_special_tokens=False)

    def read(self, texts: list[str]) -> tuple[list[str], str | None]:
        """Each text as its ids decode (lowercased with ``lowercase``); nothing is ever unknown."""
        read = [self.decode(ids) for ids in self.encode_batch(texts)]
        changed = [what for what, on in (("lowercased", self.config["lowercase"]),
                                         ("read after a space", self.config["add_prefix_space"])) if on]
        return read, ("; ".join(changed) if changed and read != list(texts) else None)

    def state_dict(self) -> dict:
        """``{"json": ...}``: the trained tokenizer as Hugging Face saves it, a str."""
        return {"json": self._trained().to_str()}

    def load_state_dict(self, state: dict) -> None:
        self._take(hf_tokenizers().Tokenizer.from_str(state["json"]))
