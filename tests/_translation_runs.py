"""A small parallel corpus (a toy G2P: spellings to 'phones'), and tiny translation recipes over it."""
from __future__ import annotations

import json
import os
import random
from contextlib import contextmanager
from pathlib import Path

import pytest
from _tiny_runs import ONE_THREAD_ENV

from seqkit.recipe import apply_overrides, resolve
from seqkit.registry import get_registry

# each letter's 'phone'; 'c' reads as K or S, so some words have two references
PHONES = {"a": "AH", "b": "B", "c": "K", "d": "D", "e": "EH", "o": "OW", "s": "S", "t": "T"}


def pronunciations(word: str) -> list[str]:
    first = " ".join(PHONES[c] for c in word)
    second = " ".join("S" if c == "c" else PHONES[c] for c in word)
    return [first] if first == second else [first, second]


def write_pairs(path: Path, words: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(words):
        word = "".join(rng.choice(list(PHONES)) for _ in range(rng.randint(1, 6)))
        lines += [f"{word}\t{p}" for p in pronunciations(word)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY_TRANSLATOR = {
    "task": "translation",
    "seed": 3,
    "device": "cpu",
    "data": {"dataset": "pairs", "source_tokens": "char", "target_tokens": "space"},
    "model": {"cell": "lstm", "hidden_size": 8, "encoder": {"embedding_size": 6},
              "decoder": {"embedding_size": 6}},
    "train": {"steps": 12, "batch_size": 16, "lr": 0.02, "eval_every": 6, "log_every": 3,
              "best_metric": "token_error_rate"},
    "decode": {"length": 10},
}


def translation_recipe(folder: Path, output: Path, *overrides: str) -> dict:
    """A resolved tiny recipe on train/dev/test files written into ``folder`` (once)."""
    paths = {split: folder / f"{split}.tsv" for split in ("train", "dev", "test")}
    for (_, path), (count, seed) in zip(paths.items(), ((150, 0), (30, 1), (30, 2))):
        if not path.exists():
            write_pairs(path, count, seed)
    data = json.loads(json.dumps(TINY_TRANSLATOR))
    data["output"] = str(output)
    data["data"].update(path=str(paths["train"]), dev=str(paths["dev"]), test=str(paths["test"]))
    assert not apply_overrides(data, list(overrides))
    return resolve(data, get_registry())


@contextmanager
def cache_folder(folder: Path):
    """Prepared corpora in ``folder`` ($SEQKIT_CACHE_DIR) while inside, so that tests never write
    to the user's cache; ``cli_env()`` hands it to subprocesses (``run_cli`` drops SEQKIT_*)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQKIT_CACHE_DIR", str(folder))
        yield


def cli_env(**more: str) -> dict:
    """The environment of a CLI subprocess: one torch thread, this process's cache folder."""
    cache = {"SEQKIT_CACHE_DIR": os.environ["SEQKIT_CACHE_DIR"]} if os.environ.get("SEQKIT_CACHE_DIR") else {}
    return {**ONE_THREAD_ENV, **cache, **more}
