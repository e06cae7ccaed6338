"""Whether a run is training now: the process that trains it holds an advisory lock on
``RUN/.lock``, which the operating system releases when that process ends in any way (kill -9
included), so a lock is never stale. Where ``fcntl`` is missing (Windows) nothing is locked and
no run reads as running.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from seqkit.errors import SeqkitError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"


@contextmanager
def training_lock(run_dir: Path):
    """Hold ``run_dir``'s lock while the block runs (the pid inside is for people)."""
    if fcntl is None:
        yield
        return
    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SeqkitError(busy(run_dir)) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a run folder keeps only the run's files
        os.close(fd)  # closing releases the lock


def busy(run_dir: Path) -> str:
    """The one-line refusal to train a run that another process is training."""
    try:
        pid = (Path(run_dir) / LOCK_NAME).read_text().strip()
    except OSError:
        pid = ""
    return (f"{run_dir}: another seqkit process{f' (pid {pid})' if pid else ''} is training this "
            f"run now; wait for it to end or stop it first")


def is_training(run_dir: Path) -> bool:
    """Does a live process hold ``run_dir``'s lock?"""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
