"""The batched CRF algorithms a user writes by hand in torch: the benchmarks' independent baselines."""
from __future__ import annotations

import torch


def hand_viterbi(emissions, lengths, transitions, start, end, padded=True):
    """Batched Viterbi as a user writes it: one loop over time, max over the previous tag,
    back-pointers, then one batched backtrack."""
    batch, time_steps, _ = emissions.shape
    mask = torch.arange(time_steps, device=emissions.device) < lengths.unsqueeze(1)
    score = start + emissions[:, 0]
    history = []
    for t in range(1, time_steps):
        candidates = score.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1)
        best, indices = candidates.max(dim=1)
        score = torch.where(mask[:, t].unsqueeze(1), best, score) if padded else best
        history.append(indices)
    best_score, tag = (score + end).max(dim=1)
    path = [tag]
    for t in range(time_steps - 1, 0, -1):
        previous = history[t - 1].gather(1, tag.unsqueeze(1)).squeeze(1)
        tag = torch.where(mask[:, t], previous, tag) if padded else previous
        path.append(tag)
    path = torch.stack(path[::-1], dim=1)
    return (path.masked_fill(~mask, -1) if padded else path), best_score


def hand_log_partition(emissions, lengths, transitions, start, end, padded=True):
    """The forward algorithm as a user writes it: logsumexp over the previous tag at every step."""
    time_steps = emissions.shape[1]
    mask = torch.arange(time_steps, device=emissions.device) < lengths.unsqueeze(1)
    score = start + emissions[:, 0]
    for t in range(1, time_steps):
        candidates = score.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1)
        following = torch.logsumexp(candidates, dim=1)
        score = torch.where(mask[:, t].unsqueeze(1), following, score) if padded else following
    return torch.logsumexp(score + end, dim=1)
