"""Two training processes prepare a corpus once and read the same files (seqkit.corpus's lock)."""
from __future__ import annotations

import json

import pytest
from _ddp import train_on_ranks
from _tiny_runs import metric_lines, tiny_recipe

from seqkit.training.run import start_run

pytestmark = pytest.mark.slow  # end to end: two training processes


def test_two_ranks_share_one_prepared_corpus_and_train_as_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path / "cache"))  # nothing prepared yet
    corpus = tmp_path / "text.txt"
    corpus.write_text("".join(f"{i}: the cat sat on the mat, and the dog lay by the door.\n" for i in range(300)))
    settings = ("model.dropout=0", "train.steps=6", "data.dataset=text", f"data.path={corpus}", "data.max_chars=0")
    train_on_ranks([tiny_recipe(tmp_path / "two", *settings)])
    prepared = tmp_path / "cache" / "prepared"
    [folder] = [p for p in prepared.iterdir()]  # one corpus, no temporary folder or lock left
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["meta"]["tokens"]["train"] + manifest["meta"]["tokens"]["dev"] == len(corpus.read_text())
    start_run(tiny_recipe(tmp_path / "one", *settings), display="silent")  # reuses it
    assert [p.name for p in prepared.iterdir()] == [folder.name]
    two, one = metric_lines(tmp_path / "two"), metric_lines(tmp_path / "one")
    assert [(line["step"], line["split"]) for line in two] == [(line["step"], line["split"]) for line in one]
    last_val = [[line for line in lines if line["split"] == "val"][-1] for lines in (two, one)]
    assert last_val[0]["loss"] == pytest.approx(last_val[1]["loss"], rel=1e-4)
