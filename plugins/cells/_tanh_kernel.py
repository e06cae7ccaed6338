"""Whole-sequence kernel of the tanh and residual cells, with a hand-written backward.

Forward:  h_t = tanh(p_t + h_{t-1} W_hh^T)  (+ h_{t-1} for the residual cell),
where p = x W_ih^T + b is projected for all steps at once outside the kernel.

Autograd through a Python loop records T small matrix products for dW_hh and a graph node
per operation. Here the forward runs without a graph into preallocated buffers, and the
backward walks the sequence once to get every step's pre-activation gradient, then forms
dW_hh as ONE matrix product over all steps: (hidden, time*batch) x (time*batch, hidden).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seqkit.plugins.cells._sequence import outer_sum, tanh_backward


class TanhSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh, residual: bool):
        out = torch.empty_like(p)
        w_t = weight_hh.t()
        h = h0
        for t in range(p.shape[0]):
            a = torch.addmm(p[t], h, w_t, out=out[t]).tanh_()
            h = a.add_(h) if residual else a
        ctx.residual = residual
        ctx.save_for_backward(h0, weight_hh, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out = ctx.saved_tensors
        h_previous = [h0, *out[:-1]]
        d_pre = torch.empty_like(out)
        tanh = torch.empty_like(h0)  # the residual cell's tanh term, h_t − h_{t-1}
        dh, dh_next = d_out[-1].clone(memory_format=torch.contiguous_format), torch.empty_like(h0)
        for t in range(out.shape[0] - 1, -1, -1):
            a = torch.sub(out[t], h_previous[t], out=tanh) if ctx.residual else out[t]
            tanh_backward(dh, a, grad_input=d_pre[t])
            # dh_{t-1} = d_out_{t-1} (+ dh, the identity path) + d_pre W_hh
            carry = d_out[t - 1] if t else torch.zeros_like(dh)
            if ctx.residual:
                torch.add(carry, dh, out=dh_next).addmm_(d_pre[t], weight_hh)
            else:
                torch.addmm(carry, d_pre[t], weight_hh, out=dh_next)
            dh, dh_next = dh_next, dh
        return d_pre, dh, outer_sum(d_pre, out, h0), None
