"""The residual cell of the lecture (12.2.4): h_t = h_{t-1} + tanh(W1 x_t + W2 h_{t-1} + b).

The identity path carries the gradient past the tanh, against vanishing gradients. Same
parameters as the tanh cell.
"""
from __future__ import annotations

import seqkit
from seqkit.plugins.cells.tanh import TanhCell


class ResidualCell(TanhCell):
    """h_t = h_{t-1} + tanh(W1 x_t + W2 h_{t-1} + b)."""

    residual = True
    stack_step = None  # torch has no fused residual kernel


@seqkit.hookimpl
def register_cells(register):
    register("residual", ResidualCell)
