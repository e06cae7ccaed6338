"""A per-user cache for data that is slow to build and a pure function of its key.

Entries are gzipped JSON, written atomically; one that cannot be read (torn by a crash, written by
another version) is rebuilt. Folder: ``$SEQKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqkit``, else
``~/.cache/seqkit``.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path

from seqkit.atomic import atomic_write


def cache_dir() -> Path:
    if os.environ.get("SEQKIT_CACHE_DIR"):
        return Path(os.environ["SEQKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqkit"


def cached_json(name: str, key: str, build: Callable[[], object]) -> object:
    """``build()``, or what it returned for the same ``name`` and ``key`` before."""
    path = cache_dir() / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json.gz"
    try:
        stored = json.loads(gzip.decompress(path.read_bytes()))
        if stored["key"] == key:
            return stored["value"]
    except (OSError, EOFError, ValueError, KeyError, TypeError, zlib.error):
        pass  # missing, torn or foreign: build it again
    value = build()
    try:
        atomic_write(path, gzip.compress(json.dumps({"key": key, "value": value}).encode(), 1))
    except OSError:
        pass  # a read-only or full disk costs speed, not correctness
    return value
