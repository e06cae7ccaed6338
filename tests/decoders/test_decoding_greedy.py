"""``greedy``: the argmax at every step, state carried, end token handled, and its search error."""
from __future__ import annotations

import pytest
import torch
from _step_models import BruteForce, TableStepModel, make_model

from seqkit.decoding import build_decoder

greedy = build_decoder("greedy", {})


@pytest.mark.parametrize("kind,end", [("lstm", None), ("gru", 0), ("table", 2)])
def test_each_token_is_the_argmax_given_the_prefix(kind, end):
    model = make_model(kind, 4, 6, end, seed=2)
    start = model.start(3, seed=7)
    for i, result in enumerate(greedy.decode(model, *start, 6)):
        tokens = result.hypotheses[0].tokens
        # Score every one-token extension of each prefix of the output, independently of decoding.
        for s, token in enumerate(tokens):
            options = [tokens[:s] + [v] for v in range(4)]
            assert model.score(options, *start, index=i).argmax().item() == token
        assert result.hypotheses[0].log_prob == pytest.approx(
            model.score([tokens], *start, index=i).item(), abs=1e-9)
        if end is not None and end in tokens:
            assert tokens.index(end) == len(tokens) - 1  # stops right after the end token


def test_state_is_carried_one_step_per_token():
    model = make_model("lstm", 3, 50, None)
    results = greedy.decode(model, *model.start(5), 50)
    assert model.steps == 5 * 50 and model.widest == 5
    assert all(len(r.hypotheses[0].tokens) == 50 for r in results)


@pytest.mark.parametrize("seed", range(3))
def test_rows_end_at_different_times_and_the_loop_stops_when_all_have(seed):
    model = make_model("table", 3, 8, end=0, seed=seed)
    state, tokens = torch.tensor([-1, 1, 2]), torch.tensor([0, 2, 0])  # three different start nodes
    together = greedy.decode(model, state, tokens, 8)
    lengths = [len(r.hypotheses[0].tokens) for r in together]
    assert model.steps == 3 * max(lengths) and max(lengths) < 8
    for i, result in enumerate(together):
        alone = greedy.decode(model, state[i:i + 1], tokens[i:i + 1], 8)[0].hypotheses[0]
        assert result.hypotheses[0].tokens == alone.tokens and alone.tokens[-1] == 0
        assert result.hypotheses[0].log_prob == pytest.approx(alone.log_prob, abs=1e-12)


def test_greedy_is_not_the_most_probable_sequence():
    # The lecture's point: argmax step by step is linear in T but can miss the best sequence.
    # p(y1): [0.6, 0.4]; after 0 the next token is a coin flip, after 1 it is 0.9 sure.
    model = TableStepModel(2, 2)
    model.table[0] = torch.tensor([0.6, 0.4]).log()
    model.table[1] = torch.tensor([0.5, 0.5]).log()
    model.table[2] = torch.tensor([0.9, 0.1]).log()
    start = model.start(1)
    found = greedy.decode(model, *start, 2)[0].hypotheses[0]
    best = build_decoder("exact", {}).decode(model, *start, 2)[0].hypotheses[0]
    assert found.tokens[0] == 0 and found.log_prob == pytest.approx(torch.tensor(0.3).log().item())
    assert best.tokens == [1, 0] and best.log_prob == pytest.approx(torch.tensor(0.36).log().item())
    assert BruteForce(model, 2, start).ranked()[0][0] == [1, 0]


def test_random_models_show_search_errors_too():
    errors = 0
    for seed in range(8):
        model = make_model("gru", 3, 5, None, seed=seed)
        start = model.start(2, seed=seed)
        found = greedy.decode(model, *start, 5)
        best = build_decoder("exact", {}).decode(model, *start, 5)
        errors += sum(f.hypotheses[0].log_prob < b.hypotheses[0].log_prob - 1e-9
                      for f, b in zip(found, best))
    assert errors >= 1
