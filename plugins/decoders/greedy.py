"""Greedy search: the most probable next token at every step (linear in the length)."""
from __future__ import annotations

import seqkit
from seqkit.contracts import Decoder

from ._rollout import most_probable, rollout


class Greedy(Decoder):
    """``argmax_v p(y_t = v | y_<t)`` at each step. Fast, but not the most probable sequence."""

    options = {}

    def search(self, model, state, tokens, length):
        return rollout(model, state, tokens, length, choose=most_probable, groups=tokens.shape[0])


@seqkit.hookimpl
def register_decoders(register):
    register("greedy", Greedy)
