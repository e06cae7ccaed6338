"""Read user text files with one-line errors for the ways they go wrong."""
from __future__ import annotations

import os
from pathlib import Path

from seqkit.errors import SeqkitError


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


def read_text_file(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SeqkitError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if b"\x00" in raw[:8192]:
        raise SeqkitError(f"{path}: looks binary (contains NUL bytes); give a UTF-8 text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeqkitError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); "
                          f"convert it, e.g. iconv -t utf-8") from None


def join_texts(texts: list[str], max_chars: int) -> str:
    """Concatenate, one blank line between files; keep the first ``max_chars`` (0: all)."""
    text = "\n\n".join(texts)
    return text[:max_chars] if max_chars else text
