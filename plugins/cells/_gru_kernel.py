"""Whole-sequence kernel of the GRU cell (torch.nn.GRU's equations), with a hand-written backward.

With p_t = x_t W_ih^T + b_ih and g_t = h_{t-1} W_hh^T + b_hh, each split as [r | z | n]:
    r = σ(p_r + g_r),  z = σ(p_z + g_z),  n = tanh(p_n + r ⊙ g_n),  h_t = n + z ⊙ (h_{t-1} − n)
torch's fused GRU is slow on CPU; this loop does one matrix product and a few elementwise
operations per step. The backward walks the sequence once (a step's gate derivatives are
computed while its activations are in cache) and forms dW_hh and db_hh with ONE matrix
product and one sum over all steps. Nothing is allocated inside the loops: every operation
writes into a preallocated buffer, because fresh large tensors cost page faults each step.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from seqkit.plugins.cells._sequence import outer_sum


class GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh, bias_hh):
        time, batch, gates = p.shape
        hidden = gates // 3
        out = p.new_empty(time, batch, hidden)
        act = torch.empty_like(p)  # [r | z | g_n] per step, for the backward
        new = p.new_empty(time, batch, hidden)  # n per step
        scratch = torch.empty_like(h0)
        w_t = weight_hh.t()
        h = h0
        for t in range(time):
            g = torch.addmm(bias_hh, h, w_t, out=act[t])
            rz = g[:, :2 * hidden].add_(p[t, :, :2 * hidden]).sigmoid_()
            r, z, g_n = rz[:, :hidden], rz[:, hidden:], g[:, 2 * hidden:]
            n = torch.addcmul(p[t, :, 2 * hidden:], r, g_n, out=new[t]).tanh_()
            h = torch.addcmul(n, z, torch.sub(h, n, out=scratch), out=out[t])
        ctx.save_for_backward(h0, weight_hh, out, act, new)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        h0, weight_hh, out, act, new = ctx.saved_tensors
        time, batch, hidden = out.shape
        d_out = d_out.contiguous()
        d_g = torch.empty_like(act)  # gradient of g = h W_hh^T + b_hh, per step
        d_p = torch.empty_like(act)
        slope = act.new_empty(batch, 2 * hidden)  # σ' = s (1 − s) of r and z
        scratch = torch.empty_like(h0)
        dh, dh_next = d_out[-1].clone(), torch.empty_like(h0)
        for t in range(time - 1, -1, -1):
            r, z, g_n = act[t].split(hidden, dim=1)
            n, h_previous = new[t], (out[t - 1] if t else h0)
            d_gr, d_gz, d_gn = d_g[t].split(hidden, dim=1)
            torch.addcmul(act[t, :, :2 * hidden], act[t, :, :2 * hidden], act[t, :, :2 * hidden],
                          value=-1, out=slope)
            # n: d a_n = dh (1 − z)(1 − n²); it reaches g_n through r
            d_an = torch.addcmul(dh, dh, z, value=-1, out=d_p[t, :, 2 * hidden:])
            d_an.addcmul_(torch.mul(d_an, n, out=scratch), n, value=-1)
            torch.mul(d_an, r, out=d_gn)
            # z: dh (h_{t-1} − n) z (1 − z);  r: d a_n g_n r (1 − r)
            torch.sub(h_previous, n, out=d_gz).mul_(dh).mul_(slope[:, hidden:])
            torch.mul(d_an, g_n, out=d_gr).mul_(slope[:, :hidden])
            # dh_{t-1} = d_out_{t-1} + dh z + d_g W_hh
            if t:
                torch.addcmul(d_out[t - 1], dh, z, out=dh_next)
            else:
                torch.mul(dh, z, out=dh_next)
            dh, dh_next = dh_next.addmm_(d_g[t], weight_hh), dh
        d_p[..., :2 * hidden] = d_g[..., :2 * hidden]  # r and z enter p and g alike
        return d_p, dh, outer_sum(d_g, out, h0), d_g.sum(dim=(0, 1))
