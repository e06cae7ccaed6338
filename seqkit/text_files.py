"""Read a user's text file, with one-line errors for the ways it goes wrong (datasets, inputs)."""
from __future__ import annotations

from pathlib import Path

from seqkit.errors import SeqkitError


def read_text_file(path: str | Path) -> str:
    """The file's text; a missing, unreadable, binary or non-UTF-8 file is a one-line
    ``SeqkitError`` naming it and what to do."""
    path = Path(path)
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
