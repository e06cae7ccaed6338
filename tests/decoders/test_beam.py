"""``beam`` against ``exact``, ``greedy`` and brute force."""
from __future__ import annotations

import math

import pytest
import torch
from _step_models import BruteForce, make_model

from seqkit import SeqkitError
from seqkit.decoding import build_decoder

CASES = [("lstm", 3, 5, None), ("gru", 4, 4, 1), ("table", 3, 5, 0), ("lstm", 2, 7, 1)]


def decode(strategy, model, start, length, **options):
    return build_decoder(strategy, options).decode(model, *start, length)


@pytest.mark.parametrize("kind,vocab,length,end", CASES)
def test_wide_beam_is_exact(kind, vocab, length, end):
    model = make_model(kind, vocab, length, end, seed=5)
    start = model.start(3, seed=2)
    everything = vocab ** length  # at least as many as there are sequences: nothing is ever pruned
    beam = decode("beam", model, start, length, beam_size=everything, n_best=6)
    exact = decode("exact", model, start, length, n_best=6)
    for b, e in zip(beam, exact):
        assert [h.tokens for h in b.hypotheses] == [h.tokens for h in e.hypotheses]
        assert [h.log_prob for h in b.hypotheses] == pytest.approx([h.log_prob for h in e.hypotheses],
                                                                   abs=1e-9)


@pytest.mark.parametrize("kind,vocab,length,end", CASES)
def test_beam_of_one_is_greedy(kind, vocab, length, end):
    model = make_model(kind, vocab, length, end, seed=8)
    start = model.start(4, seed=3)
    beam = decode("beam", model, start, length, beam_size=1)
    greedy = decode("greedy", model, start, length)
    for b, g in zip(beam, greedy):
        assert b.hypotheses[0].tokens == g.hypotheses[0].tokens
        assert b.hypotheses[0].log_prob == pytest.approx(g.hypotheses[0].log_prob, abs=1e-9)


def reference_beam(model, start, index, length, width, alpha=0.0):
    """Beam search written the obvious way: Python lists, every candidate scored from scratch."""
    end, live, finished = model.end_token, [[]], []
    for t in range(length):
        candidates = [prefix + [v] for prefix in live for v in range(model.vocab_size)]
        scores = model.score(candidates, *start, index=index).tolist()
        ranked = sorted(zip(scores, candidates), key=lambda c: -c[0])
        finished += [(lp / (t + 1) ** alpha, lp, c) for lp, c in ranked if c[-1] == end]
        live = [c for lp, c in ranked if c[-1] != end][:width]
    scores = model.score(live, *start, index=index).tolist()
    finished += [(lp / length ** alpha, lp, c) for lp, c in zip(scores, live)]
    return [(c, lp) for _, lp, c in sorted(finished, key=lambda f: -f[0])]


@pytest.mark.parametrize("kind,vocab,length,end", CASES)
@pytest.mark.parametrize("width,alpha", [(2, 0.0), (3, 1.0)])
def test_beam_equals_a_plain_python_beam_search(kind, vocab, length, end, width, alpha):
    model = make_model(kind, vocab, length, end, seed=3)
    start = model.start(2, seed=1)
    results = decode("beam", model, start, length, beam_size=width, n_best=width, length_penalty=alpha)
    for i, result in enumerate(results):
        expected = reference_beam(model, start, i, length, width, alpha)[:width]
        assert [h.tokens for h in result.hypotheses] == [tokens for tokens, _ in expected]
        assert [h.log_prob for h in result.hypotheses] == pytest.approx([lp for _, lp in expected],
                                                                        abs=1e-9)


@pytest.mark.parametrize("kind,vocab,length,end", [case for case in CASES if case[3] is not None])
def test_an_input_stops_once_no_live_prefix_can_enter_its_n_best(kind, vocab, length, end):
    """With raw scores, the n best are final once the n-th best finished sequence beats every
    live prefix: fewer steps for a shorter n-best list, the same n best as the search run to its end."""
    steps = {}
    for n_best in (1, 3):
        model = make_model(kind, vocab, length, end, seed=3)
        start = model.start(2, seed=1)
        results = decode("beam", model, start, length, beam_size=3, n_best=n_best)
        steps[n_best] = model.steps
        for i, result in enumerate(results):
            expected = reference_beam(model, start, i, length, 3)[:n_best]
            assert [h.tokens for h in result.hypotheses] == [tokens for tokens, _ in expected]
    assert steps[1] < steps[3]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("end", [None, 2])
