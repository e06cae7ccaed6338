"""The time-invariant bag of words of the lecture (12.1): h_t = h_{t-1} + W x_t.

The state after a sequence is W times the sum of its inputs, the same for every order of them:
"the man ate the hot dog" and "the hot dog ate the man" end in one state, the lecture's argument
for recurrence. seqkit's order-blind baseline (``recipes/roles.yaml``). No bias: a bias would add
t·b, a count of the steps, to the state.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import seqkit
from seqkit.plugins.cells._sequence import reset_uniform, run_sequence


class BagOfWordsCell(seqkit.Cell):
    """h_t = h_{t-1} + W x_t: a running sum of the projected inputs."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        reset_uniform(self, hidden_size)

    def project(self, x):
        return F.linear(x, self.weight_ih)

    def recur(self, p_t, h):
        h_t = h + p_t
        return h_t, h_t

    def forward(self, inputs, state=None, lengths=None):
        # the recurrence is a prefix sum: one cumsum over time instead of a loop
        def kernel(p, h0):
            out = h0.unsqueeze(0) + p.cumsum(0)
            return out, out
        return run_sequence(self, inputs, state, lengths, kernel)


@seqkit.hookimpl
def register_cells(register):
    register("bow", BagOfWordsCell)
