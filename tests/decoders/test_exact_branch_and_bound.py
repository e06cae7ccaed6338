"""``exact`` with pruning (branch and bound) against full enumeration and brute force."""
from __future__ import annotations

import random
from contextlib import nullcontext

import pytest
import torch
from _step_models import BruteForce, RnnStepModel, make_model

from seqkit.decoding import BYTES_PER_TOKEN, build_decoder
from seqkit.plugins.decoders._common import count_prefixes


def exact(model, start, length, **options):
    return build_decoder("exact", options).decode(model, *start, length)


def answers(results):
    return [[(h.tokens, h.log_prob) for h in r.hypotheses] for r in results]


@pytest.mark.parametrize("end", [0, 2, None])
@pytest.mark.parametrize("kind", ["lstm", "gru", "table"])
def test_branch_and_bound_equals_enumeration_and_brute_force(kind, end):
    """Random tiny models, batch sizes, n-best sizes and chunk sizes, 15 draws per case."""
    draw = random.Random(f"{kind}{end}")
    for trial in range(15):
        vocab, length = draw.choice([(3, 5), (4, 4), (5, 3), (3, 6)])
        batch, n_best, chunk = draw.randint(1, 5), draw.randint(1, 6), draw.choice([1, 2, 3, 7, 1024])
        width = draw.choice([1, 2, 4, 1024])
        model = make_model(kind, vocab, length, end, seed=trial)
        start = model.start(batch, seed=trial)
        enumerated = exact(model, start, length, n_best=n_best, search="enumeration")
        model.steps = model.widest = 0
        pruned = exact(model, start, length, n_best=n_best, search="branch_and_bound", chunk_size=chunk,
                       width=width)
        assert model.widest <= max(min(chunk, width * batch), batch)  # the root steps every input at once
        case = f"trial {trial}: V={vocab} T={length} batch={batch} n={n_best} chunk={chunk} width={width}"
        assert [[t for t, _ in a] for a in answers(pruned)] == [[t for t, _ in a] for a in answers(enumerated)], case
        for index, (p, e) in enumerate(zip(pruned, enumerated)):
            assert [h.log_prob for h in p.hypotheses] == pytest.approx([h.log_prob for h in e.hypotheses],
                                                                      abs=1e-12), case
            ranked = BruteForce(model, length, start, index).ranked()[:n_best]
            assert [h.tokens for h in p.hypotheses] == [tokens for tokens, _ in ranked], case
            assert [h.log_prob for h in p.hypotheses] == pytest.approx([lp for _, lp in ranked], abs=1e-9)
            assert p.extras["search"] == "branch_and_bound" and p.extras["proven"] is True
            assert "marginals" not in p.extras
            assert 1 <= p.extras["prefixes"] <= e.extras["prefixes"]
        assert model.steps == sum(p.extras["prefixes"] for p in pruned)  # the count is the work done


def trap(length: int = 5):
    """A table model (end token 0) whose likeliest first token, 1 (0.9), leads only to sequences
    of probability below 0.1, while 2 (0.1) is followed by 1s and the end with certainty: the
    argmax is [2, 1, ..., 1, 0]. Greedy, and a beam of 2, follow 1 and never come back."""
    model = make_model("table", 3, length, 0, seed=1)
    table = torch.tensor([0.05, 0.475, 0.475]).expand_as(model.table).clone()
    table[0] = torch.tensor([0.0, 0.9, 0.1])
    node = 3  # the node after [2]: 0 * 3 + 2 + 1
    for _ in range(length - 2):
        table[node] = torch.tensor([0.0, 1.0, 0.0])
        node = node * 3 + 1 + 1
    table[node] = torch.tensor([1.0, 0.0, 0.0])
    model.table = table.log()
    return model


@pytest.mark.parametrize("width", [1, 2, 1024])
def test_a_first_descent_that_misses_the_argmax_is_corrected_by_backtracking(width):
    length = 5
    model = trap(length)
    start = model.start(1)
    argmax = [2, 1, 1, 1, 0]
    enumerated = exact(model, start, length, n_best=3, search="enumeration")[0]
    assert enumerated.hypotheses[0].tokens == argmax
    for strategy, options in [("greedy", {}), ("beam", {"beam_size": 2})]:  # the seeds go wrong
        found = build_decoder(strategy, options).decode(model, *start, length)[0].hypotheses[0]
        assert found.tokens != argmax and found.log_prob < enumerated.hypotheses[0].log_prob
    # width 1: the first descent is greedy's path; 2: a beam of 2
    pruned = exact(model, start, length, n_best=3, search="branch_and_bound", width=width)[0]
    assert answers([pruned]) == answers([enumerated])
    assert pruned.extras["proven"] and pruned.extras["prefixes"] < enumerated.extras["prefixes"]


def test_prefixes_expanded_are_far_below_the_tree_on_a_peaky_model():
    vocab, length, batch = 12, 10, 4
    model = RnnStepModel(vocab, end_token=0, hidden=16, seed=5, sharpness=3.0)
    start = model.start(batch, seed=2)
    tree = count_prefixes(vocab, length, 0)  # 11^0 + ... + 11^9, about 2.6 * 10^9
    beam = build_decoder("beam", {"beam_size": 16}).decode(model, *start, length)
    model.steps = 0
    results = exact(model, start, length, n_best=2)  # auto: enumeration does not fit
    assert model.steps == sum(r.extras["prefixes"] for r in results)
    for index, (result, wide) in enumerate(zip(results, beam)):
        assert result.extras["search"] == "branch_and_bound" and result.extras["proven"]
        assert result.extras["prefixes"] < 1e-6 * tree
        best = result.hypotheses[0]
        assert best.log_prob >= wide.hypotheses[0].log_prob - 1e-12
        assert model.score([best.tokens], *start, index).item() == pytest.approx(best.log_prob, abs=1e-9)


