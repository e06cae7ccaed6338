"""``python-tokens``: the standard library's source, each character labelled with its token class.

A learned syntax highlighter: millions of labelled characters that every Python install has.

- Files: every ``.py`` file under ``sysconfig.get_paths()["stdlib"]``, except test packages
  (folders ``test``, ``tests``, ``idle_test``; files ``test_*.py``), installed packages
  (``site-packages``, ``dist-packages``) and ``pydoc_data``, the reference manual's text as one
  dict literal (0.76 MB of prose inside strings: it would be 42 % of the dev split). Files that do not
  tokenize are skipped
  (``PythonTokens.skipped`` names them; none on CPython 3.11 to 3.13). ``test_files`` adds a
  fixed sample of the test files to the training split (on 3.11 they are 19 M characters, with
  5,500 float literals against 300 in the library's training files).
- Labels: the seven classes of ``_python_token_classes`` (name, keyword, operator, number, string,
  comment, whitespace), the same on every Python version: soft keywords are ``name``, an
  f-string is one ``string`` with its replacement fields.
- Splits: a file's split is fixed by the CRC-32 of its path relative to the stdlib folder
  (remainder mod 10: 0-7 train, 8 dev, 9 test), so it never moves between runs or machines.
- Sequences: a file is cut after logical lines (NEWLINE tokens) and after blank or comment-only
  lines outside brackets, and consecutive lines are packed into sequences of at most
  ``max_length`` characters (default 512). No token or bracket spans such a cut, so a multi-line
  docstring or call starts its sequence where it fits. A longer logical line is cut at a newline
  inside its brackets, else between two tokens, else (a token longer than ``max_length``: a long
  docstring or string) inside the token.
- What that cuts (measured on the 3.11 library, 11.4 M characters): at ``max_length`` 512,
  2.6 % of characters are in sequences wholly inside one string, where no quote is visible; were
  all of them mislabelled, accuracy would stop at 97.4 %. At 256: 5.1 %; at 1024: 1.0 %. With
  ``min_length`` 16, targets inside long docstrings make that 7.3 %, and a tagger learns that text
  that does not end in a newline is often the inside of a string: on a line typed alone it tags
  code as string. ``whole_lines`` runs such a sequence on to the next line end instead (2.6 %
  again: only tokens longer than ``max_length`` are cut), and ``single_lines`` adds a share of the
  training files' logical lines alone, without indentation or newline, as a decoded line reads.
  Both, with ``test_files``, are off by default; ``recipes/tagging.yaml`` sets all three.
- Tokenizing the whole library takes 15 to 30 s on 3.11 and 3.12, so the labelled files are
  cached per Python build, file selection and version of this code (``_cache``); a cached load takes
  about 3 s, most of it building the tag lists.
"""
from __future__ import annotations

import bisect
import hashlib
import math
import os
import random
import sys
import sysconfig
import zlib
from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts.tagged_corpus import Sentence, TaggedCorpus
from seqkit.plugins.datasets import _python_token_classes as token_classes
from seqkit.plugins.datasets._cache import cached_json
from seqkit.plugins.datasets._text_files import code_digest, files_identity

# Tests, installed packages, and pydoc_data: its topics.py is the reference manual's text held in
# one dict of strings (what char_lm's python-docs reads), 6 % of the library in one file of prose.
_TEST_FOLDERS = {"test", "tests", "idle_test"}
_SKIPPED_FOLDERS = _TEST_FOLDERS | {"site-packages", "dist-packages", "__pycache__", "pydoc_data"}
# How ``seqkit decode`` shows each class: the colours of a common syntax highlighter.
STYLES = {"name": "", "keyword": "bold magenta", "operator": "yellow", "number": "cyan",
          "string": "green", "comment": "italic bright_black", "whitespace": ""}

# class index <-> digit character, so labels travel through JSON as a compact string
_TO_DIGITS = bytes.maketrans(bytes(range(10)), b"0123456789")
_FROM_DIGITS = bytes.maketrans(b"0123456789", bytes(range(10)))


