"""What a dataset for sequence labelling returns: ``TaggedCorpus``, shared by every tagging dataset.

A sentence is a pair ``(tokens, tags)`` with one tag per token:

- character level (``level="char"``): ``tokens`` is a ``str`` and each character is a token, which
  keeps millions of characters light in memory;
- word level (``level="word"``): ``tokens`` is a ``list[str]`` of words.

``tags`` is a ``list[str]`` of the same length; no sentence is empty. ``splits`` maps ``"train"``
(always there), ``"dev"`` and ``"test"`` (when the dataset has them) to lists of sentences, or, in
what ``Dataset.stream()`` returns, to ``Split``s that read them again at each pass (the dataset
checks those sentences as it reads them).
``tag_set`` lists every tag the dataset can produce, in a fixed order (a tag vocabulary's order).
``tag_styles`` may give a rich style per tag, for showing decoded text (a syntax highlighter's).

A tagging dataset may also read one labelled file in its own format, with its own options, for
``seqkit eval --input-file``: ``read_file(path, where) -> list[Sentence]``, where ``where`` (the key
or flag that named the file) starts each problem's one-line message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seqkit.contracts.dataset import Split

Sentence = tuple[str | list[str], list[str]]
SPLITS = ("train", "dev", "test")


@dataclass
class TaggedCorpus:
    level: Literal["char", "word"]
    splits: dict[str, list[Sentence] | Split]
    tag_set: tuple[str, ...]
    tag_styles: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        # A broken dataset plugin is caught here, where it is built, not deep inside a task.
        if self.level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {self.level!r}")
        if "train" not in self.splits or set(self.splits) - set(SPLITS):
            raise ValueError(f"splits must be train, dev, test; got {sorted(self.splits)}")
        token_type = str if self.level == "char" else list
        for split, sentences in self.splits.items():
            if isinstance(sentences, Split):
                continue  # read again at each pass: checked by the dataset as it reads
            for i, (tokens, tags) in enumerate(sentences):
                if not isinstance(tokens, token_type) or not tokens or len(tokens) != len(tags):
                    raise ValueError(f"{split} sentence {i}: tokens must be a non-empty "
                                     f"{token_type.__name__}, one tag per token "
                                     f"({len(tokens)} tokens, {len(tags)} tags)")
