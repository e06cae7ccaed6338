"""Read a user's text file, with one-line errors for the ways it goes wrong (datasets, inputs)."""
from __future__ import annotations

import codecs
from collections.abc import Iterator
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


def stream_text_file(path: str | Path, chunk_bytes: int = 1 << 24) -> Iterator[str]:
    """The file's text in pieces of about ``chunk_bytes``, joined equal to ``read_text_file``'s,
    with the same one-line errors; memory stays at one piece whatever the file's size."""
    path = Path(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open(path, "rb") as file:
            while True:
                raw = file.read(chunk_bytes)
                if offset == 0 and b"\x00" in raw[:8192]:
                    raise SeqkitError(f"{path}: looks binary (contains NUL bytes); give a UTF-8 text file")
                held = len(decoder.getstate()[0])  # bytes of a character cut by the last piece
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:  # exc.start counts from the held bytes
                    raise SeqkitError(f"{path}: not UTF-8 text (byte {offset - held + exc.start}: {exc.reason}); "
                                      f"convert it, e.g. iconv -t utf-8") from None
                if text:
                    yield text
                if not raw:
                    return
                offset += len(raw)
    except OSError as exc:
        raise SeqkitError(f"{path}: cannot read: {exc.strerror or exc}") from None
