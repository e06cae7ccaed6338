"""Helpers shared by the built-in decoders: batch expansion, counting sequences, packing results."""
from __future__ import annotations

import torch

from seqkit.contracts import DecodeResult, Hypothesis
from seqkit.state import State, select_state


def repeat_each(state: State, tokens: torch.Tensor, times: int) -> tuple[State, torch.Tensor]:
    """Each batch entry ``times`` times in a row (entry b becomes rows b*times .. b*times+times-1)."""
    index = torch.arange(tokens.shape[0], device=tokens.device).repeat_interleave(times)
    return select_state(state, index), tokens.index_select(0, index)


def live_prefixes(vocab_size: int, depth: int, end_token: int | None) -> int:
    """Prefixes of ``depth`` tokens that have not ended (a sequence stops at the end token)."""
    return (vocab_size - (end_token is not None)) ** depth


def count_prefixes(vocab_size: int, length: int, end_token: int | None, cap: int | None = None) -> int:
    """Model steps an exhaustive search makes: every live prefix of 0 .. length-1 tokens.

    With ``cap``, a count above it comes back as some number above it, so that a length of 10^9
    costs no arithmetic on numbers of 10^9 digits.
    """
    live = vocab_size - (end_token is not None)
    if live <= 1:  # one prefix per depth, or only the empty one
        return length if live == 1 else min(length, 1)
    if cap is not None:  # live**d > cap once d reaches cap's bit length
        length = min(length, cap.bit_length() + 1)
    return (live ** length - 1) // (live - 1)  # the geometric series 1 + live + ... + live**(length-1)


def count_sequences(vocab_size: int, length: int, end_token: int | None) -> int:
    """Complete sequences of at most ``length`` tokens: those ending in the end token early, plus
    every sequence of exactly ``length`` tokens. Their probabilities add up to one."""
    early = sum(live_prefixes(vocab_size, d, end_token) for d in range(length - 1)) \
        if end_token is not None else 0
    return early + live_prefixes(vocab_size, length - 1, end_token) * vocab_size


def sequence_lengths(tokens: torch.Tensor, end_token: int | None) -> torch.Tensor:
    """(N,) length of each row of ``tokens`` (N, L): up to and including its first end token."""
    n, width = tokens.shape
    if end_token is None or width == 0:
        return torch.full((n,), width, dtype=torch.long, device=tokens.device)
    is_end = tokens == end_token
    first = torch.where(is_end.any(1), is_end.long().argmax(1) + 1, width)
    return first


def pack(tokens: torch.Tensor, lengths: torch.Tensor, log_probs: torch.Tensor, groups: int,
         scores: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> list[DecodeResult]:
    """Rows of ``tokens`` (groups * per_group, L) as ``groups`` results of ``per_group`` hypotheses.

    ``keep`` (N,) drops rows that are not real hypotheses (a beam slot that never held one).
    """
    token_rows, length_list = tokens.tolist(), lengths.tolist()
    log_prob_list = log_probs.tolist()
    score_list = scores.tolist() if scores is not None else [None] * len(token_rows)
    keep_list = keep.tolist() if keep is not None else [True] * len(token_rows)
    per_group = len(token_rows) // groups
    results = []
    for g in range(groups):
        rows = range(g * per_group, (g + 1) * per_group)
        results.append(DecodeResult([
            Hypothesis(token_rows[i][:length_list[i]], log_prob_list[i], score_list[i])
            for i in rows if keep_list[i]]))
    return results
