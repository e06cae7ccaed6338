"""The decoder tests' tiny step models (tests/_step_models.py) checked themselves: every sequence's
probability adds up to one, and the fused whole-sequence scoring agrees with stepping the cell."""
from __future__ import annotations

import pytest
import torch
from _step_models import BruteForce, make_model


@pytest.mark.parametrize("kind", ["lstm", "gru", "table"])
@pytest.mark.parametrize("end", [None, 1])
def test_every_sequence_probability_adds_up_to_one(kind, end):
    model = make_model(kind, 3, 4, end, seed=3)
    brute = BruteForce(model, 4, model.start(2, seed=1), index=1)
    assert abs(brute.log_probs.exp().sum().item() - 1.0) < 1e-9
    assert brute.marginals().sum(0).sub(1).abs().max() < 1e-9


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_fused_scoring_agrees_with_stepping_the_cell(kind):
    model = make_model(kind, 4, 5, None, seed=2)
    state, token = model.start(3, seed=5)
    seq = [3, 0, 2, 2, 1]
    total, s, t = 0.0, state, token
    for y in seq:
        log_probs, s = model.step(t, s)
        total += log_probs[2, y].item()
        t = torch.full((3,), y)
    assert model.score([seq], state, token, index=2).item() == pytest.approx(total, abs=1e-10)
