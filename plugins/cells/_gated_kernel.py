"""Whole-sequence kernel of the gated cell, with a hand-written backward.

With a = p_t + h_{t-1} W_hh^T split as [candidate | gate] (p holds W1 x_t + b and W3 x_t + b'):
    c_t = tanh(a_c),  λ_t = σ(a_λ),  h_t = λ_t ⊙ h_{t-1} + (1 − λ_t) ⊙ c_t
The backward multiplies the incoming gradient by per-step coefficients computed for all
steps at once, so the reverse loop is one multiply, one fused multiply-add and one matrix
product per step; dW_hh is a single matrix product over all steps (see _tanh_kernel).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


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
            a = torch.addmm(p[t], h, w_t)
            c, lam = act[t, :, :hidden], act[t, :, hidden:]
            torch.tanh(a[:, :hidden], out=c)
            torch.sigmoid(a[:, hidden:], out=lam)
            # λ h + (1 − λ) c  ==  c + λ (h − c)
            torch.addcmul(c, lam, h - c, out=out[t])
            h = out[t]
        ctx.save_for_backward(h0, weight_hh, out, act)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out, act = ctx.saved_tensors
        time, batch, hidden = out.shape
        d_out = d_out.contiguous()
        previous = torch.cat([h0.unsqueeze(0), out[:-1]])
        c, lam = act[..., :hidden], act[..., hidden:]
        # d a_c = dh (1 − λ)(1 − c²);  d a_λ = dh (h_{t-1} − c) λ (1 − λ)
        coef = torch.cat([(1 - lam) * (1 - c * c), (previous - c) * lam * (1 - lam)], dim=2)
        coef = coef.view(time, batch, 2, hidden)
        d_pre = torch.empty_like(act)
        d_pre_split = d_pre.view(time, batch, 2, hidden)
        dh = d_out[-1]
        for t in range(time - 1, -1, -1):
            torch.mul(dh.unsqueeze(1), coef[t], out=d_pre_split[t])
            carry = torch.addcmul(d_out[t - 1] if t else torch.zeros_like(dh), dh, lam[t])
            dh = torch.addmm(carry, d_pre[t], weight_hh)
        d_weight_hh = d_pre.flatten(0, 1).t().mm(previous.flatten(0, 1))
        return d_pre, dh, d_weight_hh