def test_exact_is_at_least_beam_and_greedy(seed, end):
    # (exact itself is checked against brute force in test_exact.py)
    model = make_model("lstm", 4, 6, end, seed=seed)
    start = model.start(2, seed=seed)
    exact = decode("exact", model, start, 6)
    beams = [decode("beam", model, start, 6, beam_size=k, n_best=k) for k in (2, 4)]
    greedy = decode("greedy", model, start, 6)
    for i in range(2):
        best = exact[i].hypotheses[0].log_prob
        assert best + 1e-9 >= greedy[i].hypotheses[0].log_prob
        for beam in beams:
            hypotheses = beam[i].hypotheses
            assert best + 1e-9 >= hypotheses[0].log_prob
            # Every reported log-probability is the true one of the reported tokens.
            scores = model.score([h.tokens for h in hypotheses], *start, index=i)
            assert torch.allclose(torch.tensor([h.log_prob for h in hypotheses], dtype=torch.float64),
                                  scores, rtol=0, atol=1e-9)
            assert len({tuple(h.tokens) for h in hypotheses}) == len(hypotheses)


def test_a_wider_beam_usually_but_not_always_beats_greedy():
    # Beam >= greedy is not a theorem: greedy's prefix can be pruned at one step by prefixes that
    # all turn out worse later. Over random models it holds most of the time, and fails sometimes.
    wins = losses = 0
    for seed in range(12):
        model = make_model("lstm", 4, 6, None, seed=seed)
        start = model.start(2, seed=seed)
        beam = decode("beam", model, start, 6, beam_size=2)
        greedy = decode("greedy", model, start, 6)
        for b, g in zip(beam, greedy):
            wins += b.hypotheses[0].log_prob >= g.hypotheses[0].log_prob - 1e-12
            losses += b.hypotheses[0].log_prob < g.hypotheses[0].log_prob - 1e-12
    assert losses >= 1 and wins > 3 * losses


def test_beam_size_larger_than_what_exists_is_clipped():
    model = make_model("table", 2, 3, None)
    results = decode("beam", model, model.start(2), 3, beam_size=1000, n_best=50)
    for result in results:
        assert len(result.hypotheses) == 8  # 2^3 sequences, each once
        assert len({tuple(h.tokens) for h in result.hypotheses}) == 8
    ended = make_model("table", 3, 2, end=0)  # sequences: [0], and 2 * 3 of length 2
    results = decode("beam", ended, ended.start(1), 2, beam_size=100, n_best=100)
    assert sorted(h.tokens for h in results[0].hypotheses) == [[0], [1, 0], [1, 1], [1, 2],
                                                               [2, 0], [2, 1], [2, 2]]


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_length_penalty_ranks_finished_sequences_like_brute_force(alpha):
    model = make_model("gru", 3, 5, end=0, seed=4, )
    start = model.start(1, seed=9)
    result = decode("beam", model, start, 5, beam_size=3 ** 5, n_best=5, length_penalty=alpha)[0]
    brute = BruteForce(model, 5, start)
    lengths = torch.tensor([len(s) for s in brute.sequences], dtype=torch.float64)
    ranked = brute.ranked(key=lambda lp, _: lp / lengths ** alpha)[:5]
    assert [h.tokens for h in result.hypotheses] == [tokens for tokens, _ in ranked]
    assert [h.log_prob for h in result.hypotheses] == pytest.approx([lp for _, lp in ranked], abs=1e-9)
    if alpha:
        assert [h.score for h in result.hypotheses] == pytest.approx(
            [lp / len(t) ** alpha for t, lp in ranked], abs=1e-9)


class ShortOrLongModel:
    """A hand-made step model where the length penalty decides the winner. Tokens: 0 ends, 1 goes on.

    The first token ends at once with p=0.5 (log p -0.69 for the one-token output [0]); after a 1,
    every step goes on with p=0.9. So [1, 1, 1, 1] has log p = log 0.4 + 3 log 0.9 = -1.23: worse
    in total than [0], better per token (-0.31 against -0.69). State: the step count (batch,).
    """

    vocab_size, end_token = 3, 0
    first = torch.tensor([0.5, 0.4, 0.1], dtype=torch.float64).log()
    later = torch.tensor([0.05, 0.9, 0.05], dtype=torch.float64).log()

    def step(self, tokens, state):
        log_probs = torch.where((state == 0).unsqueeze(1), self.first, self.later)
        return log_probs, state + 1


