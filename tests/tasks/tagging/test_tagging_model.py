"""The tagger's three outputs against independent computations and brute force, in float64.

Sentences are built once as lists and padded two ways: alone (no padding at all) and among longer
ones, with garbage (invalid ids included) in every padding position of tokens, tags and characters.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqkit import SeqkitError
from seqkit.decoding import build_decoder
from seqkit.plugins.tasks.tagging.crf import PADDING_TAG
from seqkit.plugins.tasks.tagging.model import PADDING_ID, CharWordEncoder, TaggerModel
from seqkit.plugins.tasks.tagging.step import TaggerStepModel, start_decoding
from seqkit.registry import Registry
from seqkit.state import Shared

VOCAB, CHAR_VOCAB, TAGS = 12, 9, 3
UNKNOWN_ID = 1


def _builtin_cells() -> list[str]:
    registry = Registry(strict=True)
    registry.load_builtins()
    return registry.names("cell")


CELLS = _builtin_cells()


def make_model(output: str, cell: str = "lstm", chars: bool = False, seed: int = 0, **options) -> TaggerModel:
    torch.manual_seed(seed)
    model = TaggerModel(VOCAB, TAGS, cell, hidden_size=5, embedding_size=4, output=output, layers=2,
                        char_vocab_size=CHAR_VOCAB if chars else 0, char_features=3 if chars else 0,
                        char_embedding_size=4, tag_embedding_size=3, decoder_size=6, **options).double()
    with torch.no_grad():  # peakier outputs than the default init, so that decoders can disagree
        model.head.weight.mul_(4.0)
        if output == "crf":  # the CRF starts at zero, where it is the softmax: make it a real chain
            for parameter in (model.crf.transitions, model.crf.start_transitions, model.crf.end_transitions):
                parameter.copy_(torch.randn_like(parameter) * 2)
    return model.eval()


def make_sentences(lengths, seed: int = 0, chars: bool = False) -> list[dict]:
    """Random sentences: token ids (some unknown), tags, and each word's characters."""
    g = torch.Generator().manual_seed(seed)
    sentences = []
    for length in lengths:
        sentence = {"tokens": torch.randint(UNKNOWN_ID, VOCAB, (length,), generator=g).tolist(),
                    "tags": torch.randint(TAGS, (length,), generator=g).tolist()}
        if chars:
            sentence["chars"] = [torch.randint(1, CHAR_VOCAB, (int(torch.randint(1, 5, (1,), generator=g)),),
                                               generator=g).tolist() for _ in range(length)]
        sentences.append(sentence)
    return sentences


def pad(sentences, time: int | None = None, width: int | None = None, seed: int = 1):
    """(tokens, lengths, tags, chars or None): a padded batch with garbage in every padding position."""
    g = torch.Generator().manual_seed(seed)
    lengths = [len(s["tokens"]) for s in sentences]
    time = time or max(lengths)
    tokens = torch.randint(-5, 100, (len(sentences), time), generator=g)
    tags = torch.randint(-5, 100, (len(sentences), time), generator=g)
    chars = None
    if "chars" in sentences[0]:
        own = max(len(word) for s in sentences for word in s["chars"])
        chars = torch.randint(-5, 100, (len(sentences), time, width or own), generator=g)
    for b, s in enumerate(sentences):
        tokens[b, :lengths[b]] = torch.tensor(s["tokens"])
        tags[b, :lengths[b]] = torch.tensor(s["tags"])
        if chars is not None:
            for i, word in enumerate(s["chars"]):  # inside a real word, characters are padded with 0
                chars[b, i] = PADDING_ID
                chars[b, i, :len(word)] = torch.tensor(word)
    return tokens, torch.tensor(lengths), tags, chars


