"""Read user text files with one-line errors for the ways they go wrong."""
from __future__ import annotations

from pathlib import Path

from seqkit.errors import SeqkitError


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
