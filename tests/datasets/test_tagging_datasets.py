"""Datasets for tagging: python-tokens (labels from tokenize, splits, packing, cache) and conll."""
from __future__ import annotations

import itertools
import os
import random
import re
import sysconfig
import tokenize
import zlib
from pathlib import Path

import pytest
from _token_labels import expected_labels
from conftest import run_cli

from seqkit import SeqkitError
from seqkit.contracts.tagged_corpus import TaggedCorpus
from seqkit.plugins.datasets import _python_token_classes as token_classes
from seqkit.plugins.datasets import python_tokens
from seqkit.plugins.datasets._cache import cache_dir
from seqkit.recipe import resolve


def labels_of(source: str) -> list[str]:
    return [token_classes.CLASSES[c] for c in token_classes.label_source(source).classes]


SNIPPETS = {
    "f-strings": 'msg = f"{user!r:>{width}} said {\'hi\'}" + f\'{x:{"<"}10}\' + rf"""{a}\n{b!s}"""\n'
                 'nested = f"{f\'{y}\'}" F\'{{literal}}\' f"{x=}"\n',
    "comments": "x = 1  # a comment\n# only a comment\n\n    # indented comment\ny = '#not a comment'\n",
    "docstring": 'def f():\n    """A doc\n    string, with "quotes" and # no comment."""\n    return None\n',
    "soft keywords": "match command:\n    case [x, _]:\n        type = 1\n    case _:\n        pass\n",
    "continuations": "total = a + \\\n    b\nitems = [1,\n         2]  # c\nif (x and\n        y): pass\n",
    "numbers": "n = 1_000 + 0x1F + 1e-3j + 0o17 + 0b1 + 3.14 + .5 + 10E+2 + 7J\n",
    "decorators and walrus": "@functools.cache\n@app.route('/x')\ndef g(y) -> bool:\n"
                             "    if (n := len(y)) > 10: return True\n    return n ** 2 >= 4\n",
    "keywords": "async def h():\n    await x\n    lambda: None is not False\n    y = a not in b\n",
    "prefixes": "b'\\x00' u\"x\" Rb'y' br\"\"\"z\"\"\"\n",
    "unicode and tabs": "café = 'é'\nif café:\n\tpass\n\x0c\nz = 1",
}


@pytest.mark.parametrize("name", SNIPPETS)
def test_labels_are_what_tokenize_says(name):
    source = SNIPPETS[name]
    labels = labels_of(source)
    assert len(labels) == len(source)
    assert labels == expected_labels(source)


def test_labels_do_not_depend_on_the_python_version():
    # Written out by hand: on 3.11 tokenize gives one STRING per f-string, on 3.12+ it splits it
    # into FSTRING_START/MIDDLE/END around the replacement fields' own tokens.
    letter = {"name": "n", "keyword": "k", "operator": "o", "number": "d", "string": "s",
              "comment": "c", "whitespace": "_"}
    cases = {
        "s = f\"{a!r:>{w}} {{x}} {f'{y}'}\"\n": "n_o_ssssssssssssssssssssssssssss_",
        "match p:\n    case _:\n        type = 1\n": "nnnnn_no_____nnnn_no_________nnnn_o_d_",
        "x = 1 \\\n  + 2  # two\n": "n_o_d_____o_d__ccccc_",
    }
    for source, expected in cases.items():
        assert "".join(letter[label] for label in labels_of(source)) == expected


@pytest.mark.parametrize("source", ["s = 'unterminated\n", "x = (1,\n", "if x:\n  y\n z\n", "a = $b\n",
                                    "a = b ? c\n"])
def test_source_that_does_not_tokenize_fails(source):
    with pytest.raises(token_classes.TokenizeFailed):
        token_classes.label_source(source)


def test_line_ends_are_where_no_token_or_bracket_is_open():
    source = 'x = (1,\n     2)\n# c\n\ns = """a\nb"""\ny = 1'
    labelled = token_classes.label_source(source)
    assert labelled.logical_line_ends == [source.index("2)") + 3, source.index("# c") + 4,
                                          source.index("s ="), source.index("y ="), len(source)]
    assert labelled.physical_line_ends == [source.index("(1,") + 4, *labelled.logical_line_ends]


