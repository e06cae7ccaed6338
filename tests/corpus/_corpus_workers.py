"""What the child processes of tests/corpus run: importable by name (multiprocessing's spawn), and
runnable as a script inside a mount namespace with a tiny file system (``python _corpus_workers.py``)."""
from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

import numpy as np

IDENTITY = {"corpus": "race", "version": 1}


def tokens() -> np.ndarray:
    return (np.arange(50_000) * 7919 % 700).astype(np.uint16)


def leftovers(cache: Path) -> list[str]:
    """Every path under the cache folder, relative to it."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


def open_counted(cache: str, count_file: str, start, results) -> None:
    """Open IDENTITY with a slow build that notes each call in ``count_file``; report what was read."""
    os.environ["SEQKIT_CACHE_DIR"] = cache
    from seqkit.corpus import open_prepared

    def build(writer):
        with open(count_file, "a") as f:
            f.write(f"{os.getpid()}\n")
        array = writer.array("tokens", "uint16")
        for chunk in np.array_split(tokens(), 5):
            array.append(chunk)
            time.sleep(0.1)  # a build slow enough for the other process to arrive meanwhile
        return {"built_by": os.getpid()}

    waited = []
    start.wait(60)
    corpus = open_prepared("race", IDENTITY, build, wait=waited.append)
    results.put({"pid": os.getpid(), "reused": corpus.reused, "meta": corpus.meta, "waited": waited,
                 "tokens": bytes(corpus["tokens"])})


def killed_mid_build(cache: str, ready_file: str) -> None:
    """Start building, half write an array, say so, and wait to be killed."""
    os.environ["SEQKIT_CACHE_DIR"] = cache
    from seqkit.corpus import open_prepared

    def build(writer):
        array = writer.array("tokens", "uint16")
        array.append(tokens()[:20_000])
        array._file.flush()
        Path(ready_file).write_text(str(os.getpid()))
        time.sleep(120)
        return {}

    open_prepared("race", IDENTITY, build)


def past_size_limit(cache: str, result_file: str) -> None:
    """Build under a 64 KiB file size limit (RLIMIT_FSIZE; SIGXFSZ ignored, so a write past it
    fails with EFBIG) an array of 400 KB; report the error and what is left."""
    os.environ["SEQKIT_CACHE_DIR"] = cache
    from seqkit.corpus import open_prepared
    from seqkit.errors import SeqkitError

    def build(writer):
        array = writer.array("tokens", "int64")
        for chunk in np.array_split(np.arange(50_000), 10):
            array.append(chunk)
        return {}

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        open_prepared("big", {"n": 50_000}, build)
        error = None
    except SeqkitError as exc:
        error = str(exc)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    Path(result_file).write_text(json.dumps({"error": error, "left": leftovers(Path(cache))}))


def fill_small_disk(mount: str) -> None:
    """Run on a 256 KiB tmpfs mounted at ``mount``: build 2 MB there; print the error and what is left."""
    cache = Path(mount) / "cache"
    os.environ["SEQKIT_CACHE_DIR"] = str(cache)
    from seqkit.corpus import open_prepared
    from seqkit.errors import SeqkitError

    def build(writer):
        array = writer.array("tokens", "int64")
        for chunk in np.array_split(np.arange(250_000), 10):
            array.append(chunk)
        return {}

    try:
        open_prepared("big", {"n": 250_000}, build)
        error = None
    except SeqkitError as exc:
        error = str(exc)
    print(json.dumps({"error": error, "left": leftovers(cache)}))


if __name__ == "__main__":
    fill_small_disk(sys.argv[1])
