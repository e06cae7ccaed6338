"""benchmarks/scale.py, tiny: a corpus of the asked size, prepare and run measured from outside."""
from __future__ import annotations

import pytest

from benchmarks.scale import main, write_corpus

pytestmark = pytest.mark.slow  # end to end: prepares, trains, and trains on two processes


def test_the_corpus_has_the_asked_size_and_is_utf8(tmp_path):
    path = tmp_path / "corpus.txt"
    write_corpus(path, 3_000_000)
    raw = path.read_bytes()
    assert 3_000_000 <= len(raw) <= 3_000_001 and raw.decode("utf-8").count("def ") > 1000


def test_a_tiny_scale_run_measures_prepare_run_bpe_and_two_processes(tmp_path, capsys):
    rows, ddp = main(["--sizes", "2MB", "--steps", "4", "--bpe-size", "2MB", "--torchrun", "2MB",
                      "--keep", str(tmp_path), "--no-write"])
    [row] = rows
    assert row["prepare"]["tokens"]["train"] + row["prepare"]["tokens"]["dev"] == pytest.approx(2e6, rel=0.01)
    assert row["prepare"]["tokens"]["dev"] == pytest.approx(2e6 * 0.001, rel=0.2)
    assert 0 < row["prepare"]["peak_rss_mb"] < 1500 and 0 < row["run"]["peak_rss_mb"] < 1500
    assert row["run"]["tokens_per_s"] > 0 and 0 < row["run"]["first_step_s"] < row["run"]["seconds"]
    assert row["bpe"]["mb_per_s"] > 0
    assert len(ddp["workers"]) == 2 and all(w["peak_rss_mb"] > w["file_rss_mb"] > 0 for w in ddp["workers"])
    assert "| 2 MB |" in capsys.readouterr().out
    assert not list(tmp_path.glob("corpus-*"))  # each corpus is removed once measured
