"""What a dataset for translation returns: ``ParallelCorpus``, shared by every translation dataset.

An example is a pair ``(source, references)``: one source sequence and the target sequences it
may be translated to, one or more (a word of the CMU dictionary with two pronunciations has two
references; an output that matches any of them is right). Each side has a token level:

- ``"char"``: a sequence is a ``str`` and each character is a token (a word's spelling);
- ``"space"``: a sequence is a ``list[str]`` of tokens that were separated by whitespace (phones,
  words), so joining them with spaces and splitting again gives them back.

No sequence is empty and every example has at least one reference. ``splits`` maps ``"train"``
(always there), ``"dev"`` and ``"test"`` (when the dataset has them) to lists of examples, or, in
what ``Dataset.stream()`` returns, to ``Split``s that read them again at each pass (the dataset
checks those examples as it reads them).
``text``: the targets are natural-language text, so a task also scores BLEU and chrF (word-level
``pairs``), not only exact matches and edit distances (a word's phones).

A translation dataset may also read one file in its own format, with its own options, for
``seqkit eval --input-file``: ``read_file(path, where) -> list[Example]``, where ``where`` (the key
or flag that named the file) starts each problem's one-line message. One whose ``text`` depends
on its options says so from them alone, ``text_targets(options) -> bool``, so that validating a
recipe asks for the package that BLEU and chrF need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqkit.contracts.dataset import Split

TokenSequence = str | list[str]
Example = tuple[TokenSequence, list[TokenSequence]]
SPLITS = ("train", "dev", "test")
LEVELS = ("char", "space")


@dataclass
class ParallelCorpus:
    source_tokens: Literal["char", "space"]
    target_tokens: Literal["char", "space"]
    splits: dict[str, list[Example] | Split]
    text: bool = False

    def __post_init__(self):
        # A broken dataset plugin is caught here, where it is built, not deep inside a task.
        for side in ("source_tokens", "target_tokens"):
            if getattr(self, side) not in LEVELS:
                raise ValueError(f"{side} must be 'char' or 'space', got {getattr(self, side)!r}")
        if "train" not in self.splits or set(self.splits) - set(SPLITS):
            raise ValueError(f"splits must be train, dev, test; got {sorted(self.splits)}")
        for split, examples in self.splits.items():
            if isinstance(examples, Split):
                continue  # read again at each pass: checked by the dataset as it reads
            for i, example in enumerate(examples):
                problem = _example_problem(example, self.source_tokens, self.target_tokens)
                if problem:
                    raise ValueError(f"{split} example {i}: {problem}")


def _example_problem(example, source_tokens: str, target_tokens: str) -> str | None:
    if not (isinstance(example, tuple) and len(example) == 2):
        return "an example must be a (source, references) tuple"
    source, references = example
    problem = _sequence_problem(source, source_tokens)
    if problem:
        return f"the source {problem}"
    if not isinstance(references, list) or not references:
        return "references must be a non-empty list of target sequences"
    for r, reference in enumerate(references):
        problem = _sequence_problem(reference, target_tokens)
        if problem:
            return f"reference {r} {problem}"
    return None


def _sequence_problem(sequence, level: str) -> str | None:
    if level == "char":
        return None if isinstance(sequence, str) and sequence else "must be a non-empty str"
    if not isinstance(sequence, list) or not sequence:
        return "must be a non-empty list of tokens"
    # tokens that are strings without whitespace, none empty: what splitting on spaces gives back
    try:
        if " ".join(sequence).split() == sequence:
            return None
    except TypeError:  # a token that is not a str
        pass
    return "must be a list of non-empty str tokens without whitespace"
