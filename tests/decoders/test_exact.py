"""``exact`` against brute force: score all V^T sequences one by one and compare everything."""
from __future__ import annotations

import pytest
import torch
from _step_models import BruteForce, make_model

from seqkit import SeqkitError
from seqkit.decoding import build_decoder

CASES = [  # (model kind, vocabulary, length, end token)
    ("lstm", 2, 7, None), ("lstm", 3, 5, 0), ("gru", 4, 4, None), ("gru", 3, 5, 2),
    ("table", 4, 4, None), ("table", 3, 5, 1),
]


@pytest.mark.parametrize("kind,vocab,length,end", CASES)
def test_exact_equals_brute_force(kind, vocab, length, end):
    model = make_model(kind, vocab, length, end, seed=11)
    start = model.start(2, seed=4)
    results = build_decoder("exact", {"n_best": 5}).decode(model, *start, length)
    assert len(results) == 2
    for index, result in enumerate(results):
        brute = BruteForce(model, length, start, index)
        ranked = brute.ranked()
        got = [(h.tokens, h.log_prob) for h in result.hypotheses]
        assert [tokens for tokens, _ in got] == [tokens for tokens, _ in ranked[:5]]
        assert [lp for _, lp in got] == pytest.approx([lp for _, lp in ranked[:5]], abs=1e-9)
        marginals = result.extras["marginals"]
        assert marginals.shape == (vocab, length)
        assert torch.allclose(marginals, brute.marginals(), rtol=0, atol=1e-9)
        assert torch.allclose(marginals.sum(0), torch.ones(length, dtype=torch.float64), rtol=0, atol=1e-9)
        assert result.extras["mass"] == pytest.approx(1.0, abs=1e-9)
        assert result.extras["sequences"] == len(brute.sequences)
        # it fits in max_prefixes: enumerated (end token or not), so the marginals are there
        assert result.extras["search"] == "enumeration" and result.extras["proven"] is True


@pytest.mark.parametrize("end", [None, 0])
def test_cost_is_the_number_of_prefixes_and_memory_the_chunk(end):
    vocab, length = 3, 6
    model = make_model("lstm", vocab, length, end, seed=1)
    start = model.start(1)
    wide = build_decoder("exact", {"n_best": 3}).decode(model, *start, length)[0]
    live = vocab - (end is not None)
    prefixes = sum(live ** d for d in range(length))
    assert model.steps == prefixes == wide.extras["prefixes"]  # each prefix stepped once, not T * V^T

    model.steps = model.widest = 0
    narrow = build_decoder("exact", {"n_best": 3, "chunk_size": 5}).decode(model, *start, length)[0]
    assert model.widest <= 5 and model.steps == prefixes
    assert [h.tokens for h in narrow.hypotheses] == [h.tokens for h in wide.hypotheses]
    assert torch.allclose(narrow.extras["marginals"], wide.extras["marginals"], rtol=0, atol=1e-12)


def test_enumeration_refuses_before_starting_when_there_are_too_many_prefixes():
    model = make_model("lstm", 4, 12, None)
    decoder = build_decoder("exact", {"max_prefixes": 1_000_000, "search": "enumeration"})
    with pytest.raises(SeqkitError) as caught:
        decoder.decode(model, *model.start(1), 12)
    message = str(caught.value)
    assert message.startswith("decode.max_prefixes: ") and len(message.splitlines()) == 1
    assert "5,592,405 prefixes per input" in message and "max_prefixes=1,000,000" in message
    assert "--search branch_and_bound" in message and "--strategy beam" in message
    assert model.steps == 0
    # The default limit allows the same problem.
    assert build_decoder("exact", {}).config["max_prefixes"] == 10_000_000


def test_the_limit_is_per_input():
    model = make_model("table", 3, 4, None)
    prefixes = 1 + 3 + 9 + 27
    enumerate_all = build_decoder("exact", {"max_prefixes": prefixes, "search": "enumeration"})
    results = enumerate_all.decode(model, *model.start(3), 4)
    assert [r.extras["prefixes"] for r in results] == [prefixes] * 3 and model.steps == 3 * prefixes
    with pytest.raises(SeqkitError, match=r"expands 40 prefixes per input, more than max_prefixes=39"):
        build_decoder("exact", {"max_prefixes": prefixes - 1, "search": "enumeration"}).decode(
            model, *model.start(3), 4)
    # auto enumerates where that fits, and prunes where it does not
    fits = build_decoder("exact", {"max_prefixes": prefixes}).decode(model, *model.start(3), 4)
    pruned = build_decoder("exact", {"max_prefixes": prefixes - 1}).decode(model, *model.start(3), 4)
    assert {r.extras["search"] for r in fits} == {"enumeration"}
    assert {r.extras["search"] for r in pruned} == {"branch_and_bound"}
    assert all("marginals" not in r.extras for r in pruned)
    assert [r.hypotheses for r in pruned] == [r.hypotheses for r in fits]


