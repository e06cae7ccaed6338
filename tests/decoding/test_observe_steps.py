"""``seqkit.decoding.observe_steps``: the tokens each model step is fed, the results, and stopping a search."""
from __future__ import annotations

import pytest
from _step_models import RnnStepModel

from seqkit.decoding import observe_steps


class Stop(Exception):
    """What a callback raises to stop a search."""


@pytest.mark.parametrize("strategy,options", [("greedy", {}), ("sample", {"seed": 0})])
def test_each_step_after_the_first_is_fed_the_token_chosen_before(registry, strategy, options):
    model = RnnStepModel(7)
    state, tokens = model.start(1)
    decoder = registry.get("decoder", strategy)(**options)
    fed, done = [], []
    with observe_steps(lambda t: fed.append(t.tolist()), done.append):
        results = decoder.decode(model, state, tokens, 6)
    best = results[0].hypotheses[0].tokens
    assert fed[0] == tokens.tolist() and [f[0] for f in fed[1:]] == best[:-1] and len(fed) == 6
    assert done == [results]
    fed.clear()
    decoder.decode(model, state, tokens, 6)  # outside the block nothing is watched
    assert fed == []


def test_a_callback_that_raises_stops_the_search_and_the_blocks_nest(registry):
    model = RnnStepModel(7)
    state, tokens = model.start(2)
    decoder = registry.get("decoder", "beam")(beam_size=3)
    calls, inner = [], []

    def stop_at_third(t):
        calls.append(t.shape[0])
        if len(calls) == 3:
            raise Stop

    with observe_steps(stop_at_third):
        with observe_steps(inner.append):
            decoder.decode(model, state, tokens, 4)
        assert len(inner) == 4 and calls == []  # the inner block's callback alone
        with pytest.raises(Stop):
            decoder.decode(model, state, tokens, 50)
    assert len(calls) == 3
