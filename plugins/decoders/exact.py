"""Exact inference by enumeration: every sequence, its probability, the argmax and the marginals.

The cost is the number of prefixes (about V^T), not T * V^T: each prefix is stepped once, with its
state carried from its parent, and all sequences that share a prefix share that work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import seqkit
from seqkit import Option, SeqkitError
from seqkit.decoding import DecodeResult, Decoder, Hypothesis
from seqkit.state import State, select_state

from ._common import count_prefixes, count_sequences

_COUNTED = 10**18  # prefix counts up to here are computed exactly, for the refusal to quote


class Exact(Decoder):
    """Enumerate every sequence of ``length`` tokens (and, with an end token, every shorter one that
    ends in it), expanding prefixes level by level in chunks of at most ``chunk_size``.

    Extras per input: ``marginals`` (V, T) with ``p(y_s = v)``; a sequence that has ended counts as
    the end token at every later position, so each column sums to one. ``mass``: the total
    probability of the sequences enumerated (1 up to rounding: a check). ``sequences`` and
    ``prefixes``: how many sequences were scored and how many model steps that took.
    """

    options = {
        "n_best": Option(1, min=1, help="most probable sequences returned per input"),
        "max_prefixes": Option(10_000_000, min=1,
                               help="refuse to start when more prefixes than this would be expanded"),
        "chunk_size": Option(1024, min=1, help="prefixes stepped together; bounds memory"),
    }

    def search(self, model, state, tokens, length):
        vocab, end = model.vocab_size, model.end_token
        inputs = tokens.shape[0]
        limit = self.config["max_prefixes"]
        counted = max(limit, _COUNTED)
        prefixes = count_prefixes(vocab, length, end, cap=counted)
        if prefixes * inputs > limit:
            per_input = f" ({inputs} inputs x {prefixes:,})" if inputs > 1 else ""
            amount = (f"{prefixes * inputs:,} prefixes{per_input}" if prefixes <= counted
                      else f"more than {counted:,} prefixes")
            raise SeqkitError(
                f"decode: exact would expand {amount} for length "
                f"{length} over {vocab} symbols, more than max_prefixes={limit:,}; use --strategy "
                f"beam, a smaller --length, or raise --max-prefixes")
        results = []
        # Inputs are separate trees; inside one, every level is stepped in batches of chunk_size.
        for b in range(inputs):
            index = torch.tensor([b], device=tokens.device)
            enumeration = _Enumeration(model, length, self.config["n_best"], self.config["chunk_size"])
            enumeration.run(select_state(state, index), tokens.index_select(0, index))
            results.append(enumeration.result(prefixes, count_sequences(vocab, length, end)))
        return results

    def rows_per_input(self, model, length):
        return self.config["n_best"]

    def planned_rows(self, model, batch, length):
        return batch * count_prefixes(model.vocab_size, length, model.end_token,
                                      cap=self.config["max_prefixes"])


@dataclass
class _Pending:
    """Children of one stepped chunk, not yet materialised: rows ``flat`` of ``child_log_prob``."""

    state: State           # the parents' states after their step (parents, ...)
    prefix: torch.Tensor   # (parents, depth) tokens so far
    child_log_prob: torch.Tensor  # (parents, V) log p(prefix + v)
    flat: torch.Tensor     # (chunk,) indices into parents * V: which children this chunk holds


class _Enumeration:
    """Depth-first over chunks, breadth-first inside one: memory holds at most one parent chunk
    per level, so it is O(T * chunk_size) states however many sequences there are."""

    def __init__(self, model, length: int, n_best: int, chunk_size: int):
        self.model, self.length, self.n_best, self.chunk_size = model, length, n_best, chunk_size
        self.vocab, self.end = model.vocab_size, model.end_token
        self.marginals = None
        self.ended = None    # (T,) probability of ending exactly at each position
        self.mass = None
        self.best_log_prob = self.best_tokens = None

    def run(self, state: State, last: torch.Tensor) -> None:
        device = last.device
        self.marginals = torch.zeros(self.vocab, self.length, dtype=torch.float64, device=device)
        self.ended = torch.zeros(self.length, dtype=torch.float64, device=device)
        self.mass = torch.zeros((), dtype=torch.float64, device=device)
        self.best_log_prob = torch.empty(0, dtype=torch.float64, device=device)
        self.best_tokens = torch.empty(0, self.length, dtype=torch.long, device=device)
        log_prob = torch.zeros(1, dtype=torch.float64, device=device)
        stack = self._expand(state, last, log_prob, torch.empty(1, 0, dtype=torch.long, device=device))
        while stack:
            pending = stack.pop()
            parent, token = pending.flat // self.vocab, pending.flat % self.vocab
            stack += self._expand(select_state(pending.state, parent), token,
                                  pending.child_log_prob.view(-1).index_select(0, pending.flat),
                                  torch.cat([pending.prefix.index_select(0, parent), token.unsqueeze(1)], 1))

    def _expand(self, state, last, log_prob, prefix) -> list[_Pending]:
        """Step one chunk of prefixes of equal depth; record what ends, return the rest (reversed,
        so that the stack pops them in order)."""
        depth = prefix.shape[1]
        step_log_probs, state = self.model.step(last, state)
        child = log_prob.unsqueeze(1) + step_log_probs.to(torch.float64)  # (chunk, V)
        child_prob = child.exp()
        # p(y_depth = v) is the total probability of the prefixes that put v there.
        self.marginals[:, depth] += child_prob.sum(0)
        if depth == self.length - 1:  # every child is a complete sequence
            self.mass += child_prob.sum()
            self._keep_best(prefix, child, torch.arange(self.vocab, device=last.device))
            return []
        live = torch.arange(self.vocab, device=last.device)
        if self.end is not None:
            ended = child_prob[:, self.end].sum()
            self.ended[depth] += ended
            self.mass += ended
            self._keep_best(prefix, child[:, self.end:self.end + 1],
                            torch.tensor([self.end], device=last.device))
            live = live[live != self.end]
        flat = (torch.arange(prefix.shape[0], device=last.device).unsqueeze(1) * self.vocab
                + live).view(-1)
        chunks = flat.split(self.chunk_size)
        return [_Pending(state, prefix, child, chunk) for chunk in reversed(chunks)]

    def _keep_best(self, prefix, log_prob, tokens) -> None:
        """Merge complete sequences ``prefix + tokens[j]`` with ``log_prob`` (rows, J) into the n best."""
        flat = log_prob.reshape(-1)
        top, index = flat.topk(min(self.n_best, flat.numel()))
        rows, cols = index // tokens.numel(), index % tokens.numel()
        depth = prefix.shape[1]
        candidates = torch.full((top.numel(), self.length), -1, dtype=torch.long, device=flat.device)
        candidates[:, :depth] = prefix.index_select(0, rows)
        candidates[:, depth] = tokens.index_select(0, cols)
        merged = torch.cat([self.best_log_prob, top])
        self.best_log_prob, order = merged.topk(min(self.n_best, merged.numel()))
        self.best_tokens = torch.cat([self.best_tokens, candidates]).index_select(0, order)

    def result(self, prefixes: int, sequences: int) -> DecodeResult:
        if self.end is not None:  # an ended sequence shows the end token at every later position
            self.marginals[self.end] += self.ended.cumsum(0) - self.ended
        # A sequence of probability zero (a token the model rules out with -inf) is none the model
        # can produce: n_best beyond the possible ones returns fewer, as beam search does.
        hypotheses = [Hypothesis([t for t in row if t >= 0], lp)
                      for row, lp in zip(self.best_tokens.tolist(), self.best_log_prob.tolist())
                      if lp > -math.inf]
        return DecodeResult(hypotheses, {"marginals": self.marginals.cpu(), "mass": float(self.mass),
                                         "sequences": sequences, "prefixes": prefixes})


@seqkit.hookimpl
def register_decoders(register):
    register("exact", Exact)
