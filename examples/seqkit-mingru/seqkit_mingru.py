"""minGRU (Feng et al., 2024, "Were RNNs All We Needed?") as a seqkit cell plugin.

The gate and the candidate depend on the input only, so the whole input term is hoisted by
``project`` (one matrix product for all time steps) and ``recur`` is elementwise:

    z_t = σ(W_z x_t + b_z),  h̃_t = W_h x_t + b_h,  h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
"""
import torch
from torch import nn

import seqkit


class MinGRUCell(seqkit.Cell):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.linear = nn.Linear(input_size, 2 * hidden_size)  # [gate | candidate]

    def project(self, x):
        return self.linear(x)

    def recur(self, p_t, h):
        gate, candidate = p_t.chunk(2, dim=-1)
        z = torch.sigmoid(gate)
        h = torch.lerp(h, candidate, z)  # (1 − z) h + z h̃
        return h, h


@seqkit.hookimpl
def register_cells(register):
    register("mingru", MinGRUCell)
