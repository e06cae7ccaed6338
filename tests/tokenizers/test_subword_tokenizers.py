"""``bpe`` and ``unigram``: byte-level, so every text comes back exactly; specials first; states
that load with weights_only; one line naming the extra when ``tokenizers`` is missing."""
from __future__ import annotations

import functools
import sys

import numpy as np
import pytest
from _tokenizer_texts import ODD_TEXTS, python_text, saved_and_loaded
from conftest import needs_extra

from seqkit.errors import MissingPackage
from seqkit.plugins.tokenizers._hf import encoding_pieces
from seqkit.plugins.tokenizers.bpe import BPE
from seqkit.tokenization import build_tokenizer, tokenizer_from_state, tokenizer_problems, tokenizer_state

TARGET = ("<pad>", "<unk>", "<s>", "</s>")
KINDS = ["bpe", "unigram"]


@functools.cache
def trained(name: str, specials: tuple[str, ...] = TARGET, vocab_size: int = 600, **options):
    """A tokenizer trained on 200 kB of pydoc in chunks (once per arguments: they are read only)."""
    needs_extra("tokenizers", "subword")
    tok = build_tokenizer({"name": name, "vocab_size": vocab_size, **options}, "data.tokenizer", specials)
    text, seen = python_text()[:200_000], []
    tok.train((text[i:i + 70_000] for i in range(0, len(text), 70_000)), progress=seen.append)
    assert seen == [70_000, 70_000, 60_000]
    return tok


@pytest.mark.parametrize("name", KINDS)
def test_every_text_comes_back_exactly(name):
    tok = trained(name)
    for text in (python_text(), *ODD_TEXTS, "<s>" * 3, "Zürich\n\n\n  x\n"):
        ids = tok.encode(text)
        assert ids.dtype == np.int64 and ids.ndim == 1
        assert tok.decode(ids) == text
        assert not set(ids.tolist()) & set(range(len(TARGET)))  # "<s>" in a text is text
    assert tok.read(ODD_TEXTS) == (ODD_TEXTS, None)


@pytest.mark.parametrize("name", KINDS)
def test_specials_first_and_skipped_when_decoding_but_the_unknown(name):
    tok = trained(name)
    assert (tok.pad_id, tok.unknown_id, tok.start_id, tok.end_id) == (0, 1, 2, 3)
    assert [tok._tokenizer.id_to_token(i) for i in range(4)] == list(TARGET)
    ids = tok.encode("def f(x):")
    assert tok.decode([2, *ids, 3, 0, 0]) == "def f(x):"
    assert tok.decode(np.array([1, *ids])) == "<unk>def f(x):"
    plain = trained(name, ())
    assert plain.pad_id is plain.unknown_id is plain.end_id is None
    assert plain.decode(plain.encode(ODD_TEXTS[2])) == ODD_TEXTS[2]


@pytest.mark.parametrize("name", KINDS)
def test_vocab_size_is_honoured(name):
    for size in (300, 1000):
        tok = trained(name, vocab_size=size)
        assert 256 + len(TARGET) <= tok.vocab_size <= size
        assert max(int(tok.encode(python_text()).max()), 3) < tok.vocab_size
    sample = python_text()[:20_000]
    assert len(trained(name, vocab_size=300).encode(sample)) > len(trained(name, vocab_size=1000).encode(sample))


@pytest.mark.parametrize("name", KINDS)
def test_state_round_trips_through_a_weights_only_checkpoint(name):
    tok = trained(name)
    state = saved_and_loaded(tokenizer_state(tok))
    assert isinstance(state["state"]["json"], str)
    loaded = tokenizer_from_state(state)
    assert type(loaded) is type(tok) and loaded.config == tok.config and loaded.specials == TARGET
    for text in (python_text(), *ODD_TEXTS):
        np.testing.assert_array_equal(loaded.encode(text), tok.encode(text))


@pytest.mark.parametrize("name", KINDS)
def test_long_texts_are_encoded_in_pieces_with_the_same_ids(name):
    tok = trained(name)
    text = python_text()
    assert len(encoding_pieces(text)) > 5
    whole = tok._tokenizer.encode(text, add_special_tokens=False).ids
    np.testing.assert_array_equal(tok.encode(text), whole)
    batch = tok.encode_batch([text[:3000], "", ODD_TEXTS[3]])
    assert [b.tolist() for b in batch] == [tok.encode(t).tolist() for t in (text[:3000], "", ODD_TEXTS[3])]


def test_lowercase_and_a_prefix_space_are_what_the_model_reads():
    lower = trained("bpe", lowercase=True)
    assert lower.decode(lower.encode("Hello WORLD\n")) == "hello world\n"
    assert lower.read(["Hello", "x"]) == (["hello", "x"], "lowercased")
    spaced = trained("unigram", add_prefix_space=True)
    assert spaced.decode(spaced.encode("def f")) == " def f"


def test_bpe_options_reach_the_trainer():
    short = trained("bpe", max_token_length=3)
    assert max(len(t) for t in short._tokenizer.get_vocab() if t not in TARGET) <= 3
    assert trained("bpe", min_frequency=400).vocab_size < trained("bpe").vocab_size


def test_a_missing_tokenizers_package_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import tokenizers now raises ImportError
    line = 'data.tokenizer: bpe needs the tokenizers package, which is not installed: pip install -e ".[subword]"'
    assert tokenizer_problems({"name": "bpe", "vocab_size": 1000}, "data.tokenizer") == [line]
    with pytest.raises(MissingPackage) as raised:
        build_tokenizer("bpe", "data.tokenizer")
    assert str(raised.value) == line and raised.value.package == "tokenizers"
    with pytest.raises(MissingPackage, match=r"not installed: pip install -e \"\.\[subword\]\""):
        BPE().train(["text"])
    state = {"name": "unigram", "options": {}, "specials": [], "state": {"json": "{}"}}
    with pytest.raises(MissingPackage, match="^tokenizer unigram of this checkpoint needs the tokenizers package"):
        tokenizer_from_state(state)
    assert tokenizer_problems("char", "data.tokenizer") == []  # the others need nothing
