"""Dataset plugins: the built-in texts, and clear errors for files that are not usable text."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _tiny_runs import ONE_THREAD_ENV

from seqkit import SeqkitError


def dataset(registry, name, **options):
    return registry.get("dataset", name)(**options)


def test_python_docs_is_the_pydoc_reference_text(registry):
    from pydoc_data.topics import topics

    text = dataset(registry, "python-docs").load()
    assert len(text) > 400_000 and topics["assert"] in text
    assert dataset(registry, "python-docs", max_chars=1000).load() == text[:1000]


def test_python_source_reads_the_standard_library(registry):
    text = dataset(registry, "python-source", max_chars=200_000).load()
    assert len(text) == 200_000 and "def " in text and "import " in text


def test_text_reads_a_file_and_a_sorted_glob(registry, tmp_path):
    (tmp_path / "b.txt").write_text("second ü\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first\n", encoding="utf-8")
    assert dataset(registry, "text", path=str(tmp_path / "b.txt")).load() == "second ü\n"
    assert dataset(registry, "text", path=str(tmp_path / "*.txt")).load() == "first\n\n\nsecond ü\n"


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", b"", "the text is empty"),
    ("blank.txt", b" \n\n", "the text is empty"),
    ("image.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
    ("latin1.txt", "café".encode("latin-1"), "not UTF-8 text"),
])
def test_text_refuses_unusable_files_naming_them(registry, tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SeqkitError) as info:
        dataset(registry, "text", path=str(tmp_path / name)).load()
    assert str(info.value).startswith(f"data.path: {tmp_path / name}") and message in str(info.value)


@pytest.mark.parametrize("path, message", [
    ("missing.txt", "data.path: no such file '{tmp}/missing.txt'"),
    ("*.md", "data.path: no files match the glob '{tmp}/*.md'"),
    ("", "data.path: '{tmp}' is a folder; give a file or a glob such as '{tmp}/*.txt'"),
    (None, "data.path: the text dataset needs a file or glob, e.g. --set data.path=corpus.txt"),
])
def test_text_path_problems_are_found_without_reading(registry, tmp_path, path, message):
    """check() (what validation calls) and load() report the same problem, naming the key."""
    options = {} if path is None else {"path": str(tmp_path / path) if path else str(tmp_path)}
    expected = message.format(tmp=tmp_path)
    assert registry.get("dataset", "text").check(options) == [expected]
    with pytest.raises(SeqkitError) as info:
        dataset(registry, "text", **options).load()
    assert info.value.problems == [expected]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_text_unreadable_file_is_found_without_reading(registry, tmp_path):
    (tmp_path / "secret.txt").write_text("hidden")
    (tmp_path / "secret.txt").chmod(0)
    assert registry.get("dataset", "text").check({"path": str(tmp_path / "*.txt")}) == [
        f"data.path: cannot read '{tmp_path / 'secret.txt'}' (permission denied)"]


def test_text_check_accepts_readable_files(registry, tmp_path):
    (tmp_path / "a.txt").write_text("text")
    assert registry.get("dataset", "text").check({"path": str(tmp_path / "*.txt")}) == []


def _run_char_lm_on(tmp_path, data: str) -> subprocess.CompletedProcess:
    """``seqkit run`` of a char_lm recipe whose ``data:`` is ``data``, in a subprocess."""
    (tmp_path / "r.yaml").write_text(f"task: char_lm\noutput: {tmp_path / 'run'}\ndata: {data}\n")
    return subprocess.run([sys.executable, "-m", "seqkit", "run", str(tmp_path / "r.yaml"), "--quiet"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **ONE_THREAD_ENV})


def test_cli_reports_a_binary_text_file_in_one_line(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"\x00\x01\x02" * 100)
    proc = _run_char_lm_on(tmp_path, f"{{dataset: text, path: {tmp_path / 'data.bin'}}}")
    assert proc.returncode == 2
    # a run-time error names the recipe and the key, as validation's do
    assert proc.stderr.strip() == (f"{tmp_path / 'r.yaml'}: data.path: {tmp_path / 'data.bin'}: "
                                   f"looks binary (contains NUL bytes); give a UTF-8 text file")
    assert not (tmp_path / "run").exists()  # failed before its first step: no half-made run folder


def test_char_lm_on_a_tagging_dataset_says_it_needs_text(tmp_path):
    (tmp_path / "train.txt").write_text("The DET\ncat NOUN\n\nA DET\ndog NOUN\n\n" * 12)
    proc = _run_char_lm_on(tmp_path, f"{{dataset: conll, path: {tmp_path / 'train.txt'}}}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"{tmp_path / 'r.yaml'}: data.dataset: 'conll' gives TaggedCorpus "
                                   f"data, not text; char_lm reads a text dataset such as python-docs, "
                                   f"python-source or text")
