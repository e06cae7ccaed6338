"""Translation metrics: edit distance against a brute-force dynamic program, word and token error
rates with several references, counts that add, and BLEU / chrF through sacrebleu."""
from __future__ import annotations

import random
import sys

import pytest
import torch
from conftest import needs_extra

from seqkit import SeqkitError
from seqkit.plugins.tasks.translation import metrics as metrics
from seqkit.plugins.tasks.translation.metrics import TranslationCounts, closest_reference, edit_distance


@pytest.fixture(autouse=True)
def _rapidfuzz():
    needs_extra("rapidfuzz", "translation")


def brute_edit_distance(a, b) -> int:
    """Levenshtein distance by the textbook dynamic program over the full table."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            if i == 0 or j == 0:
                table[i][j] = i + j
            else:
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                                  table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def random_sequence(rng: random.Random, kind: str, alphabet: int = 4, longest: int = 12):
    tokens = [rng.randrange(alphabet) for _ in range(rng.randint(0, longest))]
    if kind == "str":
        return "".join("abcdefgh"[t] for t in tokens)
    if kind == "phones":
        return [("AH0", "B", "K", "IY1", "T", "S", "ER0", "L")[t] for t in tokens]
    return tokens  # token ids


@pytest.mark.parametrize("kind", ["str", "phones", "ids"])
def test_edit_distance_equals_the_dynamic_program_on_random_sequences(kind):
    rng = random.Random(kind)
    for _ in range(500):
        a, b = random_sequence(rng, kind), random_sequence(rng, kind)
        assert edit_distance(a, b) == brute_edit_distance(a, b)
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance(["HH", "AH0", "L", "OW1"], ["HH", "EH0", "L", "OW1", "Z"]) == 2


def test_the_closest_reference_has_the_fewest_edits_then_the_most_tokens():
    # "AB" is 1 edit from "A" and 1 from "ABC": the longer reference is the closer (rate 1/3)
    assert closest_reference("AB", ["A", "ABC"]) == (1, 3)
    assert closest_reference("AB", ["ABC", "A"]) == (1, 3)
    assert closest_reference("AB", ["XY", "ZZZZ", "AB"]) == (0, 2)
    assert closest_reference(["R", "EH1", "D"], [["R", "IY1", "D"], ["R", "EH1", "D", "Z"]]) == (1, 4)
    with pytest.raises(ValueError, match="at least one reference"):
        closest_reference("A", [])
    with pytest.raises(ValueError, match="a reference is empty"):
        closest_reference("A", ["A", ""])


def test_error_rates_of_hand_checked_outputs_with_several_references():
    counts = TranslationCounts()
    counts.update(["ABC", "XBC", "AAAA"],            # exact (second reference); 1 edit; 2 edits
                  [["ABD", "ABC"], ["ABC"], ["AA", "AAAAAA"]])
    counts.update([["R", "EH1", "D"]], [[["R", "IY1", "D"], ["R", "EH1", "D"]]])  # exact
    assert counts.counts.tolist() == [4, 2, 3, 3 + 3 + 6 + 3]
    # 2 of 4 outputs are none of their references; edits 0 + 1 + 2 + 0 over 3 + 3 + 6 + 3 tokens
    # ("AAAA" is 2 edits from "AA" and from "AAAAAA": the longer one counts)
    assert counts.compute() == {"word_error_rate": 0.5, "token_error_rate": 3 / 15}


def brute_rates(batches):
    outputs = [o for batch_outputs, _ in batches for o in batch_outputs]
    references = [r for _, batch_references in batches for r in batch_references]
    best = [min((brute_edit_distance(o, ref), -len(ref)) for ref in refs) for o, refs in zip(outputs, references)]
    wrong = sum(o not in refs for o, refs in zip(outputs, references))
    return wrong / len(outputs), sum(e for e, _ in best) / -sum(n for _, n in best)


def random_batches(rng: random.Random, count: int):
    batches = []
    for _ in range(count):
        size = rng.randint(1, 6)
        references = [[random_sequence(rng, "ids", 3, 6) or [0] for _ in range(rng.randint(1, 3))]
                      for _ in range(size)]
        outputs = [rng.choice(refs) if rng.random() < 0.3 else random_sequence(rng, "ids", 3, 7)
                   for refs in references]
        batches.append((outputs, references))
    return batches


@pytest.mark.parametrize("seed", range(5))
def test_counts_of_batches_add_up_to_the_rates_of_the_whole_split(seed):
    rng = random.Random(seed)
    batches = random_batches(rng, 8)
    word_error_rate, token_error_rate = brute_rates(batches)
    whole = TranslationCounts()
    for outputs, references in batches:
        whole.update(outputs, references)
    assert whole.compute() == pytest.approx({"word_error_rate": word_error_rate,
                                             "token_error_rate": token_error_rate}, abs=1e-12)
    # as on two processes: each counts its share, the counts are summed (what all_reduce does)
    shares = [TranslationCounts(), TranslationCounts()]
    for i, (outputs, references) in enumerate(batches):
        shares[i % 2].update(outputs, references)
    assert torch.equal(shares[0].counts + shares[1].counts, whole.counts)
    assert torch.equal((shares[0] + shares[1]).counts, whole.counts)
    assert torch.equal(shares[0].merge(shares[1]).counts, whole.counts)


def test_counts_refuse_mismatched_batches_and_nothing_to_compute():
    counts = TranslationCounts()
    with pytest.raises(ValueError, match="no outputs were counted"):
        counts.compute()
    with pytest.raises(ValueError, match="2 outputs but references for 1"):
        counts.update(["A", "B"], [["A"]])


def test_without_rapidfuzz_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidfuzz", None)  # an import of it raises ImportError
    monkeypatch.setitem(sys.modules, "rapidfuzz.distance", None)
    metrics._levenshtein.cache_clear()
    try:
        with pytest.raises(SeqkitError) as info:
            TranslationCounts()
    finally:
        metrics._levenshtein.cache_clear()
    assert info.value.problems == ['the translation metrics need rapidfuzz (edit distances), which is '
                                   'not installed: pip install -e ".[translation]" (or pip install '
                                   '"seqkit[translation]")']


# -- BLEU and chrF ----------------------------------------------------------------------------

def test_bleu_and_chrf_take_a_varying_number_of_references():
    needs_extra("sacrebleu", "bleu")
    perfect = metrics.bleu_and_chrf(["the cat sat on the mat", "a dog barked loudly"],
                                    [["the cat sat on the mat"], ["one dog barked", "a dog barked loudly"]])
    assert perfect == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}
    # the second output's other reference does not count against it: the scores equal those with
    # its matching reference alone
    import sacrebleu
    outputs = ["the cat sat on a mat today", "a dog barked loudly"]
    one_each = [["the cat sat on the mat"], ["a dog barked"]]
    expected = {"bleu": sacrebleu.corpus_bleu(outputs, [["the cat sat on the mat", "a dog barked"]]).score,
                "chrf": sacrebleu.corpus_chrf(outputs, [["the cat sat on the mat", "a dog barked"]]).score}
    assert metrics.bleu_and_chrf(outputs, one_each) == pytest.approx(expected)
    assert 0 < expected["bleu"] < 100 and 0 < expected["chrf"] < 100
    # a varying number: the first output's one reference repeated (which changes no score) makes
    # the reference streams sacrebleu takes
    more = [["the cat sat on the mat"], ["a dog barked", "a dog barked loudly"]]
    streams = [["the cat sat on the mat", "a dog barked"], ["the cat sat on the mat", "a dog barked loudly"]]
    scores = metrics.bleu_and_chrf(outputs, more)
    assert scores == pytest.approx({"bleu": sacrebleu.corpus_bleu(outputs, streams).score,
                                    "chrf": sacrebleu.corpus_chrf(outputs, streams).score})
    assert scores["bleu"] > expected["bleu"] and scores["chrf"] > expected["chrf"]
    with pytest.raises(ValueError, match="every output needs at least one reference"):
        metrics.bleu_and_chrf(["a"], [[]])


def test_without_sacrebleu_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    monkeypatch.setitem(sys.modules, "sacrebleu.metrics", None)
    with pytest.raises(SeqkitError) as info:
        metrics.bleu_and_chrf(["a"], [["a"]])
    assert info.value.problems == ['BLEU and chrF need sacrebleu, which is not installed: pip install '
                                   '-e ".[bleu]" (or pip install "seqkit[bleu]")']
