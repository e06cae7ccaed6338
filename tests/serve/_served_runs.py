"""Tiny runs of each task for the server's tests (a char LM, a translator with attention, a tagger),
trained in-process in a few seconds."""
from __future__ import annotations

import json
from pathlib import Path

from _tagging_runs import tagging_recipe
from _translation_runs import cache_folder, translation_recipe

import seqkit

CHAR_LM = {
    "task": "char_lm", "seed": 0, "device": "cpu",
    "data": {"dataset": "text", "val_fraction": 0.2},
    "model": {"cell": "lstm", "hidden_size": 16, "layers": 2, "embedding_size": 8},
    "train": {"steps": 6, "batch_size": 4, "window": 16, "lr": 0.01, "eval_every": 3, "log_every": 2,
              "sample_chars": 0},
    "decode": {"strategy": "beam", "beam_size": 3, "length": 12, "prompt": "the "},
}


def train_served_runs(root: Path, subword: bool = False) -> dict[str, Path]:
    """name -> path: ``char_lm``, ``translation`` (general attention) and ``tagger``, under ``root``;
    with ``subword``, ``subword_lm`` too: the char LM on byte-level BPE tokens."""
    corpus = root / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 30 + "a stitch in time. " * 30)
    recipe = json.loads(json.dumps(CHAR_LM))
    recipe["data"]["path"] = str(corpus)
    for name in ("pairs", "conll"):
        (root / name).mkdir()
    with cache_folder(root / "cache"):
        seqkit.train(recipe, output=root / "char_lm")
        seqkit.train(translation_recipe(root / "pairs", root / "translation", "train.steps=12",
                                        "model.attention=general"))
        seqkit.train(tagging_recipe(root / "conll", root / "tagger", "train.steps=6", "train.eval_every=3"))
        runs = {"char_lm": root / "char_lm", "translation": root / "translation", "tagger": root / "tagger"}
        if subword:
            recipe["data"]["tokenizer"] = {"name": "bpe", "vocab_size": 300}
            seqkit.train(recipe, output=root / "subword_lm")
            runs["subword_lm"] = root / "subword_lm"
    return runs
