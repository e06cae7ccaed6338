"""seqkit.corpus: writing a prepared corpus, reading it back memory-mapped, reusing it, and the
checks on what is written (dtypes, names, meta)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import contents

from seqkit.corpus import CorpusWriter, PreparedCorpus, cache_dir, open_prepared, prepared_folder, smallest_uint

ARRAYS = {
    "ids8": (np.uint8, np.array([0, 1, 255], dtype=np.uint8)),
    "ids16": (np.uint16, np.arange(0, 65536, 257)),
    "ids32": (np.uint32, np.array([0, 65536, 2**32 - 1], dtype=np.int64)),
    "offsets": (np.int64, np.array([0, 3, 9, 2**40], dtype=np.int64)),
    "empty": (np.uint16, np.array([], dtype=np.int64)),
    "scores": (np.float32, np.array([0.5, -1.25])),
    "flags": (np.bool_, np.array([True, False, True])),
}


def write_all(writer: CorpusWriter) -> dict:
    for name, (dtype, values) in ARRAYS.items():
        array = writer.array(name, dtype)
        for chunk in np.array_split(values, 2):  # appended in pieces, read back whole
            array.append(chunk)
        assert array.count == len(values)
    return {"vocab_size": 700, "note": "ü"}


def test_smallest_uint_boundaries():
    assert smallest_uint(0) == smallest_uint(1) == smallest_uint(256) == np.uint8
    assert smallest_uint(257) == smallest_uint(65536) == np.uint16
    assert smallest_uint(65537) == smallest_uint(2**32) == np.uint32
    assert smallest_uint(np.int64(300)) == np.uint16
    with pytest.raises(ValueError, match="uint32"):
        smallest_uint(2**32 + 1)
    with pytest.raises(ValueError):
        smallest_uint(-1)
    with pytest.raises(TypeError):
        smallest_uint(3.5)


def test_round_trip_of_every_dtype_including_empty_arrays(cache):
    corpus = open_prepared("test", {"source": "round trip"}, write_all)
    assert isinstance(corpus, PreparedCorpus) and not corpus.reused and corpus.seconds >= 0
    assert corpus.names == list(ARRAYS)
    assert corpus.meta == {"vocab_size": 700, "note": "ü"}
    assert corpus.identity == {"source": "round trip"}
    for name, (dtype, values) in ARRAYS.items():
        array = corpus[name]
        assert name in corpus and array.dtype == np.dtype(dtype) and array.shape == (len(values),)
        np.testing.assert_array_equal(array, values.astype(dtype))
        assert not array.flags.writeable
    assert isinstance(corpus["ids16"], np.memmap) and not isinstance(corpus["empty"], np.memmap)
    with pytest.raises(ValueError):
        corpus["ids16"][0] = 1  # read-only: mode "r"
    assert "absent" not in corpus
    with pytest.raises(KeyError, match="no array 'absent'"):
        corpus["absent"]
    assert corpus.nbytes == sum(np.dtype(d).itemsize * len(v) for d, v in ARRAYS.values())
    assert corpus.verify(full=True) is None
    # each file is raw values, readable without seqkit
    np.testing.assert_array_equal(np.fromfile(corpus.path / "ids16.uint16", "uint16"), ARRAYS["ids16"][1])


def test_the_folder_and_its_manifest(cache):
    identity = {"b": [1, 2], "a": {"y": None, "x": "é"}}
    corpus = open_prepared("lm", identity, write_all)
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert corpus.path == cache / "prepared" / f"lm-{hashlib.sha256(text.encode()).hexdigest()[:20]}"
    assert prepared_folder("lm", {"a": {"x": "é", "y": None}, "b": [1, 2]}) == corpus.path  # key order
    files = ["manifest.json", *(f"{n}.{np.dtype(d).name}" for n, (d, _) in ARRAYS.items())]
    here = f"prepared/{corpus.path.name}"
    assert contents(cache) == ["prepared", here, *sorted(f"{here}/{f}" for f in files)]
    manifest = json.loads((corpus.path / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["identity"] == identity and manifest["meta"] == corpus.meta
    assert manifest["created"].endswith("+00:00")
    assert manifest["arrays"]["ids16"] == {
        "dtype": "uint16", "count": 256, "bytes": 512, "checksum": manifest["arrays"]["ids16"]["checksum"],
        "mtime_ns": (corpus.path / "ids16.uint16").stat().st_mtime_ns}
    assert manifest["arrays"]["ids16"]["checksum"].startswith("crc32:")
    assert manifest["arrays"]["empty"]["bytes"] == 0


def test_a_second_open_reuses_and_another_identity_builds_again(cache):
    calls = []

    def build(writer):
        calls.append(1)
        writer.array("tokens", "uint8").append([1, 2, 3])
        return {"n": len(calls)}

    first = open_prepared("lm", {"text": "a"}, build)
    second = open_prepared("lm", {"text": "a"}, build)
    assert (first.reused, second.reused, len(calls)) == (False, True, 1)
    assert second.path == first.path and second.meta == {"n": 1}
    np.testing.assert_array_equal(second["tokens"], [1, 2, 3])
    other = open_prepared("lm", {"text": "b"}, build)
    assert not other.reused and other.path != first.path and len(calls) == 2
    assert open_prepared("tagging", {"text": "a"}, build).path != first.path  # the kind is in the name


def test_values_that_do_not_fit_the_dtype_are_a_bug_and_leave_nothing(cache):
    def build(values, dtype):
        def run(writer):
            writer.array("tokens", dtype).append(values)
            return {}
        return run

    for values, dtype, message in [([1, 65536], "uint16", "value 65536 does not fit a uint16"),
                                   ([3, -1], "uint8", "value -1 does not fit a uint8"),
                                   (np.array([2**63], dtype=np.uint64), "int64", "does not fit a int64"),
                                   ([0.5], "uint32", "expected integers"),
                                   ([1, 0], "bool", "expected bools"),
                                   (["a"], "uint8", "expected numbers")]:
        with pytest.raises(ValueError, match=message):
            open_prepared("lm", {"values": str(values), "dtype": dtype}, build(values, dtype))
    assert contents(cache) == ["prepared"]
    # what fits is accepted whatever the input's own dtype
    corpus = open_prepared("lm", {}, build(np.array([0, 65535], dtype=np.int64), "uint16"))
    np.testing.assert_array_equal(corpus["tokens"], [0, 65535])


def test_array_names_and_dtypes_are_checked(cache):
    def build(writer):
        writer.array("tokens", "uint8")
        with pytest.raises(ValueError, match="already being written"):
            writer.array("tokens", "uint8")
        for bad in ("", "../up", "a.b", "x" * 101, 3):
            with pytest.raises(ValueError, match="array name"):
                writer.array(bad, "uint8")
        for dtype in ("object", "U3", "complex64", [("a", "i4")]):
            with pytest.raises(ValueError, match="bools, integers or floats"):
                writer.array("other", dtype)
        return {}

    assert open_prepared("lm", {}, build).names == ["tokens"]
    with pytest.raises(ValueError, match="kind"):
        open_prepared("a/b", {}, build)
    with pytest.raises(TypeError, match="JSON"):
        open_prepared("lm", {"path": Path("x")}, build)


@pytest.mark.parametrize("error", [RuntimeError("bug in build"), KeyboardInterrupt(), FileNotFoundError(2, "gone")])
def test_a_failing_or_interrupted_build_leaves_no_folder(cache, error):
    def build(writer):
        writer.array("tokens", "uint16").append(np.arange(1000))
        raise error

    with pytest.raises(type(error)):  # the build's own errors stay what they are
        open_prepared("lm", {}, build)
    assert contents(cache) == ["prepared"]
    corpus = open_prepared("lm", {}, lambda writer: writer.array("tokens", "uint8").append([7]) or {})
    assert not corpus.reused and list(corpus["tokens"]) == [7]


def test_what_build_returns_must_be_a_json_dict(cache):
    def writes(meta):
        def build(writer):
            writer.array("tokens", "uint8").append([1])
            return meta
        return build

    with pytest.raises(TypeError, match="must return a dict"):
        open_prepared("lm", {"case": 1}, writes([1, 2]))
    with pytest.raises(TypeError, match="JSON"):
        open_prepared("lm", {"case": 2}, writes({"when": object()}))
    assert contents(cache) == ["prepared"]
    assert open_prepared("lm", {"case": 3}, writes(None)).meta == {}


def test_appending_after_the_build_returned_is_refused(cache):
    kept = []
    open_prepared("lm", {}, lambda writer: kept.append(writer.array("tokens", "uint8")) or {})
    with pytest.raises(ValueError, match="after the build returned"):
        kept[0].append([1])


def test_cache_dir_and_the_dataset_cache_share_it(monkeypatch, tmp_path):
    from seqkit.plugins.datasets import _cache

    assert _cache.cache_dir is cache_dir
    monkeypatch.delenv("SEQKIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "seqkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "seqkit"
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    assert _cache.cached_json("entry", "key", lambda: {"v": 1}) == {"v": 1}
    assert _cache.cached_json("entry", "key", lambda: {"v": 2}) == {"v": 1}
    assert [p.name for p in (tmp_path / "mine").iterdir()][0].startswith("entry-")
