"""A small word-tagging corpus drawn from a grammar, and tiny tagging recipes over it."""
from __future__ import annotations

import json
import random
from pathlib import Path

from seqkit.recipe import apply_overrides, resolve
from seqkit.registry import get_registry

DETERMINERS, NOUNS, VERBS = ["the", "a"], ["dog", "cat", "man", "house", "tree"], ["sees", "eats", "likes"]
NAMES = {"Anna": "PER", "Bob": "PER", "Paris": "LOC", "Rome": "LOC"}


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    """(word, BIO tag) pairs: subject, verb, object; a name is a one- or two-word span."""
    words = []
    for part in ("np", "verb", "np"):
        if part == "verb":
            words.append((rng.choice(VERBS), "O"))
        elif rng.random() < 0.4:
            name = rng.choice(list(NAMES))
            words.append((name, f"B-{NAMES[name]}"))
            if rng.random() < 0.3:
                words.append((rng.choice(["Smith", "City"]), f"I-{NAMES[name]}"))
        else:  # now and then a rare noun, seen once in training or never
            noun = rng.choice(NOUNS) if rng.random() < 0.85 else f"thing{rng.randint(0, 999)}"
            words += [(rng.choice(DETERMINERS), "O"), (noun, "O")]
    return words


def write_conll(path: Path, sentences: int, seed: int) -> Path:
    rng = random.Random(seed)
    blocks = ["\n".join(f"{w} X {t}" for w, t in sentence(rng)) for _ in range(sentences)]
    path.write_text("-DOCSTART- -X- O\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


TINY_TAGGER = {
    "task": "tagging",
    "seed": 2,
    "device": "cpu",
    "data": {"dataset": "conll"},
    "model": {"cell": "lstm", "hidden_size": 8, "embedding_size": 6},
    "train": {"steps": 12, "batch_size": 8, "lr": 0.02, "eval_every": 6, "log_every": 3},
}


def tagging_recipe(folder: Path, output: Path, *overrides: str) -> dict:
    """A resolved tiny recipe on train/dev/test files written into ``folder`` (once)."""
    paths = {split: folder / f"{split}.conll" for split in ("train", "dev", "test")}
    for (_, path), (count, seed) in zip(paths.items(), ((120, 0), (30, 1), (30, 2))):
        if not path.exists():
            write_conll(path, count, seed)
    data = json.loads(json.dumps(TINY_TAGGER))
    data["output"] = str(output)
    data["data"].update(path=str(paths["train"]), dev=str(paths["dev"]), test=str(paths["test"]))
    assert not apply_overrides(data, list(overrides))
    return resolve(data, get_registry())
