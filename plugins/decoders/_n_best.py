"""The n most probable complete sequences of each input, kept on the device while a search runs."""
from __future__ import annotations

import torch


def rank_within(groups: torch.Tensor) -> torch.Tensor:
    """For each element of ``groups`` (n,), how many earlier elements share its group (0, 1, ...)."""
    order = groups.argsort(stable=True)
    grouped = groups.index_select(0, order)
    position = torch.arange(groups.numel(), device=groups.device)
    starts = torch.ones_like(grouped, dtype=torch.bool)
    starts[1:] = grouped[1:] != grouped[:-1]
    first = torch.where(starts, position, 0).cummax(0).values  # where each element's group starts
    rank = torch.empty_like(position)
    rank[order] = position - first
    return rank


def ranked(groups: torch.Tensor, log_prob: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The order that sorts sequences by group, then log-probability (highest first), then tokens
    (lowest id first at the first position where two differ): a total order, so that ties in
    log-probability come out the same however the search found them."""
    order = log_prob.argsort(descending=True, stable=True)
    order = order.index_select(0, groups.index_select(0, order).argsort(stable=True))
    g, lp = groups.index_select(0, order), log_prob.index_select(0, order)
    if not bool(((g[1:] == g[:-1]) & (lp[1:] == lp[:-1])).any()):
        return order  # no two sequences of one group tie: the token order is never needed
    order = torch.arange(groups.numel(), device=groups.device)
    for column in reversed(range(tokens.shape[1])):  # a stable sort per key, least significant first
        order = order.index_select(0, tokens[:, column].index_select(0, order).argsort(stable=True))
    order = order.index_select(0, log_prob.index_select(0, order).argsort(descending=True, stable=True))
    return order.index_select(0, groups.index_select(0, order).argsort(stable=True))


class NBest:
    """Per input, the ``n`` best complete sequences found so far: ``log_prob`` (inputs, n), best
    first, ``-inf`` where fewer were found, and their ``tokens`` (inputs, n, length), -1 past the end.

    Sequences of probability zero are never kept: none the model can produce.
    """

    def __init__(self, inputs: int, n: int, length: int, device):
        self.n, self.length = n, length
        self.log_prob = torch.full((inputs, n), -torch.inf, dtype=torch.float64, device=device)
        self.tokens = torch.full((inputs, n, length), -1, dtype=torch.long, device=device)

    def worst(self) -> torch.Tensor:
        """(inputs,) the n-th best log-probability: a sequence below it cannot enter (-inf until n
        sequences are held)."""
        return self.log_prob[:, -1]

    def merge(self, inputs: torch.Tensor, log_prob: torch.Tensor, tokens: torch.Tensor) -> None:
        """Offer complete sequences: ``inputs`` (k,) they belong to, ``log_prob`` (k,), ``tokens``
        (k, length)."""
        held = torch.isfinite(self.log_prob.view(-1))
        count, n = self.log_prob.shape
        owners = torch.arange(count, device=inputs.device).repeat_interleave(n)
        groups = torch.cat([owners[held], inputs])
        scores = torch.cat([self.log_prob.view(-1)[held], log_prob])
        rows = torch.cat([self.tokens.view(-1, self.length)[held], tokens])
        order = ranked(groups, scores, rows)
        groups, scores, rows = groups[order], scores[order], rows[order]
        rank = rank_within(groups)
        kept = rank < n
        self.log_prob.fill_(-torch.inf)
        self.tokens.fill_(-1)
        self.log_prob[groups[kept], rank[kept]] = scores[kept]
        self.tokens[groups[kept], rank[kept]] = rows[kept]
