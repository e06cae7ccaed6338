"""Beam search: keep the ``beam_size`` most probable prefixes at every step, batched over inputs."""
from __future__ import annotations

import torch

import seqkit
from seqkit import Option
from seqkit.contracts import Decoder
from seqkit.state import select_state

from ._common import count_sequences, pack

NEG_INF = float("-inf")


class Beam(Decoder):
    """Beam search with an n-best list and length normalisation.

    Prefixes are ranked by log-probability while they grow. A sequence that produces the end token
    leaves the beam for a pool of finished ones, so the beam always holds ``beam_size`` live
    prefixes. At the end, finished and full-length sequences are ranked by
    ``log_prob / length ** length_penalty``: 0 compares raw log-probabilities, 1 the average per
    token, values between penalise short outputs less. Without an end token every output has the
    same length and the penalty changes nothing.

    The model steps real prefixes only: each input's start once (not once per slot), and with raw
    scores (no length penalty) an input stops being stepped as soon as no live prefix can enter its
    ``n_best``, so a batch costs what its inputs need, not its slowest input's length for all.
    """

    options = {
        "beam_size": Option(5, min=1, help="prefixes kept per step (clipped to the sequences that exist)"),
        "n_best": Option(1, min=1, help="best hypotheses returned per input"),
        "length_penalty": Option(0.0, min=0.0,
                                 help="rank by log_prob / length**alpha: 0 off, 1 average per token"),
    }

    def rows_per_input(self, model, length):
        """The beam's width: beam_size, or fewer where fewer sequences exist. Sequences only grow
        in number with the length, from beam_size + 1 tokens on past any beam (V >= 2)."""
        size = self.config["beam_size"]
        return min(size, count_sequences(model.vocab_size, min(length, size + 1), model.end_token))

    def planned_rows(self, model, batch, length):
        """Each input's real prefixes at every depth: its start alone, then live**depth of them
        until they fill the beam (live: the symbols other than the end symbol); an upper bound
        where inputs stop early."""
        width = self.rows_per_input(model, length)
        live = model.vocab_size - (model.end_token is not None)
        rows, depth, prefixes = 0, 0, 1
        while depth < length and prefixes < width:
            rows, depth, prefixes = rows + prefixes, depth + 1, prefixes * live
            if live <= 1:  # one prefix per depth (or none after the first): never fills a beam
                break
        return batch * (rows + (length - depth) * min(width, prefixes))

    def ineffective_options(self, model):
        if model.end_token is None and self.config["length_penalty"] != 0.0:
            return {"length_penalty": "has no effect: this task's outputs have no end symbol, so "
                                      "they all have the requested length"}
        return {}

    def search(self, model, state, tokens, length):
        vocab, end, alpha = model.vocab_size, model.end_token, self.config["length_penalty"]
        batch = tokens.shape[0]
        width = self.rows_per_input(model, length)
        n_best = min(self.config["n_best"], width)
        device = tokens.device
        offsets = torch.arange(batch, device=device).unsqueeze(1) * width

        scores = torch.full((batch, width), NEG_INF, device=device)
        scores[:, 0] = 0.0  # one real start prefix per input; empty slots fill up as the beam grows
        # The model steps only the real prefixes of the inputs still searched: ``stepped`` lists
        # their slots (input * width + slot), the rows of ``state``; first each input's start alone.
        stepped = offsets.view(-1)
        picked, parents = [], []  # per step (batch, width): token chosen, slot it extends
        pool = _FinishedPool(batch, width, device)
        slots = torch.arange(width, device=device).expand(batch, width)
        end_tokens = torch.full_like(slots, -1 if end is None else end)
        steps = 0
        for t in range(length):
            log_probs, state = model.step(tokens, state)
            every = log_probs.new_full((batch * width, vocab), NEG_INF).index_copy_(0, stepped, log_probs)
            candidates = scores.unsqueeze(2) + every.view(batch, width, vocab)
            if end is not None:
                pool.add(candidates[:, :, end], (t + 1) ** alpha, t, end_tokens, slots)
                candidates[:, :, end] = NEG_INF
            scores, flat = candidates.view(batch, width * vocab).topk(width, dim=1)
            parent, tokens2d = flat // vocab, flat % vocab
            picked.append(tokens2d)
            parents.append(parent)
            steps = t + 1
            searching = torch.isfinite(scores)
            if end is not None:
                final = pool.final(scores, alpha, n_best)
                if bool(final.all()):
                    break
                searching &= ~final.unsqueeze(1)
            if t + 1 < length:
                following = searching.view(-1).nonzero().squeeze(1)
                row_of = torch.full((batch * width,), -1, dtype=torch.long, device=device)
                row_of[stepped] = torch.arange(stepped.shape[0], device=device)
                state = select_state(state, row_of[(parent + offsets).view(-1)[following]])
                tokens, stepped = tokens2d.view(-1)[following], following
        if steps == length:  # the live prefixes are complete sequences only when they reached `length`
            last = length - 1
            pool.add(scores, length ** alpha, last, picked[last], parents[last])
        normalised, log_prob, end_step, last_token, parent = pool.best(n_best)
        out = _backtrack(picked, parents, end_step, last_token, parent, steps)
        lengths = (end_step + 1).view(-1)
        return pack(out.view(batch * n_best, steps), lengths, log_prob.reshape(-1), batch,
                    scores=normalised.reshape(-1) if alpha else None,
                    keep=torch.isfinite(log_prob).view(-1))


