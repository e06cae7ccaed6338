"""Checks on the files a recipe names, and joining text files (reading one: ``seqkit.contracts.read_text_file``)."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


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
