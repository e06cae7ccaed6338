"""Atomic file writes: a kill at any moment leaves the old file or the new one, never a torn one.

The data goes to a temporary file ``.NAME.tmp-PID`` in the same folder, is flushed to disk and
then renamed over NAME; the folder is synced too, so the rename itself survives a power cut.
An exception (Ctrl-C) removes the temporary file on the way out; a kill -9 cannot, so whoever
picks the folder up again calls ``remove_torn_writes``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, data: str | bytes | Callable[[BinaryIO], object]) -> None:
    """Replace ``path`` with ``data``: text (UTF-8), bytes, or a function that writes to the
    open binary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)  # make the rename itself durable


def remove_torn_writes(folder: str | Path) -> None:
    """Delete the temporary files of writes in ``folder`` that a kill -9 cut short."""
    for torn in Path(folder).glob(".*.tmp-*"):
        torn.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory; nothing more to do
        return
    finally:
        os.close(fd)
