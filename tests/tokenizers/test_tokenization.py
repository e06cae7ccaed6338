"""A recipe's tokenizer: validation in one line per problem, identity for cache keys, checkpoint
states, a third-party tokenizer, and ``seqkit show tokenizer``."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _tokenizer_texts import saved_and_loaded
from conftest import cli_here, make_plugin_dist, run_cli

import seqkit
from seqkit.errors import MissingPackage, SeqkitError
from seqkit.plugins.tokenizers.char import Char
from seqkit.registry import get_registry
from seqkit.tokenization import (
    build_tokenizer,
    spec_identity,
    tokenizer_from_state,
    tokenizer_problems,
    tokenizer_state,
)

KEY = "data.tokenizer"


@pytest.mark.parametrize("spec,problems", [
    ("bpe", []),
    ({"name": "char", "unknown": "drop", "alphabet": "abc"}, []),
    ("bpee", ["data.tokenizer: unknown tokenizer 'bpee' (did you mean 'bpe'?); registered: bpe, char, unigram, "
              "whitespace"]),
    ({"name": "unigrm"}, ["data.tokenizer.name: unknown tokenizer 'unigrm' (did you mean 'unigram'?); "
                          "registered: bpe, char, unigram, whitespace"]),
    ({"vocab_size": 8000}, ["data.tokenizer.name: required key is missing; registered tokenizers: bpe, char, "
                            "unigram, whitespace"]),
    (8000, ["data.tokenizer: expected a tokenizer name or a mapping with 'name' (e.g. {name: bpe, vocab_size: "
            "8000}), got int 8000"]),
    ({"name": "bpe", "vocab_sise": 100, "min_frequency": "often", "lowercase": 1},
     ["data.tokenizer.vocab_sise: unknown key (did you mean 'vocab_size'?); allowed: vocab_size, min_frequency, "
      "max_token_length, lowercase, add_prefix_space",
      "data.tokenizer.min_frequency: expected an integer, got str 'often'",
      "data.tokenizer.lowercase: expected a boolean, got int 1"]),
    ({"name": "unigram", "vocab_size": 100, "shrinking_factor": 1.5},
     ["data.tokenizer.vocab_size: must be >= 256; got 100",
      "data.tokenizer.shrinking_factor: must be <= 0.99; got 1.5"]),
    ({"name": "char", "unknown": "keep"}, ["data.tokenizer.unknown: must be one of map, drop; got 'keep'"]),
])
def test_problems_are_one_line_each_starting_with_the_key(spec, problems):
    assert tokenizer_problems(spec, KEY) == problems
    if problems:
        with pytest.raises(SeqkitError) as raised:
            build_tokenizer(spec, KEY)
        assert raised.value.problems == problems and not isinstance(raised.value, MissingPackage)


def test_build_fills_defaults_and_takes_the_specials():
    tok = build_tokenizer({"name": "whitespace", "vocab_size": 1e3}, KEY, ("<pad>", "<unk>"))
    assert tok.config == {"lowercase": False, "min_frequency": 1, "vocab_size": 1000}
    assert tok.specials == ("<pad>", "<unk>") and isinstance(tok, seqkit.Tokenizer)


def test_the_identity_is_the_same_for_every_spelling_of_one_tokenizer():
    identity = spec_identity("char")
    assert identity == spec_identity({"name": "char"}) == spec_identity({"name": "char", "lowercase": False})
    assert identity == {"name": "char", "options": {"alphabet": "", "lowercase": False, "unknown": "map"}}
    assert json.loads(json.dumps(identity)) == identity
    assert spec_identity({"name": "char", "lowercase": True}) != identity
    assert spec_identity({"name": "bpe", "vocab_size": 8000}) == spec_identity("bpe")
    with pytest.raises(SeqkitError, match="unknown key"):
        spec_identity({"name": "char", "lowercas": True})


def test_a_checkpoints_tokenizer_that_is_no_longer_installed_is_one_line():
    tok = Char()
    tok.train(["abc"])
    state = saved_and_loaded(tokenizer_state(tok))
    assert state == {"name": "char", "options": {"lowercase": False, "alphabet": "", "unknown": "map"},
                     "specials": [], "state": {"symbols": ["\ufffd", "a", "b", "c"], "lowercase": False,
                                               "unknown": "map"}, "plugin": "built-in"}
    gone = {**state, "name": "sentencepiece", "plugin": "seqkit-sentencepiece"}
    with pytest.raises(SeqkitError) as raised:
        tokenizer_from_state(gone)
    assert str(raised.value) == ("tokenizer 'sentencepiece' of this checkpoint is not registered here (registered: "
                                 "bpe, char, unigram, whitespace); install the plugin that provides it "
                                 "(seqkit-sentencepiece), then see seqkit plugins")


THIRD_PARTY = '''
    import numpy as np
    import seqkit


    class Bytes(seqkit.Tokenizer):
        """UTF-8 bytes as tokens, after the specials."""

        options = {"offset": seqkit.Option(0, min=0, help="added to every byte")}

        def train(self, texts, progress=None):
            for text in texts:
                if progress:
                    progress(len(text))

        @property
        def vocab_size(self):
            return len(self.specials) + 256 + self.config["offset"]

        def encode(self, text):
            first = len(self.specials) + self.config["offset"]
            return np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64) + first

        def decode(self, ids):
            first = len(self.specials) + self.config["offset"]
            return bytes(int(i) - first for i in ids if int(i) >= first).decode(errors="replace")

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            """Nothing to load: every byte is its own token."""


    @seqkit.hookimpl
    def register_tokenizers(register):
        register("bytes", Bytes)
'''


def test_a_third_party_tokenizer_is_validated_built_saved_and_shown(tmp_path, monkeypatch):
    site = make_plugin_dist(tmp_path / "site", "seqkit-bytes", "bytes_tokenizer", THIRD_PARTY, "bytes")
    monkeypatch.syspath_prepend(str(site))
    assert get_registry().owner("tokenizer", "bytes") == "bytes"
    assert tokenizer_problems({"name": "bytes", "offset": -1}, KEY) == ["data.tokenizer.offset: must be >= 0; got -1"]
    tok = build_tokenizer({"name": "bytes", "offset": 2}, KEY, ("<pad>",))
    tok.train(["ignored"])
    loaded = tokenizer_from_state(saved_and_loaded(tokenizer_state(tok)))
    np.testing.assert_array_equal(loaded.encode("é!"), [3 + 0xC3, 3 + 0xA9, 3 + 0x21])
    assert loaded.decode(loaded.encode("é!")) == "é!" and loaded.pad_id == 0
    assert tokenizer_state(tok)["plugin"] == "seqkit-bytes"

    listed = json.loads(run_cli("show", "tokenizer", "--json", site=site).stdout)
    assert {row["name"]: row["plugin"] for row in listed}["bytes"] == "bytes"
    shown = json.loads(run_cli("show", "tokenizer", "bytes", "--json", site=site).stdout)
    assert shown["source"] == "seqkit-bytes" and list(shown["options"]) == ["data.tokenizer.offset"]


def test_seqkit_show_tokenizer_lists_the_built_ins_and_their_options():
    shown = json.loads(cli_here("show", "tokenizer", "bpe", "--json").stdout)
    assert shown["kind"] == "tokenizer" and shown["plugin"] == "seqkit.plugins.tokenizers.bpe"
    assert shown["options"]["data.tokenizer.vocab_size"]["default"] == 8000
    assert shown["options"]["data.tokenizer.vocab_size"]["min"] == 256
    assert set(shown["options"]) >= {f"data.tokenizer.{k}" for k in ("min_frequency", "lowercase")}
    names = json.loads(cli_here("show", "tokenizer", "--json").stdout)
    assert [row["name"] for row in names] == ["bpe", "char", "unigram", "whitespace"]
    table = cli_here("show", "tokenizer", "char", env={"COLUMNS": "80"}).stdout
    assert "data.tokenizer.unknown" in table and "map | drop" in table