@pytest.mark.parametrize("width", [1, 3])
def test_an_input_takes_the_same_path_alone_as_in_a_batch(width):
    """Its answer, and also its cost and whether it finished within max_prefixes, given a
    chunk_size that holds ``width`` rows of every input (and no more)."""
    length, batch = 7, 8
    model = RnnStepModel(6, end_token=0, hidden=8, seed=7, sharpness=0.8)
    start = model.start(batch, seed=5)
    options = {"search": "branch_and_bound", "n_best": 2, "width": width, "max_prefixes": 12,
               "chunk_size": width * batch}
    batched = exact(model, start, length, **options)
    assert len({r.extras["prefixes"] for r in batched}) >= 3  # inputs of different difficulty
    assert not all(r.extras["proven"] for r in batched)
    for index, together in enumerate(batched):
        one = torch.tensor([index])
        (h, c), tokens = start
        alone = exact(model, ((h[one], c[one]), tokens[one]), length, **options)[0]
        assert [h.tokens for h in alone.hypotheses] == [h.tokens for h in together.hypotheses]
        assert [h.log_prob for h in alone.hypotheses] == pytest.approx([h.log_prob for h in together.hypotheses])
        assert alone.extras == together.extras


def test_an_input_past_max_prefixes_returns_its_best_found_flagged_and_the_others_stay_exact():
    length = 6
    model = RnnStepModel(5, end_token=0, hidden=8, seed=3, sharpness=0.7)
    start = model.start(6, seed=3)
    unbounded = exact(model, start, length, search="branch_and_bound", n_best=2)
    needed = sorted(r.extras["prefixes"] for r in unbounded)
    budget = needed[2]  # between the easy inputs and the hard ones
    model.steps = 0
    bounded = exact(model, start, length, search="branch_and_bound", n_best=2, max_prefixes=budget)
    proven = [r.extras["proven"] for r in bounded]
    assert any(proven) and not all(proven)
    for index, (b, u) in enumerate(zip(bounded, unbounded)):
        assert b.extras["prefixes"] <= budget
        if b.extras["proven"]:
            assert answers([b]) == answers([u])
        else:
            assert b.extras["prefixes"] == budget and b.hypotheses  # it used its budget, and found some
            brute = BruteForce(model, length, start, index)
            for h in b.hypotheses:  # real sequences with their real scores, no better than the best
                assert brute.probability(h.tokens) == pytest.approx(torch.tensor(h.log_prob).exp().item())
                assert h.log_prob <= u.hypotheses[0].log_prob
    assert model.steps == sum(r.extras["prefixes"] for r in bounded) <= 6 * budget


def test_a_budget_too_small_for_any_sequence_still_gives_one():
    """No end token: nothing is complete before the last position. With one prefix of budget the
    search stops at the root, then finishes greedily: the greedy sequence, flagged."""
    length = 5
    model = make_model("gru", 4, length, None, seed=2)
    start = model.start(3, seed=1)
    results = exact(model, start, length, max_prefixes=1, search="branch_and_bound")
    greedy = build_decoder("greedy", {}).decode(model, *start, length)
    for result, g in zip(results, greedy):
        assert result.extras["proven"] is False and result.extras["prefixes"] == length
        assert [h.tokens for h in result.hypotheses] == [h.tokens for h in g.hypotheses]
        assert result.hypotheses[0].log_prob == pytest.approx(g.hypotheses[0].log_prob, abs=1e-9)


def test_the_search_asked_for_is_the_search_run_whatever_the_end_token():
    for end in (None, 1):
        model = make_model("lstm", 3, 4, end, seed=4)
        start = model.start(2)
        for search in ("enumeration", "branch_and_bound"):
            results = exact(model, start, 4, search=search)
            assert {r.extras["search"] for r in results} == {search}
            assert all(("marginals" in r.extras) == (search == "enumeration") for r in results)
    assert build_decoder("exact", {"search": "enumeration", "width": 2}).ineffective_options(model) == {
        "width": "has no effect with search enumeration, which steps every prefix"}
    assert build_decoder("exact", {"search": "auto", "width": 2}).ineffective_options(model) == {}


def recording(calls: list):
    def progress(total):
        calls.append(total)
        return nullcontext(calls.append)
    return progress


def test_progress_and_memory_estimates_follow_the_search():
    vocab, length, batch = 6, 7, 3
    model = RnnStepModel(vocab, end_token=0, hidden=8, seed=1, sharpness=2.0)
    start = model.start(batch)
    calls = []
    decoder = build_decoder("exact", {"max_prefixes": 500})
    decoder.decode(model, *start, length, progress=recording(calls))
    # branch and bound: at most max_prefixes per input, and a greedy finish shorter than length
    assert calls[0] == batch * (500 + length)
    assert sum(calls[1:]) == model.steps <= calls[0]
    enumerating = build_decoder("exact", {"max_prefixes": 10**6})
    tree = count_prefixes(vocab, length, 0)
    assert enumerating.planned_rows(model, batch, length) == batch * tree
    assert (enumerating.memory_needed(model, batch, length) - decoder.memory_needed(model, batch, length)
            == batch * vocab * length * BYTES_PER_TOKEN)  # the marginals, only where enumerated
