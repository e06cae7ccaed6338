"""The ``whitespace`` tokenizer: translation's space tokens, with ``<unk>`` for every unseen word."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from _tokenizer_texts import ODD_TEXTS, python_text, saved_and_loaded

from seqkit.errors import SeqkitError
from seqkit.plugins.tasks.common.vocabulary import Vocabulary
from seqkit.plugins.tokenizers.whitespace import Whitespace
from seqkit.tokenization import build_tokenizer, tokenizer_from_state, tokenizer_state

SOURCE, TARGET = ("<pad>", "<unk>"), ("<pad>", "<unk>", "<s>", "</s>")


def trained(text: str, specials=(), **options) -> Whitespace:
    tok = Whitespace(specials, **options)
    tok.train([text])
    return tok


@pytest.mark.parametrize("specials", [SOURCE, TARGET])
def test_ids_are_translations_space_tokens(specials):
    text = python_text()[:200_000]
    old = Vocabulary.build(Counter(text.split()), specials)  # as translation builds its vocabularies
    tok = trained(text, specials)
    assert tok.symbols == old.symbols and tok.vocab_size == len(old)
    other = python_text()[200_000:260_000]
    np.testing.assert_array_equal(tok.encode(other), old.ids(other.split()))
    assert (tok.pad_id, tok.unknown_id) == (0, 1)
    assert (tok.start_id, tok.end_id) == ((2, 3) if specials == TARGET else (None, None))


def test_round_trip_joins_words_with_single_spaces():
    tok = trained("\n".join([python_text(), *ODD_TEXTS]))
    for sample in (python_text()[:50_000], *ODD_TEXTS):
        assert tok.decode(tok.encode(sample)) == " ".join(sample.split())
    assert tok.encode("").shape == (0,) and tok.decode([]) == ""


def test_unseen_words_read_as_unk_which_is_added_when_the_task_lacks_it():
    tok = trained("the cat sat on the mat")
    assert tok.symbols == ["<unk>", "the", "cat", "mat", "on", "sat"] and tok.unknown_id == 0
    ids = tok.encode("the dog  sat\n")
    np.testing.assert_array_equal(ids, [1, 0, 5])
    assert tok.decode(ids) == "the <unk> sat"
    assert tok.read(["The dog\tsat", "cat"]) == (["The dog sat", "cat"],
                                                 "words not in the vocabulary read as '<unk>': 'The', 'dog'")
    with_specials = trained("a b", ("<pad>", "<s>"))  # no <unk> asked: it follows the specials
    assert with_specials.symbols[:3] == ["<pad>", "<s>", "<unk>"] and with_specials.unknown_id == 2
    assert with_specials.decode([0, 1, 3, 2, 4]) == "a <unk> b"  # <pad> and <s> skipped


def test_min_frequency_vocab_size_and_lowercase():
    text = "b b b a a A c c d"
    assert trained(text, SOURCE, min_frequency=2).symbols == ["<pad>", "<unk>", "b", "a", "c"]
    assert trained(text, SOURCE, vocab_size=4).symbols == ["<pad>", "<unk>", "b", "a"]
    assert trained(text, SOURCE, lowercase=True).symbols == ["<pad>", "<unk>", "a", "b", "c", "d"]
    assert trained(text, lowercase=True).decode(trained(text, lowercase=True).encode("A B")) == "a b"
    with pytest.raises(SeqkitError, match="vocab_size: 2 leaves no id for a word"):
        trained(text, SOURCE, vocab_size=2)


def test_streaming_train_equals_one_chunk_wherever_the_chunks_end():
    text = python_text()[:100_000]
    whole = trained(text, SOURCE)
    rng = np.random.default_rng(3)
    cuts = sorted({0, len(text), 5, 6, *rng.integers(0, len(text), 40).tolist()})  # many inside words
    streamed, seen = Whitespace(SOURCE), []
    chunks = [text[a:b] for a, b in zip(cuts, cuts[1:])]
    streamed.train(iter(chunks[:3] + [""] + chunks[3:]), progress=seen.append)
    assert streamed.symbols == whole.symbols
    assert sum(seen) == len(text)


def test_state_round_trips_through_a_weights_only_checkpoint():
    text = python_text()
    tok = build_tokenizer({"name": "whitespace", "lowercase": True, "vocab_size": 500}, "data.tokenizer", TARGET)
    tok.train([text[:100_000]])
    loaded = tokenizer_from_state(saved_and_loaded(tokenizer_state(tok)))
    assert loaded.vocab_size == 500 and loaded.config == tok.config and loaded.specials == TARGET
    np.testing.assert_array_equal(loaded.encode(text), tok.encode(text))
    with pytest.raises(SeqkitError, match="starts with"):
        Whitespace(SOURCE).load_state_dict({"symbols": ["<unk>", "a"]})
