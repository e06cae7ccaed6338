"""Depth-first search over the tree of prefixes, batched: the engine behind ``exact``.

Every input's prefixes are nodes of one tree; a node is stepped once (its state carried from its
parent), so sequences that share a prefix share that work. Prefixes of all inputs, and of
different depths, are stepped together, up to ``chunk_size`` rows per model step.

Without pruning it visits every prefix (enumeration: the marginals need them all). With pruning
it is branch and bound: a prefix's log-probability only falls as it grows (every step adds a
log-probability <= 0), so a prefix below the n-th best complete sequence already found for its
input can lead to nothing better and is dropped. Each input then searches depth first, ``width``
prefixes at a time: its deepest children first, the most probable first among them. Its first
descent is thus a beam search of that width, which finds good sequences early and seeds the
bound; and an input takes the same path alone as in a batch (as long as ``chunk_size`` holds
``width`` rows of every input), so its cost and its answer do not depend on the batch. The bound
is only ever the log-probability of a real sequence, and a prefix is dropped only strictly below
it, so whatever order the search takes, every sequence of the true n best is found: the result is
exact, ties included (``NBest`` ranks them by token ids).

Memory: the stack holds children not yet stepped with their parents' states. Without pruning it
holds one entry per depth at most (each at most a chunk); with pruning, only parents that still
have children are kept, at most ``width`` per input and depth. O(length * chunk_size) states,
or O(length * width * inputs) with pruning, however large the tree.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from seqkit.state import State, map_state, select_state

from ._n_best import NBest, rank_within


@dataclass
class _Entry:
    """Children not yet stepped of parents that have ``depth`` tokens and were stepped together:
    ``flat`` (k,) are indices into ``child_log_prob.view(-1)`` (parents * V), in visiting order."""

    depth: int
    state: State                  # the parents' states after their step
    prefix: torch.Tensor          # (parents, length) their tokens, -1 from position depth on
    inputs: torch.Tensor          # (parents,) the input each parent belongs to
    child_log_prob: torch.Tensor  # (parents, V) log p(prefix + v)
    flat: torch.Tensor


@dataclass
class _Rows:
    """Prefixes about to be stepped, of the depths given by ``spans``: [(depth, start, stop)]."""

    state: State
    last: torch.Tensor       # (rows,) each prefix's last token, the model's next input
    log_prob: torch.Tensor   # (rows,) float64
    prefix: torch.Tensor     # (rows, length)
    inputs: torch.Tensor     # (rows,)
    spans: list


def _cat_states(states: list[State]) -> State:
    return states[0] if len(states) == 1 else map_state(lambda *parts: torch.cat(parts), *states)


class TreeSearch:
    """One search over the trees of ``inputs`` inputs.

    ``prune``: branch and bound (else every prefix is stepped). ``width``: with pruning, the most
    prefixes of one input stepped at a time (its next ones on its own depth-first stack), so that
    an input's search takes the same path alone or in a batch. ``budget``: the most prefixes one
    input may expand; an input that would need more stops there, with its best sequences found so
    far (``proven`` False). ``marginals``: accumulate p(y_s = v) and the probability mass (needs
    ``prune`` off). After ``run``: ``best`` (an ``NBest``), ``expanded`` (inputs,) prefixes stepped
    per input, ``proven`` (inputs,) bool, and with marginals ``marginals`` (inputs, V, length) and
    ``mass`` (inputs,).
    """

    def __init__(self, model, inputs: int, length: int, n_best: int, chunk_size: int, device,
                 prune: bool, width: int | None = None, budget: int | None = None,
                 marginals: bool = False):
        self.model, self.length, self.chunk_size = model, length, chunk_size
        self.prune, self.budget = prune, budget
        self.width = width if prune else None
        self.vocab, self.end = model.vocab_size, model.end_token
        self.best = NBest(inputs, n_best, length, device)
        self.expanded = torch.zeros(inputs, dtype=torch.long, device=device)
        self.pending = torch.zeros(inputs, dtype=torch.long, device=device)  # children on the stack
        self.proven = torch.ones(inputs, dtype=torch.bool, device=device)
        self.stack: list[_Entry] = []
        self.marginals = self.ended = self.mass = None
        if marginals:
            self.marginals = torch.zeros(inputs * length, self.vocab, dtype=torch.float64, device=device)
            self.ended = torch.zeros(inputs * length, dtype=torch.float64, device=device)
            self.mass = torch.zeros(inputs, dtype=torch.float64, device=device)

    def run(self, state: State, tokens: torch.Tensor) -> None:
        count, device = tokens.shape[0], tokens.device
        rows = _Rows(state, tokens, torch.zeros(count, dtype=torch.float64, device=device),
                     torch.full((count, self.length), -1, dtype=torch.long, device=device),
                     torch.arange(count, device=device), [(0, 0, count)])
        while rows is not None:
            self._step(rows)
            rows = self._take()
        if self.marginals is not None:
            self._finish_marginals(count)

    def _found(self) -> torch.Tensor:
        """(inputs,) bool: at least one complete sequence found."""
        return torch.isfinite(self.best.log_prob[:, 0])

    def _bound(self) -> torch.Tensor:
        """(inputs,) the log-probability below which a prefix is dropped: the n-th best found,
        +inf for an input whose budget ran out (nothing of it is stepped any more)."""
        return self.best.worst().masked_fill(~self.proven & self._found(), torch.inf)

    def _count(self, owner: torch.Tensor) -> torch.Tensor:
        return torch.bincount(owner, minlength=self.pending.numel())

    def _step(self, rows: _Rows) -> None:
        """Step ``rows``; keep the complete sequences among their children, push the others."""
        vocab, last_depth = self.vocab, self.length - 1
        step_log_probs, state = self.model.step(rows.last, rows.state)
        child = rows.log_prob.unsqueeze(1) + step_log_probs.to(torch.float64)  # (rows, V)
        self.expanded += self._count(rows.inputs)
        depth = torch.cat([torch.full((stop - start,), d, device=child.device)
                           for d, start, stop in rows.spans])
        complete = (depth == last_depth).unsqueeze(1).expand(-1, vocab).clone()  # (rows, V)
        if self.end is not None:
            complete[:, self.end] = True
        if self.marginals is not None:
            self._accumulate(rows, depth, child, complete)
        self._offer(rows, depth, child, complete)
        live = ~complete
        if self.prune:  # a prefix of probability zero, or below its input's bound, leads nowhere
            live &= torch.isfinite(child) & (child >= self._bound()[rows.inputs].unsqueeze(1))
        # entries pushed shallowest first, so the deepest is stepped next (spans come deepest first)
        for d, start, stop in reversed(rows.spans):
            if d == last_depth:
                continue
            flat = live[start:stop].reshape(-1).nonzero().squeeze(1) + start * vocab
            if flat.numel():
                self._push(_Entry(d, state, rows.prefix, rows.inputs, child, flat))

    def _push(self, entry: _Entry) -> None:
        """With pruning, keep only the parents that still have children (so that the stack holds
        the states of at most ``width`` parents per input and depth), their children best first."""
        if self.prune:
            parent, order = torch.unique(entry.flat // self.vocab, return_inverse=True)
            entry = _Entry(entry.depth, select_state(entry.state, parent), entry.prefix[parent],
                           entry.inputs[parent], entry.child_log_prob[parent],
                           order * self.vocab + entry.flat % self.vocab)
            entry.flat = self._best_first(entry)
        self.pending += self._count(entry.inputs[entry.flat // self.vocab])
        self.stack.append(entry)

    def _best_first(self, entry: _Entry) -> torch.Tensor:
        """``entry.flat`` reordered: each input's children by log-probability, the inputs
        interleaved (every input's best child, then every input's second best, ...)."""
        flat = entry.flat[entry.child_log_prob.view(-1)[entry.flat].argsort(descending=True, stable=True)]
        owner = entry.inputs[flat // self.vocab]
        return flat[rank_within(owner).argsort(stable=True)]

    def _offer(self, rows, depth, child, complete) -> None:
        """Hand the complete children that could enter their input's n best to ``self.best``."""
        worthy = complete & torch.isfinite(child) & (child >= self.best.worst()[rows.inputs].unsqueeze(1))
        row, token = worthy.nonzero(as_tuple=True)
        if row.numel() == 0:
            return
        tokens = rows.prefix.index_select(0, row)
        tokens.scatter_(1, depth[row].unsqueeze(1), token.unsqueeze(1))
        self.best.merge(rows.inputs[row], child[row, token], tokens)

    def _take(self) -> _Rows | None:
        """The next rows to step, less those past their input's budget; None when none are left."""
        while True:
            taken = self._scan()
            if not taken:
                return None
            if self.budget is not None:
                taken = self._within_budget(taken)
            if taken:
                return self._rows(taken)

    def _scan(self) -> list:
        """Up to ``chunk_size`` children from the top of the stack down (deepest first), at most
        ``width`` per input, dropping on the way those now below their input's bound."""
        room, bound = self.chunk_size, self._bound() if self.prune else None
        quota = None if self.width is None else torch.full_like(self.pending, self.width)
        taken, kept = [], []
        while self.stack and room:
            if quota is not None and not bool(((quota > 0) & (self.pending > 0)).any()):
                break  # every input with children left has had its share
            entry = self.stack.pop()
            flat = entry.flat
            owner = entry.inputs[flat // self.vocab]
            if bound is not None:
                alive = entry.child_log_prob.view(-1)[flat] >= bound[owner]
                self.pending -= self._count(owner[~alive])
                flat, owner = flat[alive], owner[alive]
            chosen = torch.ones_like(flat, dtype=torch.bool)
            if quota is not None:
                chosen = rank_within(owner) < quota[owner]
            chosen &= chosen.cumsum(0) <= room
            if bool(chosen.any()):
                taken.append((entry, flat[chosen]))
                room -= int(chosen.sum())
                counted = self._count(owner[chosen])
                self.pending -= counted
                if quota is not None:
                    quota -= counted
            if not bool(chosen.all()):
                kept.append(replace(entry, flat=flat[~chosen]))
        self.stack.extend(reversed(kept))
        return taken

    def _within_budget(self, taken: list) -> list:
        """Drop the rows of inputs that would expand more than ``budget`` prefixes; such an input
        is no longer proven and stops (its bound becomes +inf). One stopped before any of its
        sequences was complete first finishes its deepest prefix greedily, one row per step (at
        most ``length`` steps more), so that every input gets an output."""
        owners = [entry.inputs[flat // self.vocab] for entry, flat in taken]
        owner = torch.cat(owners)
        rank = rank_within(owner)
        allowed = rank < (self.budget - self.expanded)[owner]
        if bool(allowed.all()):
            return taken
        self.proven[owner[~allowed]] = False
        allowed |= (rank == 0) & ~self._found()[owner]
        pieces = allowed.split([o.numel() for o in owners])
        return [(entry, flat[ok]) for (entry, flat), ok in zip(taken, pieces) if bool(ok.any())]

    def _rows(self, taken: list) -> _Rows:
        states, last, log_prob, prefix, inputs, spans, start = [], [], [], [], [], [], 0
        for entry, flat in taken:
            parent, token = flat // self.vocab, flat % self.vocab
            states.append(select_state(entry.state, parent))
            last.append(token)
            log_prob.append(entry.child_log_prob.view(-1)[flat])
            grown = entry.prefix.index_select(0, parent)
            grown[:, entry.depth] = token
            prefix.append(grown)
            inputs.append(entry.inputs.index_select(0, parent))
            spans.append((entry.depth + 1, start, start + flat.numel()))
            start += flat.numel()
        return _Rows(_cat_states(states), torch.cat(last), torch.cat(log_prob), torch.cat(prefix),
                     torch.cat(inputs), spans)

    def _accumulate(self, rows, depth, child, complete) -> None:
        """p(y_depth = v) gains every stepped prefix's children; the mass, what completes here."""
        where = rows.inputs * self.length + depth
        child_prob = child.exp()
        self.marginals.index_add_(0, where, child_prob)
        if self.end is not None:
            self.ended.index_add_(0, where, child_prob[:, self.end])
        self.mass.index_add_(0, rows.inputs, (child_prob * complete).sum(1))

    def _finish_marginals(self, inputs: int) -> None:
        """(inputs, V, length); a sequence that ended counts as the end token at every later position."""
        marginals = self.marginals.view(inputs, self.length, self.vocab)
        if self.end is not None:
            ended = self.ended.view(inputs, self.length)
            marginals[:, :, self.end] += ended.cumsum(1) - ended
        self.marginals = marginals.transpose(1, 2)
