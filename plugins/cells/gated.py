"""The gated cell of the lecture (12.2.4): a learned gate λ mixes the old state and a candidate.

    h_t = λ ⊙ h_{t-1} + (1 − λ) ⊙ tanh(W1 x_t + W2 h_{t-1} + b),   λ = σ(W4 h_{t-1} + W3 x_t + b')

The two input weights are stacked as ``weight_ih = [W1; W3]`` and the two recurrent ones as
``weight_hh = [W2; W4]`` (candidate rows first), so one matrix product serves both.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import seqkit
from seqkit.plugins.cells._gated_kernel import GatedSequence
from seqkit.plugins.cells._sequence import reset_uniform, run_sequence


class GatedCell(seqkit.Cell):
    """h_t = λ ⊙ h_{t-1} + (1 − λ) ⊙ tanh(W1 x_t + W2 h_{t-1} + b), λ = σ(W3 x_t + W4 h_{t-1} + b')."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size))  # [b; b']
        reset_uniform(self, hidden_size)

    def project(self, x):
        return F.linear(x, self.weight_ih, self.bias)

    def recur(self, p_t, h):
        candidate, gate = torch.addmm(p_t, h, self.weight_hh.t()).chunk(2, dim=1)
        lam = torch.sigmoid(gate)
        h_t = lam * h + (1 - lam) * torch.tanh(candidate)
        return h_t, h_t

    def forward(self, inputs, state=None, lengths=None):
        def kernel(p, h0):
            out = GatedSequence.apply(p, h0, self.weight_hh)
            return out, out
        return run_sequence(self, inputs, state, lengths, kernel)


@seqkit.hookimpl
def register_cells(register):
    register("gated", GatedCell)
