"""``unigram``: the unigram language model of SentencePiece, byte-level, trained with Hugging Face
``tokenizers``.

Training starts from many candidate pieces and prunes, by ``shrinking_factor`` a round, those
whose removal costs the training text's likelihood least, until ``vocab_size`` ids remain (the
task's specials and the 256 bytes included); a text is read as its most likely pieces. What
byte-level means and what it keeps: ``_hf.py``. Needs the optional extra ``seqkit[subword]``.
"""
from __future__ import annotations

import seqkit

from ._hf import ByteLevel


class Unigram(ByteLevel):
    """Byte-level unigram language model (SentencePiece's, in Hugging Face tokenizers)."""

    options = {
        "vocab_size": seqkit.Option(8000, min=256, help="ids at most, the 256 bytes and the specials included"),
        "max_piece_length": seqkit.Option(16, min=1, help="no piece longer than this many characters"),
        "shrinking_factor": seqkit.Option(0.75, min=0.01, max=0.99,
                                          help="the share of pieces each pruning round keeps"),
        "n_sub_iterations": seqkit.Option(2, min=1, help="EM iterations between pruning rounds"),
        **ByteLevel.common_options,
    }

    def _model_and_trainer(self, hf, alphabet: list[str]):
        trainer = hf.trainers.UnigramTrainer(vocab_size=self.config["vocab_size"],
                                             max_piece_length=self.config["max_piece_length"],
                                             shrinking_factor=self.config["shrinking_factor"],
                                             n_sub_iterations=self.config["n_sub_iterations"],
                                             special_tokens=list(self.specials), initial_alphabet=alphabet,
                                             show_progress=False)
        return hf.models.Unigram(), trainer


@seqkit.hookimpl
def register_tokenizers(register):
    register("unigram", Unigram)
