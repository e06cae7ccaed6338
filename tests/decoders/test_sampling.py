"""``sample``: reproducible, and its samples follow the model (a chi-square test against brute force)."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from _step_models import all_sequences, make_model

from seqkit import SeqkitError
from seqkit.decoding import build_decoder


def sample(model, start, length, **options):
    return build_decoder("sample", options).decode(model, *start, length)


def reshaped(log_probs: list[float], temperature: float, top_k: int, top_p: float) -> list[float]:
    """The sampler's next-token distribution, computed the long way for one list of log-probs."""
    order = sorted(range(len(log_probs)), key=lambda v: -log_probs[v])
    if temperature == 0:
        return [1.0 if v == order[0] else 0.0 for v in range(len(log_probs))]
    kept = order[:top_k] if top_k else order
    weights = {v: torch.tensor(log_probs[v] / temperature).exp().item() for v in kept}
    total = sum(weights.values())
    nucleus, mass = [], 0.0
    for v in kept:  # most probable first, until the kept ones reach top_p (at least one)
        if nucleus and mass >= top_p:
            break
        nucleus.append(v)
        mass += weights[v] / total
    total = sum(weights[v] for v in nucleus)
    return [weights[v] / total if v in nucleus else 0.0 for v in range(len(log_probs))]


def sampler_probabilities(model, start, length, **options) -> dict[tuple, float]:
    """Probability the sampler gives each complete sequence: the product of reshaped conditionals,
    each conditional read off brute-force scores of the prefix and its extensions."""
    vocab, end = model.vocab_size, model.end_token
    probabilities = {}
    for seq in all_sequences(vocab, length, end):
        p = 1.0
        for s in range(len(seq)):
            extensions = [seq[:s] + [v] for v in range(vocab)]
            scores = model.score(extensions, *start)
            conditional = (scores - scores.logsumexp(0)).tolist()
            p *= reshaped(conditional, options.get("temperature", 1.0), options.get("top_k", 0),
                          options.get("top_p", 1.0))[seq[s]]
        probabilities[tuple(seq)] = p
    return probabilities


def chi_square_p_value(counts: Counter, probabilities: dict[tuple, float], n: int) -> float:
    """Pearson's test; bins expected to hold fewer than 5 samples are pooled into one."""
    observed, expected, rest_observed, rest_expected = [], [], 0, 0.0
    for seq, p in probabilities.items():
        if n * p >= 5:
            observed.append(counts[seq])
            expected.append(n * p)
        else:
            rest_observed += counts[seq]
            rest_expected += n * p
    if rest_expected > 0:
        observed.append(rest_observed)
        expected.append(rest_expected)
    o, e = torch.tensor(observed, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64)
    statistic = ((o - e) ** 2 / e).sum()
    df = torch.tensor((len(observed) - 1) / 2, dtype=torch.float64)
    return torch.special.gammaincc(df, statistic / 2).item()


@pytest.mark.parametrize("kind,end,options", [
    ("lstm", None, {}),
    ("gru", 1, {}),
    ("table", None, {"temperature": 0.7}),
    ("lstm", 0, {"temperature": 1.5, "top_k": 2}),
    ("gru", None, {"top_p": 0.8}),
    ("table", 2, {"temperature": 0.8, "top_k": 3, "top_p": 0.9}),
])
def test_empirical_distribution_matches_the_model(kind, end, options):
    vocab, length, n = 4 if "top_k" in options else 3, 3, 20_000
    model = make_model(kind, vocab, length, end, seed=6)
    start = model.start(1, seed=2)
    drawn = sample(model, start, length, num_samples=n, seed=1234, **options)[0].hypotheses
    assert len(drawn) == n
    counts = Counter(tuple(h.tokens) for h in drawn)
    probabilities = sampler_probabilities(model, start, length, **options)
    impossible = [seq for seq in counts if probabilities.get(seq, 0.0) == 0.0]
    assert not impossible  # filtered tokens are never drawn
    assert chi_square_p_value(counts, probabilities, n) > 1e-3


def test_reported_log_probability_is_the_models_not_the_reshaped_one():
    model = make_model("lstm", 4, 5, end=3, seed=1)
    start = model.start(2, seed=1)
    results = sample(model, start, 5, num_samples=6, temperature=2.0, top_k=3, seed=0)
    for i, result in enumerate(results):
        scores = model.score([h.tokens for h in result.hypotheses], *start, index=i)
        assert [h.log_prob for h in result.hypotheses] == pytest.approx(scores.tolist(), abs=1e-9)


def test_same_seed_same_samples_other_seed_other_samples():
    model = make_model("gru", 4, 12, None, seed=3)
    start = model.start(3, seed=3)

    def tokens(seed):
        results = sample(model, start, 12, num_samples=4, **({} if seed is None else {"seed": seed}))
        return [[h.tokens for h in r.hypotheses] for r in results]

    assert tokens(7) == tokens(7)
    assert tokens(7) != tokens(8)
    assert tokens(None) != tokens(None)  # no seed: fresh randomness (12 samples of 12 tokens differ)


@pytest.mark.parametrize("options", [{"temperature": 0.0}, {"top_k": 1}, {"top_p": 0.0}])
def test_degenerate_settings_are_greedy(options):
    model = make_model("lstm", 4, 8, end=0, seed=9)
    start = model.start(3, seed=4)
    greedy = build_decoder("greedy", {}).decode(model, *start, 8)
    drawn = sample(model, start, 8, num_samples=2, seed=5, **options)
    for g, s in zip(greedy, drawn):
        assert [h.tokens for h in s.hypotheses] == [g.hypotheses[0].tokens] * 2


def test_samples_are_drawn_in_one_batch():
    model = make_model("lstm", 3, 10, None)
    results = sample(model, model.start(4), 10, num_samples=25, seed=0)
    assert [len(r.hypotheses) for r in results] == [25] * 4
    assert model.widest == 100 and model.steps == 100 * 10


@pytest.mark.parametrize("strategy,options,message", [
    ("greedy", {"top_p": 0.9}, "decode.top_p: does not apply to strategy 'greedy' (it is an option "
                               "of sample); 'greedy' accepts: no options"),
    ("sample", {"beam_size": 3}, "decode.beam_size: does not apply to strategy 'sample' (it is an "
                                 "option of beam)"),
    ("sample", {"temperature": -0.5}, "decode.temperature: must be >= 0.0; got -0.5"),
    ("sample", {"top_p": -0.1}, "decode.top_p: must be >= 0.0; got -0.1"),
    ("sample", {"top_p": 1.5}, "decode.top_p: must be <= 1.0; got 1.5"),
    ("sample", {"top_k": 1.5}, "decode.top_k: expected an integer, got float 1.5"),
    ("sample", {"seed": "x"}, "decode.seed: expected an integer, got str 'x'"),
    ("sample", {"widht": 3}, "decode.widht: unknown key"),
    ("sampel", {}, "decode.strategy: unknown strategy 'sampel' (did you mean 'sample'?); "
                   "registered: beam, exact, greedy, sample"),
])
def test_invalid_options_name_the_key_and_strategy(strategy, options, message):
    with pytest.raises(SeqkitError) as caught:
        build_decoder(strategy, options)
    assert str(caught.value).startswith(message)


def test_length_must_be_positive():
    model = make_model("lstm", 3, 2, None)
    with pytest.raises(SeqkitError, match="decode.length: must be a positive integer; got 0"):
        build_decoder("greedy", {}).decode(model, *model.start(1), 0)
