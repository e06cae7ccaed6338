"""Whole-sequence kernel of the GRU cell (torch.nn.GRU's equations), with a hand-written backward.

With p_t = x_t W_ih^T + b_ih and g_t = h_{t-1} W_hh^T + b_hh, each split as [r | z | n]:
    r = σ(p_r + g_r),  z = σ(p_z + g_z),  n = tanh(p_n + r ⊙ g_n),  h_t = n + z ⊙ (h_{t-1} − n)
torch's fused GRU is slow on CPU; this loop does one matrix product and a few elementwise
operations per step. The backward turns every step's gate derivatives into coefficients of
the incoming gradient for all steps at once, walks the sequence once (one multiply, one
fused multiply-add, one matrix product per step), and forms dW_hh in one matrix product.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class GRUSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, weight_hh, bias_hh):
        time, batch, gates = p.shape
        hidden = gates // 3
        out = p.new_empty(time, batch, hidden)
        act = p.new_empty(time, batch, 4 * hidden)  # [r | z | n | g_n] per step, for the backward
        w_t = weight_hh.t()
        h = h0
        for t in range(time):
            g = torch.addmm(bias_hh, h, w_t)
            rz, n, g_n = act[t, :, :2 * hidden], act[t, :, 2 * hidden:3 * hidden], act[t, :, 3 * hidden:]
            torch.sigmoid(torch.add(p[t, :, :2 * hidden], g[:, :2 * hidden]), out=rz)
            g_n.copy_(g[:, 2 * hidden:])
            torch.tanh(torch.addcmul(p[t, :, 2 * hidden:], rz[:, :hidden], g_n), out=n)
            torch.addcmul(n, rz[:, hidden:], h - n, out=out[t])
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
        r, z, n, g_n = act.split(hidden, dim=2)
        d_n = (1 - z) * (1 - n * n)                    # d a_n / dh_t
        d_z = (previous - n) * z * (1 - z)             # d a_z / dh_t
        d_r = d_n * g_n * r * (1 - r)                  # d a_r / dh_t
        # Gradient w.r.t. g = h W_hh^T + b_hh: the n part is scaled by r.
        coef = torch.stack([d_r, d_z, d_n * r], dim=2)  # (time, batch, 3, hidden)
        d_g = out.new_empty(time, batch, 3 * hidden)
        d_g_split = d_g.view(time, batch, 3, hidden)
        d_h_all = torch.empty_like(out)  # gradient reaching h_t (needed again for d p_n)
        d_h_all[-1] = d_out[-1]
        for t in range(time - 1, -1, -1):
            dh = d_h_all[t]
            torch.mul(dh.unsqueeze(1), coef[t], out=d_g_split[t])
            if t:
                torch.addcmul(d_out[t - 1], dh, z[t], out=d_h_all[t - 1]).addmm_(d_g[t], weight_hh)
        d_h0 = torch.addmm(d_h_all[0] * z[0], d_g[0], weight_hh)
        d_p = d_g.clone()
        d_p[..., 2 * hidden:] = d_h_all * d_n
        d_weight_hh = d_g.flatten(0, 1).t().mm(previous.flatten(0, 1))
        d_bias_hh = d_g.sum(dim=(0, 1))
        return d_p, d_h0, d_weight_hh, d_bias_hh
