"""Whole-sequence kernel of the tanh and residual cells, with a hand-written backward.

Forward:  h_t = tanh(p_t + h_{t-1} W_hh^T)  (+ h_{t-1} for the residual cell),
where p = x W_ih^T + b is projected for all steps at once outside the kernel.

Autograd through a Python loop records T small matrix products for dW_hh and a graph node
per operation. Here the forward runs without a graph, and the backward walks the sequence
once to get every step's pre-activation gradient, then forms dW_hh as ONE matrix product
over all steps: (hidden, time*batch) x (time*batch, hidden).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class TanhSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh, residual: bool):
        out = torch.empty_like(p)
        w_t = weight_hh.t()
        h = h0
        for t in range(p.shape[0]):
            torch.tanh(torch.addmm(p[t], h, w_t), out=out[t])
            if residual:
                out[t] += h
            h = out[t]
        ctx.residual = residual
        ctx.save_for_backward(h0, weight_hh, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out = ctx.saved_tensors
        d_out = d_out.contiguous()
        previous = torch.cat([h0.unsqueeze(0), out[:-1]])
        activation = out - previous if ctx.residual else out
        slope = 1 - activation * activation  # tanh' at every step, in one pass
        d_pre = torch.empty_like(out)
        dh = d_out[-1]
        for t in range(out.shape[0] - 1, -1, -1):
            torch.mul(dh, slope[t], out=d_pre[t])
            carry = d_out[t - 1] if t else torch.zeros_like(dh)
            if ctx.residual:
                carry = carry + dh
            dh = torch.addmm(carry, d_pre[t], weight_hh)
        d_weight_hh = d_pre.flatten(0, 1).t().mm(previous.flatten(0, 1))
        return d_pre, dh, d_weight_hh, None
