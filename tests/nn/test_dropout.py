"""seqkit.Dropout: torch.nn.Dropout's behaviour with a cheaper mask on the CPU."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from _tiny_runs import write_tiny_recipe
from conftest import REPO

from seqkit import Dropout, Recurrent


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keeps_each_element_with_probability_one_minus_p_and_scales_it(p):
    torch.manual_seed(0)
    x = torch.rand(200, 50, 100) + 1.0  # no zeros, so a zero output means dropped
    y = Dropout(p)(x)
    kept = y != 0
    n = x.numel()
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * ((p * (1 - p) / n) ** 0.5)
    assert torch.allclose(y[kept], x[kept] / (1 - p))
    # independent elements: neighbours in time are kept together no more often than chance
    both = (kept[:, 1:] & kept[:, :-1]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 0.01


def test_the_gradient_flows_through_kept_elements_only():
    torch.manual_seed(1)
    x = (torch.rand(64, 30) + 1.0).requires_grad_()
    y = Dropout(0.3)(x)
    y.backward(torch.ones_like(y))
    assert torch.allclose(x.grad, (y != 0).float() / 0.7)


def test_identity_in_eval_mode_and_at_p_zero_and_all_zero_at_p_one():
    x = torch.randn(8, 5)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_the_mask_is_drawn_from_torchs_generator():
    x = torch.randn(32, 40)
    torch.manual_seed(5)
    first = Dropout(0.4)(x)
    state = torch.get_rng_state()
    second = Dropout(0.4)(x)
    torch.manual_seed(5)
    assert torch.equal(Dropout(0.4)(x), first)
    torch.set_rng_state(state)  # a resumed run restores the generator: the same masks follow
    assert torch.equal(Dropout(0.4)(x), second)


def test_a_bfloat16_input_stays_bfloat16():
    y = Dropout(0.2)(torch.randn(16, 16, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16


def test_it_is_a_torch_dropout_and_recurrent_uses_it():
    assert isinstance(Dropout(0.2), torch.nn.Dropout) and repr(Dropout(0.2)) == repr(torch.nn.Dropout(0.2))
    assert isinstance(Recurrent("tanh", 3, 4, layers=2, dropout=0.5).dropout, Dropout)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_keeps_torchs_fused_kernel():
    x = torch.randn(64, 64, device="cuda")
    torch.manual_seed(3)
    ours = Dropout(0.3)(x)
    torch.manual_seed(3)
    assert torch.equal(ours, torch.nn.Dropout(0.3)(x))


def test_the_benchmark_times_the_op_and_a_recipes_steps(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "tiny.yaml", tmp_path / "run")  # a 2-layer LSTM, dropout 0.1
    done = subprocess.run([sys.executable, "-m", "benchmarks.dropout", "--shape", "4,3,8", "--repeats", "2",
                           "--recipe", str(recipe), "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for dtype in ("float32", "bfloat16"):
        assert set(result[dtype]["ms"]) == {"torch.nn.Dropout", "seqkit.Dropout"} and result[dtype]["speedup"] > 0
    steps = result["steps"]
    assert steps["dropout_modules"] == 1  # the one between the two layers
    assert set(steps["ms"]) == {"torch.nn.Dropout", "seqkit.Dropout"}
    assert all(ms > 0 for ms in steps["ms"].values()) and steps["speedup"] > 0
    assert not (tmp_path / "run").exists()
