"""benchmarks/cells.py runs end to end (a tiny size) and reports every lecture cell."""
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains


def test_quick_benchmark_reports_every_cell_against_its_baseline():
    result = subprocess.run([sys.executable, "-m", "benchmarks.cells", "--quick", "--repeats", "1",
                             "--threads", "1", "--no-write"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "8,12,8,16" in line and "│" in line]
    cells = {row.split("│")[2].strip(): row.split("│")[5].strip() for row in rows}
    assert cells == {"tanh": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU",
                     "residual": "loop residual", "gated": "loop gated"}
    assert "matmul peak" in result.stdout
