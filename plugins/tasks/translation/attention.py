"""Attention for the translation decoder: which source positions it reads at each target step.

The scores between a decoder output h (the query) and each encoder output m_j (the memory):

* ``dot`` (Luong):        h · m_j                         (h and m_j must have the same size)
* ``general`` (Luong):    h^T W m_j
* ``additive`` (Bahdanau): v^T tanh(W_q h + W_k m_j + b)

The weights a_j are the softmax of the scores over the source's real positions only (padding gets
-inf before the softmax), and the context is Σ_j a_j m_j. ``prepare`` zeroes the memory at padding
once per input, so whatever an encoder leaves there (a NaN) never reaches a result: a weight of
exactly 0 times a NaN would still be a NaN.
"""
from __future__ import annotations

import torch
from torch import nn

SCORES = ("dot", "general", "additive")


class Attention(nn.Module):
    """Attention of kind ``score`` from decoder outputs of ``query_size`` features over encoder
    outputs of ``memory_size`` features; ``additive`` scores in ``attention_size`` features
    (default ``query_size``)."""

    def __init__(self, score: str, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"attention must be one of none, {', '.join(SCORES)}; got {score!r}")
        if score == "dot" and query_size != memory_size:
            raise ValueError(f"attention='dot' scores h · m, so the decoder's hidden size ({query_size}) "
                             f"must equal the size of the encoder's outputs ({memory_size}: hidden_size "
                             f"x directions); use attention='general' or change decoder_hidden_size")
        self.score = score
        if score == "general":
            self.query_map = nn.Linear(query_size, memory_size, bias=False)
        elif score == "additive":
            attention_size = attention_size or query_size
            self.query_map = nn.Linear(query_size, attention_size, bias=False)
            self.key_map = nn.Linear(memory_size, attention_size)
            self.vector = nn.Linear(attention_size, 1, bias=False)

    def prepare(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Once per input: the memory (batch, source, memory_size) zeroed at padding (``mask`` is
        true at real positions), and the keys the scores need of it (``additive``: W_k m_j + b,
        (batch, source, attention_size); None for the others, whose scores read the memory)."""
        memory = memory.masked_fill(~mask.unsqueeze(2), 0.0)
        return memory, self.key_map(memory) if self.score == "additive" else None

    def forward(self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor | None,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``query`` (batch, steps, query_size) against ``prepare``'s memory and keys ->
        (context (batch, steps, memory_size), weights (batch, steps, source))."""
        if self.score == "additive":
            hidden = torch.tanh(self.query_map(query).unsqueeze(2) + keys.unsqueeze(1))
            scores = self.vector(hidden).squeeze(3)
        else:
            # general: (h^T W) m_j, the map on the query side so the memory needs no keys of its own
            scores = torch.bmm(self.query_map(query) if self.score == "general" else query,
                               memory.transpose(1, 2))
        weights = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(2)
        return torch.bmm(weights, memory), weights
