"""Whole-sequence kernel of the LSTM cell (torch.nn.LSTM's equations), with a hand-written backward.

With a_t = p_t + h_{t-1} W_hh^T split as [i | f | g | o] (p holds x_t W_ih^T + b_ih + b_hh):
    i, f, o = σ(a_i), σ(a_f), σ(a_o),  g = tanh(a_g),  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)
It returns every step's cell state too, so padded batches can read each sequence's final
(h, c) at its own length. The backward precomputes each gate's derivative for all steps at
once, walks the sequence once and forms dW_hh in one matrix product (see _tanh_kernel).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


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
            a = torch.addmm(p[t], h, w_t)
            torch.sigmoid(a, out=act[t])
            i, f, g, o = act[t].split(hidden, dim=1)
            torch.tanh(a[:, 2 * hidden:3 * hidden], out=g)
            torch.mul(f, c, out=cells[t]).addcmul_(i, g)
            torch.mul(o, torch.tanh(cells[t]), out=out[t])
            h, c = out[t], cells[t]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(h0, c0, weight_hh, out, cells, act)
        return out, cells

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_cells):
        h0, c0, weight_hh, out, cells, act = ctx.saved_tensors
        time, batch, hidden = out.shape
        d_out = torch.zeros_like(out) if d_out is None else d_out.contiguous()
        previous_h = torch.cat([h0.unsqueeze(0), out[:-1]])
        previous_c = torch.cat([c0.unsqueeze(0), cells[:-1]])
        i, f, g, o = act.split(hidden, dim=2)
        tanh_c = torch.tanh(cells)
        to_cell = o * (1 - tanh_c * tanh_c)  # dc_t += dh_t * to_cell
        # d a_{i,f,g} = dc_t * coef;  d a_o = dh_t * tanh(c_t) o (1 − o)
        coef = torch.stack([g * i * (1 - i), previous_c * f * (1 - f), i * (1 - g * g)], dim=2)
        coef_o = tanh_c * o * (1 - o)
        d_pre = torch.empty_like(act)
        d_pre_split = d_pre.view(time, batch, 4, hidden)
        dh, dc_carry = d_out[-1], torch.zeros_like(h0)
        for t in range(time - 1, -1, -1):
            if d_cells is not None:
                dc_carry = dc_carry + d_cells[t]
            dc = torch.addcmul(dc_carry, dh, to_cell[t])
            torch.mul(dc.unsqueeze(1), coef[t], out=d_pre_split[t, :, :3])
            torch.mul(dh, coef_o[t], out=d_pre_split[t, :, 3])
            dc_carry = dc * f[t]
            dh = torch.addmm(d_out[t - 1] if t else torch.zeros_like(dh), d_pre[t], weight_hh)
        d_weight_hh = d_pre.flatten(0, 1).t().mm(previous_h.flatten(0, 1))
        return d_pre, dh, dc_carry, d_weight_hh
