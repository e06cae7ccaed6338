"""What every decoder gets from ``Decoder.decode``: checked log-probabilities, progress, and a
refusal of lengths whose output cannot fit in memory."""
from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from _step_models import TableStepModel

from seqkit import SeqkitError
from seqkit.decoding import BYTES_PER_TOKEN, NonFiniteLogProbs, build_decoder
from seqkit.plugins.decoders._common import count_prefixes

STRATEGIES = [("greedy", {}), ("sample", {"seed": 0, "num_samples": 2}),
              ("beam", {"beam_size": 3}), ("exact", {})]


class Spoiled(TableStepModel):
    """A table model whose distributions turn to ``bad`` from its ``after``-th step call on."""

    def __init__(self, bad: float, after: int):
        super().__init__(vocab_size=3, length=4)
        self.bad, self.after, self.calls = bad, after, 0

    def step(self, tokens, state):
        log_probs, state = super().step(tokens, state)
        self.calls += 1
        if self.calls > self.after:
            log_probs = log_probs.clone()
            log_probs[:, 1] = self.bad
        return log_probs, state


@pytest.mark.parametrize("strategy,options", STRATEGIES)
@pytest.mark.parametrize("bad,named", [(float("nan"), "nan"), (float("inf"), "inf")])
def test_non_finite_log_probs_stop_every_decoder(strategy, options, bad, named):
    model = Spoiled(bad, after=2)  # the first steps are fine: the check is on every step
    with pytest.raises(NonFiniteLogProbs, match=rf"log-probabilities are not finite \({named}\)"):
        build_decoder(strategy, options).decode(model, *model.start(2), 4)
    assert model.calls == 3


@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_impossible_tokens_are_not_an_error(strategy, options):
    """-inf is a valid log-probability (a token the model rules out); it is never chosen."""
    model = Spoiled(float("-inf"), after=0)
    results = build_decoder(strategy, options).decode(model, *model.start(2), 4)
    for result in results:
        for hypothesis in result.hypotheses:
            assert 1 not in hypothesis.tokens and torch.isfinite(torch.tensor(hypothesis.log_prob))


def recording(calls: list):
    """A ``progress`` for Decoder.decode that records its total, then every advance."""
    def progress(total):
        calls.append(total)
        return nullcontext(calls.append)
    return progress


@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_progress_counts_every_model_row_up_to_the_planned_total(strategy, options):
    model, calls = TableStepModel(vocab_size=3, length=4), []
    build_decoder(strategy, options).decode(model, *model.start(2), 4, progress=recording(calls))
    total, advances = calls[0], calls[1:]
    assert sum(advances) == model.steps == total  # no end token: every planned row is stepped
    assert len(advances) >= 4 and all(rows > 0 for rows in advances)


@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_a_length_whose_output_cannot_fit_is_refused_before_any_step(strategy, options):
    model = Spoiled(float("nan"), after=0)  # any step would fail: the refusal must come first
    with pytest.raises(SeqkitError, match=r"^decode.length: 1,000,000,000,000 tokens.* would need "
                                          r"about [\d.]+ [PTE]iB of memory"):
        build_decoder(strategy, options).decode(model, *model.start(2), 10**12)
    assert model.calls == 0


def test_the_memory_estimate_grows_with_the_rows_kept():
    model = TableStepModel(vocab_size=3, length=4)
    one = build_decoder("sample", {}).memory_needed(model, 1, 1000)
    many = build_decoder("sample", {"num_samples": 8}).memory_needed(model, 2, 1000)
    assert many - one == 1000 * 15 * BYTES_PER_TOKEN  # 16 rows instead of 1, each token kept
    assert build_decoder("beam", {"beam_size": 4}).rows_per_input(model, 10**9) == 4  # at once


def test_count_prefixes_in_closed_form_and_capped():
    for vocab, end in [(1, None), (2, 0), (3, None), (5, 2), (1, 0)]:
        for length in range(0, 8):
            brute = sum((vocab - (end is not None)) ** d for d in range(length))
            assert count_prefixes(vocab, length, end) == brute
            assert count_prefixes(vocab, length, end, cap=10) == brute or brute > 10
            assert (count_prefixes(vocab, length, end, cap=10) > 10) == (brute > 10)
    assert count_prefixes(30, 10**9, None, cap=10**7) > 10**7  # at once, no 10^9-digit number
