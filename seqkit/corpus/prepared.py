"""Reading a prepared corpus: its manifest, the check that its files are the ones written, and
read-only memory maps of its arrays.

The check is cheap enough for every open: each file must be there with exactly the manifest's size,
and a file whose modification time differs from the manifest's (an edit, a copy) has its checksum
computed again. :meth:`PreparedCorpus.verify` with ``full=True`` computes every checksum.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from seqkit.corpus.arrays import NAME, file_checksum, file_name, storage_dtype

MANIFEST = "manifest.json"
FORMAT = 1


class Damaged(Exception):
    """What is wrong with a prepared folder, in words (``str(error)``)."""


def read_manifest(folder: Path) -> dict:
    """The folder's manifest, checked for shape; :class:`Damaged` if it is missing or torn."""
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Damaged(f"{MANIFEST} is missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise Damaged(f"{MANIFEST} cannot be read: {error}") from None
    try:
        manifest = json.loads(text)
    except ValueError:
        raise Damaged(f"{MANIFEST} is torn or not JSON") from None
    if not isinstance(manifest, dict):
        raise Damaged(f"{MANIFEST} is not a manifest")
    if manifest.get("format") != FORMAT:
        raise Damaged(f"{MANIFEST} has format {manifest.get('format')!r}, this seqkit reads {FORMAT}")
    arrays = manifest.get("arrays")
    if not isinstance(arrays, dict) or not isinstance(manifest.get("meta"), dict) or "identity" not in manifest:
        raise Damaged(f"{MANIFEST} lacks its arrays, meta or identity")
    for name, entry in arrays.items():
        try:
            dtype = storage_dtype(entry["dtype"])
            ok = (NAME.fullmatch(name) and isinstance(entry["count"], int) and entry["count"] >= 0
                  and entry["bytes"] == entry["count"] * dtype.itemsize
                  and isinstance(entry["checksum"], str) and isinstance(entry["mtime_ns"], int))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise Damaged(f"{MANIFEST}: the entry of array {name!r} is malformed")
    return manifest


def check_files(folder: Path, manifest: dict, *, full: bool) -> dict[str, int]:
    """Raise :class:`Damaged` unless every array file has its manifest's size and, where its
    modification time changed (or ``full``), its checksum. Returns the new modification times of
    the files whose checksum was computed again and matched (a copy: same data, new time)."""
    rehashed = {}
    for name, entry in manifest["arrays"].items():
        path = folder / file_name(name, entry["dtype"])
        try:
            stat = os.stat(path)
        except OSError:
            raise Damaged(f"{path.name} is missing") from None
        if stat.st_size != entry["bytes"]:
            raise Damaged(f"{path.name} has {stat.st_size} bytes, the manifest says {entry['bytes']}")
        if full or stat.st_mtime_ns != entry["mtime_ns"]:
            try:
                actual = file_checksum(path)
            except OSError as error:
                raise Damaged(f"{path.name} cannot be read: {error}") from None
            if actual != entry["checksum"]:
                raise Damaged(f"{path.name} does not match its checksum")
            if stat.st_mtime_ns != entry["mtime_ns"]:
                rehashed[name] = stat.st_mtime_ns
    return rehashed


def _contents(manifest: dict) -> tuple:
    """What a manifest says about the data (not when its files were last touched)."""
    arrays = {name: (e["dtype"], e["count"], e["checksum"]) for name, e in manifest["arrays"].items()}
    return manifest["identity"], arrays, manifest["meta"]


class PreparedCorpus:
    """A prepared corpus on disk: ``corpus["tokens"]`` is a read-only memory map of that array.

    ``path``: its folder; ``meta``: what ``build`` returned; ``identity``: what it was prepared
    from; ``reused``: whether it was there already; ``seconds``: how long preparing it took (when
    reused: how long opening and checking it took); ``names``: its arrays; ``nbytes``: their size.
    """

    def __init__(self, path: Path, manifest: dict, *, reused: bool, seconds: float):
        self.path = Path(path)
        self.identity = manifest["identity"]
        self.meta = manifest["meta"]
        self.reused, self.seconds = reused, seconds
        self._manifest = manifest
        self._arrays = manifest["arrays"]
        self._maps: dict[str, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        return list(self._arrays)

    @property
    def nbytes(self) -> int:
        return sum(entry["bytes"] for entry in self._arrays.values())

    @property
    def manifest(self) -> dict:
        return self._manifest

    def __contains__(self, name) -> bool:
        return name in self._arrays

    def __getitem__(self, name: str) -> np.ndarray:
        """Array ``name``, mapped read-only (``np.memmap`` mode "r"): pages are read when touched
        and shared with every process that maps the same file."""
        if name not in self._maps:
            if name not in self._arrays:
                raise KeyError(f"{self.path}: no array {name!r}; it has {', '.join(self.names) or 'none'}")
            entry = self._arrays[name]
            dtype = storage_dtype(entry["dtype"])
            if entry["count"] == 0:  # mmap cannot map 0 bytes
                array = np.empty(0, dtype=dtype)
                array.flags.writeable = False
            else:
                array = np.memmap(self.path / file_name(name, dtype), dtype=dtype, mode="r",
                                  shape=(entry["count"],))
            self._maps[name] = array
        return self._maps[name]

    def verify(self, full: bool = True) -> str | None:
        """None if the files are the ones written, else what is wrong, in words. ``full``: compute
        every file's checksum (reads the whole corpus); else only sizes, and the checksums of files
        whose modification time changed, as opening does."""
        try:
            manifest = read_manifest(self.path)
            if _contents(manifest) != _contents(self._manifest):
                return f"{MANIFEST} changed since it was opened"
            check_files(self.path, manifest, full=full)
        except Damaged as problem:
            return str(problem)
        return None

    def __repr__(self) -> str:
        arrays = ", ".join(f"{n}: {e['dtype']}[{e['count']}]" for n, e in self._arrays.items())
        return f"PreparedCorpus({str(self.path)!r}, {arrays}, reused={self.reused})"