def random_layout(rng: random.Random, n: int):
    classes = bytes(rng.choice(b"\x00\x00\x00\x04\x06") for _ in range(n))
    physical = sorted(rng.sample(range(1, n), n // 6)) + [n]
    logical = [end for end in physical if rng.random() < 0.4]
    return classes, (logical if logical[-1:] == [n] else logical + [n]), physical


@pytest.mark.parametrize("seed", range(30))
def test_pack_tiles_the_text_cutting_at_the_best_place_within_reach(seed):
    rng = random.Random(seed)
    n, max_length = rng.randint(1, 300), rng.randint(1, 40)
    min_length = rng.choice([0, 0, 1, rng.randint(1, max_length), 2 * max_length])
    classes, logical, physical = random_layout(rng, n)
    spans = python_tokens.pack(classes, logical, physical, max_length, min_length, seed)
    assert spans == python_tokens.pack(classes, logical, physical, max_length, min_length, seed)
    assert [a for a, _ in spans] == [0] + [b for _, b in spans[:-1]] and spans[-1][1] == n
    targets = python_tokens.sequence_targets(max_length, min_length, seed)
    for (a, b), target in zip(spans, targets):
        assert min(min_length, max_length) <= target <= max_length
        assert 0 < b - a <= target
        within = range(a + 1, min(a + target, n) + 1)
        logical_within = [e for e in logical if e in within]
        physical_within = [e for e in physical if e in within]
        changes = [i for i in within if i == n or classes[i - 1] != classes[i]]
        # the furthest cut of the best kind available: logical line, physical line, class change
        assert b == max(logical_within or physical_within or changes or [a + target])


@pytest.mark.parametrize("seed", range(30))
def test_whole_lines_runs_on_to_the_next_line_end_rather_than_cut_a_token(seed):
    rng = random.Random(seed)
    n, max_length = rng.randint(1, 300), rng.randint(2, 40)
    min_length = rng.choice([1, rng.randint(1, max_length)])
    classes, logical, physical = random_layout(rng, n)
    spans = python_tokens.pack(classes, logical, physical, max_length, min_length, seed, whole_lines=True)
    assert [a for a, _ in spans] == [0] + [b for _, b in spans[:-1]] and spans[-1][1] == n
    targets = python_tokens.sequence_targets(max_length, min_length, seed)
    for (a, b), target in zip(spans, targets):
        assert 0 < b - a <= max_length
        within = [e for e in physical if a < e <= min(a + target, n)]
        beyond = [e for e in physical if a + target < e <= min(a + max_length, n)]
        if within or a + target >= n:  # as without whole_lines
            assert b == max([e for e in logical if e in within] or within or [n])
        elif beyond:  # the first line end past the target, a logical one if there is one
            assert b == min([e for e in logical if e in beyond] or beyond)
        else:  # no line end within max_length: a cut as for a target of max_length
            changes = [i for i in range(a + 1, min(a + max_length, n) + 1)
                       if i == n or classes[i - 1] != classes[i]]
            assert b == max(changes or [a + max_length])
    plain = python_tokens.pack(classes, logical, physical, max_length, 0, seed, whole_lines=True)
    # without min_length every target is max_length: nothing to run on to
    assert plain == python_tokens.pack(classes, logical, physical, max_length, 0, seed)


def test_whole_lines_keeps_a_docstring_shorter_than_max_length_in_one_sequence():
    source = ('def f():\n    """' + "word " * 30 + '"""\n    return 1\n') * 2
    labelled = token_classes.label_source(source)
    classes = bytes(labelled.classes)
    cut = python_tokens.pack(classes, labelled.logical_line_ends, labelled.physical_line_ends, 200, 10)
    whole = python_tokens.pack(classes, labelled.logical_line_ends, labelled.physical_line_ends, 200, 10,
                               whole_lines=True)
    inside = lambda spans: [source[a:b] for a, b in spans  # noqa: E731
                            if all(c == token_classes.STRING for c in classes[a:b]) and '"' not in source[a:b]]
    assert inside(cut) and not inside(whole)
    assert all(b in labelled.physical_line_ends for _, b in whole)


def test_line_spans_are_the_logical_lines_without_indentation_and_newline():
    source = ("import os\n\nclass A:\n    # a comment\n    x = (1,\n         2)  # two\n"
              "    def f(self): return 'x'\n\n\tpass\nlast = 1")
    labelled = token_classes.label_source(source)
    spans = python_tokens.line_spans(source, labelled.logical_line_ends, 100, 1.0)
    assert [source[a:b] for a, b in spans] == ["import os", "class A:", "# a comment",
                                               "x = (1,\n         2)  # two", "def f(self): return 'x'",
                                               "pass", "last = 1"]
    assert python_tokens.line_spans(source, labelled.logical_line_ends, 100, 0.0) == []
    short = python_tokens.line_spans(source, labelled.logical_line_ends, 8, 1.0)  # at most 8 characters
    assert [source[a:b] for a, b in short] == ["class A:", "pass", "last = 1"]
    half = python_tokens.line_spans(source, labelled.logical_line_ends, 100, 0.5, seed=3)
    assert half == python_tokens.line_spans(source, labelled.logical_line_ends, 100, 0.5, seed=3)
    assert set(half) < set(spans)
    lines = python_tokens.line_spans(source * 40, token_classes.label_source(source * 40).logical_line_ends, 100,
                                     0.5, seed=3)
    assert 0.35 < len(lines) / (7 * 40) < 0.65


def test_short_sequences_are_drawn_at_every_scale():
    targets = python_tokens.sequence_targets(512, 16, seed=7)
    drawn = [next(targets) for _ in range(3000)]
    assert min(drawn) >= 16 and max(drawn) <= 512
    shares = [sum(low <= t < 2 * low for t in drawn) / len(drawn) for low in (16, 32, 64, 128)]
    assert all(abs(share - 0.2) < 0.04 for share in shares)  # log-uniform: 1/5 per doubling


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.fixture
def fake_stdlib(tmp_path, monkeypatch):
    """A standard library folder of a few files, test packages and one that does not tokenize."""
    stdlib = tmp_path / "lib"
    for i in range(12):
        write(stdlib / f"mod{i}.py", f"def f{i}(x):\n    '''Doc {i}.'''\n    return x + {i}  # c\n" * (i + 1))
    write(stdlib / "pkg" / "core.py", SNIPPETS["f-strings"] + SNIPPETS["continuations"])
    write(stdlib / "pkg" / "latin.py", "# -*- coding: latin-1 -*-\ns = 'caf\xe9'\r\n".encode("latin-1"))
    write(stdlib / "pkg" / "empty.py", "")
    write(stdlib / "broken.py", "s = 'unterminated\n")
    for excluded in ("test/a.py", "pkg/tests/b.py", "idlelib/idle_test/c.py", "pkg/test_d.py",
                     "site-packages/e.py", "dist-packages/f.py", "pkg/notes.txt", "pydoc_data/topics.py"):
        write(stdlib / excluded, "x = 1\n")
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"stdlib": str(stdlib)})
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path / "cache"))
    return stdlib


