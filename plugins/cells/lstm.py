"""The LSTM cell, numerically identical to ``torch.nn.LSTM`` given the same weights.

Parameters have torch's names, shapes and gate order (weight_ih, weight_hh, bias_ih, bias_hh;
gates i, f, g, o), so ``torch.nn.LSTMCell`` state dicts load directly. The state is ``(h, c)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import seqkit
from seqkit.plugins.cells._lstm_kernel import LSTMSequence
from seqkit.plugins.cells._sequence import (
    add_torch_rnn_parameters,
    padded_for_torch_kernel,
    read_at_lengths,
    run_sequence,
    saturating_column,
    stacked_weights,
    use_torch_kernel,
)

INPUT_GATE, FORGET_GATE, OUTPUT_GATE = 0, 1, 3  # gate blocks in torch's order i, f, g, o
# Over the padding of a batch: nothing comes in, the cell state stays, nothing goes out.
FROZEN_AT_PADDING = {INPUT_GATE: -1.0, FORGET_GATE: 1.0, OUTPUT_GATE: -1.0}


class LSTMCell(seqkit.Cell):
    """Long short-term memory: c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t)."""

    # torch has a fused LSTM on both (cuDNN's on CUDA); the faster of it and seqkit's kernel is
    # measured per shape (seqkit.nn.kernels).
    torch_kernel_devices = {"cpu", "cuda"}

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        add_torch_rnn_parameters(self, gates=4)
        # Not a parameter nor saved: follows the cell's device and dtype, built once.
        self.register_buffer("padding_column", saturating_column(hidden_size, 4, FROZEN_AT_PADDING),
                             persistent=False)

    def initial_state(self, batch_size, device=None, dtype=None):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return zeros, zeros.clone()

    def project(self, x):
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)

    def recur(self, p_t, state):
        h, c = state
        i, f, g, o = torch.addmm(p_t, h, self.weight_hh.t()).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)

    def step(self, x_t, state):
        # One step at a time (decoding): torch's fused cell, what nn.LSTMCell runs.
        h, c = torch.lstm_cell(x_t, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h, (h, c)

    @staticmethod
    def stack_step(cells, x_t, states):
        """One step through every layer in one torch.lstm call (what nn.LSTM(num_layers=L) runs)."""
        h0 = torch.stack([h for h, _ in states])
        c0 = torch.stack([c for _, c in states])
        out, h, c = torch.lstm(x_t.unsqueeze(1), (h0, c0), stacked_weights(cells), True, len(cells),
                               0.0, False, False, True)
        return out[:, 0], list(zip(h.unbind(0), c.unbind(0)))

    def forward(self, inputs, state=None, lengths=None):
        if state is None:
            state = self.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
        if use_torch_kernel(self, inputs, lengths):
            h0, c0 = state
            x, weight_ih = inputs, self.weight_ih
            if lengths is not None:
                x, weight_ih = padded_for_torch_kernel(self, inputs, lengths, self.padding_column)
            weights = (weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
            out, h, c = torch.lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)), weights,
                                   True, 1, 0.0, self.training, False, True)
            if lengths is None:
                return out, (h[0], c[0])
            out, h = read_at_lengths(out, lengths, h0, zero_padding=False)
            return out, (h, c[0])

        def kernel(p, state):
            out, cells = LSTMSequence.apply(p, *state, self.weight_hh)
            return out, (out, cells)
        return run_sequence(self, inputs, state, lengths, kernel)


@seqkit.hookimpl
def register_cells(register):
    register("lstm", LSTMCell)
