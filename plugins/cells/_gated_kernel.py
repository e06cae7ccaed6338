"""Whole-sequence kernel of the gated cell, with a hand-written backward.

With a = p_t + h_{t-1} W_hh^T split as [candidate | gate] (p holds W1 x_t + b and W3 x_t + b'):
    c_t = tanh(a_c),  λ_t = σ(a_λ),  h_t = λ_t ⊙ h_{t-1} + (1 − λ_t) ⊙ c_t
The backward walks the sequence once, computing each step's pre-activation gradient while
its activations are in cache, and forms dW_hh in one matrix product (see _tanh_kernel).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seqkit.plugins.cells._sequence import outer_sum


class GatedSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh):
        time, batch, gates = p.shape
        hidden = gates // 2
        out = p.new_empty(time, batch, hidden)
        act = torch.empty_like(p)  # [c_t | λ_t] per step, kept for the backward
        w_t = weight_hh.t()
        h = h0
        for t in range(time):
            a = torch.addmm(p[t], h, w_t, out=act[t])
            c, lam = a[:, :hidden].tanh_(), a[:, hidden:].sigmoid_()
            h = torch.addcmul(c, lam, h - c, out=out[t])  # λ h + (1 − λ) c  ==  c + λ (h − c)
        ctx.save_for_backward(h0, weight_hh, out, act)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out, act = ctx.saved_tensors
        time, batch, hidden = out.shape
        d_out = d_out.contiguous()
        d_pre = torch.empty_like(act)
        dh = d_out[-1]
        for t in range(time - 1, -1, -1):
            c, lam = act[t].split(hidden, dim=1)
            d_c, d_lam = d_pre[t].split(hidden, dim=1)
            h_previous = out[t - 1] if t else h0
            # candidate: dh (1 − λ)(1 − c²);  gate: dh (h_{t-1} − c) λ (1 − λ)
            torch.mul(dh, 1 - lam, out=d_c).addcmul_(d_c * c, c, value=-1)
            torch.sub(h_previous, c, out=d_lam).mul_(dh).mul_(lam - lam * lam)
            carry = torch.addcmul(d_out[t - 1] if t else torch.zeros_like(dh), dh, lam)
            dh = carry.addmm_(d_pre[t], weight_hh)
        return d_pre, dh, outer_sum(d_pre, out, h0)