@pytest.mark.parametrize("beam_size", [2, 9])
def test_length_penalty_changes_the_winner_towards_longer_outputs(beam_size):
    model = ShortOrLongModel()
    start = (torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    raw = decode("beam", model, start, 4, beam_size=beam_size)[0].hypotheses[0]
    assert raw.tokens == [0]
    assert raw.log_prob == pytest.approx(math.log(0.5), abs=1e-12)
    for alpha in (0.5, 1.0):
        penalised = decode("beam", model, start, 4, beam_size=beam_size,
                           length_penalty=alpha)[0].hypotheses[0]
        assert penalised.tokens == [1, 1, 1, 1]
        assert penalised.log_prob == pytest.approx(math.log(0.4) + 3 * math.log(0.9), abs=1e-12)
        assert penalised.score == pytest.approx(penalised.log_prob / 4 ** alpha, abs=1e-12)


def test_batched_beam_equals_one_input_at_a_time():
    model = make_model("lstm", 4, 5, end=3, seed=2)
    state, tokens = model.start(3, seed=6)
    together = decode("beam", model, (state, tokens), 5, beam_size=3, n_best=3)
    for i in range(3):
        alone = decode("beam", model, (tuple(s[i:i + 1] for s in state), tokens[i:i + 1]), 5,
                       beam_size=3, n_best=3)[0]
        assert [h.tokens for h in together[i].hypotheses] == [h.tokens for h in alone.hypotheses]


def test_a_batch_steps_exactly_the_rows_its_inputs_need_alone():
    """The model steps real prefixes only (an input's start once, not once per slot), and an input
    whose finished pool is final is stepped no more: a batch costs the sum of its inputs decoded
    alone, not its slowest input's steps for every input, and gives each the same answer."""
    model = make_model("lstm", 4, 8, end=3, seed=0)
    (h, c), tokens = model.start(5, seed=0)
    together = decode("beam", model, ((h, c), tokens), 8, beam_size=3, n_best=2)
    batched, alone = model.steps, []
    for i in range(5):
        model.steps = 0
        [result] = decode("beam", model, ((h[i:i + 1], c[i:i + 1]), tokens[i:i + 1]), 8, beam_size=3, n_best=2)
        alone.append(model.steps)
        assert [x.tokens for x in result.hypotheses] == [x.tokens for x in together[i].hypotheses]
    assert len(set(alone)) > 1  # inputs that need different numbers of steps
    assert batched == sum(alone)


def test_early_stop_when_the_finished_pool_cannot_be_beaten():
    model = make_model("table", 3, 8, end=0, seed=1)
    start = model.start(1)
    result = decode("beam", model, start, 8, beam_size=2)
    assert model.steps < 2 * 8  # stopped before the length
    brute = BruteForce(model, 8, start)
    assert result[0].hypotheses[0].tokens == brute.ranked()[0][0]


@pytest.mark.parametrize("options,message", [
    ({"beam_size": 0}, "decode.beam_size: must be >= 1"),
    ({"length_penalty": -1.0}, "decode.length_penalty: must be >= 0.0"),
    ({"n_best": 2.5}, "decode.n_best: expected an integer"),
    ({"top_p": 0.9}, "decode.top_p: does not apply to strategy 'beam' (it is an option of sample)"),
])
def test_invalid_options(options, message):
    with pytest.raises(SeqkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_decoder("beam", options)


@pytest.mark.parametrize("end,alpha,ineffective", [(None, 1.0, True), (None, 0.0, False), (0, 1.0, False)])
def test_length_penalty_without_an_end_symbol_is_reported_ineffective(end, alpha, ineffective):
    model = make_model("table", 3, 4, end)
    beam = build_decoder("beam", {"length_penalty": alpha})
    assert ("length_penalty" in beam.ineffective_options(model)) == ineffective
    if ineffective:  # it is indeed ineffective: the same outputs and scores as without it
        plain = decode("beam", model, model.start(2), 4, beam_size=3, n_best=3)
        penalised = decode("beam", model, model.start(2), 4, beam_size=3, n_best=3, length_penalty=alpha)
        assert [[(h.tokens, h.log_prob) for h in r.hypotheses] for r in plain] == \
            [[(h.tokens, h.log_prob) for h in r.hypotheses] for r in penalised]
