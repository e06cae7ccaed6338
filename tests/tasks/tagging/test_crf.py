"""LinearChainCRF against brute force: every one of the K^T tag sequences of each sentence, scored
one by one, on tiny random models with padded batches; gradients by finite differences."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqkit.plugins.tasks.tagging.crf import PADDING_TAG, LinearChainCRF

TAGS = 3
LENGTHS = [4, 2, 1]  # one padded batch: a full sentence, a short one, a single token
SEEDS = list(range(8))
TIGHT = dict(rtol=0, atol=1e-10)


def random_crf(seed: int, tags: int = TAGS) -> LinearChainCRF:
    crf = LinearChainCRF(tags).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return crf


def padded_batch(seed: int, lengths=LENGTHS, tags: int = TAGS, garbage: float = 1e4):
    """Emissions (batch, max length, tags) with random scores inside each sentence and large
    values, inf and NaN at the padding positions."""
    generator = torch.Generator().manual_seed(100 + seed)
    emissions = 2 * torch.randn(len(lengths), max(lengths), tags, generator=generator, dtype=torch.float64)
    junk = garbage * torch.randn(emissions.shape, generator=generator, dtype=torch.float64)
    junk.view(-1)[::7] = math.nan
    junk.view(-1)[3::11] = math.inf
    padding = torch.arange(max(lengths)) >= torch.tensor(lengths).unsqueeze(1)
    return torch.where(padding.unsqueeze(2), junk, emissions)


class BruteForce:
    """One sentence, every tag sequence scored on its own with plain Python arithmetic."""

    def __init__(self, crf: LinearChainCRF, emissions: torch.Tensor):
        self.length, self.tags = emissions.shape
        em, tr = emissions.tolist(), crf.transitions.tolist()
        start, end = crf.start_transitions.tolist(), crf.end_transitions.tolist()
        self.sequences = list(itertools.product(range(self.tags), repeat=self.length))
        self.scores = [start[y[0]] + sum(em[t][v] for t, v in enumerate(y))
                       + sum(tr[a][b] for a, b in zip(y, y[1:])) + end[y[-1]] for y in self.sequences]
        top = max(self.scores)
        self.log_z = top + math.log(sum(math.exp(s - top) for s in self.scores))

    def best(self):
        index = max(range(len(self.scores)), key=self.scores.__getitem__)
        return list(self.sequences[index]), self.scores[index]

    def score(self, tags) -> float:
        return self.scores[self.sequences.index(tuple(tags))]

    def marginals(self) -> torch.Tensor:
        table = torch.zeros(self.length, self.tags, dtype=torch.float64)
        for sequence, score in zip(self.sequences, self.scores):
            for t, v in enumerate(sequence):
                table[t, v] += math.exp(score - self.log_z)
        return table


def brute_forces(crf, emissions, lengths=LENGTHS):
    return [BruteForce(crf, emissions[b, :n]) for b, n in enumerate(lengths)]


@pytest.mark.parametrize("seed", SEEDS)
def test_log_partition_equals_the_sum_over_every_tag_sequence(seed):
    crf, emissions = random_crf(seed), padded_batch(seed)
    expected = torch.tensor([brute.log_z for brute in brute_forces(crf, emissions)], dtype=torch.float64)
    assert torch.allclose(crf.log_partition(emissions, LENGTHS), expected, **TIGHT)


@pytest.mark.parametrize("seed", SEEDS)
def test_viterbi_path_and_score_are_the_best_of_every_tag_sequence(seed):
    crf, emissions = random_crf(seed), padded_batch(seed)
    tags, scores = crf.viterbi(emissions, torch.tensor(LENGTHS))
    assert tags.dtype == torch.long and tags.shape == (3, 4)
    for b, brute in enumerate(brute_forces(crf, emissions)):
        path, score = brute.best()
        n = LENGTHS[b]
        assert tags[b, :n].tolist() == path
        assert tags[b, n:].tolist() == [PADDING_TAG] * (4 - n)
        assert scores[b].item() == pytest.approx(score, abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_marginals_equal_the_brute_force_posterior_and_are_zero_at_padding(seed):
    crf, emissions = random_crf(seed), padded_batch(seed)
    marginals = crf.marginals(emissions, LENGTHS)
    assert marginals.shape == emissions.shape
    for b, brute in enumerate(brute_forces(crf, emissions)):
        n = LENGTHS[b]
        assert torch.allclose(marginals[b, :n], brute.marginals(), **TIGHT)
        assert torch.equal(marginals[b, n:], torch.zeros(4 - n, TAGS, dtype=torch.float64))


@pytest.mark.parametrize("seed", SEEDS)
def test_score_and_log_likelihood_of_random_tags_equal_brute_force(seed):
    crf, emissions = random_crf(seed), padded_batch(seed)
    generator = torch.Generator().manual_seed(seed)
    tags = torch.randint(0, TAGS, (3, 4), generator=generator)
    tags[1, 2:] = 99  # padding tags are ignored, whatever they hold
    tags[2, 1:] = -5
    brutes = brute_forces(crf, emissions)
    expected = [brute.score(tags[b, :n].tolist()) for b, (brute, n) in enumerate(zip(brutes, LENGTHS))]
    assert crf.score(emissions, tags, LENGTHS).tolist() == pytest.approx(expected, abs=1e-10)
    log_probs = [s - brute.log_z for s, brute in zip(expected, brutes)]
    assert crf.log_likelihood(emissions, tags, LENGTHS).tolist() == pytest.approx(log_probs, abs=1e-10)
    assert crf(emissions, tags, LENGTHS).tolist() == pytest.approx(log_probs, abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_sentence_alone_and_among_longer_ones_gives_the_same_results(seed):
    """Padding and batch composition: each sentence of a padded batch (garbage in its padding)
    against the same sentence alone in an unpadded batch of one."""
    crf = random_crf(seed)
    lengths = [2, 5, 1, 5, 3, 4, 1, 2]
    emissions = padded_batch(seed, lengths)
    tags = torch.randint(0, TAGS, (len(lengths), 5), generator=torch.Generator().manual_seed(seed))
    batched = dict(log_z=crf.log_partition(emissions, lengths), viterbi=crf.viterbi(emissions, lengths),
                   marginals=crf.marginals(emissions, lengths), ll=crf.log_likelihood(emissions, tags, lengths))
    for b, n in enumerate(lengths):
        alone, alone_tags = emissions[b:b + 1, :n], tags[b:b + 1, :n]
        close = dict(rtol=0, atol=1e-12)
        assert torch.allclose(crf.log_partition(alone, [n]), batched["log_z"][b:b + 1], **close)
        path, score = crf.viterbi(alone, [n])
        assert torch.equal(path[0], batched["viterbi"][0][b, :n])
        assert torch.allclose(score, batched["viterbi"][1][b:b + 1], **close)
        assert torch.allclose(crf.marginals(alone, [n])[0], batched["marginals"][b, :n], **close)
        assert torch.allclose(crf.log_likelihood(alone, alone_tags, [n]), batched["ll"][b:b + 1], **close)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_gradients_of_the_log_likelihood_match_finite_differences(seed):
    crf = random_crf(seed)
    emissions = padded_batch(seed, garbage=3.0).requires_grad_()  # finite padding: gradcheck perturbs it too
    emissions.data[torch.isnan(emissions.data) | torch.isinf(emissions.data)] = 5.0
    tags = torch.randint(0, TAGS, (3, 4), generator=torch.Generator().manual_seed(seed))
    lengths = torch.tensor(LENGTHS)
    names = ["transitions", "start_transitions", "end_transitions"]
    parameters = [getattr(crf, name).detach().clone().requires_grad_() for name in names]

    def log_likelihood(emissions, *values):
        return torch.func.functional_call(crf, dict(zip(names, values)), (emissions, tags, lengths))

    assert torch.autograd.gradcheck(log_likelihood, (emissions, *parameters))
    # Padding positions get exactly zero gradient, not merely a small one.
    log_likelihood(emissions, *parameters).sum().backward()
    padding = torch.arange(4) >= lengths.unsqueeze(1)
    assert emissions.grad[padding].abs().max() == 0


def test_gradients_stay_finite_with_nan_and_inf_in_the_padding():
    crf, emissions = random_crf(0), padded_batch(0).requires_grad_()
    tags = torch.zeros(3, 4, dtype=torch.long)
    crf.log_likelihood(emissions, tags, LENGTHS).sum().backward()
    gradients = [emissions.grad] + [p.grad for p in crf.parameters()]
    assert all(torch.isfinite(g).all() for g in gradients)


def test_larger_batches_agree_with_independent_computations():
    """K=6, T=9, mixed lengths: Viterbi's score is the score of its path; marginals are the
    gradient of log Z with respect to the emissions and sum to one per position."""
    torch.manual_seed(0)
    crf = random_crf(5, tags=6)
    lengths = torch.tensor([9, 1, 4, 9, 7, 2])
    emissions = padded_batch(5, lengths.tolist(), tags=6)
    tags, scores = crf.viterbi(emissions, lengths)
    assert torch.allclose(crf.score(emissions, tags, lengths), scores, **TIGHT)
    # No other tag at any one position scores higher (a necessary condition of the argmax).
    for b, n in enumerate(lengths.tolist()):
        for t in range(n):
            for v in range(6):
                other = tags.clone()
                other[b, t] = v
                assert crf.score(emissions, other, lengths)[b] <= scores[b] + 1e-12
    leaf = emissions.detach().clone().requires_grad_()
    (gradient,) = torch.autograd.grad(crf.log_partition(leaf, lengths).sum(), leaf)
    marginals = crf.marginals(emissions, lengths)
    assert torch.allclose(marginals, gradient, **TIGHT)
    mask = torch.arange(9) < lengths.unsqueeze(1)
    assert torch.allclose(marginals.sum(2), mask.double(), **TIGHT)


def test_untrained_crf_is_the_per_position_softmax():
    """Zero initial parameters: marginals are the softmax of the emissions, Viterbi their argmax."""
    crf = LinearChainCRF(4)
    emissions = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(3))
    lengths = [5, 3]
    assert torch.allclose(crf.marginals(emissions, lengths)[0], emissions[0].softmax(1), atol=1e-6)
    tags, _ = crf.viterbi(emissions, lengths)
    assert torch.equal(tags[0], emissions[0].argmax(1))
    assert torch.equal(tags[1, :3], emissions[1, :3].argmax(1))


def test_decoding_works_under_inference_mode_with_float32():
    crf = random_crf(1).float()
    emissions = padded_batch(1).float()
    expected = crf.viterbi(emissions, LENGTHS)[0]
    with torch.inference_mode():
        tags, _ = crf.viterbi(emissions, LENGTHS)
        marginals = crf.marginals(emissions, LENGTHS)
    assert torch.equal(tags, expected)
    assert torch.isfinite(marginals).all()


@pytest.mark.parametrize("lengths,message", [
    ([4, 0, 1], r"every length must lie in \[1, 4\]"),
    ([4, 5, 1], r"every length must lie in \[1, 4\]"),
    ([4, 2], "lengths must be 3 integers"),
    (torch.tensor([4.0, 2.0, 1.0]), "lengths must be 3 integers"),
    (torch.tensor([True, True, True]), "lengths must be 3 integers"),
])
def test_bad_lengths_are_refused(lengths, message):
    crf, emissions = random_crf(0), padded_batch(0)
    for call in (crf.log_partition, crf.viterbi, crf.marginals):
        with pytest.raises(ValueError, match=message):
            call(emissions, lengths)


def test_bad_shapes_and_tags_are_refused():
    crf, emissions = random_crf(0), padded_batch(0)
    with pytest.raises(ValueError, match=r"emissions must be \(batch, time, 3\)"):
        crf.log_partition(emissions[..., :2], LENGTHS)
    with pytest.raises(ValueError, match="at least one time step"):
        crf.viterbi(emissions[:, :0], [1, 1, 1])
    tags = torch.zeros(3, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"tags must be integers of shape \(batch, time\)"):
        crf.score(emissions, tags[:, :3], LENGTHS)
    with pytest.raises(ValueError, match=r"tags must be integers"):
        crf.score(emissions, tags.double(), LENGTHS)
    tags[1, 1] = 3  # inside sentence 1 (length 2)
    with pytest.raises(ValueError, match=r"tags must lie in \[0, 3\)"):
        crf.log_likelihood(emissions, tags, LENGTHS)
    with pytest.raises(ValueError, match="at least one tag"):
        LinearChainCRF(0)