@pytest.mark.parametrize("end", [None, 0])
@pytest.mark.parametrize("search", ["enumeration", "branch_and_bound"])
def test_ties_go_to_the_lower_token_ids(end, search):
    """A uniform model: every sequence of a length is equally probable (the same float: the same
    additions in the same order), so the n best are the first in token order."""
    vocab, length = 3, 4
    model = make_model("table", vocab, length, end)
    model.table = torch.zeros_like(model.table).log_softmax(-1)
    result = build_decoder("exact", {"n_best": 7, "search": search}).decode(model, *model.start(1), length)[0]
    brute = BruteForce(model, length, model.start(1))
    expected = sorted(zip(brute.sequences, brute.log_probs.tolist()), key=lambda s: (-s[1], s[0]))[:7]
    assert [(h.tokens, h.log_prob) for h in result.hypotheses] == expected
    assert len({lp for _, lp in expected}) < len(expected)  # there are ties among them


@pytest.mark.parametrize("n_best", [2, 3])
@pytest.mark.parametrize("chunk_size", [1, 2, 1024])
@pytest.mark.parametrize("search", ["enumeration", "branch_and_bound"])
def test_a_tie_found_later_still_goes_to_the_lower_token_ids(search, chunk_size, n_best):
    """[2, 0, 0] and [2, 1, 0] (0.5 * 0.5 * 1) tie with [0, 0, 0] (0.25 * 1 * 1). Pruning visits the
    likelier first token 2 first: by the time it reaches [0] and [0, 0], their log-probability
    equals the n-th best found, and they must still be followed, since [0, 0, 0] ranks first."""
    model = make_model("table", 3, 3, None)
    table = torch.full_like(model.table, 1 / 3)
    table[0] = torch.tensor([0.25, 0.25, 0.5])  # the first token
    certain = torch.tensor([1.0, 0.0, 0.0])
    table[1] = table[4] = table[10] = table[11] = certain  # after [0], [0, 0], [2, 0], [2, 1]
    table[3] = torch.tensor([0.5, 0.5, 0.0])  # after [2]
    model.table = table.log()
    options = {"n_best": n_best, "search": search, "chunk_size": chunk_size}
    result = build_decoder("exact", options).decode(model, *model.start(1), 3)[0]
    assert [h.tokens for h in result.hypotheses] == [[0, 0, 0], [2, 0, 0], [2, 1, 0]][:n_best]
    assert len({h.log_prob for h in result.hypotheses}) == 1


def test_length_one_is_the_next_token_distribution():
    model = make_model("gru", 4, 1, None, seed=7)
    state, token = model.start(1)
    result = build_decoder("exact", {"n_best": 4}).decode(model, state, token, 1)[0]
    log_probs, _ = model.step(token, state)
    assert torch.allclose(result.extras["marginals"][:, 0], log_probs[0].exp(), rtol=0, atol=1e-12)
    assert [h.tokens[0] for h in result.hypotheses] == log_probs[0].argsort(descending=True).tolist()


def test_marginals_are_an_ordinary_tensor():
    model = make_model("table", 2, 2, None)
    marginals = build_decoder("exact", {}).decode(model, *model.start(1), 2)[0].extras["marginals"]
    assert not marginals.is_inference()
    marginals /= marginals.sum(0)  # in-place use outside the decoder works


def test_sequences_the_model_rules_out_are_never_returned():
    model = make_model("table", 3, 2, None, seed=5)
    model.table[:, 1] = float("-inf")  # token 1 never follows: 4 of the 9 sequences are possible
    model.table = model.table.log_softmax(-1)
    result = build_decoder("exact", {"n_best": 9}).decode(model, *model.start(1), 2)[0]
    assert sorted(h.tokens for h in result.hypotheses) == [[0, 0], [0, 2], [2, 0], [2, 2]]
    assert all(h.log_prob > float("-inf") for h in result.hypotheses)
    assert result.extras["mass"] == pytest.approx(1.0, abs=1e-12)
