"""The token class of every character of Python source, from the standard ``tokenize`` module.

Standard library only (no seqkit, no torch), so it runs as is on any Python version.

Classes (``CLASSES``, fixed across Python versions):

- ``keyword``: a NAME in ``keyword.kwlist``, the hard keywords (``True``, ``False`` and ``None``
  included). Soft keywords (``match``, ``case``, ``type``, ``_``) are ``name``: tokenize does not
  tell ``match`` the statement from ``match`` the variable, and the soft keywords change with the
  version (``type`` arrived in 3.12), which would change the labels of the same file.
- ``name``, ``operator``, ``number``, ``comment``: NAME, OP, NUMBER and COMMENT tokens.
- ``string``: STRING tokens, and each f-string (t-string on 3.14) as a whole, from its prefix to
  its closing quote, replacement fields and format specs included. That is the single STRING
  token of 3.11; 3.12 splits it into FSTRING_START / MIDDLE / END with the fields' own tokens in
  between, which are mapped back here.
- ``whitespace``: everything no token above covers: spaces, newlines, indentation, backslash
  continuations, and the NEWLINE / NL / INDENT / DEDENT / ENDMARKER tokens.

Text is read as Python reads source: the encoding from the coding cookie (default UTF-8), and
universal newlines (``\\r\\n`` and ``\\r`` become ``\\n``).
"""
from __future__ import annotations

import io
import keyword
import tokenize
from dataclasses import dataclass

CLASSES = ("name", "keyword", "operator", "number", "string", "comment", "whitespace")
NAME, KEYWORD, OPERATOR, NUMBER, STRING, COMMENT, WHITESPACE = range(len(CLASSES))

_SIMPLE = {tokenize.OP: OPERATOR, tokenize.NUMBER: NUMBER, tokenize.STRING: STRING,
           tokenize.COMMENT: COMMENT}
_LAYOUT = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
# 3.12+ (f-strings) and 3.14+ (t-strings): these open and close one string literal
_STRING_STARTS = {getattr(tokenize, n, None) for n in ("FSTRING_START", "TSTRING_START")} - {None}
_STRING_ENDS = {getattr(tokenize, n, None) for n in ("FSTRING_END", "TSTRING_END")} - {None}
_KEYWORDS = frozenset(keyword.kwlist)
_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")


class TokenizeFailed(Exception):
    """The source does not tokenize (a syntax error tokenize sees, or an ERRORTOKEN)."""


@dataclass
class LabelledSource:
    """``text`` with ``classes[i]`` (an index into ``CLASSES``) for each character ``text[i]``.

    Offsets where a sequence may be cut without cutting a token: ``physical_line_ends`` after
    every newline that no token spans (none inside a multi-line string), and among them
    ``logical_line_ends`` after each logical line (a NEWLINE token) and each blank or comment-only
    line outside brackets, where no bracket is open either. Both end with ``len(text)``.
    """

    text: str
    classes: bytearray
    logical_line_ends: list[int]
    physical_line_ends: list[int]


def decode_source(raw: bytes) -> str:
    """Source bytes to text as the interpreter reads them (coding cookie, universal newlines)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise TokenizeFailed(f"cannot decode: {exc}") from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def label_source(text: str) -> LabelledSource:
    """Label every character of ``text`` (decoded, ``\\n`` newlines) with its token class."""
    line_starts = [0]
    line_starts += [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def offset(position: tuple[int, int]) -> int:
        # tokenize places NEWLINE / ENDMARKER one past the end of a file without a final newline
        row, col = position
        return len(text) if row > len(line_starts) else min(line_starts[row - 1] + col, len(text))

    classes = bytearray([WHITESPACE]) * len(text)

    def fill(tok_start, tok_end, label: int) -> None:
        start, end = offset(tok_start), offset(tok_end)
        classes[start:end] = bytes([label]) * (end - start)

    logical_ends, physical_ends = [], []
    brackets = 0  # depth of ( [ { outside f-strings: a newline inside brackets ends no line
    string_depth, string_start = 0, (0, 0)  # f-strings nest: '{f"{x}"}' inside another f-string
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = tok.type
            if kind in _STRING_STARTS:
                if string_depth == 0:
                    string_start = tok.start
                string_depth += 1
            elif kind in _STRING_ENDS:
                string_depth -= 1
                if string_depth == 0:
                    fill(string_start, tok.end, STRING)
            elif string_depth:
                continue  # inside an f-string: all of it is labelled at its end
            elif kind == tokenize.NAME:
                fill(tok.start, tok.end, KEYWORD if tok.string in _KEYWORDS else NAME)
            elif kind in _SIMPLE:
                # 3.12+ tokenizes stray '$', '?', '!' as OP where 3.11 gives an ERRORTOKEN
                if kind == tokenize.OP and (tok.exact_type == tokenize.OP or tok.string == "!"):
                    raise TokenizeFailed(f"line {tok.start[0]}: unexpected {tok.string!r}")
                fill(tok.start, tok.end, _SIMPLE[kind])
                if tok.string in _OPENING:
                    brackets += 1
                elif tok.string in _CLOSING:
                    brackets -= 1
            elif kind == tokenize.NEWLINE or kind == tokenize.NL:
                end = offset(tok.end)
                if not physical_ends or end > physical_ends[-1]:
                    physical_ends.append(end)
                    if kind == tokenize.NEWLINE or brackets == 0:
                        logical_ends.append(end)
            elif kind == tokenize.ERRORTOKEN:
                raise TokenizeFailed(f"line {tok.start[0]}: unexpected {tok.string!r}")
            elif kind not in _LAYOUT:
                raise TokenizeFailed(f"line {tok.start[0]}: unknown token type "
                                     f"{tokenize.tok_name.get(kind, kind)}")
    except (tokenize.TokenError, SyntaxError) as exc:
        raise TokenizeFailed(str(exc)) from None
    for ends in (logical_ends, physical_ends):
        if not ends or ends[-1] < len(text):
            ends.append(len(text))
    return LabelledSource(text, classes, logical_ends, physical_ends)