def read_source(path: Path) -> str:
    with tokenize.open(path) as f:  # the coding cookie, universal newlines
        return f.read()


def check_corpus_matches_files(corpus: TaggedCorpus, stdlib: Path, files: list[str], max_length: int):
    """Each split is its files' texts in order, cut at file boundaries, labelled as tokenize says."""
    for split, sentences in corpus.splits.items():
        mine = sorted(f for f in files if python_tokens.split_of(f) == split)
        texts = [read_source(stdlib / f) for f in mine]
        assert "".join(tokens for tokens, _ in sentences) == "".join(texts)
        assert [tag for _, tags in sentences for tag in tags] == [
            label for text in texts for label in expected_labels(text)]
        cuts = set(itertools.accumulate(len(tokens) for tokens, _ in sentences))
        assert set(itertools.accumulate(len(text) for text in texts)) <= cuts | {0}
        assert all(len(tokens) <= max_length for tokens, _ in sentences)


def test_python_tokens_reads_the_library_without_tests(registry, fake_stdlib):
    corpus = registry.get("dataset", "python-tokens")(max_length=24)
    loaded = corpus.load()
    files = python_tokens.stdlib_files(fake_stdlib)
    assert files == sorted(["broken.py", "pkg/core.py", "pkg/empty.py", "pkg/latin.py",
                            *(f"mod{i}.py" for i in range(12))])
    assert corpus.skipped == ["broken.py"]
    assert loaded.level == "char" and loaded.tag_set == token_classes.CLASSES
    assert set(loaded.splits) == {"train", "dev", "test"} and all(loaded.splits.values())
    check_corpus_matches_files(loaded, fake_stdlib, [f for f in files if f != "broken.py"], 24)


