"""Whole-sequence kernel of the gated cell, with a hand-written backward.

With a = p_t + h_{t-1} W_hh^T split as [candidate | gate] (p holds W1 x_t + b and W3 x_t + b'):
    c_t = tanh(a_c),  λ_t = σ(a_λ),  h_t = λ_t ⊙ h_{t-1} + (1 − λ_t) ⊙ c_t
The backward walks the sequence once, computing each step's pre-activation gradient while
its activations are in cache, and forms dW_hh in one matrix product (see _tanh_kernel).
Nothing is allocated inside the loops.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seqkit.plugins.cells._sequence import blocks, outer_sum, sigmoid_backward, tanh_backward


class GatedSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh):
        hidden = h0.shape[1]
        out = p.new_empty(p.shape[0], p.shape[1], hidden)
        act = torch.empty_like(p)  # [c_t | λ_t] per step, kept for the backward
        w_t = weight_hh.t()
        h = h0
        for p_t, a, (c, lam), h_t in zip(p, act, blocks(act, hidden), out):
            torch.addmm(p_t, h, w_t, out=a)
            c.tanh_()
            lam.sigmoid_()
            h = torch.lerp(c, h, lam, out=h_t)  # λ h + (1 − λ) c
        ctx.save_for_backward(h0, weight_hh, out, act)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out, act = ctx.saved_tensors
        time, batch, hidden = out.shape
        d_pre = torch.empty_like(act)
        scratch = torch.empty_like(h0)
        gates, d_blocks, h_previous = blocks(act, hidden), blocks(d_pre, hidden), [h0, *out[:-1]]
        dh, dh_next = d_out[-1].clone(memory_format=torch.contiguous_format), torch.empty_like(h0)
        for t in range(time - 1, -1, -1):
            (c, lam), (d_c, d_lam) = gates[t], d_blocks[t]
            # candidate: dh (1 − λ)(1 − c²);  gate: dh (h_{t-1} − c) σ'(λ)
            tanh_backward(torch.addcmul(dh, dh, lam, value=-1, out=scratch), c, grad_input=d_c)
            sigmoid_backward(torch.sub(h_previous[t], c, out=d_lam).mul_(dh), lam, grad_input=d_lam)
            # dh_{t-1} = d_out_{t-1} + dh λ + d_pre W_hh
            if t:
                torch.addcmul(d_out[t - 1], dh, lam, out=dh_next)
            else:
                torch.mul(dh, lam, out=dh_next)
            dh, dh_next = dh_next.addmm_(d_pre[t], weight_hh), dh
        return d_pre, dh, outer_sum(d_pre, out, h0)
