"""benchmarks/scale.py, tiny: a corpus of the asked size, prepare and run measured from outside."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from benchmarks.scale import main, timed, write_corpus

pytestmark = pytest.mark.slow  # end to end: prepares, trains, and trains on two processes


def test_the_corpus_has_the_asked_size_and_is_utf8(tmp_path):
    path = tmp_path / "corpus.txt"
    write_corpus(path, 3_000_000)
    raw = path.read_bytes()
    assert 3_000_000 <= len(raw) <= 3_000_001 and raw.decode("utf-8").count("def ") > 1000


def test_a_tiny_scale_run_measures_prepare_run_bpe_and_two_processes(tmp_path, capsys):
    rows, ddp = main(["--sizes", "1MB", "--steps", "4", "--bpe-size", "1MB", "--torchrun", "1MB",
                      "--keep", str(tmp_path), "--timeout", "240", "--no-write"])
    [row] = rows
    assert row["prepare"]["tokens"]["train"] + row["prepare"]["tokens"]["dev"] == pytest.approx(1e6, rel=0.01)
    assert row["prepare"]["tokens"]["dev"] == pytest.approx(1e6 * 0.001, rel=0.2)
    assert 0 < row["prepare"]["peak_rss_mb"] < 1500 and 0 < row["run"]["peak_rss_mb"] < 1500
    assert row["run"]["tokens_per_s"] > 0 and 0 < row["run"]["first_step_s"] < row["run"]["seconds"]
    assert row["bpe"]["mb_per_s"] > 0
    assert len(ddp["workers"]) == 2 and all(w["peak_rss_mb"] > w["file_rss_mb"] > 0 for w in ddp["workers"])
    assert "| 1 MB |" in capsys.readouterr().out
    assert not list(tmp_path.glob("corpus-*"))  # each corpus is removed once measured


def test_a_command_that_writes_much_and_never_logs_cannot_stall_the_benchmark(tmp_path):
    # 1 MB on stderr before exiting, and the watched metrics file never appears: no pipe fills up
    loud = [sys.executable, "-c", "import sys; sys.stderr.write('x' * 2**20); print('done')"]
    result = timed(loud, dict(os.environ), timeout=120, watch=tmp_path / "metrics.jsonl")
    assert result["stdout"] == "done\n" and result["first_line"] is None and result["peak_rss_mb"] > 1


def test_a_command_past_its_timeout_is_killed_with_its_children(tmp_path):
    marker = tmp_path / "child.pid"
    script = ("import subprocess, sys, time; "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
              f"open({str(marker)!r}, 'w').write(str(child.pid)); time.sleep(600)")
    started = time.monotonic()
    with pytest.raises(SystemExit, match="still running after 3.0 s; killed"):
        timed([sys.executable, "-c", script], dict(os.environ), timeout=3.0)
    assert time.monotonic() - started < 60
    child = int(marker.read_text())
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:  # reaped by init once killed
        time.sleep(0.05)
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "zombie" in status.read_text()
