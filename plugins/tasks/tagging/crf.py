"""A linear-chain CRF over tags: the lecture's UGM with log-potentials θ(y_t) + θ(y_{t-1}, y_t).

The emissions (batch, time, num_tags) give θ(y_t), one score per position and tag (an encoder's
outputs); ``transitions[i, j]`` scores tag i followed by tag j, and ``start_transitions`` /
``end_transitions`` score the first and last tag of a sentence. The score of a tag sequence is

    start[y_0] + Σ_t emissions[t, y_t] + Σ_{t≥1} transitions[y_{t-1}, y_t] + end[y_{L-1}],

and p(y | x) = exp(score(y) - log Z). Everything is exact dynamic programming in log space,
batched over sentences, looping only over time: O(T·K²) per sentence.

Padding: ``lengths`` (batch,) gives each sentence's length L ≥ 1 (a tensor on any device, or a
list); positions t ≥ L are padding and never change a result, whatever they hold (NaN included).
The forward recursions run over the whole padded batch with no mask inside the loop: position
t's state depends only on positions ≤ t, so each sentence's result is read at its own last
position, L - 1.
"""
from __future__ import annotations

import torch
from torch import nn

PADDING_TAG = -1  # what ``viterbi`` writes at padding positions


class LinearChainCRF(nn.Module):
    """A linear-chain CRF with ``num_tags`` tags; see the module docstring for the model.

    ``forward(emissions, tags, lengths)`` is ``log_likelihood``: the training loss is its negative,
    summed or averaged by the caller.
    """

    def __init__(self, num_tags: int):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"LinearChainCRF needs at least one tag, got num_tags={num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Zeros: the untrained CRF is then exactly the per-position softmax over the emissions (its
        # marginals are the softmax rows), and nothing needs breaking symmetry: given the
        # emissions, the log-likelihood is concave in these parameters.
        for parameter in (self.transitions, self.start_transitions, self.end_transitions):
            nn.init.zeros_(parameter)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def forward(self, emissions, tags, lengths):
        return self.log_likelihood(emissions, tags, lengths)

    def log_likelihood(self, emissions, tags, lengths) -> torch.Tensor:
        """log p(tags | x) per sentence, (batch,): ``score - log_partition``."""
        emissions, lengths, mask = self._check(emissions, lengths)
        tags = self._check_tags(tags, emissions, mask)
        return self._score(emissions, tags, lengths, mask) - self._log_partition(emissions, lengths)

    def score(self, emissions, tags, lengths) -> torch.Tensor:
        """The unnormalised score of each sentence's tags (batch, time), (batch,). Tags at padding
        positions are ignored (any value)."""
        emissions, lengths, mask = self._check(emissions, lengths)
        return self._score(emissions, self._check_tags(tags, emissions, mask), lengths, mask)

    def log_partition(self, emissions, lengths) -> torch.Tensor:
        """log Z(x) per sentence, (batch,), by the forward algorithm."""
        emissions, lengths, _ = self._check(emissions, lengths)
        return self._log_partition(emissions, lengths)

    def marginals(self, emissions, lengths) -> torch.Tensor:
        """p(y_t = v | x), (batch, time, num_tags); rows at padding positions are zero.

        Forward–backward, with the backward pass run as the forward pass over each sentence
        reversed (transposed transitions, the end scores as start scores). Not autograd of log Z,
        although that is exact too: this needs no gradient mode, so it works under
        ``torch.inference_mode`` where decoding runs, and builds no graph.
        """
        emissions, lengths, mask = self._check(emissions, lengths)
        alphas = self._forward_scores(emissions, self.transitions, self.start_transitions)
        log_z = self._log_z(alphas, lengths)
        order = _reversal(lengths, emissions.shape[1])
        # gammas[t, v]: log-sum of the scores of positions t..L-1 (and the end) over tags with y_t = v
        gammas = _reorder(self._forward_scores(_reorder(emissions, order), self.transitions.t(),
                                               self.end_transitions), order)
        # alpha and gamma both count position t's emission; subtract it once.
        log_marginals = alphas + gammas - emissions - log_z[:, None, None]
        return log_marginals.exp().masked_fill(~mask.unsqueeze(2), 0.0)

    def viterbi(self, emissions, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        """The highest-scoring tags (batch, time) long, ``PADDING_TAG`` (-1) at padding positions,
        and their scores (batch,). Ties go to the lowest tag index."""
        emissions, lengths, mask = self._check(emissions, lengths)
        steps = _tags_by_batch(emissions)
        score = self.start_transitions.unsqueeze(1) + steps[0]
        scores = [score]
        transitions = self.transitions.unsqueeze(2)
        for emit in steps[1:]:
            # best[j, b] = max_i score[i, b] + transitions[i, j]; the emission adds after the max
            score = (score.unsqueeze(1) + transitions).amax(0) + emit
            scores.append(score)
        scores = torch.stack(scores).transpose(1, 2).contiguous()  # (time, batch, K)
        best_score, tag = (_at_last(scores.transpose(0, 1), lengths) + self.end_transitions).max(1)
        # Back-pointers are recomputed while backtracking, for the chosen tag only: the same sums
        # as the forward pass's, so the same argmax, at O(K) per position instead of storing O(K²)
        # argmaxes, which torch reduces far slower than maxima. Padding keeps the tag.
        columns = self.transitions.t()
        path = [tag]
        for t in range(emissions.shape[1] - 1, 0, -1):
            tag = torch.where(mask[:, t], (scores[t - 1] + columns[tag]).argmax(1), tag)
            path.append(tag)
        tags = torch.stack(path[::-1], 1).masked_fill(~mask, PADDING_TAG)
        return tags, best_score

    def _score(self, emissions, tags, lengths, mask) -> torch.Tensor:
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2).sum(1)  # padding rows are zero
        moves = self.transitions[tags[:, :-1], tags[:, 1:]].masked_fill(~mask[:, 1:], 0.0)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return self.start_transitions[tags[:, 0]] + emitted + moves.sum(1) + self.end_transitions[last]

    def _log_partition(self, emissions, lengths) -> torch.Tensor:
        return self._log_z(self._forward_scores(emissions, self.transitions, self.start_transitions), lengths)

    def _log_z(self, alphas, lengths) -> torch.Tensor:
        return torch.logsumexp(_at_last(alphas, lengths) + self.end_transitions, dim=1)

    @staticmethod
    def _forward_scores(emissions, transitions, start) -> torch.Tensor:
        """alphas (batch, time, K): alphas[:, t, v] = log-sum over tag prefixes ending in v at t of
        their scores (start, emissions up to t, transitions). Padding is zero, so it stays finite."""
        steps = _tags_by_batch(emissions)
        alpha = start.unsqueeze(1) + steps[0]
        alphas = [alpha]
        transitions = transitions.unsqueeze(2)
        for emit in steps[1:]:
            alpha = torch.logsumexp(alpha.unsqueeze(1) + transitions, dim=0) + emit
            alphas.append(alpha)
        return torch.stack(alphas).permute(2, 0, 1)

    def _check(self, emissions, lengths):
        """Validated ``(emissions with zero padding, lengths on their device, mask (batch, time))``."""
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be (batch, time, {self.num_tags}), got {tuple(emissions.shape)}")
        batch, time_steps, _ = emissions.shape
        if time_steps == 0:
            raise ValueError("emissions must have at least one time step")
        lengths = torch.as_tensor(lengths)
        if (lengths.shape != (batch,) or lengths.is_floating_point() or lengths.is_complex()
                or lengths.dtype == torch.bool):
            raise ValueError(f"lengths must be {batch} integers, one per sentence, got {lengths.dtype} "
                             f"of shape {tuple(lengths.shape)}")
        if batch and not bool(((lengths >= 1) & (lengths <= time_steps)).all()):
            raise ValueError(f"every length must lie in [1, {time_steps}] (the emissions' time), "
                             f"got {lengths.tolist()}")
        lengths = lengths.to(device=emissions.device, dtype=torch.long)
        mask = torch.arange(time_steps, device=emissions.device) < lengths.unsqueeze(1)
        # Zeroing the padding keeps a NaN or inf there out of the results and their gradients.
        return emissions.masked_fill(~mask.unsqueeze(2), 0.0), lengths, mask

    def _check_tags(self, tags, emissions, mask) -> torch.Tensor:
        """Tags as long on the emissions' device, 0 at padding (whatever was there)."""
        if tags.shape != emissions.shape[:2] or tags.is_floating_point() or tags.is_complex():
            raise ValueError(f"tags must be integers of shape (batch, time) = {tuple(emissions.shape[:2])}, "
                             f"got {tags.dtype} of shape {tuple(tags.shape)}")
        tags = tags.to(device=emissions.device, dtype=torch.long)
        if bool((((tags < 0) | (tags >= self.num_tags)) & mask).any()):
            raise ValueError(f"tags must lie in [0, {self.num_tags}) at every position inside a sentence")
        return tags.masked_fill(~mask, 0)


def _tags_by_batch(emissions: torch.Tensor) -> torch.Tensor:
    """(batch, time, K) -> (time, K, batch), contiguous. In the recursions the previous tag is then
    the outermost dimension of a (K, K, batch) block: torch reduces an outer dimension with
    vectorised elementwise maxima, several times faster than a reduction over an inner one."""
    return emissions.permute(1, 2, 0).contiguous()


def _at_last(per_position: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sentence's row at its last position: (batch, time, K) -> (batch, K)."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, per_position.shape[2])
    return per_position.gather(1, index).squeeze(1)


def _reversal(lengths: torch.Tensor, time_steps: int) -> torch.Tensor:
    """(batch, time) positions that reverse each sentence inside its length, padding in place."""
    positions = torch.arange(time_steps, device=lengths.device).expand(len(lengths), -1)
    return torch.where(positions < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - positions, positions)


def _reorder(per_position: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    return per_position.gather(1, order.unsqueeze(2).expand_as(per_position))
