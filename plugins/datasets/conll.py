"""``conll``: word-level labelled files that users bring, CoNLL column files and CoNLL-U.

- CoNLL-U (a file whose name ends in ``.conllu``): ten tab-separated columns per word line;
  ``#`` lines are comments; multi-word token ranges (ID ``1-2``) and empty nodes (ID ``1.1``)
  are skipped, so a sentence is its syntactic words; a tag of ``_`` counts as missing.
- Any other file: CoNLL-2000 / CoNLL-2003 columns, one token per line, separated by whitespace,
  the same number of columns on every line; ``-DOCSTART-`` lines are skipped.
- A blank line ends a sentence (so does a ``-DOCSTART-`` line).
- ``word_column`` / ``tag_column``: a CoNLL-U column name (``form``, ``upos``, ``xpos``, ...) or a
  0-based index (negative counts from the end); by default ``form`` / ``upos`` for CoNLL-U, the
  first / last column otherwise.
- Splits: ``path`` is the training file, ``dev`` and ``test`` optional files. Without ``dev``,
  every 10th sentence of ``path`` (the 10th, 20th, ...) is held out as dev: spread over the file,
  so it reads like training. Without ``test`` there is no test split.

A malformed line is a one-line ``SeqkitError`` naming ``file:line``; so is an empty file, a file
with no sentences, and a training file whose words all carry one tag.
"""
from __future__ import annotations

from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.errors import SeqkitError

from seqkit.plugins.datasets._tagged import Sentence, TaggedCorpus
from seqkit.plugins.datasets._text_files import read_text_file

CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
DEV_EVERY = 10  # without data.dev, every 10th training sentence is held out
DEFAULT_COLUMNS = {True: {"word_column": "form", "tag_column": "upos"},  # CoNLL-U
                   False: {"word_column": 0, "tag_column": -1}}


def is_conllu(path: str | Path) -> bool:
    return str(path).lower().endswith(".conllu")