def stdlib_files(stdlib: Path, tests: bool = False) -> list[str]:
    """Paths (relative, '/'-separated, sorted) of the library's non-test ``.py`` files, or with
    ``tests`` of its test files instead (those in test packages, and ``test_*.py``)."""
    found = []
    skipped = _SKIPPED_FOLDERS - _TEST_FOLDERS if tests else _SKIPPED_FOLDERS
    for folder, subfolders, files in os.walk(stdlib):
        subfolders[:] = [d for d in subfolders if d not in skipped]
        relative = Path(folder).relative_to(stdlib)
        in_tests = not _TEST_FOLDERS.isdisjoint(relative.parts)
        found += [(relative / f).as_posix() for f in files
                  if f.endswith(".py") and (in_tests or f.startswith("test_")) == tests]
    return sorted(found)


def sampled_tests(stdlib: Path, share: float, max_files: int = 0) -> list[str]:
    """A fixed ``share`` of the library's test files, by the CRC-32 of their paths; at most
    ``max_files`` of them (0: no bound), as a sample of the library is a sample of its tests too."""
    if not share:
        return []
    found = [f for f in stdlib_files(stdlib, tests=True) if zlib.crc32(f.encode()) % 1000 < share * 1000]
    if max_files:
        found = sorted(sorted(found, key=lambda f: (zlib.crc32(f.encode()), f))[:max_files])
    return found


def split_of(relative_path: str) -> str:
    """'train', 'dev' or 'test': a stable hash of the path (Python's own hash() is salted)."""
    bucket = zlib.crc32(relative_path.encode()) % 10
    return "train" if bucket < 8 else ("dev" if bucket == 8 else "test")


def pack(classes: bytes, logical_ends: list[int], physical_ends: list[int],
         max_length: int, min_length: int = 0, seed: int = 0,
         whole_lines: bool = False) -> list[tuple[int, int]]:
    """(start, end) of consecutive sequences of at most ``max_length`` characters, covering all.

    Each sequence ends at the furthest cut within reach of its target length
    (``sequence_targets``), the best kind first: a logical line end; else a physical line end (a
    long bracketed expression); else a token boundary (where the class changes); else the target
    length on, inside a token longer than that.

    ``whole_lines``: where no line end is within reach of the target, the sequence runs on to the
    first line end after it (logical, else physical) up to ``max_length``, and only past that is a
    token cut. A short target then no longer cuts a docstring into pieces that show no quote.
    """
    spans, start, length = [], 0, len(classes)
    targets = sequence_targets(max_length, min_length, seed)
    while start < length:
        target = next(targets)
        reach = start + target
        if reach >= length:
            end = length
        else:
            end = _last_at_most(logical_ends, reach)
            if end <= start:
                end = _last_at_most(physical_ends, reach)
            if end <= start and whole_lines:
                furthest = min(start + max_length, length)
                end = (_first_after(logical_ends, reach, furthest)
                       or _first_after(physical_ends, reach, furthest))
                if not end:  # no line end within max_length either: cut as for a target of max_length
                    reach = furthest
                    end = length if reach >= length else start
            if end <= start:
                changes = (i for i in range(reach, start, -1) if classes[i - 1] != classes[i])
                end = next(changes, reach)
        spans.append((start, end))
        start = end
    return spans


def sequence_targets(max_length: int, min_length: int = 0, seed: int = 0):
    """Target lengths of a file's sequences: ``max_length`` each, or with ``min_length`` drawn
    log-uniformly between the two from ``seed`` (a file's own), so that short sequences, whose
    every character is near an end, are as common as long ones at every scale."""
    if not min_length or min_length >= max_length:
        while True:
            yield max_length
    rng = random.Random(seed)
    low, high = math.log(min_length), math.log(max_length)
    while True:
        yield min(max_length, round(math.exp(rng.uniform(low, high))))


