"""Where prepared corpora live and how one is prepared exactly once.

``open_prepared(kind, identity, build)`` returns the corpus in
``cache_dir()/prepared/KIND-HASH`` (HASH: of the identity's canonical JSON) if it is there and
whole; else it takes that folder's lock (``KIND-HASH.lock`` beside it: a second process waits,
then reuses), builds into a temporary sibling ``KIND-HASH.tmp-PID-XXXX``, writes the manifest last
and atomically inside it, and renames it into place. Readers therefore never see a folder without
its manifest; a damaged folder is reported in one line and prepared again; a build that fails or is
interrupted leaves nothing, and one that was killed leaves a temporary folder that the next build
removes. Where ``fcntl`` is missing (Windows) nothing is locked.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from seqkit.atomic import atomic_write, remove_torn_writes
from seqkit.corpus.arrays import CorpusWriter, file_name, storage_errors
from seqkit.corpus.prepared import FORMAT, MANIFEST, Damaged, PreparedCorpus, check_files, read_manifest

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

KIND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,59}")
TEMPORARY = ".tmp-"


def cache_dir() -> Path:
    """``$SEQKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqkit``, else ``~/.cache/seqkit``."""
    if os.environ.get("SEQKIT_CACHE_DIR"):
        return Path(os.environ["SEQKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqkit"


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def canonical(identity: dict) -> str:
    """The identity as JSON with sorted keys and no spaces: equal identities, equal text."""
    if not isinstance(identity, dict):
        raise TypeError(f"identity must be a dict, got {type(identity).__name__}")
    try:
        return json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"identity must hold only JSON values (str, int, float, bool, None, list, dict): "
                        f"{error}") from None


def prepared_folder(kind: str, identity: dict) -> Path:
    """Where ``open_prepared(kind, identity, ...)`` keeps its corpus."""
    if not isinstance(kind, str) or not KIND.fullmatch(kind):
        raise ValueError(f"kind {kind!r}: use letters, digits, '_' and '-' (at most 60)")
    digest = hashlib.sha256(canonical(identity).encode("utf-8")).hexdigest()[:20]
    return cache_dir() / "prepared" / f"{kind}-{digest}"


def open_prepared(kind: str, identity: dict, build: Callable[[CorpusWriter], dict], *,
                  warn: Callable[[str], None] = _warn,
                  wait: Callable[[str], None] | None = None) -> PreparedCorpus:
    """The prepared corpus of ``kind`` and ``identity``, built by ``build(writer)`` if it is not
    there whole already.

    ``identity`` (JSON values) must name everything the data depends on: the source (with its files'
    sizes and modification times, so a changed file is prepared again), the dataset's options, the
    tokenizer. ``build`` writes arrays through ``writer.array(name, dtype).append(chunk)`` and
    returns a JSON dict, the corpus's ``meta``. ``warn`` gets the one line about a damaged folder
    (default: stderr); ``wait`` gets one line if another process is preparing the same corpus and
    this one waits for it. A full or unwritable cache raises :class:`SeqkitError` in one line.
    """
    folder = prepared_folder(kind, identity)
    text = canonical(identity)
    cache, root, name = cache_dir(), folder.parent, folder.name
    start = time.perf_counter()

    manifest, _, rehashed = _inspect(folder, text)
    if manifest is not None:
        if rehashed:
            _note_new_times(folder, manifest, rehashed, _Lock(root / f"{name}.lock"), locked=False)
        return PreparedCorpus(folder, manifest, reused=True, seconds=time.perf_counter() - start)

    with storage_errors(cache):
        root.mkdir(parents=True, exist_ok=True)
        lock = _Lock(root / f"{name}.lock")
        lock.acquire(on_wait=None if wait is None else
                     lambda: wait(f"{folder}: another process is preparing this data; waiting for it"))
    try:
        manifest, problem, rehashed = _inspect(folder, text)  # the other process may have built it
        if manifest is not None:
            if rehashed:
                _note_new_times(folder, manifest, rehashed, lock, locked=True)
            return PreparedCorpus(folder, manifest, reused=True, seconds=time.perf_counter() - start)
        if problem is not None:
            warn(f"{folder}: prepared data is damaged ({problem}); preparing it again")
        _remove_stale(root, name)
        with storage_errors(cache):
            if os.path.lexists(folder):
                _discard(folder)  # free its space before writing the new one
        manifest, seconds = _build(folder, json.loads(text), build, cache)
        return PreparedCorpus(folder, manifest, reused=False, seconds=seconds)
    finally:
        lock.release()


def _inspect(folder: Path, identity_text: str) -> tuple[dict | None, str | None, dict]:
    """(manifest, None, rehashed) for a whole folder; (None, problem, {}) for a damaged one;
    (None, None, {}) where there is none."""
    try:
        if not folder.is_dir():
            return (None, "it is a file, not a folder", {}) if os.path.lexists(folder) else (None, None, {})
    except OSError:  # a part of the path is a file: nothing is there
        return None, None, {}
    try:
        manifest = read_manifest(folder)
        if canonical_or_none(manifest["identity"]) != identity_text:
            raise Damaged(f"{MANIFEST} names another identity")
        rehashed = check_files(folder, manifest, full=False)
    except Damaged as problem:
        return None, str(problem), {}
    return manifest, None, rehashed


def canonical_or_none(identity) -> str | None:
    try:
        return canonical(identity)
    except TypeError:
        return None


def _build(folder: Path, identity: dict, build: Callable[[CorpusWriter], dict], cache: Path) -> tuple[dict, float]:
    """Build into a temporary sibling and rename it to ``folder``: (manifest, seconds)."""
    temporary = folder.with_name(f"{folder.name}{TEMPORARY}{os.getpid()}-{secrets.token_hex(4)}")
    writer = None
    try:
        with storage_errors(cache):
            temporary.mkdir()
        start = time.perf_counter()
        writer = CorpusWriter(temporary, cache)
        meta = build(writer)
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TypeError(f"build must return a dict (the corpus's meta), got {type(meta).__name__}")
        with storage_errors(cache):
            arrays = writer._finish()
            seconds = time.perf_counter() - start
            manifest = {"format": FORMAT, "identity": identity, "arrays": arrays, "meta": meta,
                        "created": datetime.now(UTC).isoformat(timespec="seconds"),
                        "seconds": round(seconds, 3)}
            try:
                text = json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as error:
                raise TypeError(f"the meta that build returned must hold only JSON values: {error}") from None
            atomic_write(temporary / MANIFEST, text + "\n")  # last, and whole or not at all
            if os.path.lexists(folder):  # only if something other than seqkit put it there meanwhile
                _discard(folder)
            os.rename(temporary, folder)
            _fsync_dir(folder.parent)
        return json.loads(text), seconds
    except BaseException:
        if writer is not None:
            writer._abort()
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _discard(path: Path) -> None:
    """Remove a folder (or file) at once: renamed to a temporary name first, so a kill midway leaves
    a temporary folder that the next build removes, never a half-deleted corpus."""
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return
    doomed = path.with_name(f"{path.name}{TEMPORARY}{os.getpid()}-{secrets.token_hex(4)}-old")
    os.rename(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _remove_stale(root: Path, name: str) -> None:
    """Remove the temporary folders of builds that died (kill -9, a crash, a power cut): those of
    ``name`` (whose lock this process holds, so no live process writes them) and those of other
    corpora whose lock is free."""
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        owner, found, _ = entry.name.partition(TEMPORARY)
        if not found or not owner or not entry.is_dir() or entry.is_symlink():
            continue
        if owner == name:
            shutil.rmtree(entry, ignore_errors=True)
        elif fcntl is not None:
            other = _Lock(root / f"{owner}.lock")
            try:
                if not other.acquire(blocking=False):
                    continue  # a live process is building that one
            except OSError:
                continue
            try:
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                other.release()


def _note_new_times(folder: Path, manifest: dict, rehashed: dict[str, int], lock: _Lock, *, locked: bool) -> None:
    """Record the new modification times of files whose checksums were computed again and matched (a
    copied cache), so the next open checks only sizes again. Best effort: a read-only cache or a
    busy lock just means computing them again next time."""
    try:
        if not locked and not lock.acquire(blocking=False):
            return
    except OSError:
        return
    try:
        current = read_manifest(folder)
        if current != manifest:
            return  # replaced or noted meanwhile
        for name, mtime_ns in rehashed.items():
            path = folder / file_name(name, manifest["arrays"][name]["dtype"])
            if os.stat(path).st_mtime_ns != mtime_ns:
                return  # touched again since its checksum was computed
        updated = json.loads(json.dumps(manifest))
        for name, mtime_ns in rehashed.items():
            updated["arrays"][name]["mtime_ns"] = mtime_ns
        remove_torn_writes(folder)
        atomic_write(folder / MANIFEST, json.dumps(updated, indent=1, ensure_ascii=False) + "\n")
    except (OSError, Damaged):
        return
    finally:
        if not locked:
            lock.release()


class _Lock:
    """An exclusive ``flock`` on a lock file that the holder deletes on release; a waiter that then
    gets the lock on the deleted file opens the path again, so no lock file is left behind and two
    processes never both hold one."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, *, blocking: bool = True, on_wait: Callable[[], None] | None = None) -> bool:
        if fcntl is None:
            return True
        waited = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not blocking:
                        os.close(fd)
                        return False
                    if on_wait is not None and not waited:
                        on_wait()
                    waited = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    current = False
            except BaseException:
                os.close(fd)
                raise
            if current:
                self._fd = fd
                return True
            os.close(fd)  # the holder deleted that file while this process waited: lock the new one

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()  # while still holding it
        except OSError:
            pass  # already gone or not ours to remove: a lock file left behind locks nothing
        os.close(self._fd)
        self._fd = None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the files themselves were synced
    finally:
        os.close(fd)
