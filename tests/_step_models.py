"""Tiny step models for the decoder tests, and brute-force scoring of every sequence.

Three models: a random LSTM and a random GRU (stepped with nn.LSTMCell / nn.GRUCell, scored
independently with the whole-sequence nn.LSTM / nn.GRU), and a table model that gives every
prefix its own arbitrary next-token distribution (the fully connected model of the lecture).
tests/decoding/test_decoding_models.py checks them; the decoder tests use them.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn


class RnnStepModel(nn.Module):
    """Embedding -> one LSTM or GRU cell -> linear -> log_softmax, in float64, batch-first state."""

    def __init__(self, vocab_size: int, end_token: int | None = None, cell: str = "lstm",
                 hidden: int = 8, seed: int = 0, sharpness: float = 2.0):
        super().__init__()
        torch.manual_seed(seed)
        self.vocab_size, self.end_token, self.kind = vocab_size, end_token, cell
        self.embed = nn.Embedding(vocab_size, hidden)
        self.cell = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(hidden, hidden)
        self.head = nn.Linear(hidden, vocab_size)
        with torch.no_grad():  # peakier distributions than the default init, so decoders disagree
            self.head.weight.mul_(sharpness * 4)
            self.embed.weight.mul_(sharpness)
        self.double()
        self.steps = 0  # rows stepped, to check the cost of a decoder
        self.widest = 0  # the most rows stepped at once

    def start(self, batch: int = 1, seed: int = 0):
        """(state, tokens): distinct random start states per batch entry, as after a prompt."""
        g = torch.Generator().manual_seed(seed)
        h = torch.randn(batch, self.cell.hidden_size, generator=g, dtype=torch.float64)
        state = (h, torch.randn(h.shape, generator=g, dtype=torch.float64)) if self.kind == "lstm" else h
        return state, torch.randint(self.vocab_size, (batch,), generator=g)

    def step(self, tokens, state):
        self.steps += tokens.shape[0]
        self.widest = max(self.widest, tokens.shape[0])
        out = self.cell(self.embed(tokens), state)
        h = out[0] if self.kind == "lstm" else out
        return self.head(h).log_softmax(-1), out

    @torch.no_grad()
    def score(self, sequences: list[list[int]], state, token, index: int = 0) -> torch.Tensor:
        """Log-probabilities of whole sequences from start ``index``, with the fused nn.LSTM/nn.GRU
        (a different code path from ``step``). Sequences may differ in length."""
        width = max(map(len, sequences))
        padded = torch.tensor([[token[index].item()] + s[:-1] + [0] * (width - len(s))
                               for s in sequences])
        rnn = (nn.LSTM if self.kind == "lstm" else nn.GRU)(self.cell.input_size, self.cell.hidden_size,
                                                            batch_first=True).double()
        rnn.weight_ih_l0.copy_(self.cell.weight_ih)
        rnn.weight_hh_l0.copy_(self.cell.weight_hh)
        rnn.bias_ih_l0.copy_(self.cell.bias_ih)
        rnn.bias_hh_l0.copy_(self.cell.bias_hh)
        n = len(sequences)
        if self.kind == "lstm":
            start = tuple(s[index:index + 1].expand(n, -1).unsqueeze(0).contiguous() for s in state)
        else:
            start = state[index:index + 1].expand(n, -1).unsqueeze(0).contiguous()
        out, _ = rnn(self.embed(padded), start)
        log_probs = self.head(out).log_softmax(-1)
        targets = torch.tensor([s + [0] * (width - len(s)) for s in sequences])
        inside = torch.arange(width) < torch.tensor([len(s) for s in sequences]).unsqueeze(1)
        return (log_probs.gather(2, targets.unsqueeze(2)).squeeze(2) * inside).sum(1)


class TableStepModel:
    """Every prefix of up to ``length`` tokens has its own random next-token distribution.

    State: the prefix's node id in a complete V-ary tree (root 0, children of n: n*V+1 .. n*V+V),
    -1 before the start token is read.
    """

    def __init__(self, vocab_size: int, length: int, end_token: int | None = None, seed: int = 0,
                 sharpness: float = 2.0):
        g = torch.Generator().manual_seed(seed)
        nodes = sum(vocab_size ** d for d in range(length + 1))
        logits = torch.randn(nodes, vocab_size, generator=g, dtype=torch.float64) * sharpness
        self.table = logits.log_softmax(-1)
        self.vocab_size, self.end_token = vocab_size, end_token
        self.steps = 0
        self.widest = 0

    def start(self, batch: int = 1, seed: int = 0):
        return torch.full((batch,), -1), torch.zeros(batch, dtype=torch.long)

    def step(self, tokens, state):
        self.steps += tokens.shape[0]
        self.widest = max(self.widest, tokens.shape[0])
        node = torch.where(state < 0, 0, state * self.vocab_size + tokens + 1)
        return self.table[node], node

    def score(self, sequences, state=None, token=None, index: int = 0) -> torch.Tensor:
        """Walk the tree one sequence at a time, one token at a time."""
        totals = []
        for seq in sequences:
            node, total = 0, 0.0
            for t in seq:
                total += self.table[node, t].item()
                node = node * self.vocab_size + t + 1
            totals.append(total)
        return torch.tensor(totals, dtype=torch.float64)


def make_model(kind: str, vocab: int, length: int, end: int | None, seed: int = 0):
    if kind == "table":
        return TableStepModel(vocab, length, end, seed=seed)
    return RnnStepModel(vocab, end, cell=kind, seed=seed)


def all_sequences(vocab: int, length: int, end: int | None) -> list[list[int]]:
    """Every complete sequence: all of ``length`` tokens, cut after the first end token (deduplicated)."""
    seen = {}
    for full in itertools.product(range(vocab), repeat=length):
        seq = list(full[:full.index(end) + 1]) if end is not None and end in full else list(full)
        seen[tuple(seq)] = seq
    return list(seen.values())


class BruteForce:
    """Score every sequence one way (not through any decoder) and derive the exact answers."""

    def __init__(self, model, length: int, start, index: int = 0):
        state, token = start
        self.length, self.vocab, self.end = length, model.vocab_size, model.end_token
        self.sequences = all_sequences(self.vocab, length, self.end)
        self.log_probs = model.score(self.sequences, state, token, index)

    def ranked(self, key=None) -> list[tuple[list[int], float]]:
        scores = self.log_probs if key is None else key(self.log_probs, self.sequences)
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        return [(self.sequences[i], self.log_probs[i].item()) for i in order]

    def marginals(self) -> torch.Tensor:
        """(V, T): p(y_s = v), a finished sequence counting as the end token at later positions."""
        table = torch.zeros(self.vocab, self.length, dtype=torch.float64)
        for seq, lp in zip(self.sequences, self.log_probs.exp().tolist()):
            padded = seq + [self.end] * (self.length - len(seq))
            for s, v in enumerate(padded):
                table[v, s] += lp
        return table

    def probability(self, seq) -> float:
        return self.log_probs[self.sequences.index(list(seq))].exp().item()
