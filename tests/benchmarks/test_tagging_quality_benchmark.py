"""benchmarks/tagging_quality.py: its baseline and treebank split against independent computations,
and a --quick run end to end (the treebank section only where dante-corpora is installed)."""
import importlib.util
import json
import os
import random
import subprocess
import sys
import zlib
from collections import Counter

import pytest
import torch
from conftest import REPO

from benchmarks._hand_char_tagger import most_frequent_class
from benchmarks._porttinari import INSTALL_HINT, split_by_document

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains

CLASSES = ("name", "keyword", "operator", "number", "string", "comment", "whitespace")


def test_the_baseline_tags_each_character_with_its_most_frequent_training_class():
    rng = random.Random(0)
    tags = ("a", "b", "c")
    train = [("".join(rng.choice("xyz") for _ in range(12)), [rng.choice(tags) for _ in range(12)])
             for _ in range(8)]
    test = [("xyzw" * 3, [rng.choice(tags) for _ in range(12)])]  # w: never seen in training
    by_char = {}
    for text, labels in train:
        for c, t in zip(text, labels):
            by_char.setdefault(c, Counter())[t] += 1
    overall = sum(by_char.values(), Counter())
    commonest = lambda counts: max(tags, key=lambda t: (counts[t], -tags.index(t)))  # noqa: E731
    expected = torch.zeros(3, 3, dtype=torch.long)
    for c, gold in zip(test[0][0], test[0][1]):
        guess = commonest(by_char[c]) if c in by_char else commonest(overall)
        expected[tags.index(gold), tags.index(guess)] += 1
    counts = most_frequent_class(train, test, tags)
    assert torch.equal(counts.confusion, expected)
    unseen_right = sum(c == "w" and gold == commonest(overall) for c, gold in zip(*test[0]))
    assert counts.unseen.tolist() == [3, unseen_right]


def test_the_treebank_splits_by_document_with_a_stable_hash():
    documents = [f"FOLHA_DOC{d:06d}" for d in range(60)]
    blocks = [f"# sent_id = {doc}_SENT{s:03d}\n# text = w\n1\tw\tw\tNOUN\t_\t_\t_\t_\t_\t_"
              for doc in documents for s in range(3)]
    text = "# newdoc id = x\n" + "\n\n".join(blocks) + "\n\n"
    splits = split_by_document(text)
    assert sum(map(len, splits.values())) == len(blocks)
    for split, found in splits.items():
        for block in found:
            document = block.split("sent_id = ")[1].split("_SENT")[0]
            bucket = zlib.crc32(document.encode()) % 10
            assert split == ("train" if bucket < 8 else "dev" if bucket == 8 else "test")
    assert all(splits.values())  # 60 documents reach all three splits
    assert split_by_document(text) == splits


def test_a_quick_run_scores_every_contender_on_the_test_split():
    treebank = importlib.util.find_spec("dante") is not None
    pages = [REPO / "BENCHMARKS.md", *sorted((REPO / "docs" / "benchmarks").glob("*.md"))]
    before = [page.read_text() for page in pages]
    result = subprocess.run([sys.executable, "-m", "benchmarks.tagging_quality", "--quick", "--budget", "1",
                             "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert [page.read_text() for page in pages] == before  # a smoke run writes nothing
    sections = json.loads(result.stdout)["sections"]

    python = sections["tagging-python"]
    assert [row["contender"] for row in python["rows"]][2:] == [
        "seqkit tagging.yaml, softmax", "seqkit tagging.yaml, crf",
        "seqkit tagging.yaml, autoregressive (greedy)"]
    baseline = python["rows"][0]
    assert baseline["contender"].startswith("most frequent class") and baseline["seconds"] is None
    for row in python["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and set(row["f1"]) <= set(CLASSES)
    hand = python["rows"][1]
    assert hand["contender"].startswith("hand-written") and 1.0 <= hand["seconds"] < 10
    assert hand["tokens"] == hand["steps"] * 32 * 256  # 8192 characters per batch, as the recipe
    for row in python["rows"][2:]:
        seed = row["per_seed"][0]
        assert seed["stopped"] in ("finished", "time_limit") and seed["steps"] >= 1 and seed["tokens"] > 0
        assert seed["seconds"] < 10 and seed["planned_steps"] >= 1
    assert python["autoregressive_exact"].startswith("infeasible")

    if not treebank:
        assert sections["tagging-treebank"] == {"skipped": INSTALL_HINT}
        assert INSTALL_HINT in result.stderr
        return
    words = sections["tagging-treebank"]
    assert [row["contender"] for row in words["rows"]] == [
        "hand-written word + char bi-LSTM (plain torch)", "seqkit tagging_conll.yaml, softmax",
        "seqkit tagging_conll.yaml, crf", "seqkit tagging_conll.yaml, autoregressive (greedy)"]
    for row in words["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["unseen_accuracy"] <= 1.0
    exact = words["exact"]
    assert exact["sentences"] == 1 and 0.0 <= exact["greedy"] <= 1.0 and 0.0 <= exact["exact"] <= 1.0


def test_without_dante_corpora_the_treebank_section_is_skipped_with_the_install_line(tmp_path):
    (tmp_path / "dante").mkdir()  # a 'dante' package without the corpora hides an installed one
    (tmp_path / "dante" / "__init__.py").write_text("")
    result = subprocess.run([sys.executable, "-m", "benchmarks.tagging_quality", "--quick", "--json",
                             "--sections", "tagging-treebank"], capture_output=True, text=True, cwd=REPO,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sections"] == {"tagging-treebank": {"skipped": INSTALL_HINT}}
    assert result.stderr.strip().splitlines() == [
        f"tagging-treebank: skipped: the Porttinari treebank comes with dante-corpora: {INSTALL_HINT}"]
