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

A malformed line is a one-line ``SeqkitError`` naming the key and ``file:line``; so is an empty
file, a file with no sentences, and a training file whose words all carry one tag. ``check``
finds missing or unreadable files and column options that do not fit a file, without reading.
``stream()`` (what preparing reads) reads each file once to check it, count its sentences and
collect its tags, then again, a sentence at a time, at each pass.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts import Split, read_text_file
from seqkit.contracts.tagged_corpus import Sentence, TaggedCorpus
from seqkit.errors import SeqkitError
from seqkit.plugins.datasets._text_files import code_digest, file_lines, file_problem, files_identity, held_out

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

    @classmethod
    def check(cls, options: dict) -> list[str]:
        """Every file given is there and readable, and the column options fit its format."""
        if not options.get("path"):
            return ["data.path: the conll dataset needs a training file, "
                    "e.g. --set data.path=train.conllu"]
        problems = []
        for key in ("path", "dev", "test"):
            name = options.get(key)
            if not name:
                continue
            problem = file_problem(key, name, "a CoNLL or CoNLL-U file")
            if problem:
                problems.append(problem)
            else:
                try:
                    column_indexes(options, name, f"data.{key}")
                except SeqkitError as exc:
                    problems += [p for p in exc.problems if p not in problems]
        return problems

    def load(self) -> TaggedCorpus:
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        keys = [key for key in ("path", "dev", "test") if self.config.get(key)]
        splits = {"train" if key == "path" else key: self._read(key) for key in keys}
        if "dev" not in splits:
            train = splits["train"]
            self._check_held_out(len(train))
            splits["dev"] = train[DEV_EVERY - 1::DEV_EVERY]
            splits["train"] = [s for i, s in enumerate(train) if i % DEV_EVERY != DEV_EVERY - 1]
        self._check_tags({tag for _, tags in splits["train"] for tag in tags})
        tag_set = {tag for sentences in splits.values() for _, tags in sentences for tag in tags}
        return TaggedCorpus("word", splits, tuple(sorted(tag_set)))

    def stream(self) -> TaggedCorpus:
        """``load()``'s corpus with each split a ``Split``: every file is read once now (checked,
        as ``load()`` checks it, its sentences counted, its tags collected), then again at each
        pass."""
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        keys = [key for key in ("path", "dev", "test") if self.config.get(key)]
        no_dev = "dev" not in keys  # every 10th sentence of path is dev
        counts, train_tags, tag_set = {}, set(), set()
        for key in keys:
            counts[key] = 0
            for _, tags in self._stream(key):
                tag_set.update(tags)
                if key == "path" and not (no_dev and counts[key] % DEV_EVERY == DEV_EVERY - 1):
                    train_tags.update(tags)
                counts[key] += 1

        def reader(key: str):
            return lambda: self._stream(key)

        splits = {"train" if key == "path" else key: Split(reader(key), counts[key]) for key in keys}
        if no_dev:
            read, count = reader("path"), counts["path"]
            self._check_held_out(count)
            splits.update(held_out(read, count, DEV_EVERY))
        self._check_tags(train_tags)
        return TaggedCorpus("word", splits, tuple(sorted(tag_set)))

    def _check_held_out(self, count: int) -> None:
        """Without a dev file, ``path`` (of ``count`` sentences) has enough to hold out every 10th."""
        if count < DEV_EVERY:
            raise SeqkitError(f"data.dev: {self.config['path']} has too few sentences ({count}) to "
                              f"hold out every {DEV_EVERY}th as dev; give a dev file")

    def _check_tags(self, train_tags: set[str]) -> None:
        """The training sentences carry two tags or more."""
        if len(train_tags) < 2:
            raise SeqkitError(f"data.path: {self.config['path']}: every word is tagged "
                              f"'{train_tags.pop()}'; a tagger needs two tags or more: choose "
                              f"another data.tag_column")

    def identity(self) -> dict:
        """The files (path, size, modification time, in the order path, dev, test), the options, and
        this reader's code; read without reading the files."""
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        keys = [key for key in ("path", "dev", "test") if self.config.get(key)]
        options = {key: self.config.get(key) for key in ("word_column", "tag_column")}
        return {"dataset": "conll", "keys": keys,
                "files": files_identity([Path(self.config[key]).expanduser() for key in keys]),
                "options": {**options, "lowercase": bool(self.config.get("lowercase", False))},
                "code": code_digest(__file__)}

    def _read(self, key: str) -> list[Sentence]:
        return self.read_file(self.config[key], f"data.{key}")

    def _stream(self, key: str) -> Iterator[Sentence]:
        """The sentences of the file of ``key``, read a piece at a time."""
        name = self.config[key]
        return self._sentences(str(name), f"data.{key}", file_lines(name, f"data.{key}"))

    def read_file(self, name: str | Path, where: str) -> list[Sentence]:
        """The sentences of one CoNLL / CoNLL-U file, read with this dataset's column options;
        problems are one line starting with ``where`` (the key or flag that named the file)."""
        name = str(name)
        try:
            text = read_text_file(Path(name).expanduser())
        except SeqkitError as exc:  # not text: name the key that chose the file
            raise SeqkitError(*(f"{where}: {p}" for p in exc.problems)) from None
        if not text.strip():
            raise SeqkitError(f"{where}: {name}: the file is empty")
        return list(self._sentences(name, where, text.split("\n")))

    def _sentences(self, name: str, where: str, lines: Iterable[str]) -> Iterator[Sentence]:
        """The sentences of a file's ``lines`` (its text split at line ends), checked as
        ``read_file`` says; a file of blank lines is empty, one of no words has no sentences."""
        conllu = is_conllu(name)
        word_at = tag_at = None  # the columns, found at the first line that is not blank
        lowercase = self.config.get("lowercase", False)
        words, tags, sentences = [], [], 0
        columns, first_line = None, 0  # a CoNLL file's column count, fixed by its first word line
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\r")
            if not line.strip():
                if words:
                    yield words, tags
                    words, tags, sentences = [], [], sentences + 1
                continue
            if word_at is None:
                word_at, tag_at = column_indexes(self.config, name, where)
            if conllu:
                if line.startswith("#"):
                    continue
                fields = line.split("\t")
                if len(fields) != len(CONLLU_COLUMNS):
                    raise SeqkitError(f"{where}: {name}:{number}: {len(fields)} tab-separated "
                                      f"columns; CoNLL-U has {len(CONLLU_COLUMNS)}")
                if "-" in fields[0] or "." in fields[0]:
                    continue  # a multi-word token's range or an empty node: not a word of its own
            else:
                fields = line.split()
                if fields[0] == "-DOCSTART-":
                    if words:
                        yield words, tags
                        words, tags, sentences = [], [], sentences + 1
                    continue
                if columns is None:
                    columns, first_line = len(fields), number
                    check_columns(columns, word_at, tag_at, f"{name}:{number}")
                elif len(fields) != columns:
                    raise SeqkitError(f"{where}: {name}:{number}: {len(fields)} columns, but line "
                                      f"{first_line} has {columns}; every word line needs all of them")
            for kind, index in (("word", word_at), ("tag", tag_at)):
                if not fields[index] or (conllu and kind == "tag" and fields[index] == "_"):
                    column = CONLLU_COLUMNS[index] if conllu else index
                    raise SeqkitError(f"{where}: {name}:{number}: the {kind} column ({column}) is "
                                      f"empty; fill it in or choose another data.{kind}_column")
            words.append(fields[word_at].lower() if lowercase else fields[word_at])
            tags.append(fields[tag_at])
        if words:
            yield words, tags
            sentences += 1
        if word_at is None:
            raise SeqkitError(f"{where}: {name}: the file is empty")
        if not sentences:
            raise SeqkitError(f"{where}: {name}: no sentences, only comments, -DOCSTART- or blank "
                              f"lines")