def test_single_lines_add_training_lines_alone_and_leave_dev_and_test_packed(registry, fake_stdlib):
    cls = registry.get("dataset", "python-tokens")
    packed = cls(max_length=24).load()
    with_lines = cls(max_length=24, single_lines=1.0).load()
    assert with_lines.splits["dev"] == packed.splits["dev"] and with_lines.splits["test"] == packed.splits["test"]
    expected, lines = [], []
    for path in python_tokens.stdlib_files(fake_stdlib):
        text = read_source(fake_stdlib / path)
        if python_tokens.split_of(path) != "train" or path == "broken.py" or not text:
            continue
        labelled, labels = token_classes.label_source(text), expected_labels(text)
        spans = python_tokens.pack(bytes(labelled.classes), labelled.logical_line_ends,
                                   labelled.physical_line_ends, 24, 0, zlib.crc32(path.encode()))
        alone = python_tokens.line_spans(text, labelled.logical_line_ends, 24, 1.0)
        expected += [(text[a:b], labels[a:b]) for a, b in spans + alone]  # each file's lines after its sequences
        lines += [text[a:b] for a, b in alone]
    assert with_lines.splits["train"] == expected
    assert len(expected) == len(packed.splits["train"]) + len(lines)
    assert "return x + 0  # c" in lines and all(not line.endswith("\n") and not line[0].isspace() for line in lines)


def test_test_files_add_a_sample_of_the_library_tests_to_train_only(registry, fake_stdlib):
    assert python_tokens.stdlib_files(fake_stdlib, tests=True) == [
        "idlelib/idle_test/c.py", "pkg/test_d.py", "pkg/tests/b.py", "test/a.py"]
    write(fake_stdlib / "test" / "test_floats.py", "x = 0.5 * 2.25\n")
    cls = registry.get("dataset", "python-tokens")
    library = cls(max_length=24).load()
    with_tests = cls(max_length=24, test_files=1.0).load()
    assert with_tests.splits["dev"] == library.splits["dev"] and with_tests.splits["test"] == library.splits["test"]
    added = with_tests.splits["train"][len(library.splits["train"]):]
    assert with_tests.splits["train"][:len(library.splits["train"])] == library.splits["train"]
    assert sorted(text for text, _ in added) == ["x = 0.5 * 2.25\n"] + ["x = 1\n"] * 4
    assert ("x = 0.5 * 2.25\n", expected_labels("x = 0.5 * 2.25\n")) in added
    tests = python_tokens.stdlib_files(fake_stdlib, tests=True)
    for share in (0.3, 0.6):
        sample = python_tokens.sampled_tests(fake_stdlib, share)
        assert sample == [f for f in tests if zlib.crc32(f.encode()) % 1000 < share * 1000]
    assert python_tokens.sampled_tests(fake_stdlib, 0.0) == []


