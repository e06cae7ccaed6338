"""benchmarks/precision.py times the trainer's steps in fp32 and bf16-mixed on the same batches."""
import json
import subprocess
import sys

import pytest
from _tiny_runs import write_tiny_recipe
from conftest import REPO

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains


def test_the_benchmark_times_both_precisions_from_the_same_weights(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run")
    done = subprocess.run([sys.executable, "-m", "benchmarks.precision", str(recipe), "--repeats", "3", "--json"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["steps"] == 4 and set(result["ms_per_step"]) == {"fp32", "bf16-mixed"}
    assert all(ms > 0 for ms in result["ms_per_step"].values()) and result["speedup"] > 0
    losses = result["mean_training_loss"]  # same weights, same batches: close, not equal
    assert losses["fp32"] != losses["bf16-mixed"] and abs(losses["fp32"] - losses["bf16-mixed"]) < 0.05 * losses["fp32"]
    assert result["matmul_gflops"]["float32"] > 0 and result["matmul_gflops"]["bfloat16"] > 0
    assert not (tmp_path / "run").exists()  # the trainers wrote into a temporary folder