def close(actual, expected, tol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("output", ["softmax", "crf", "autoregressive"])
def test_a_sentence_alone_and_among_longer_ones_gets_the_same_results(output, cell):
    model = make_model(output, cell, chars=True, seed=3)
    sentences = make_sentences([2, 5, 3, 6], seed=4, chars=True)
    tokens, lengths, tags, chars = pad(sentences, time=8, width=7)
    batch_ll = model.log_likelihood(tokens, lengths, tags, chars)
    batch_tags = model.predict(tokens, lengths, chars)
    batch_marginals = None if output == "autoregressive" else model.marginals(tokens, lengths, chars)
    for b, sentence in enumerate(sentences):
        length = len(sentence["tokens"])
        alone = pad([sentence])
        close(model.log_likelihood(*alone)[0], batch_ll[b])
        assert model.predict(alone[0], alone[1], alone[3])[0].tolist() == batch_tags[b, :length].tolist()
        assert (batch_tags[b, length:] == PADDING_TAG).all()
        if batch_marginals is not None:
            close(model.marginals(alone[0], alone[1], alone[3])[0], batch_marginals[b, :length])
            assert (batch_marginals[b, length:] == 0).all()
    loss, count = model.loss(tokens, lengths, tags, chars)
    close(loss, -batch_ll.sum())
    assert count.item() == sum(len(s["tokens"]) for s in sentences)


def test_softmax_predicts_the_argmax_and_its_marginals_are_the_softmax_rows():
    model = make_model("softmax", seed=1)
    tokens, lengths, tags, _ = pad(make_sentences([4, 1, 3], seed=2), time=5)
    logits = model.head(model.encode(tokens, lengths))
    mask = torch.arange(5) < lengths.unsqueeze(1)
    predicted = model.predict(tokens, lengths)
    assert torch.equal(predicted[mask], logits.argmax(2)[mask])
    marginals = model.marginals(tokens, lengths)
    close(marginals.sum(2)[mask], torch.ones(int(lengths.sum()), dtype=torch.float64))
    log_p = torch.log_softmax(logits, 2)
    expected = torch.stack([log_p[b, range(n), tags[b, :n]].sum() for b, n in enumerate(lengths.tolist())])
    close(model.log_likelihood(tokens, lengths, tags), expected)


def test_crf_loss_is_the_crf_likelihood_of_the_emissions_and_predict_is_viterbi():
    model = make_model("crf", seed=2)
    tokens, lengths, tags, _ = pad(make_sentences([3, 5, 1], seed=3), time=6)
    emissions = model.emissions(tokens, lengths)
    mask = torch.arange(6) < lengths.unsqueeze(1)
    crf_ll = model.crf.log_likelihood(emissions, tags.masked_fill(~mask, 0), lengths)
    close(model.loss(tokens, lengths, tags)[0], -crf_ll.sum())
    assert torch.equal(model.predict(tokens, lengths), model.crf.viterbi(emissions, lengths)[0])
    close(model.marginals(tokens, lengths), model.crf.marginals(emissions, lengths))
    # With these transitions the chain matters: Viterbi is not the per-position argmax everywhere.
    assert not torch.equal(model.predict(tokens, lengths)[mask], emissions.argmax(2)[mask])


# -- autoregressive ---------------------------------------------------------------------------------

def brute_force(model, sentence) -> tuple[list[list[int]], torch.Tensor]:
    """Every one of the K^L tag sequences of a sentence and its teacher-forced log-probability."""
    length = len(sentence["tokens"])
    sequences = [list(tags) for tags in itertools.product(range(TAGS), repeat=length)]
    tokens = torch.tensor(sentence["tokens"]).expand(len(sequences), -1)
    with torch.no_grad():
        log_probs = model.log_likelihood(tokens, torch.full((len(sequences),), length), torch.tensor(sequences))
    return sequences, log_probs


def decode(strategy, model, tokens, lengths, options=None, chars=None):
    return build_decoder(strategy, options or {}).decode(
        TaggerStepModel(model), *start_decoding(model, tokens, lengths, chars), int(lengths.max()) + 1)


def scores(result) -> torch.Tensor:
    return torch.tensor([h.log_prob for h in result.hypotheses], dtype=torch.float64)


def test_teacher_forcing_equals_the_step_models_log_probabilities_along_the_tags():
    model = make_model("autoregressive", seed=5)
    sentences = make_sentences([3, 1, 4], seed=6)
    tokens, lengths, tags, _ = pad(sentences)
    step_model = TaggerStepModel(model)
    state, previous = start_decoding(model, tokens, lengths)
    total = torch.zeros(3, dtype=torch.float64)
    for position in range(int(lengths.max()) + 2):  # through the end and one step past it
        log_probs, state = step_model.step(previous, state)
        close(log_probs.logsumexp(1), torch.zeros(3, dtype=torch.float64))  # rows stay distributions
        inside = position < lengths
        previous = torch.where(inside, tags[:, min(position, tags.shape[1] - 1)], step_model.end_token)
        total += log_probs.gather(1, previous.unsqueeze(1)).squeeze(1)
        assert (log_probs[~inside, step_model.end_token] == 0).all()
        assert (log_probs[inside, step_model.end_token] == -math.inf).all()
    close(total, model.log_likelihood(tokens, lengths, tags))


@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_exact_decoding_equals_brute_force_over_every_tag_sequence(cell):
    model = make_model("autoregressive", cell, seed=7)
    sentences = make_sentences([2, 4, 1, 3], seed=8)
    tokens, lengths, _, _ = pad(sentences)
    results = decode("exact", model, tokens, lengths, {"n_best": 3})
    end, time = TAGS, int(lengths.max()) + 1
    for sentence, result in zip(sentences, results):
        length = len(sentence["tokens"])
        sequences, log_probs = brute_force(model, sentence)
        close(log_probs.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
        ranked = log_probs.argsort(descending=True)[:3].tolist()
        assert [h.tokens for h in result.hypotheses] == [sequences[i] + [end] for i in ranked][:len(result.hypotheses)]
        assert len(result.hypotheses) == min(3, TAGS ** length)
        close(scores(result), log_probs[ranked][:len(result.hypotheses)])
        marginals = torch.zeros(TAGS + 1, time, dtype=torch.float64)
        for sequence, p in zip(sequences, log_probs.exp()):
            for position, tag in enumerate(sequence + [end] * (time - length)):
                marginals[tag, position] += p
        close(result.extras["marginals"], marginals)
        assert result.extras["mass"] == pytest.approx(1.0, abs=1e-10)


def test_a_beam_as_wide_as_every_sequence_equals_exact():
    model = make_model("autoregressive", seed=9)
    tokens, lengths, _, _ = pad(make_sentences([3, 1, 4, 2], seed=10))
    exact = decode("exact", model, tokens, lengths, {"n_best": 4})
    beam = decode("beam", model, tokens, lengths, {"beam_size": TAGS ** 4, "n_best": 4})
    for e, b in zip(exact, beam):
        assert [h.tokens for h in b.hypotheses] == [h.tokens for h in e.hypotheses]
        close(scores(b), scores(e))


@pytest.mark.parametrize("strategy,options", [
    ("greedy", {}), ("sample", {"num_samples": 6, "seed": 0}), ("beam", {"beam_size": 4, "n_best": 4}),
    ("exact", {"n_best": 2}), ("sample", {"num_samples": 3, "seed": 1, "temperature": 3.0, "top_p": 0.9})])
def test_every_decoder_emits_one_tag_per_token_then_the_end(strategy, options):
    model = make_model("autoregressive", "gru", seed=11)
    sentences = make_sentences([1, 5, 3, 2], seed=12)
    tokens, lengths, _, _ = pad(sentences)
    for sentence, result in zip(sentences, decode(strategy, model, tokens, lengths, options)):
        length = len(sentence["tokens"])
        assert result.hypotheses
        for hypothesis in result.hypotheses:
            assert len(hypothesis.tokens) == length + 1 and hypothesis.tokens[-1] == TAGS
            assert all(0 <= tag < TAGS for tag in hypothesis.tokens[:-1])
            # the decoders' score is the model's probability of exactly these tags
            tags = torch.tensor([hypothesis.tokens[:-1]])
            close(torch.tensor(hypothesis.log_prob, dtype=torch.float64),
                  model.log_likelihood(torch.tensor([sentence["tokens"]]), torch.tensor([length]), tags)[0])


@pytest.mark.parametrize("strategy,options", [("greedy", {}), ("beam", {"beam_size": 3, "n_best": 2}),
                                              ("exact", {"n_best": 2})])
def test_decoding_a_batch_of_mixed_lengths_equals_decoding_each_sentence_alone(strategy, options):
    model = make_model("autoregressive", "lstm", chars=True, seed=13)
    sentences = make_sentences([2, 4, 1], seed=14, chars=True)
    tokens, lengths, _, chars = pad(sentences, time=6, width=6)
    together = decode(strategy, model, tokens, lengths, options, chars)
    for sentence, result in zip(sentences, together):
        tokens1, lengths1, _, chars1 = pad([sentence])
        [alone] = decode(strategy, model, tokens1, lengths1, options, chars1)
        assert [h.tokens for h in result.hypotheses] == [h.tokens for h in alone.hypotheses]
        close(scores(result), scores(alone))


def test_predict_is_greedy_decoding_and_marginals_point_to_exact():
    model = make_model("autoregressive", seed=15)
    sentences = make_sentences([4, 2, 3], seed=16)
    tokens, lengths, _, _ = pad(sentences)
    predicted = model.predict(tokens, lengths)
    for b, result in enumerate(decode("greedy", model, tokens, lengths)):
        assert predicted[b].tolist() == result.hypotheses[0].tokens[:-1] + [PADDING_TAG] * (4 - lengths[b].item())
    with pytest.raises(SeqkitError, match="--strategy exact"):
        model.marginals(tokens, lengths)


def test_beam_search_never_copies_the_encoder_memory():
    model = make_model("autoregressive", seed=17)
    tokens, lengths, _, _ = pad(make_sentences([3, 2], seed=18))
    state, first = start_decoding(model, tokens, lengths)
    step_model, seen = TaggerStepModel(model), []

    class Spy:
        vocab_size, end_token = step_model.vocab_size, step_model.end_token

        def step(self, tokens, state):
            seen.append(state[0])
            return step_model.step(tokens, state)

    build_decoder("beam", {"beam_size": 4}).decode(Spy(), state, first, 4)
    assert len(seen) > 1 and all(shared is state[0] for shared in seen)
    assert isinstance(state[0], Shared) and state[0].value[0].shape[0] == 2  # one row per sentence


# -- characters ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_a_words_characters_are_encoded_the_same_whatever_else_is_in_the_batch(cell):
    torch.manual_seed(19)
    encoder = CharWordEncoder(CHAR_VOCAB, 4, 3, cell).double()
    sentences = make_sentences([3, 1, 4], seed=20, chars=True)
    _, lengths, _, chars = pad(sentences, time=5, width=6)
    mask = torch.arange(5) < lengths.unsqueeze(1)
    encoded = encoder(chars, mask)
    assert encoded.shape == (3, 5, 6) and (encoded[~mask] == 0).all()
    for b, sentence in enumerate(sentences):
        for i, word in enumerate(sentence["chars"]):
            alone = encoder(torch.tensor([[word]]), torch.ones(1, 1, dtype=torch.bool))[0, 0]
            close(encoded[b, i], alone)
            assert alone.abs().sum() > 0


def test_unknown_words_are_told_apart_by_their_characters():
    model = make_model("softmax", chars=True, seed=21)
    sentence = make_sentences([1], seed=22, chars=True)[0]
    words = [[2, 3, 4], [5, 6], [2, 3, 4]]
    batch = [dict(sentence, tokens=[UNKNOWN_ID], chars=[word]) for word in words]
    batch.append(dict(sentence, tokens=[7], chars=[words[0]]))  # a known word with the same spelling
    tokens, lengths, _, chars = pad(batch)
    mask = torch.ones(4, 1, dtype=torch.bool)
    encoded = model.chars(chars, mask)[:, 0]
    close(encoded[0], encoded[2])
    close(encoded[0], encoded[3])  # the characters' features do not depend on the word's id
    assert not torch.allclose(encoded[0], encoded[1])
    marginals = model.marginals(tokens, lengths, chars)[:, 0]
    assert not torch.allclose(marginals[0], marginals[1])  # two unknown words, two distributions
    close(marginals[0], marginals[2])


def test_inputs_that_do_not_fit_the_model_are_refused():
    model = make_model("softmax", chars=True)
    tokens, lengths, tags, chars = pad(make_sentences([2, 3], chars=True))
    with pytest.raises(ValueError, match="lengths must be 2 integers in \\[1, 3\\]"):
        model.predict(tokens, torch.tensor([0, 3]), chars)
    with pytest.raises(ValueError, match="chars must be given"):
        model.predict(tokens, lengths)
    with pytest.raises(ValueError, match="output must be one of"):
        TaggerModel(VOCAB, TAGS, "lstm", 4, output="mlp")
    with pytest.raises(ValueError, match="only the autoregressive output"):
        TaggerStepModel(model)
    with pytest.raises(ValueError, match="no emissions"):
        make_model("autoregressive").emissions(tokens, lengths)
