"""Whole-sequence kernel of the GRU cell (torch.nn.GRU's equations), with a hand-written backward.

With p_t = x_t W_ih^T + b_ih + [b_hr | b_hz | 0] (the cell's ``project``) and
g_t = h_{t-1} W_hh^T + [0 | 0 | b_hn], each split as [r | z | n]:
    r = σ(p_r + g_r),  z = σ(p_z + g_z),  n = tanh(p_n + r ⊙ g_n),  h_t = n + z ⊙ (h_{t-1} − n)
torch's fused GRU is slow on CPU; this loop does one matrix product and six elementwise
operations per step, on views cut before the loop. Folding b_hr and b_hz into the projection
keeps the bias out of the per-step product (addmm with a broadcast bias costs a copy of the
product's size).

The backward walks the sequence once, computing a step's gate derivatives while its
activations are in cache, and writes them into one buffer laid out [g_n | r | z | a_n]:
its first three blocks are the gradient of g (in the row order of W_hh permuted to
[n | r | z]) and its last three the gradient of p, so neither is copied out of the other.
dW_hh is then ONE matrix product over all steps. Nothing is allocated inside the loops.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seqkit.plugins.cells._sequence import blocks, outer_sum, sigmoid_backward, tanh_backward


class GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh, bias_hn):
        hidden = h0.shape[1]
        out = p.new_empty(p.shape[0], p.shape[1], hidden)
        act = torch.empty_like(p)  # [r | z | g_n] per step, for the backward
        new = torch.empty_like(out)  # n per step
        w_t = weight_hh.t()
        h = h0
        steps = zip(p[..., :2 * hidden], p[..., 2 * hidden:], act, act[..., :2 * hidden],
                    blocks(act, hidden), new, out)
        for p_rz, p_n, a, rz, (r, z, g_n), n, h_t in steps:
            torch.mm(h, w_t, out=a)
            rz.add_(p_rz).sigmoid_()
            g_n.add_(bias_hn)
            torch.addcmul(p_n, r, g_n, out=n).tanh_()
            h = torch.lerp(n, h, z, out=h_t)
        ctx.save_for_backward(h0, weight_hh, out, act, new)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out, act, new = ctx.saved_tensors
        time, batch, hidden = out.shape
        n_r_z = torch.cat([weight_hh[2 * hidden:], weight_hh[:2 * hidden]])
        grads = act.new_empty(time, batch, 4 * hidden)  # [d g_n | d r | d z | d a_n]
        scratch = torch.empty_like(h0)
        gates, d_blocks = blocks(act, hidden), blocks(grads, hidden)
        rz, d_rz, d_g = act[..., :2 * hidden], grads[..., hidden:3 * hidden], grads[..., :3 * hidden]
        h_previous = [h0, *out[:-1]]
        dh, dh_next = d_out[-1].clone(memory_format=torch.contiguous_format), torch.empty_like(h0)
        for t in range(time - 1, -1, -1):
            (r, z, g_n), n, (d_gn, d_r, d_z, d_an) = gates[t], new[t], d_blocks[t]
            # n: d a_n = dh (1 − z)(1 − n²); it reaches g_n through r
            tanh_backward(torch.addcmul(dh, dh, z, value=-1, out=scratch), n, grad_input=d_an)
            torch.mul(d_an, r, out=d_gn)
            # r: d a_n g_n σ'(r);  z: dh (h_{t-1} − n) σ'(z)
            torch.mul(d_an, g_n, out=d_r)
            torch.sub(h_previous[t], n, out=d_z).mul_(dh)
            sigmoid_backward(d_rz[t], rz[t], grad_input=d_rz[t])
            # dh_{t-1} = d_out_{t-1} + dh z + d_g W_hh
            if t:
                torch.addcmul(d_out[t - 1], dh, z, out=dh_next)
            else:
                torch.mul(dh, z, out=dh_next)
            dh, dh_next = dh_next.addmm_(d_g[t], n_r_z), dh
        d_w = outer_sum(d_g, out, h0)
        d_w = torch.cat([d_w[hidden:], d_w[:hidden]])  # back to W_hh's [r | z | n] rows
        return grads[..., hidden:], dh, d_w, grads[..., :hidden].sum(dim=(0, 1))