def line_spans(text: str, logical_ends: list[int], max_length: int, share: float,
               seed: int = 0) -> list[tuple[int, int]]:
    """(start, end) of a drawn ``share`` of the logical lines of ``text``, each without its
    indentation and final newline, as ``seqkit decode --input`` reads a line: blank lines and
    lines longer than ``max_length`` left out. The draw is fixed by ``seed`` (a file's own)."""
    if not share:
        return []
    rng = random.Random(seed)
    spans, start = [], 0
    for end in logical_ends:
        line = text[start:end]
        a, b = start + len(line) - len(line.lstrip()), end - line.endswith("\n")
        # draw for every line, kept or not, so that the lines a share keeps do not depend on
        # which of the others are blank or long
        if rng.random() < share and a < b and b - a <= max_length:
            spans.append((a, b))
        start = end
    return spans


def _last_at_most(ends: list[int], limit: int) -> int:
    i = bisect.bisect_right(ends, limit)
    return ends[i - 1] if i else 0


def _first_after(ends: list[int], after: int, limit: int) -> int:
    """The first of ``ends`` in (after, limit], else 0."""
    i = bisect.bisect_right(ends, after)
    return ends[i] if i < len(ends) and ends[i] <= limit else 0


class PythonTokens(Dataset):
    skipped: list[str]  # after load(): the files that did not tokenize (or could not be read)
    options = {
        "min_length": Option(0, min=0, help="with it, each sequence's length is drawn between this "
                                            "and max_length (log-uniform, fixed per file), so short "
                                            "snippets are seen too; 0: every sequence max_length"),
        "max_length": Option(512, min=1, help="characters per sequence at most; sequences end "
                                              "at line ends where they can"),
        "max_files": Option(0, min=0, help="use N files of the library (and at most N of its test "
                                           "files, with test_files), a fixed sample; 0: all"),
        "whole_lines": Option(False, help="with min_length: a sequence whose drawn length ends "
                                          "inside a line runs on to the next line end (up to "
                                          "max_length) instead of cutting a token, so a short "
                                          "sequence is rarely a piece of a docstring showing no quote"),
        "test_files": Option(0.0, min=0.0, max=1.0,
                             help="also train on this share of the library's test files (a fixed "
                                  "sample by path), code with far more literals (floats) than the "
                                  "library's; train only: dev and test stay the library's; 0: none"),
        "single_lines": Option(0.0, min=0.0, max=1.0,
                               help="also train on this share of the training files' logical "
                                    "lines alone, each a sequence without its indentation and "
                                    "newline, as seqkit decode --input reads a line; dev and test "
                                    "stay packed; 0: none"),
    }

    @classmethod
    def check(cls, options: dict) -> list[str]:
        """``max_files`` leaves every split some files (this lists the library, reading nothing)."""
        try:
            selected_files(options.get("max_files", 0))
        except seqkit.SeqkitError as exc:
            return exc.problems
        return []

    def load(self) -> TaggedCorpus:
        max_length = self.config.get("max_length", 512)
        stdlib, files = selected_files(self.config.get("max_files", 0))
        labelled = _labelled_files(stdlib, files)
        test_files = set(sampled_tests(stdlib, self.config.get("test_files", 0.0),
                                       self.config.get("max_files", 0)))
        tests = _labelled_files(stdlib, sorted(test_files)) if test_files else {"files": [], "skipped": []}
        self.skipped = labelled["skipped"] + tests["skipped"]
        splits = {"train": [], "dev": [], "test": []}
        names = token_classes.CLASSES
        for path, text, digits, logical_ends, physical_ends in labelled["files"] + tests["files"]:
            classes = digits.encode("ascii").translate(_FROM_DIGITS)
            seed = zlib.crc32(path.encode())
            split = "train" if path in test_files else split_of(path)
            spans = self._pack(classes, logical_ends, physical_ends, seed)
            if split == "train":
                spans += line_spans(text, logical_ends, max_length,
                                    self.config.get("single_lines", 0.0), seed + 1)
            splits[split] += [(text[a:b], [names[c] for c in classes[a:b]]) for a, b in spans]
        return TaggedCorpus("char", splits, names, STYLES)

    def identity(self) -> dict:
        """This Python, the library files it reads (the sample of test files too) with their sizes
        and modification times, the options, and the labelling code: listing and stat-ing the
        files, nothing read."""
        options = {key: self.config.get(key, option.default) for key, option in self.options.items()}
        stdlib, files = selected_files(options["max_files"])
        tests = sampled_tests(stdlib, options["test_files"], options["max_files"])
        return {"dataset": "python-tokens", "python": sys.version, "stdlib": str(stdlib),
                "files": files_identity([stdlib / f for f in files + tests]), "tests": len(tests),
                "options": dict(sorted(options.items())), "code": code_digest(token_classes, __file__)}

    def _pack(self, classes: bytes, logical_ends: list[int], physical_ends: list[int], seed: int):
        return pack(classes, logical_ends, physical_ends, self.config.get("max_length", 512),
                    self.config.get("min_length", 0), seed, self.config.get("whole_lines", False))

    def read_file(self, path: Path, where: str) -> list[Sentence]:
        """One ``.py`` file, labelled and cut into sequences as the library's files are; problems
        are one line starting with ``where`` (the key or flag that named the file)."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise seqkit.SeqkitError(f"{where}: {path}: cannot read: {exc.strerror or exc}") from None
        try:
            source = token_classes.label_source(token_classes.decode_source(raw))
        except token_classes.TokenizeFailed as exc:
            raise seqkit.SeqkitError(f"{where}: {path}: not Python source that tokenizes ({exc})") from None
        if not source.text:
            raise seqkit.SeqkitError(f"{where}: {path}: the file is empty")
        classes, names = bytes(source.classes), token_classes.CLASSES
        spans = self._pack(classes, source.logical_line_ends, source.physical_line_ends,
                           zlib.crc32(str(path).encode()))
        return [(source.text[a:b], [names[c] for c in classes[a:b]]) for a, b in spans]


def selected_files(max_files: int) -> tuple[Path, list[str]]:
    """(stdlib folder, the relative paths of the files to read): all, or a fixed sample."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = stdlib_files(stdlib)
    if not files:
        raise seqkit.SeqkitError(f"{stdlib}: no .py files found in the standard library folder")
    if max_files:
        # a sample spread over the whole library, not the first packages in alphabetical order
        files = sorted(sorted(files, key=lambda f: (zlib.crc32(f.encode()), f))[:max_files])
        for split in ("dev", "test"):
            if not any(split_of(f) == split for f in files):
                raise seqkit.SeqkitError(f"data.max_files: {max_files} files leave no {split} "
                                         f"split; use more files, or 0 for all")
    return stdlib, files


def _labelled_files(stdlib: Path, files: list[str]) -> dict:
    """{"files": [[path, text, class digits, logical and physical line ends], ...],
    "skipped": [path, ...]}, cached."""

    def build():
        labelled, skipped = [], []
        for path in files:
            try:
                raw = (stdlib / path).read_bytes()
                source = token_classes.label_source(token_classes.decode_source(raw))
            except (OSError, token_classes.TokenizeFailed):
                skipped.append(path)
                continue
            digits = bytes(source.classes).translate(_TO_DIGITS).decode("ascii")
            labelled.append([path, source.text, digits, source.logical_line_ends,
                             source.physical_line_ends])
        return {"files": labelled, "skipped": skipped}

    # a change to the labelling code or to this cache's layout changes the key
    code = hashlib.sha256(Path(token_classes.__file__).read_bytes() + Path(__file__).read_bytes())
    key = "\n".join([sys.version, str(stdlib), code.hexdigest(), *files])
    return cached_json("python-tokens", key, build)


@seqkit.hookimpl
def register_datasets(register):
    register("python-tokens", PythonTokens)
