"""benchmarks/cells.py runs end to end (a tiny size) and reports every lecture cell and the kernel it ran."""
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
    columns = {row.split("│")[2].strip(): [c.strip() for c in row.split("│")] for row in rows}
    assert {cell: c[6] for cell, c in columns.items()} == {
        "tanh": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU", "residual": "loop residual", "gated": "loop gated"}
    # the kernel each ran: measured for the cells torch has a kernel for, their own for the others
    kernels = {cell: c[3] for cell, c in columns.items()}
    assert {kernels[c] for c in ("tanh", "lstm", "gru")} <= {"own", "torch"}
    assert kernels["residual"] == kernels["gated"] == "own"
    assert "matmul peak" in result.stdout