def test_max_files_bounds_the_test_files_too(fake_stdlib):
    """A sample of the library (a quick run) reads at most as many of its test files."""
    tests = python_tokens.stdlib_files(fake_stdlib, tests=True)
    assert python_tokens.sampled_tests(fake_stdlib, 1.0, max_files=0) == tests
    first_two = sorted(sorted(tests, key=lambda f: (zlib.crc32(f.encode()), f))[:2])
    assert python_tokens.sampled_tests(fake_stdlib, 1.0, max_files=2) == first_two
    assert python_tokens.sampled_tests(fake_stdlib, 1.0, max_files=99) == tests


def test_the_split_of_a_file_is_a_fixed_hash_of_its_path():
    paths = [f"pkg{i}/mod{j}.py" for i in range(20) for j in range(20)]
    splits = [python_tokens.split_of(p) for p in paths]
    for path, split in zip(paths, splits):
        bucket = zlib.crc32(path.encode()) % 10
        assert split == {8: "dev", 9: "test"}.get(bucket, "train")
    assert 0.7 < splits.count("train") / len(paths) < 0.9 and splits.count("dev") and splits.count("test")


def test_max_files_takes_a_fixed_sample_and_needs_every_split(registry, fake_stdlib):
    cls = registry.get("dataset", "python-tokens")
    with pytest.raises(SeqkitError, match=r"^data.max_files: 1 files leave no (dev|test) split"):
        cls(max_files=1).load()
    full = python_tokens.stdlib_files(fake_stdlib)
    for count in range(2, len(full) + 1):
        sample = sorted(full, key=lambda f: (zlib.crc32(f.encode()), f))[:count]
        if {"dev", "test"} <= {python_tokens.split_of(f) for f in sample}:
            break
    loaded = cls(max_files=count, max_length=64).load()
    check_corpus_matches_files(loaded, fake_stdlib, [f for f in sample if f != "broken.py"], 64)


def test_labelled_files_are_cached_and_a_broken_cache_is_rebuilt(registry, fake_stdlib, monkeypatch):
    cls = registry.get("dataset", "python-tokens")
    first = cls(max_length=32).load()
    [entry] = cache_dir().glob("python-tokens-*.json.gz")
    real_label_source = token_classes.label_source

    def must_not_run(text):
        raise AssertionError("tokenized again although cached")

    monkeypatch.setattr(token_classes, "label_source", must_not_run)
    assert cls(max_length=32).load() == first
    entry.write_bytes(b"torn")
    monkeypatch.setattr(token_classes, "label_source", real_label_source)
    assert cls(max_length=32).load() == first
    monkeypatch.setattr(token_classes, "label_source", must_not_run)
    assert cls(max_length=32).load() == first  # the rebuilt entry is read again