def column_indexes(options: dict, name: str, where: str) -> tuple[int, int]:
    """(word index, tag index) into a line's fields of the file ``name``, from the options."""
    conllu = is_conllu(name)
    indexes = []
    for option in ("word_column", "tag_column"):
        value = options.get(option)
        if value is None:
            value = DEFAULT_COLUMNS[conllu][option]
        if isinstance(value, str):
            if not conllu:
                raise SeqkitError(f"data.{option}: '{value}' names a CoNLL-U column, but '{name}' "
                                  f"({where}) is not a .conllu file; give a 0-based column index")
            if value not in CONLLU_COLUMNS:
                raise SeqkitError(f"data.{option}: '{value}' is not a CoNLL-U column; give one of "
                                  f"{', '.join(CONLLU_COLUMNS)} or a 0-based index")
            value = CONLLU_COLUMNS.index(value)
        indexes.append(value)
    if conllu:
        check_columns(len(CONLLU_COLUMNS), *indexes, f"'{name}' ({where})")
    return indexes[0], indexes[1]


def check_columns(columns: int, word_at: int, tag_at: int, place: str) -> None:
    """Both indexes fall inside a line of ``columns`` fields, on different columns."""
    for option, index in (("word_column", word_at), ("tag_column", tag_at)):
        if not -columns <= index < columns:
            raise SeqkitError(f"data.{option}: {index} is out of range: {place} has {columns} "
                              f"columns, 0 to {columns - 1}")
    if word_at % columns == tag_at % columns:
        raise SeqkitError(f"data.tag_column: column {tag_at % columns} holds the words too "
                          f"(data.word_column), in {place}; give the tags' column")


@seqkit.hookimpl
def register_datasets(register):
    register("conll", Conll)
