"""Whole-sequence kernel of the LSTM cell (torch.nn.LSTM's equations), with a hand-written backward.

With a_t = p_t + h_{t-1} W_hh^T split as [i | f | g | o] (p holds x_t W_ih^T + b_ih + b_hh):
    i, f, o = σ(a_i), σ(a_f), σ(a_o),  g = tanh(a_g),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)
It returns every step's cell state too, so padded batches can read each sequence's final
(h, c) at its own length. The backward walks the sequence once and forms dW_hh in one
matrix product (see _tanh_kernel).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seqkit.plugins.cells._sequence import outer_sum


class LSTMSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, c0, weight_hh):
        time, batch, gates = p.shape
        hidden = gates // 4
        out = p.new_empty(time, batch, hidden)
        cells = torch.empty_like(out)
        act = torch.empty_like(p)  # [i | f | g | o] activations per step, for the backward
        w_t = weight_hh.t()
        h, c = h0, c0
        for t in range(time):
            a = torch.addmm(p[t], h, w_t, out=act[t])
            i, f, g, o = a.split(hidden, dim=1)
            a[:, :2 * hidden].sigmoid_()  # i and f
            g.tanh_()
            o.sigmoid_()
            c = torch.mul(f, c, out=cells[t]).addcmul_(i, g)
            h = torch.mul(o, torch.tanh(c), out=out[t])
        ctx.set_materialize_grads(False)  # the cell-state sequence usually gets no gradient
        ctx.save_for_backward(h0, c0, weight_hh, out, cells, act)
        return out, cells

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_cells):
        h0, c0, weight_hh, out, cells, act = ctx.saved_tensors
        time, batch, hidden = out.shape
        d_out = torch.zeros_like(out) if d_out is None else d_out.contiguous()
        d_pre = torch.empty_like(act)
        dh, dc_carry = d_out[-1], torch.zeros_like(h0)
        for t in range(time - 1, -1, -1):
            i, f, g, o = act[t].split(hidden, dim=1)
            d_i, d_f, d_g, d_o = d_pre[t].split(hidden, dim=1)
            c_previous = cells[t - 1] if t else c0
            tanh_c = torch.tanh(cells[t])
            if d_cells is not None:
                dc_carry = dc_carry + d_cells[t]
            # dc_t = carried + dh o (1 − tanh² c);  then each gate's value times its slope
            dc = torch.mul(dh, o).mul_(1 - tanh_c * tanh_c).add_(dc_carry)
            torch.mul(dc, g, out=d_i)
            torch.mul(dc, c_previous, out=d_f)
            torch.mul(dc, i, out=d_g)
            torch.mul(dh, tanh_c, out=d_o)
            slope = torch.addcmul(act[t], act[t], act[t], value=-1)  # s (1 − s) for i, f, o
            slope[:, 2 * hidden:3 * hidden] = 1 - g * g  # tanh' for g
            d_pre[t].mul_(slope)
            dc_carry = dc * f
            dh = torch.addmm(d_out[t - 1] if t else torch.zeros_like(dh), d_pre[t], weight_hh)
        return d_pre, dh, dc_carry, outer_sum(d_pre, out, h0)