def test_python_tokens_on_this_pythons_standard_library(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    loaded = registry.get("dataset", "python-tokens")(max_files=20, max_length=200).load()
    sample = sorted(python_tokens.stdlib_files(stdlib), key=lambda f: (zlib.crc32(f.encode()), f))[:20]
    assert all(loaded.splits[s] for s in ("train", "dev", "test"))
    check_corpus_matches_files(loaded, stdlib, sample, 200)


def test_tagged_corpus_refuses_misaligned_sentences():
    TaggedCorpus("word", {"train": [(["a", "b"], ["X", "Y"])]}, ("X", "Y"))
    for level, sentence in (("char", ("ab", ["X"])), ("char", (["a"], ["X"])), ("word", ("a", ["X"])),
                            ("word", ([], []))):
        with pytest.raises(ValueError, match="train sentence 0"):
            TaggedCorpus(level, {"train": [sentence]}, ("X",))
    with pytest.raises(ValueError, match="splits"):
        TaggedCorpus("word", {"dev": []}, ("X",))


# -- conll ---------------------------------------------------------------------------------------

WORDS = {"NN": ["dog", "Paris", "report"], "VB": ["runs", "sees"], "DT": ["the", "a"], ".": ["."]}


def random_sentences(count: int, seed: int = 0):
    """(words, POS, chunk, NER) columns of ``count`` random sentences."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        pos = [rng.choice(list(WORDS)) for _ in range(rng.randint(1, 6))]
        words = [rng.choice(WORDS[p]) for p in pos]
        chunks = ["B-NP" if p == "DT" else "I-NP" if p == "NN" else "O" for p in pos]
        ner = ["B-LOC" if w == "Paris" else "O" for w in words]
        sentences.append((words, pos, chunks, ner))
    return sentences


def conll2003(sentences) -> str:
    lines = ["-DOCSTART- -X- -X- O", ""]
    for i, columns in enumerate(sentences):
        lines += [" ".join(fields) for fields in zip(*columns)] + [""]
        if i == 3:
            lines += ["-DOCSTART- -X- -X- O", ""]
    return "\n".join(lines)


def conllu(sentences) -> str:
    """CoNLL-U with comments, a multi-word token range and an empty node in every sentence."""
    lines = []
    for n, (words, pos, _, _) in enumerate(sentences):
        lines += [f"# sent_id = {n}", f"# text = {' '.join(words)}", f"1-2\t{words[0]}s\t_\t_\t_\t_\t_\t_\t_\t_"]
        for i, (word, tag) in enumerate(zip(words, pos), 1):
            lines.append(f"{i}\t{word}\t{word.lower()}\t{tag}\tX{tag}\t_\t0\tdep\t_\t_")
            if i == 1:
                lines.append("1.1\tghost\tghost\tNOUN\tNN\t_\t_\t_\t0:root\t_")
        lines.append("")
    return "\n".join(lines) + "\n"


def conll(registry, **options):
    return registry.get("dataset", "conll")(**options)


def pairs(sentences, word: int, tag: int):
    return [(s[word], s[tag]) for s in sentences]


def test_conll_2003_reads_columns_skips_docstart_and_holds_out_every_10th_sentence(registry, tmp_path):
    sentences = random_sentences(25)
    path = write(tmp_path / "train.txt", conll2003(sentences))
    corpus = conll(registry, path=str(path)).load()
    assert corpus.level == "word" and set(corpus.splits) == {"train", "dev"}
    expected = pairs(sentences, 0, 3)  # the last column by default
    assert corpus.splits["dev"] == [expected[9], expected[19]]
    assert corpus.splits["train"] == [s for i, s in enumerate(expected) if i not in (9, 19)]
    assert corpus.tag_set == ("B-LOC", "O")
    by_index = conll(registry, path=str(path), word_column=0, tag_column=1).load()
    assert by_index.splits["train"][:9] == pairs(sentences, 0, 1)[:9]
    assert conll(registry, path=str(path), tag_column=-2).load().splits["dev"][0] == pairs(sentences, 0, 2)[9]


def test_conllu_skips_comments_ranges_and_empty_nodes(registry, tmp_path):
    train, dev, test = random_sentences(6, 1), random_sentences(3, 2), random_sentences(2, 3)
    files = {name: str(write(tmp_path / f"{name}.conllu", conllu(s)))
             for name, s in (("train", train), ("dev", dev), ("test", test))}
    corpus = conll(registry, path=files["train"], dev=files["dev"], test=files["test"]).load()
    for name, sentences in (("train", train), ("dev", dev), ("test", test)):
        assert corpus.splits[name] == pairs(sentences, 0, 1)  # form and upos
    assert corpus.tag_set == tuple(sorted({t for s in train + dev + test for t in s[1]}))
    xpos = conll(registry, path=files["train"], dev=files["dev"], tag_column="xpos", lowercase=True).load()
    assert xpos.splits["train"] == [([w.lower() for w in s[0]], ["X" + t for t in s[1]]) for s in train]
    assert conll(registry, path=files["train"], dev=files["dev"], word_column=2, tag_column=4).load() == xpos


GOOD_CONLL = "EU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\n"
GOOD_CONLLU = "1\tEU\teu\tPROPN\tNNP\t_\t2\tnsubj\t_\t_\n2\trejects\treject\tVERB\tVBZ\t_\t0\troot\t_\t_\n"


@pytest.mark.parametrize("name, content, options, key, line, message", [
    ("a.txt", GOOD_CONLL + "Bob NNP\n", {}, "path", 5, "2 columns, but line 1 has 3"),
    ("a.txt", "-DOCSTART- O\n\nEU NNP\n" + GOOD_CONLL, {}, "path", 4, "3 columns, but line 3 has 2"),
    ("a.conllu", GOOD_CONLLU + "3\t.\t.\tPUNCT\t.\t_\t2\tpunct\t_\n", {}, "path", 3,
     "9 tab-separated columns; CoNLL-U has 10"),
    ("a.conllu", GOOD_CONLLU.replace("\tVERB\t", "\t_\t"), {}, "path", 2, "the tag column (upos) is empty"),
    ("a.conllu", GOOD_CONLLU.replace("\tNNP\t", "\t\t"), {"tag_column": "xpos"}, "path", 1,
     "the tag column (xpos) is empty"),
    ("a.conllu", GOOD_CONLLU.replace("\tEU\t", "\t\t"), {}, "path", 1, "the word column (form) is empty"),
    ("a.txt", GOOD_CONLL, {"tag_column": 3}, "tag_column", 1, "3 is out of range"),
    ("a.txt", "EU\nrejects\n", {}, "tag_column", 1, "column 0 holds the words too"),
])
def test_a_malformed_line_is_one_error_naming_file_and_line(registry, tmp_path, name, content, options,
                                                            key, line, message):
    path = write(tmp_path / name, content)
    with pytest.raises(SeqkitError) as info:
        conll(registry, path=str(path), dev=str(path), **options).load()
    [problem] = info.value.problems
    assert problem.startswith(f"data.{key}: ") and f"{path}:{line}" in problem and message in problem
    assert "\n" not in problem


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("\n  \n", "the file is empty"),
    ("-DOCSTART- -X- O\n\n", "no sentences"),
    ("EU X\nrejects X\n", "every word is tagged 'X'"),
    (b"EU NNP\x00", "looks binary"),
])
def test_an_unusable_file_is_one_error_naming_it(registry, tmp_path, content, message):
    path = write(tmp_path / "train.txt", content)
    with pytest.raises(SeqkitError) as info:
        conll(registry, path=str(path), dev=str(path)).load()
    [problem] = info.value.problems
    assert problem.startswith(f"data.path: {path}: ") and message in problem


def test_conll_check_finds_file_and_column_problems_without_reading(registry, tmp_path):
    cls = registry.get("dataset", "conll")
    broken = str(write(tmp_path / "train.txt", "a B\nc\n"))  # malformed: check does not read it
    assert cls.check({"path": broken, "dev": broken}) == []
    missing, folder = str(tmp_path / "missing.conllu"), str(tmp_path)
    problems = [f"data.dev: '{folder}' is a folder; give a CoNLL or CoNLL-U file",
                f"data.test: no such file '{missing}'; name your file with --set data.test=FILE"]
    assert cls.check({"path": broken, "dev": folder, "test": missing}) == problems
    with pytest.raises(SeqkitError) as info:
        cls(path=broken, dev=folder, test=missing).load()
    assert info.value.problems == problems
    good = str(write(tmp_path / "train.conllu", GOOD_CONLLU))
    assert cls.check({"path": good, "dev": good, "tag_column": "ups"}) == [
        "data.tag_column: 'ups' is not a CoNLL-U column; give one of id, form, lemma, upos, xpos, "
        "feats, head, deprel, deps, misc or a 0-based index"]
    assert cls.check({"path": broken, "tag_column": "upos"}) == [
        f"data.tag_column: 'upos' names a CoNLL-U column, but '{broken}' (data.path) is not a "
        f".conllu file; give a 0-based column index"]
    assert cls.check({"path": good, "word_column": 10}) == [
        f"data.word_column: 10 is out of range: '{good}' (data.path) has 10 columns, 0 to 9"]
    assert cls.check({}) == ["data.path: the conll dataset needs a training file, "
                             "e.g. --set data.path=train.conllu"]
    with pytest.raises(SeqkitError, match=r"^data.dev: .*train.conllu has too few sentences \(1\) "
                                          r"to hold out every 10th as dev; give a dev file$"):
        cls(path=good).load()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_conll_check_finds_an_unreadable_file(registry, tmp_path):
    path = write(tmp_path / "train.conllu", GOOD_CONLLU)
    path.chmod(0)
    assert registry.get("dataset", "conll").check({"path": str(path)}) == [
        f"data.path: cannot read '{path}' (permission denied)"]


def test_python_tokens_check_finds_too_few_files(registry, fake_stdlib):
    cls = registry.get("dataset", "python-tokens")
    assert cls.check({"max_files": 0}) == []
    [problem] = cls.check({"max_files": 1})
    assert re.fullmatch(r"data.max_files: 1 files leave no (dev|test) split; use more files, or 0 for all",
                        problem)


def test_validate_reports_the_conll_files_problems_in_one_line_each(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"task: char_lm\noutput: {tmp_path / 'run'}\n"
                      f"data: {{dataset: conll, path: {tmp_path / 'no.conllu'}, dev: {tmp_path}}}\n")
    proc = run_cli("validate", recipe)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"{recipe}: data.path: no such file '{tmp_path / 'no.conllu'}'; name your file with "
        f"--set data.path=FILE",
        f"{recipe}: data.dev: '{tmp_path}' is a folder; give a CoNLL or CoNLL-U file"]


def test_conll_options_are_validated_with_the_recipe(registry):
    recipe = {"task": "char_lm", "data": {"dataset": "conll"}}
    with pytest.raises(SeqkitError, match="data.path: required key is missing"):
        resolve(recipe, registry)
    recipe["data"].update(path="train.conllu", tag_column=1.5, lowercase="yes")
    with pytest.raises(SeqkitError) as info:
        resolve(recipe, registry)
    assert "data.tag_column: expected a string or an integer" in str(info.value)
    assert "data.lowercase: expected a boolean" in str(info.value)


# -- identities: the key of the prepared copy, found without reading the data ------------------
def test_the_tagging_datasets_identities_change_with_their_files_and_options(registry, tmp_path, fake_stdlib):
    path = write(tmp_path / "train.txt", conll2003(random_sentences(25)))
    first = conll(registry, path=str(path)).identity()
    assert first == conll(registry, path=str(path), lowercase=False).identity()
    assert first["files"] == [[str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns]]
    assert conll(registry, path=str(path), lowercase=True).identity() != first
    dev = write(tmp_path / "dev.txt", conll2003(random_sentences(3)))
    assert conll(registry, path=str(path), dev=str(dev)).identity()["keys"] == ["path", "dev"]
    assert conll(registry, path=str(dev), dev=str(path)).identity() != conll(registry, path=str(path),
                                                                            dev=str(dev)).identity()
    write(path, conll2003(random_sentences(26)))
    assert conll(registry, path=str(path)).identity() != first
    with pytest.raises(SeqkitError, match="data.path: no such file"):
        conll(registry, path=str(tmp_path / "missing.txt")).identity()

    tokens = registry.get("dataset", "python-tokens")
    library = tokens(max_length=24).identity()
    assert library == tokens(max_length=24, max_files=0).identity() != tokens(max_length=32).identity()
    assert len(library["files"]) == len(python_tokens.stdlib_files(fake_stdlib))
    assert len(tokens(test_files=1.0).identity()["files"]) == len(library["files"]) + 4
    os.utime(fake_stdlib / "mod3.py", ns=(1, 1))
    assert tokens(max_length=24).identity() != library

    roles = registry.get("dataset", "roles")
    assert roles().identity() == roles(seed=0).identity() != roles(seed=1).identity()
