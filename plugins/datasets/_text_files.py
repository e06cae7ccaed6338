"""Checks on the files a recipe names, joining text files, reading one a line at a time (reading one
whole: ``seqkit.contracts.read_text_file``), and holding out every Nth item of a file as dev."""
from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from seqkit.contracts import Split
from seqkit.errors import SeqkitError
from seqkit.text_files import stream_text_file

LINES_CHUNK = 1 << 18  # bytes read at a time by file_lines


def file_problem(key: str, name: str, kind: str, missing_hint: str | None = None) -> str | None:
    """Why the file ``name`` that the recipe key ``data.KEY`` names cannot be read, without reading
    it, or None: missing, a folder (``kind`` says what to give instead: "a CoNLL file"),
    unreadable. ``missing_hint`` replaces the default "name your file with --set data.KEY=FILE"."""
    path = Path(name).expanduser()
    if not path.exists():
        return f"data.{key}: no such file '{name}'; {missing_hint or f'name your file with --set data.{key}=FILE'}"
    if path.is_dir():
        return f"data.{key}: '{name}' is a folder; give {kind}"
    if not os.access(path, os.R_OK):
        return f"data.{key}: cannot read '{name}' (permission denied)"
    return None


def join_texts(texts: list[str], max_chars: int) -> str:
    """Concatenate, one blank line between files; keep the first ``max_chars`` (0: all)."""
    text = "\n\n".join(texts)
    return text[:max_chars] if max_chars else text


def stream_joined(texts: Iterable[Iterable[str]], max_chars: int) -> Iterator[str]:
    """``join_texts`` in pieces: each text is given as an iterable of its pieces (a file read
    lazily, or ``[text]``), so only one piece is in memory at a time."""
    def pieces():
        for number, text in enumerate(texts):
            if number:
                yield "\n\n"
            yield from text

    left = max_chars
    for piece in pieces():
        if max_chars:
            piece = piece[:left]
            left -= len(piece)
        if piece:
            yield piece
        if max_chars and not left:
            return


def file_lines(name: str | Path, where: str) -> Iterator[str]:
    """The lines of a user's text file, as ``read_text_file(name).split("\n")`` gives them, read
    a piece at a time (memory: a piece, whatever the file's size); a file that is not text is
    ``read_text_file``'s one-line error, starting with ``where`` (the key that named the file)."""
    pieces = stream_text_file(Path(name).expanduser(), LINES_CHUNK)
    held: list[str] = []  # the start of a line that the pieces so far have not ended
    while True:
        try:
            piece = next(pieces, None)
        except SeqkitError as exc:  # not text: name the key that chose the file
            raise SeqkitError(*(f"{where}: {p}" for p in exc.problems)) from None
        if piece is None:
            break
        if "\n" not in piece:
            held.append(piece)
            continue
        lines = piece.split("\n")
        held.append(lines[0])
        lines[0] = "".join(held)
        held = [lines.pop()]
        yield from lines
    yield "".join(held)


def held_out(read: Callable[[], Iterable], count: int, every: int) -> dict[str, Split]:
    """``{"train": ..., "dev": ...}``: the ``count`` items that ``read()`` gives (a file's, read
    again at each pass), every ``every``-th of them (the ``every``-th, the 2 * ``every``-th, ...)
    as dev, the others as train."""
    return {"train": Split(lambda: (item for i, item in enumerate(read()) if i % every != every - 1),
                           count - count // every),
            "dev": Split(lambda: itertools.islice(read(), every - 1, None, every), count // every)}


def files_identity(files: list[Path]) -> list[list]:
    """Each file's resolved path, size and modification time: what changes when a file does."""
    identity = []
    for file in files:
        stat = file.stat()
        identity.append([str(file.resolve()), stat.st_size, stat.st_mtime_ns])
    return identity


def code_digest(*modules) -> str:
    """A short hash of the source of ``modules`` (module objects or paths): part of the identity of
    data that code makes (labels, generated sentences), so that a change to it prepares the data again."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(getattr(module, "__file__", module)).read_bytes())
    return digest.hexdigest()[:16]
