"""benchmarks/decode.py runs end to end (short lengths) and says which kernel seqkit's steps took."""
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # end to end: runs a benchmark script


def test_quick_benchmark_reports_each_row_with_its_kernel_and_the_exact_search():
    result = subprocess.run([sys.executable, "-m", "benchmarks.decode", "--quick", "--no-write"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [[c.strip() for c in line.split("│")] for line in result.stdout.splitlines()
            if line.startswith("│") and ("greedy" in line or "sample" in line)]
    assert [(r[1], r[2]) for r in rows] == [("greedy", "1"), ("greedy", "64"), ("sample", "1"), ("sample", "64")]
    assert all(r[3] in ("own", "torch") for r in rows)
    out = " ".join(result.stdout.split())
    assert "greedy output identical to the nn.LSTMCell loop's (same weights): yes" in out
    assert "steps of 1,024 prefixes by the" in out and "same argmax and marginals: yes" in out
    assert "its matrix products alone take" in out and "the floor of any kernel" in out
