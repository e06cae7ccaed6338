"""``pairs``: parallel data that users bring, a UTF-8 file of ``source<TAB>target`` lines.

- Each line is one pair: the source, one tab, the target. Blank lines are skipped; a CRLF line end
  and a byte-order mark are read as if absent.
- ``source_tokens`` / ``target_tokens``: ``space`` (tokens separated by whitespace: words, or
  phones) or ``char`` (each character a token, spaces included, the text as written).
- The same source (the same tokens) on several lines of one file is one example with several
  references, at its first line, in the order of the lines (a repeated target is kept once): an
  output that matches any of them is right.
- Splits: ``path`` is the training file, ``dev`` and ``test`` optional files. Without ``dev``,
  every 10th example of ``path`` (the 10th, 20th, ...) is held out as dev: spread over the file,
  so it reads like training, and a source's references all go one way. Without ``test`` there is
  no test split.
- ``identity()``: the files' paths, sizes and modification times, the token options and this
  reader's code: the key of the data's prepared copy (a changed file is prepared again).
- ``stream()`` (what preparing reads) reads each file once to check it, count its examples and
  find the lines whose source an earlier line has (``_repeats``: hashes in temporary files, a
  bucket of them in memory at a time), then again at each pass, an example at a time: a first
  line's later references are read where they stand (a seek each), the later lines skipped.

A line without a tab, with more than one, or with an empty side (nothing but whitespace) is a
one-line ``SeqkitError`` naming ``file:line``; so is an empty, binary or non-UTF-8 file. ``check``
finds missing or unreadable files without reading them.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts import Split, read_text_file
from seqkit.contracts.parallel_corpus import LEVELS, Example, ParallelCorpus
from seqkit.errors import SeqkitError
from seqkit.plugins.datasets._repeats import Repeated, Repeats
from seqkit.plugins.datasets._text_files import code_digest, file_lines, file_problem, files_identity, held_out

DEV_EVERY = 10  # without data.dev, every 10th training example is held out
BUCKET_BYTES = 8 << 20  # bytes of a file per bucket of its sources' hashes (stream)
MAX_BUCKETS = 1024
TOKENIZE = {"space": str.split, "char": str}


class Pairs(Dataset):
    options = {
        "path": Option(type=str, required=True, help="training file: UTF-8, source<TAB>target lines"),
        "dev": Option(type=str, help="dev file; default: every 10th example of path"),
        "test": Option(type=str, help="test file; default: no test split"),
        "source_tokens": Option("space", choices=LEVELS,
                                help="the source's tokens: space (whitespace-separated) or char"),
        "target_tokens": Option("space", choices=LEVELS,
                                help="the target's tokens: space (whitespace-separated) or char"),
    }

    @classmethod
    def check(cls, options: dict) -> list[str]:
        """Every file given is there and readable, without reading it."""
        if not options.get("path"):
            return ["data.path: the pairs dataset needs a training file of source<TAB>target lines, "
                    "e.g. --set data.path=train.tsv"]
        problems = []
        for key in ("path", "dev", "test"):
            name = options.get(key)
            if not name:
                continue
            problem = file_problem(key, name, "a file of source<TAB>target lines")
            if problem:
                problems.append(problem)
        return problems

    def load(self) -> ParallelCorpus:
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        keys = [key for key in ("path", "dev", "test") if self.config.get(key)]
        splits = {"train" if key == "path" else key: self.read_file(self.config[key], f"data.{key}")
                  for key in keys}
        if "dev" not in splits:
            train = splits["train"]
            self._check_held_out(len(train))
            splits["dev"] = train[DEV_EVERY - 1::DEV_EVERY]
            splits["train"] = [e for i, e in enumerate(train) if i % DEV_EVERY != DEV_EVERY - 1]
        return ParallelCorpus(self.config.get("source_tokens", "space"),
                              self.config.get("target_tokens", "space"), splits,
                              text=self.text_targets(self.config))

    def stream(self) -> ParallelCorpus:
        """``load()``'s corpus with each split a ``Split``: every file is read once now (checked,
        as ``load()`` checks it, and its repeated sources found), then again at each pass."""
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        keys = [key for key in ("path", "dev", "test") if self.config.get(key)]
        scanned = {key: self._scan(self.config[key], f"data.{key}") for key in keys}  # (examples, repeats)

        def reader(key: str):
            return lambda: self._examples(self.config[key], f"data.{key}", scanned[key][1])

        splits = {"train" if key == "path" else key: Split(reader(key), scanned[key][0]) for key in keys}
        if "dev" not in splits:
            read, count = reader("path"), scanned["path"][0]
            self._check_held_out(count)
            splits.update(held_out(read, count, DEV_EVERY))
        return ParallelCorpus(self.config.get("source_tokens", "space"),
                              self.config.get("target_tokens", "space"), splits,
                              text=self.text_targets(self.config))

    def _check_held_out(self, count: int) -> None:
        """Without a dev file, ``path`` (of ``count`` examples) has enough to hold out every 10th."""
        if count < DEV_EVERY:
            raise SeqkitError(f"data.dev: {self.config['path']} has too few examples ({count}) to "
                              f"hold out every {DEV_EVERY}th as dev; give a dev file")

    def identity(self) -> dict:
        """The files (each one's path, size and modification time) and the token options: what the
        prepared copy of this data is keyed by (with this reader's code), found without reading the files."""
        problems = self.check(self.config)
        if problems:
            raise SeqkitError(*problems)
        return {"dataset": "pairs",
                "files": {key: files_identity([Path(self.config[key]).expanduser()])[0]
                          for key in ("path", "dev", "test") if self.config.get(key)},
                "source_tokens": self.config.get("source_tokens", "space"),
                "target_tokens": self.config.get("target_tokens", "space"), "code": code_digest(__file__)}

    @staticmethod
    def text_targets(options: dict) -> bool:
        """Whitespace-separated targets are words: BLEU and chrF score them too (``text``). Known
        from the options alone, so validation can ask for sacrebleu before a run needs it."""
        return options.get("target_tokens", "space") == "space"

    def read_file(self, name: str | Path, where: str) -> list[Example]:
        """The examples of one file of source<TAB>target lines, read with this dataset's token
        options; problems are one line starting with ``where`` (the key or flag that named it)."""
        name = str(name)
        try:
            text = read_text_file(Path(name).expanduser())
        except SeqkitError as exc:  # not text: name the key that chose the file
            raise SeqkitError(*(f"{where}: {p}" for p in exc.problems)) from None
        source_of, target_of = self._tokenizers()
        examples: dict[object, Example] = {}  # source tokens (hashable) -> (source, references)
        for _, source, target in self._pairs(name, where, text.split("\n")):
            source = source_of(source)
            key = source if isinstance(source, str) else tuple(source)
            example = examples.setdefault(key, (source, []))
            target = target_of(target)
            if target not in example[1]:
                example[1].append(target)
        return list(examples.values())

    def _tokenizers(self):
        return (TOKENIZE[self.config.get("source_tokens", "space")],
                TOKENIZE[self.config.get("target_tokens", "space")])

    @staticmethod
    def _pairs(name: str, where: str, lines: Iterable[str]) -> Iterator[tuple[int, str, str]]:
        """(byte offset of the line, source, target) of each pair of a file's ``lines`` (its text
        split at line ends), as written; blank lines are skipped, a malformed one or a file of
        nothing else is a one-line error naming ``file:line`` or the file."""
        offset, empty = 0, True
        for number, line in enumerate(lines, 1):
            at = offset
            offset += (len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))) + 1
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            empty = False
            sides = line.split("\t")
            if len(sides) != 2:
                found = "no tab" if len(sides) == 1 else f"{len(sides) - 1} tabs"
                raise SeqkitError(f"{where}: {name}:{number}: {found}; each line is one pair, "
                                  f"source<TAB>target")
            source, target = sides
            if not (source.strip() and target.strip()):
                side = "source (before the tab)" if not source.strip() else "target (after the tab)"
                raise SeqkitError(f"{where}: {name}:{number}: the {side} is empty; each line is one "
                                  f"pair, source<TAB>target")
            yield at, source, target
        if empty:
            raise SeqkitError(f"{where}: {name}: the file is empty")

    def _scan(self, name: str, where: str) -> tuple[int, Repeated]:
        """One read of a file: its lines checked, and (its examples, the lines that repeat an
        earlier line's source)."""
        char = self.config.get("source_tokens", "space") == "char"
        size = Path(name).expanduser().stat().st_size
        with Repeats(min(MAX_BUCKETS, size // BUCKET_BYTES + 1)) as repeats:
            lines = 0
            for at, source, _ in self._pairs(name, where, file_lines(name, where)):
                repeats.add(source if char else " ".join(source.split()), at)
                lines += 1
            found = repeats.found()
        return lines - len(found.later), found

    def _examples(self, name: str, where: str, repeated: Repeated) -> Iterator[Example]:
        """The examples of a file read a line at a time, as ``read_file`` gives them: at the first
        line of a source, its later lines' targets read where they stand; those lines skipped."""
        source_of, target_of = self._tokenizers()
        skips, heads = _positions(repeated.later), _positions(repeated.heads)
        skip, head, group = next(skips), next(heads), 0
        with open(Path(name).expanduser(), "rb") as again:
            for at, source, target in self._pairs(name, where, file_lines(name, where)):
                if at == skip:
                    skip = next(skips)
                    continue
                references = [target_of(target)]
                if at == head:
                    for later in repeated.members[repeated.bounds[group]:repeated.bounds[group + 1]].tolist():
                        again.seek(later)
                        line = again.readline().decode("utf-8").removesuffix("\n").removesuffix("\r")
                        reference = target_of(line.split("\t")[1])
                        if reference not in references:
                            references.append(reference)
                    head, group = next(heads), group + 1
                yield source_of(source), references


def _positions(ascending: np.ndarray) -> Iterator[int]:
    """The positions as ints, then -1 for ever (no line is there)."""
    return itertools.chain(map(int, ascending), itertools.repeat(-1))


@seqkit.hookimpl
def register_datasets(register):
    register("pairs", Pairs)
