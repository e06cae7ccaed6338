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

A line without a tab, with more than one, or with an empty side (nothing but whitespace) is a
one-line ``SeqkitError`` naming ``file:line``; so is an empty, binary or non-UTF-8 file. ``check``
finds missing or unreadable files without reading them.
"""
from __future__ import annotations

from pathlib import Path

import seqkit
from seqkit import Dataset, Option
from seqkit.contracts import read_text_file
from seqkit.contracts.parallel_corpus import LEVELS, Example, ParallelCorpus
from seqkit.errors import SeqkitError
from seqkit.plugins.datasets._text_files import code_digest, file_problem, files_identity

DEV_EVERY = 10  # without data.dev, every 10th training example is held out


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
            if len(train) < DEV_EVERY:
                raise SeqkitError(f"data.dev: {self.config['path']} has too few examples "
                                  f"({len(train)}) to hold out every {DEV_EVERY}th as dev; "
                                  f"give a dev file")
            splits["dev"] = train[DEV_EVERY - 1::DEV_EVERY]
            splits["train"] = [e for i, e in enumerate(train) if i % DEV_EVERY != DEV_EVERY - 1]
        return ParallelCorpus(self.config.get("source_tokens", "space"),
                              self.config.get("target_tokens", "space"), splits,
                              text=self.text_targets(self.config))

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
        text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
        if not text.strip():
            raise SeqkitError(f"{where}: {name}: the file is empty")
        tokenize = {"space": str.split, "char": str}
        source_of = tokenize[self.config.get("source_tokens", "space")]
        target_of = tokenize[self.config.get("target_tokens", "space")]
        examples: dict[object, Example] = {}  # source tokens (hashable) -> (source, references)
        for number, line in enumerate(text.split("\n"), 1):
            line = line.removesuffix("\r")
            if not line.strip():
                continue
            tabs = line.count("\t")
            if tabs != 1:
                found = "no tab" if tabs == 0 else f"{tabs} tabs"
                raise SeqkitError(f"{where}: {name}:{number}: {found}; each line is one pair, "
                                  f"source<TAB>target")
            source, target = line.split("\t")
            for side, value in (("source (before the tab)", source), ("target (after the tab)", target)):
                if not value.strip():
                    raise SeqkitError(f"{where}: {name}:{number}: the {side} is empty; each line "
                                      f"is one pair, source<TAB>target")
            source = source_of(source)
            key = source if isinstance(source, str) else tuple(source)
            example = examples.setdefault(key, (source, []))
            target = target_of(target)
            if target not in example[1]:
                example[1].append(target)
        return list(examples.values())


@seqkit.hookimpl
def register_datasets(register):
    register("pairs", Pairs)
