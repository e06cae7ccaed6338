"""Checks every decoder gets from ``Decoder.decode``: a diverged model's log-probabilities."""
from __future__ import annotations

import pytest
import torch

from seqkit.decoding import NonFiniteLogProbs, build_decoder
from test_decoding_models import TableStepModel

STRATEGIES = [("greedy", {}), ("sample", {"seed": 0, "num_samples": 2}),
              ("beam", {"beam_size": 3}), ("exact", {})]


class Spoiled(TableStepModel):
    """A table model whose distributions turn to ``bad`` from its ``after``-th step call on."""

    def __init__(self, bad: float, after: int):
        super().__init__(vocab_size=3, length=4)
        self.bad, self.after, self.calls = bad, after, 0

    def step(self, tokens, state):
        log_probs, state = super().step(tokens, state)
        self.calls += 1
        if self.calls > self.after:
            log_probs = log_probs.clone()
            log_probs[:, 1] = self.bad
        return log_probs, state


@pytest.mark.parametrize("strategy,options", STRATEGIES)
@pytest.mark.parametrize("bad,named", [(float("nan"), "nan"), (float("inf"), "inf")])
def test_non_finite_log_probs_stop_every_decoder(strategy, options, bad, named):
    model = Spoiled(bad, after=2)  # the first steps are fine: the check is on every step
    with pytest.raises(NonFiniteLogProbs, match=rf"log-probabilities are not finite \({named}\)"):
        build_decoder(strategy, options).decode(model, *model.start(2), 4)
    assert model.calls == 3


@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_impossible_tokens_are_not_an_error(strategy, options):
    """-inf is a valid log-probability (a token the model rules out); it is never chosen."""
    model = Spoiled(float("-inf"), after=0)
    results = build_decoder(strategy, options).decode(model, *model.start(2), 4)
    for result in results:
        for hypothesis in result.hypotheses:
            assert 1 not in hypothesis.tokens and torch.isfinite(torch.tensor(hypothesis.log_prob))
