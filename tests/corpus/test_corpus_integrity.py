"""A prepared folder that is damaged (a torn manifest, a truncated or edited file, files of another
identity) is noticed before use, reported in one warning line and prepared again: never read as
data. A copy (same bytes, new times) is reused; stale temporary folders are removed."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from seqkit.corpus import open_prepared
from seqkit.corpus.store import _Lock

IDENTITY = {"text": "integrity"}
TOKENS = (np.arange(10_000) * 31 % 999).astype(np.uint16)


class Opener:
    """open_prepared of IDENTITY, counting builds and collecting warnings."""

    def __init__(self):
        self.builds, self.warnings = 0, []

    def build(self, writer):
        self.builds += 1
        writer.array("tokens", "uint16").append(TOKENS)
        writer.array("offsets", "int64").append([0, 4000, 10_000])
        return {"build": self.builds}

    def __call__(self):
        corpus = open_prepared("lm", IDENTITY, self.build, warn=self.warnings.append)
        np.testing.assert_array_equal(corpus["tokens"], TOKENS)  # never wrong data
        np.testing.assert_array_equal(corpus["offsets"], [0, 4000, 10_000])
        return corpus


def rebuilt_once(opener: Opener, folder: Path, what: str) -> None:
    corpus = opener()
    assert not corpus.reused and opener.builds == 2 and corpus.meta == {"build": 2}
    assert opener.warnings == [f"{folder}: prepared data is damaged ({what}); preparing it again"]
    assert opener().reused and opener.builds == 2 and len(opener.warnings) == 1  # whole again


def append_zeros(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\0" * 8)


def later(path: Path, seconds: int = 5) -> None:
    """Set the file's modification time ``seconds`` past what it was (an edit made later)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


@pytest.mark.parametrize("damage, what", [
    (lambda f: (f / "manifest.json").write_text('{"format": 1, "arrays": {"tok'), "manifest.json is torn or not JSON"),
    (lambda f: (f / "manifest.json").unlink(), "manifest.json is missing"),
    (lambda f: (f / "manifest.json").write_text("[]"), "manifest.json is not a manifest"),
    (lambda f: (f / "tokens.uint16").unlink(), "tokens.uint16 is missing"),
    (lambda f: os.truncate(f / "tokens.uint16", 12_000), "tokens.uint16 has 12000 bytes, the manifest says 20000"),
    (lambda f: append_zeros(f / "offsets.int64"), "offsets.int64 has 32 bytes, the manifest says 24"),
], ids=["torn manifest", "no manifest", "not a manifest", "missing file", "truncated", "longer"])
def test_a_damaged_folder_is_reported_once_and_prepared_again(cache, damage, what):
    opener = Opener()
    folder = opener().path
    damage(folder)
    rebuilt_once(opener, folder, what)


def test_a_same_size_edit_is_caught_by_the_checksum(cache):
    opener = Opener()
    folder = opener().path
    path = folder / "tokens.uint16"
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\x07\x00")  # one id changed by hand, the size unchanged
    later(path)
    rebuilt_once(opener, folder, "tokens.uint16 does not match its checksum")


def test_an_edit_that_keeps_the_time_is_caught_by_a_full_verify(cache):
    """Opening trusts files whose size and time match the manifest (it must open 4 GB in seconds);
    verify(full=True) reads everything."""
    corpus = Opener()()
    path = corpus.path / "tokens.uint16"
    stat = path.stat()
    with open(path, "r+b") as f:
        f.write(b"\xff\xff")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert corpus.verify(full=False) is None
    assert corpus.verify(full=True) == "tokens.uint16 does not match its checksum"
    assert corpus.verify() == "tokens.uint16 does not match its checksum"  # full by default


def test_a_folder_of_another_identity_or_format_is_prepared_again(cache):
    opener = Opener()
    folder = opener().path
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["identity"] = {"text": "something else"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    rebuilt_once(opener, folder, "manifest.json names another identity")

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    opener.builds, opener.warnings = 1, []
    rebuilt_once(opener, folder, "manifest.json has format 99, this seqkit reads 1")


def test_a_file_where_the_folder_should_be_is_replaced(cache):
    opener = Opener()
    folder = opener().path
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    rebuilt_once(opener, folder, "it is a file, not a folder")


def test_a_copied_folder_is_reused_and_its_new_times_noted(cache):
    """A copy has the same bytes and new modification times: the checksums are computed again,
    match, and the new times go into the manifest, so the next open checks only sizes again."""
    opener = Opener()
    folder = opener().path
    copy = folder.with_name("copy")
    shutil.copytree(folder, copy)  # copy2 keeps the times: move them on as a plain cp would
    shutil.rmtree(folder)
    copy.rename(folder)
    for path in folder.glob("*.*int*"):
        later(path)
    corpus = opener()
    assert corpus.reused and opener.builds == 1 and opener.warnings == []
    manifest = json.loads((folder / "manifest.json").read_text())
    for path in folder.glob("*.*int*"):
        name = path.name.split(".")[0]
        assert manifest["arrays"][name]["mtime_ns"] == path.stat().st_mtime_ns
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "offsets.int64", "tokens.uint16"]
    assert opener().reused and opener.warnings == []


def test_stale_temporary_folders_are_removed_by_the_next_build(cache):
    root = cache / "prepared"
    root.mkdir(parents=True)
    opener = Opener()
    from seqkit.corpus import prepared_folder

    name = prepared_folder("lm", IDENTITY).name
    own = root / f"{name}.tmp-999999-dead"           # a build of this corpus, killed
    dead = root / "lm-00000000000000000000.tmp-1-aaaa"  # of another corpus, whose builder died
    busy = root / "lm-11111111111111111111.tmp-2-bbbb"  # of another corpus, still being built
    for folder in (own, dead, busy):
        folder.mkdir()
        (folder / "tokens.uint16").write_bytes(b"\0" * 100)
        (folder / "manifest.json").write_text("{}")
    held = _Lock(root / "lm-11111111111111111111.lock")
    assert held.acquire(blocking=False)
    try:
        corpus = opener()
    finally:
        held.release()
    assert not corpus.reused and opener.warnings == []
    assert sorted(p.name for p in root.iterdir()) == [busy.name, name]  # no lock file is left either
