"""The GRU cell, numerically identical to ``torch.nn.GRU`` given the same weights.

Parameters have torch's names, shapes and gate order (weight_ih, weight_hh, bias_ih, bias_hh;
gates r, z, n), so ``torch.nn.GRUCell`` state dicts load directly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import seqkit
from seqkit.plugins.cells._gru_kernel import GRUSequence
from seqkit.plugins.cells._sequence import (
    add_torch_rnn_parameters,
    padded_for_torch_kernel,
    read_at_lengths,
    run_sequence,
    stacked_weights,
    use_torch_kernel,
)


class GRUCell(seqkit.Cell):
    """Gated recurrent unit: h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}, n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))."""

    # torch has a fused GRU on both (cuDNN's on CUDA); which is faster than seqkit's kernel
    # depends on the machine and the shape, so it is measured (seqkit.nn.kernels).
    torch_kernel_devices = {"cpu", "cuda"}

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        add_torch_rnn_parameters(self, gates=3)

    def project(self, x):
        # b_hr and b_hz act exactly like input biases, so they are added here, once for all
        # steps; only b_hn (scaled by r) stays in the recurrent part.
        hidden = self.hidden_size
        return F.linear(x, self.weight_ih, self.bias_ih + F.pad(self.bias_hh[:2 * hidden], (0, hidden)))

    def recur(self, p_t, h):
        p_r, p_z, p_n = p_t.chunk(3, dim=1)
        g_r, g_z, g_n = torch.mm(h, self.weight_hh.t()).chunk(3, dim=1)
        r, z = torch.sigmoid(p_r + g_r), torch.sigmoid(p_z + g_z)
        n = torch.tanh(p_n + r * (g_n + self.bias_hh[2 * self.hidden_size:]))
        h_t = n + z * (h - n)
        return h_t, h_t

    def step(self, x_t, h):
        # One step at a time (decoding): torch's fused cell, what nn.GRUCell runs.
        h_t = torch.gru_cell(x_t, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h_t, h_t

    @staticmethod
    def stack_step(cells, x_t, states):
        """One step through every layer in one torch.gru call (what nn.GRU(num_layers=L) runs)."""
        out, h = torch.gru(x_t.unsqueeze(1), torch.stack(states), stacked_weights(cells), True, len(cells),
                           0.0, False, False, True)
        return out[:, 0], list(h.unbind(0))

    def forward(self, inputs, state=None, lengths=None):
        if state is None:
            state = self.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
        if use_torch_kernel(self, inputs, lengths):
            x, weight_ih = (inputs, self.weight_ih) if lengths is None else \
                padded_for_torch_kernel(self, inputs, lengths)
            weights = (weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
            out, h = torch.gru(x, state.unsqueeze(0), weights, True, 1, 0.0, self.training,
                               False, True)
            return (out, h[0]) if lengths is None else read_at_lengths(out, lengths, state)

        def kernel(p, h0):
            out = GRUSequence.apply(p, h0, self.weight_hh, self.bias_hh[2 * self.hidden_size:])
            return out, out
        return run_sequence(self, inputs, state, lengths, kernel)


@seqkit.hookimpl
def register_cells(register):
    register("gru", GRUCell)
