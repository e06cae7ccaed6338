"""benchmarks/denormals.py times a checkpoint's training steps both ways."""
import json
import subprocess
import sys

import pytest
from _tiny_runs import tiny_recipe
from conftest import REPO

from seqkit.training.run import start_run

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains


def test_the_benchmark_times_a_checkpoint_with_and_without_flushing(tmp_path):
    start_run(tiny_recipe(tmp_path / "run"), display="silent")
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    done = subprocess.run([sys.executable, "-m", "benchmarks.denormals", str(checkpoint), "--steps", "2",
                           "--rounds", "1", "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["step"] == 12 and result["kept_s_per_step"] > 0 and result["flushed_s_per_step"] > 0
    assert result["ratio"] == result["kept_s_per_step"] / result["flushed_s_per_step"]
