"""The character language model: embedding (or one-hot) -> seqkit.Recurrent -> linear head."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from seqkit import Recurrent


class CharLanguageModel(nn.Module):
    """``forward(tokens (batch, time), states=None, lengths=None) -> (logits (batch, time, vocab), states)``.

    ``embedding_size=0`` feeds one-hot vectors, as the lecture does; the first layer's input
    weights then play the role of the embedding.
    """

    def __init__(self, vocab_size: int, embedding_size: int, cell, hidden_size: int, layers: int = 1,
                 dropout: float = 0.0, **cell_options):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_size) if embedding_size else None
        self.recurrent = Recurrent(cell, embedding_size or vocab_size, hidden_size, layers=layers,
                                   dropout=dropout, **cell_options)
        self.head = nn.Linear(hidden_size, vocab_size)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return F.one_hot(tokens, self.vocab_size).to(self.head.weight.dtype)
        return self.embedding(tokens)

    def features(self, tokens, states=None, lengths=None):
        """Last layer's outputs (batch, time, hidden) and the final states, before the head."""
        return self.recurrent(self.embed(tokens), states, lengths)

    def forward(self, tokens, states=None, lengths=None):
        outputs, states = self.features(tokens, states, lengths)
        return self.head(outputs), states
