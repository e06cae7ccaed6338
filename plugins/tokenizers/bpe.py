"""``bpe``: byte-pair encoding, byte-level, trained with Hugging Face ``tokenizers``.

Training starts from the 256 bytes and merges the most frequent adjacent pair of pieces into a new
piece until the vocabulary holds ``vocab_size`` ids (the task's specials included), or no pair
occurs ``min_frequency`` times. What byte-level means and what it keeps: ``_hf.py``. Needs the
optional extra ``seqkit[subword]``.
"""
from __future__ import annotations

import seqkit

from ._hf import ByteLevel


class BPE(ByteLevel):
    """Byte-level byte-pair encoding (Hugging Face tokenizers): merges of frequent pairs of bytes."""

    options = {
        "vocab_size": seqkit.Option(8000, min=256, help="ids at most, the 256 bytes and the specials included"),
        "min_frequency": seqkit.Option(2, min=1, help="merge only pairs seen at least this often in training"),
        "max_token_length": seqkit.Option(0, min=0, help="no piece longer than this many characters "
                                                         "(0: no limit)"),
        **ByteLevel.common_options,
    }

    def _model_and_trainer(self, hf, alphabet: list[str]):
        trainer = hf.trainers.BpeTrainer(vocab_size=self.config["vocab_size"],
                                         min_frequency=self.config["min_frequency"],
                                         max_token_length=self.config["max_token_length"] or None,
                                         special_tokens=list(self.specials), initial_alphabet=alphabet,
                                         show_progress=False)
        return hf.models.BPE(), trainer


@seqkit.hookimpl
def register_tokenizers(register):
    register("bpe", BPE)