class Conll(Dataset):
    options = {
        "path": Option(type=str, required=True,
                       help="training file: CoNLL columns, or CoNLL-U if it ends in .conllu"),
        "dev": Option(type=str, help="dev file; default: every 10th sentence of path"),
        "test": Option(type=str, help="test file; default: no test split"),
        "word_column": Option(type=(str, int), help="the words' column: a CoNLL-U name or a "
                                                    "0-based index; default form, else 0"),
        "tag_column": Option(type=(str, int), help="the tags' column: a CoNLL-U name (upos, xpos) "
                                                   "or a 0-based index; default upos, else -1"),
        "lowercase": Option(False, help="lowercase the words"),
    }

    def files(self) -> dict[str, str]:
        """{recipe key: file name} of the files given, checked without reading them: each exists,
        and the column options fit its format."""
        files = {key: self.config[key] for key in ("path", "dev", "test") if self.config.get(key)}
        if "path" not in files:
            raise SeqkitError("data.path: the conll dataset needs a training file, "
                              "e.g. --set data.path=train.conllu")
        for key, name in files.items():
            path = Path(name).expanduser()
            if not path.exists():
                raise SeqkitError(f"{name}: no such file (data.{key})")
            if path.is_dir():
                raise SeqkitError(f"{name}: is a folder; give a CoNLL or CoNLL-U file (data.{key})")
            self._columns(name, f"data.{key}")
        return files

    def load(self) -> TaggedCorpus:
        files = self.files()
        splits = {"train" if key == "path" else key: self._read(name, f"data.{key}")
                  for key, name in files.items()}
        if "dev" not in splits:
            train = splits["train"]
            if len(train) < DEV_EVERY:
                raise SeqkitError(f"{files['path']}: too few sentences ({len(train)}) to hold out "
                                  f"every {DEV_EVERY}th as dev; give a dev file (data.dev)")
            splits["dev"] = train[DEV_EVERY - 1::DEV_EVERY]
            splits["train"] = [s for i, s in enumerate(train) if i % DEV_EVERY != DEV_EVERY - 1]
        train_tags = {tag for _, tags in splits["train"] for tag in tags}
        if len(train_tags) < 2:
            raise SeqkitError(f"{files['path']}: every word is tagged '{train_tags.pop()}'; a "
                              f"tagger needs two tags or more: choose another data.tag_column "
                              f"(data.path)")
        tag_set = {tag for sentences in splits.values() for _, tags in sentences for tag in tags}
        return TaggedCorpus("word", splits, tuple(sorted(tag_set)))

    def _columns(self, name: str, where: str) -> tuple[int, int]:
        """(word index, tag index) into a line's fields for the file ``name``."""
        conllu = is_conllu(name)
        indexes = []
        for option in ("word_column", "tag_column"):
            value = self.config.get(option)
            if value is None:
                value = DEFAULT_COLUMNS[conllu][option]
            if isinstance(value, str):
                if not conllu:
                    raise SeqkitError(f"data.{option}: '{value}' names a CoNLL-U column, but "
                                      f"{name} ({where}) is not a .conllu file; give a 0-based "
                                      f"column index")
                if value not in CONLLU_COLUMNS:
                    raise SeqkitError(f"data.{option}: '{value}' is not a CoNLL-U column; give one "
                                      f"of {', '.join(CONLLU_COLUMNS)} or a 0-based index")
                value = CONLLU_COLUMNS.index(value)
            indexes.append(value)
        if conllu:
            _check_columns(len(CONLLU_COLUMNS), *indexes, name, where)
        return indexes[0], indexes[1]

    def _read(self, name: str, where: str) -> list[Sentence]:
        text = read_text_file(Path(name).expanduser())
        if not text.strip():
            raise SeqkitError(f"{name}: the file is empty ({where})")
        conllu = is_conllu(name)
        word_at, tag_at = self._columns(name, where)
        lowercase = self.config.get("lowercase", False)
        sentences, words, tags = [], [], []
        columns, first_line = None, 0  # a CoNLL file's column count, fixed by its first word line

        def end_sentence():
            if words:
                sentences.append((words.copy(), tags.copy()))
                words.clear()
                tags.clear()

        for number, line in enumerate(text.split("\n"), 1):
            line = line.rstrip("\r")
            if not line.strip():
                end_sentence()
                continue
            if conllu:
                if line.startswith("#"):
                    continue
                fields = line.split("\t")
                if len(fields) != len(CONLLU_COLUMNS):
                    raise SeqkitError(f"{name}:{number}: {len(fields)} tab-separated columns; "
                                      f"CoNLL-U has {len(CONLLU_COLUMNS)} ({where})")
                if "-" in fields[0] or "." in fields[0]:
                    continue  # a multi-word token's range or an empty node: not a word of its own
            else:
                fields = line.split()
                if fields[0] == "-DOCSTART-":
                    end_sentence()
                    continue
                if columns is None:
                    columns, first_line = len(fields), number
                    _check_columns(columns, word_at, tag_at, f"{name}:{number}", where)
                elif len(fields) != columns:
                    raise SeqkitError(f"{name}:{number}: {len(fields)} columns, but line "
                                      f"{first_line} has {columns}; every word line needs all of "
                                      f"them ({where})")
            for kind, index in (("word", word_at), ("tag", tag_at)):
                if not fields[index] or (conllu and kind == "tag" and fields[index] == "_"):
                    column = CONLLU_COLUMNS[index] if conllu else index
                    raise SeqkitError(f"{name}:{number}: the {kind} column ({column}) is empty; "
                                      f"fill it in or choose another data.{kind}_column ({where})")
            words.append(fields[word_at].lower() if lowercase else fields[word_at])
            tags.append(fields[tag_at])
        end_sentence()
        if not sentences:
            raise SeqkitError(f"{name}: no sentences, only comments, -DOCSTART- or blank lines "
                              f"({where})")
        return sentences


def _check_columns(columns: int, word_at: int, tag_at: int, place: str, where: str) -> None:
    """Both indexes fall inside a line of ``columns`` fields, on different columns."""
    for option, index in (("word_column", word_at), ("tag_column", tag_at)):
        if not -columns <= index < columns:
            raise SeqkitError(f"{place}: data.{option} {index} is out of range: the lines have "
                              f"{columns} columns, 0 to {columns - 1} ({where})")
    if word_at % columns == tag_at % columns:
        raise SeqkitError(f"{place}: data.word_column and data.tag_column are both column "
                          f"{word_at % columns} of {columns}; give the tags' column ({where})")


@seqkit.hookimpl
def register_datasets(register):
    register("conll", Conll)
