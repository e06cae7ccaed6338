"""Each character's token class as Python's tokenize module gives it: the reference the python-tokens
dataset and the one-line highlighter benchmark are checked against, computed without their code."""
from __future__ import annotations

import io
import itertools
import keyword
import re
import tokenize

SIMPLE_CLASSES = {tokenize.OP: "operator", tokenize.NUMBER: "number", tokenize.STRING: "string",
                  tokenize.COMMENT: "comment"}


def expected_labels(source: str) -> list[str]:
    """The class of each character, straight from tokenize's token spans (rows/columns mapped to
    offsets through a regex split, not the dataset's code); on 3.12+ an f-string from its start
    token to its end token is one string, as 3.11's single STRING token."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", source)
    row_start = list(itertools.accumulate([len(line) for line in lines], initial=0))

    def at(position):
        return row_start[position[0] - 1] + position[1]

    labels = [None] * len(source)
    open_fstrings = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        name = tokenize.tok_name[tok.type]
        if name in ("FSTRING_START", "TSTRING_START"):
            open_fstrings.append(at(tok.start))
            continue
        if name in ("FSTRING_END", "TSTRING_END"):
            start = open_fstrings.pop()
            if not open_fstrings:
                labels[start:at(tok.end)] = ["string"] * (at(tok.end) - start)
            continue
        if open_fstrings:
            continue
        if tok.type == tokenize.NAME:
            label = "keyword" if tok.string in keyword.kwlist else "name"
        elif tok.type in SIMPLE_CLASSES:
            label = SIMPLE_CLASSES[tok.type]
        else:
            continue
        for i in range(at(tok.start), at(tok.end)):
            assert labels[i] is None, "tokens overlap"
            labels[i] = label
    return [label or "whitespace" for label in labels]
