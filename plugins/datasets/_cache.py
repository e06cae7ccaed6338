"""A per-user cache for data that is slow to build and a pure function of its key.

Entries are gzipped JSON, written atomically; one that cannot be read (torn by a crash, written by
another version) is rebuilt. Folder: ``seqkit.corpus.cache_dir()`` (``$SEQKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/seqkit``, else ``~/.cache/seqkit``), which prepared corpora share.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Callable

from seqkit.atomic import atomic_write
from seqkit.corpus import cache_dir

__all__ = ["cache_dir", "cached_json"]


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
