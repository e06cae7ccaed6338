"""Several processes and a hostile disk: two processes preparing the same corpus build it once; a
build killed with SIGKILL leaves nothing that is read as good; a full disk, a file size limit or a
cache path under a file give one line naming the folder and SEQKIT_CACHE_DIR, and leave nothing."""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _corpus_workers import IDENTITY, killed_mid_build, open_counted, past_size_limit, tokens
from conftest import contents

from seqkit.corpus import open_prepared, prepared_folder
from seqkit.errors import SeqkitError

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter each, as torchrun's ranks



def test_two_processes_opening_one_corpus_build_it_once_and_read_the_same(cache, tmp_path):
    count_file, start, results = tmp_path / "builds", SPAWN.Event(), SPAWN.Queue()
    processes = [SPAWN.Process(target=open_counted, args=(str(cache), str(count_file), start, results))
                 for _ in range(2)]
    for process in processes:
        process.start()
    start.set()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(count_file.read_text().split()) == 1  # exactly one build
    built = [r for r in reports if not r["reused"]]
    assert len(built) == 1 and built[0]["meta"] == {"built_by": built[0]["pid"]}
    for report in reports:
        assert report["meta"] == built[0]["meta"]
        assert report["tokens"] == tokens().tobytes()
        assert len(report["waited"]) <= 1
    here = f"prepared/{prepared_folder('race', IDENTITY).name}"
    assert contents(cache) == ["prepared", here, f"{here}/manifest.json", f"{here}/tokens.uint16"]


def test_a_second_opener_waits_says_so_once_and_reuses(cache):
    building, lines, results = threading.Event(), [], {}
    go = threading.Event()

    def slow_build(writer):
        building.set()
        assert go.wait(30)
        writer.array("tokens", "uint8").append([1, 2, 3])
        return {"by": "first"}

    def first():
        results["first"] = open_prepared("lm", {"x": 1}, slow_build)

    thread = threading.Thread(target=first)
    thread.start()
    assert building.wait(30)

    def waiting(line):
        lines.append(line)
        go.set()  # the first may finish now: this one is waiting for it

    second = open_prepared("lm", {"x": 1}, lambda writer: pytest.fail("built twice"), wait=waiting)
    thread.join(30)
    assert not results["first"].reused and second.reused and second.meta == {"by": "first"}
    assert lines == [f"{second.path}: another process is preparing this data; waiting for it"]
    assert list(second["tokens"]) == [1, 2, 3]


def test_a_build_killed_mid_write_is_never_read_and_its_leftovers_are_removed(cache, tmp_path):
    ready = tmp_path / "ready"
    process = SPAWN.Process(target=killed_mid_build, args=(str(cache), str(ready)))
    process.start()
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert process.is_alive() and time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    process.kill()  # SIGKILL: no handler, no cleanup
    process.join(30)
    folder = prepared_folder("race", IDENTITY)
    left = [p for p in folder.parent.iterdir() if p.name.startswith(folder.name)]
    assert not folder.exists() and any(".tmp-" in p.name for p in left)  # half a build, under a temporary name

    warnings = []
    corpus = open_prepared("race", IDENTITY, lambda writer: writer.array("tokens", "uint16").append(tokens()) or {},
                           warn=warnings.append)
    assert not corpus.reused and warnings == []
    assert bytes(corpus["tokens"]) == tokens().tobytes()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # the temporary folder and lock are gone


def test_a_file_size_limit_gives_one_line_and_leaves_nothing(cache, tmp_path):
    result = tmp_path / "result.json"
    process = SPAWN.Process(target=past_size_limit, args=(str(cache), str(result)))
    process.start()
    process.join(120)
    assert process.exitcode == 0
    report = json.loads(result.read_text())
    assert report["error"] == (f"{cache}: cannot write prepared data there (file too large for the file system "
                               f"or the file size limit (ulimit -f)); free space or set SEQKIT_CACHE_DIR to "
                               f"another folder")
    assert report["left"] == ["prepared"]


@pytest.mark.parametrize("where", ["under a file", "is a file", "prepared is a file"])
def test_a_cache_path_that_is_not_a_folder_gives_one_line_and_leaves_nothing(tmp_path, monkeypatch, where):
    blocker = tmp_path / "file"
    blocker.write_text("a file")
    cache = {"under a file": blocker / "cache", "is a file": blocker, "prepared is a file": tmp_path}[where]
    if where == "prepared is a file":
        blocker = tmp_path / "prepared"
        blocker.write_text("a file")
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(cache))
    with pytest.raises(SeqkitError) as caught:
        open_prepared("lm", {}, lambda writer: pytest.fail("nothing can be built there"))
    message = str(caught.value)
    assert message == (f"{cache}: cannot write prepared data there (a part of its path is a file, not a folder); "
                       f"set SEQKIT_CACHE_DIR to a folder you can write to")
    assert blocker.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"file", blocker.name})


def _small_file_systems() -> bool:
    """Can this user mount a tmpfs in a user and mount namespace of its own (no privileges)?"""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _small_file_systems(),
                    reason="needs unprivileged user and mount namespaces (unshare -Urm) to mount a small tmpfs")
def test_a_full_disk_gives_one_line_and_leaves_nothing(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    script = Path(__file__).with_name("_corpus_workers.py")
    shell = 'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" "$3" "$1"'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # this seqkit, as spawn gives its children
    result = subprocess.run(["unshare", "-Urm", "sh", "-c", shell, "sh", str(mount), sys.executable, str(script)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    cache = mount / "cache"
    assert report["error"] == (f"{cache}: cannot write prepared data there (no space left on device); "
                               f"free space or set SEQKIT_CACHE_DIR to another folder")
    assert report["left"] == ["prepared"]
    assert list(mount.iterdir()) == []  # the tmpfs was the namespace's own