class _FinishedPool:
    """The best ``size`` complete sequences per input so far, as pointers into the beam history."""

    def __init__(self, batch: int, size: int, device):
        self.size = size
        empty = torch.empty(batch, 0, device=device)
        self.normalised, self.log_prob = empty, empty
        self.end_step = self.last_token = self.parent = empty.long()

    def add(self, log_prob, divisor: float, step: int, last_token, parent):
        """Complete sequences (batch, width) whose token at ``step`` is ``last_token``, following
        beam slot ``parent`` of the step before."""
        self._merge(log_prob / divisor, log_prob, torch.full_like(parent, step), last_token, parent)

    def _merge(self, normalised, log_prob, end_step, last_token, parent):
        normalised = torch.cat([self.normalised, normalised], 1)
        keep = min(self.size, normalised.shape[1])
        self.normalised, index = normalised.topk(keep, dim=1)
        self.log_prob = torch.cat([self.log_prob, log_prob], 1).gather(1, index)
        self.end_step = torch.cat([self.end_step, end_step], 1).gather(1, index)
        self.last_token = torch.cat([self.last_token, last_token], 1).gather(1, index)
        self.parent = torch.cat([self.parent, parent], 1).gather(1, index)

    def final(self, live_scores, alpha: float, n: int) -> torch.Tensor:
        """(batch,) True for the inputs whose ``n`` best no live prefix can still change:
        log-probabilities only go down, so with raw scores (alpha 0) once the n-th best finished
        sequence of an input beats its best live prefix, the input needs no more steps."""
        if alpha != 0.0 or self.normalised.shape[1] < n:
            return torch.zeros(live_scores.shape[0], dtype=torch.bool, device=live_scores.device)
        return self.normalised[:, n - 1] >= live_scores[:, 0]

    def best(self, n: int):
        return (self.normalised[:, :n], self.log_prob[:, :n], self.end_step[:, :n],
                self.last_token[:, :n], self.parent[:, :n])


def _backtrack(picked, parents, end_step, last_token, parent, steps: int) -> torch.Tensor:
    """Tokens (batch, n, steps) of sequences given by their last step, last token and the slot they
    extend: follow the parent pointers back through the history (O(steps), no copying of prefixes).
    Positions after a sequence's last step are -1."""
    batch, n = end_step.shape
    out = torch.full((batch, n, steps), -1, dtype=torch.long, device=end_step.device)
    out.scatter_(2, end_step.unsqueeze(2), last_token.unsqueeze(2))
    slot = parent
    for s in range(steps - 2, -1, -1):
        inside = end_step > s
        out[:, :, s] = torch.where(inside, picked[s].gather(1, slot), out[:, :, s])
        slot = torch.where(inside, parents[s].gather(1, slot), slot)
    return out


@seqkit.hookimpl
def register_decoders(register):
    register("beam", Beam)
