"""The Elman cell of the lecture (12.2.1): h_t = tanh(W1 x_t + W2 h_{t-1} + b).

Parameters are named and shaped like ``torch.nn.RNNCell`` (weight_ih = W1, weight_hh = W2, and
b split into bias_ih + bias_hh), so ``torch.nn.RNN`` weights load directly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import seqkit
from seqkit.plugins.cells._sequence import (
    add_torch_rnn_parameters,
    padded_for_torch_kernel,
    read_at_lengths,
    run_sequence,
    stacked_weights,
    use_torch_kernel,
)
from seqkit.plugins.cells._tanh_kernel import TanhSequence


class TanhCell(seqkit.Cell):
    """h_t = tanh(W1 x_t + W2 h_{t-1} + b)."""

    residual = False
    # torch has a fused tanh RNN on both (cuDNN's on CUDA); the faster of it and seqkit's kernel
    # is measured per shape (seqkit.nn.kernels). Not for the residual subclass: torch has none.
    torch_kernel_devices = {"cpu", "cuda"}

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        add_torch_rnn_parameters(self, gates=1)

    def project(self, x):
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)

    def recur(self, p_t, h):
        h_t = torch.tanh(torch.addmm(p_t, h, self.weight_hh.t()))
        if self.residual:
            h_t = h + h_t
        return h_t, h_t

    @staticmethod
    def stack_step(cells, x_t, states):
        """One step through every layer in one torch.rnn_tanh call (nn.RNN(num_layers=L)'s)."""
        out, h = torch.rnn_tanh(x_t.unsqueeze(1), torch.stack(states), stacked_weights(cells), True,
                                len(cells), 0.0, False, False, True)
        return out[:, 0], list(h.unbind(0))

    def forward(self, inputs, state=None, lengths=None):
        if state is None:
            state = self.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
        if not self.residual and use_torch_kernel(self, inputs, lengths):
            x, weight_ih = (inputs, self.weight_ih) if lengths is None else \
                padded_for_torch_kernel(self, inputs, lengths)
            weights = (weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
            out, h = torch.rnn_tanh(x, state.unsqueeze(0), weights, True, 1, 0.0,
                                    self.training, False, True)
            return (out, h[0]) if lengths is None else read_at_lengths(out, lengths, state)

        def kernel(p, h0):
            out = TanhSequence.apply(p, h0, self.weight_hh, self.residual)
            return out, out
        return run_sequence(self, inputs, state, lengths, kernel)


@seqkit.hookimpl
def register_cells(register):
    register("tanh", TanhCell)
