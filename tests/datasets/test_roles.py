"""The word-order claim: the bow cell, the roles dataset, recipes/roles.yaml and its benchmark."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import torch
from conftest import REPO

from seqkit.plugins.cells.bow import BagOfWordsCell
from seqkit.plugins.datasets.roles import NOUNS, Roles
from seqkit.plugins.tasks.tagging.model import TaggerModel
from seqkit.recipe import load_recipe
from seqkit.testing import check_cell

MAN_ATE_DOG = "the man ate the hot dog ? man".split()
DOG_ATE_MAN = "the hot dog ate the man ? man".split()


def test_bow_is_a_running_sum_and_passes_the_conformance_kit():
    check_cell(BagOfWordsCell)
    cell = BagOfWordsCell(3, 5)
    x = torch.randn(2, 7, 3)
    outputs, final = cell(x)
    assert torch.allclose(outputs, torch.cumsum(x @ cell.weight_ih.T, dim=1), atol=1e-6)
    assert torch.allclose(final, cell(x.flip(1))[1], atol=1e-6)  # any order: one final state


def _question_scores(cell: str, bidirectional: bool, layers: int = 1) -> torch.Tensor:
    torch.manual_seed(0)
    words = {w: i + 2 for i, w in enumerate(sorted(set(MAN_ATE_DOG)))}  # 0, 1: padding, unknown
    model = TaggerModel(len(words) + 2, 3, cell, hidden_size=8, embedding_size=4, layers=layers,
                        bidirectional=bidirectional).eval()
    tokens = torch.tensor([[words[w] for w in MAN_ATE_DOG], [words[w] for w in DOG_ATE_MAN]])
    return model.emissions(tokens, torch.tensor([8, 8]))[:, -1]  # the question word's tag scores


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_bag_of_words_tagger_scores_both_word_orders_alike_and_a_recurrent_one_does_not(bidirectional):
    bow = _question_scores("bow", bidirectional)
    assert torch.allclose(bow[0], bow[1], atol=1e-6)
    for cell in ("tanh", "lstm"):
        scores = _question_scores(cell, bidirectional)
        assert (scores[0] - scores[1]).abs().max() > 1e-3, cell
    # two bag-of-words layers sum prefix sums: each word weighted by its position, order shows
    stacked = _question_scores("bow", bidirectional, layers=2)
    assert (stacked[0] - stacked[1]).abs().max() > 1e-3


def test_roles_are_generated_deterministically_and_each_noun_is_agent_as_often_as_patient():
    corpus = Roles(train_sentences=4000, dev_sentences=10, test_sentences=10, tagged="question", seed=3).load()
    again = Roles(train_sentences=4000, dev_sentences=10, test_sentences=10, tagged="question", seed=3).load()
    assert corpus.splits == again.splits and corpus.level == "word"
    roles = Counter()
    for words, tags in corpus.splits["train"]:
        verb = next(i for i, w in enumerate(words) if w in {"ate", "saw", "chased", "bit", "liked", "pushed",
                                                             "called", "helped", "followed", "found", "fed", "met"})
        asked, tag = words[-1], tags[-1]
        assert words[-2] == "?" and set(tags[:-1]) == {"O"} and asked in NOUNS
        assert (tag == "B-AGENT") == (asked in words[:verb])
        assert (tag == "B-PATIENT") == (asked in words[verb + 1:-2])
        roles[asked, tag] += 1
    for noun in NOUNS:  # no noun gives its role away
        agent, patient = roles[noun, "B-AGENT"], roles[noun, "B-PATIENT"]
        assert abs(agent - patient) < 0.35 * (agent + patient), noun


def test_phrases_tag_each_noun_phrase_with_its_role():
    roles = Roles(train_sentences=10, dev_sentences=1, test_sentences=1, tagged="phrases", seed=0)
    words, tags = roles.load().splits["train"][0]
    verb = tags.index("O")
    assert tags[0] == "B-AGENT" and set(tags[1:verb]) <= {"I-AGENT"}
    assert tags[verb + 1] == "B-PATIENT" and set(tags[verb + 2:]) <= {"I-PATIENT"}
    assert words[verb - 1] in NOUNS and words[-1] in NOUNS


def test_the_recipe_validates_with_every_cell():
    for cell in ("bow", "tanh", "residual", "gated", "lstm", "gru"):
        recipe = load_recipe(REPO / "recipes" / "roles.yaml", [f"model.cell={cell}"])
        assert recipe["data"]["dataset"] == "roles" and recipe["model"]["layers"] == 1


def test_the_benchmark_trains_each_cell_and_scores_the_test_split():
    result = subprocess.run([sys.executable, "-m", "benchmarks.roles", "--quick", "--json", "--cells", "bow,lstm"],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [(r["cell"], r["tagged"]) for r in rows] == [("bow", "question"), ("lstm", "question"),
                                                        ("bow", "phrases"), ("lstm", "phrases")]
    for row in rows:
        assert 0.0 <= row["role_f1"] <= 1.0 and row["runs"][0]["steps"] == 40
