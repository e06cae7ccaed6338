"""seqkit probe gradients: ‖∂h_T/∂s_t‖ equals the product of one-step Jacobians, falls
geometrically through tanh, stays up through the residual cell, for any registered cell."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import cli_here, run_cli

from seqkit.analysis.gradient_probe import jacobian_norms, probe_cell
from seqkit.plugins.cells.residual import ResidualCell
from seqkit.plugins.cells.tanh import TanhCell


def _direct_norms(cell: TanhCell, inputs: torch.Tensor) -> torch.Tensor:
    """The same norms from the Jacobians written out: for h_t = tanh(W1 x_t + W2 h_{t-1} + b),
    ∂h_t/∂h_{t-1} = diag(1 − h_t²) W2, and ∂h_T/∂h_{T-d} is the product of d of them."""
    batch, time = inputs.shape[:2]
    norms = torch.zeros(time, batch, dtype=inputs.dtype)
    with torch.no_grad():
        for b in range(batch):
            h = torch.zeros(cell.hidden_size, dtype=inputs.dtype)
            steps = []
            for t in range(time):
                h = torch.tanh(cell.weight_ih @ inputs[b, t] + cell.bias_ih + cell.bias_hh + cell.weight_hh @ h)
                steps.append(torch.diag(1 - h ** 2) @ cell.weight_hh)
            product = torch.eye(cell.hidden_size, dtype=inputs.dtype)
            for d in range(1, time + 1):
                product = product @ steps[time - d]  # J_T ... J_{T-d+1}
                norms[d - 1, b] = torch.linalg.matrix_norm(product)
    return norms


def test_the_norms_are_the_product_of_one_step_jacobians_and_fall_geometrically():
    torch.manual_seed(0)
    cell = TanhCell(3, 6).double()
    with torch.no_grad():
        cell.weight_hh.mul_(0.5)  # small recurrent weights: each step shrinks the gradient
    inputs = torch.randn(4, 30, 3, dtype=torch.float64)
    probed, _ = jacobian_norms(cell.step, cell.initial_state(4, dtype=torch.float64), inputs)
    assert torch.allclose(probed, _direct_norms(cell, inputs), rtol=1e-9, atol=1e-300)
    curve = probed.mean(1)
    ratios = curve[1:] / curve[:-1]
    assert (ratios < 0.6).all(), ratios  # at least geometric with ratio 0.6, every step
    assert curve[-1] < 1e-6 * curve[0]


def test_residual_keeps_the_gradient_that_tanh_loses():
    tanh = probe_cell("tanh", TanhCell, length=60, hidden_size=16, input_size=4, batch=4, seeds=2)
    residual = probe_cell("residual", ResidualCell, length=60, hidden_size=16, input_size=4, batch=4, seeds=2)
    assert all(r > t for r, t in zip(residual.norms[1:], tanh.norms[1:]))
    assert tanh.vanishing_distance() is not None and tanh.vanishing_distance() < 60
    assert residual.vanishing_distance() is None


def test_the_command_probes_every_registered_cell_third_party_included(tmp_path, toy_site):
    png = tmp_path / "g.png"
    done = run_cli("probe", "gradients", "--length", "12", "--hidden-size", "6", "--batch", "3",
                   "--seeds", "1", "--json", "--plot", png, site=toy_site)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for cell in ("bow", "tanh", "residual", "gated", "lstm", "gru", "toycell"):
        assert len(report["curves"][cell]["norms"]) == 12, cell
    # the bag of words passes its state on untouched: ∂h_T/∂s_t = I, norm sqrt(hidden) at any distance
    assert report["curves"]["bow"]["norms"] == pytest.approx([6 ** 0.5] * 12)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_the_table_shows_the_distances_within_the_length_and_where_the_norm_vanished():
    done = cli_here("probe", "gradients", "--cells", "tanh,residual", "--length", "60",
                   "--hidden-size", "16", "--batch", "4", "--seeds", "1")
    assert done.returncode == 0, done.stderr
    assert "T−t = 50" in done.stdout and "T−t = 100" not in done.stdout
    residual_row = next(line for line in done.stdout.splitlines() if "residual" in line)
    assert "never (≤ 60)" in residual_row


def test_bad_arguments_are_one_line():
    unknown = cli_here("probe", "gradients", "--cells", "tanh,lstn")
    assert unknown.returncode == 2 and unknown.stderr.strip().startswith("unknown cell 'lstn' (did you mean 'lstm'?)")
    short = cli_here("probe", "gradients", "--length", "0")
    assert short.returncode == 2 and short.stderr.strip() == "--length: must be at least 1; got 0"


def test_a_trained_run_is_probed_on_its_own_dev_text_with_the_loss_gradient_too(tmp_path):
    from _tiny_runs import tiny_recipe

    from seqkit.training.run import start_run

    start_run(tiny_recipe(tmp_path / "run"), display="silent")
    done = run_cli("probe", "gradients", tmp_path / "run", "--length", "20", "--batch", "4", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run"] == str(tmp_path / "run") and sorted(report["curves"]) == ["lstm L_T", "lstm h_T"]
    for curve in report["curves"].values():
        assert len(curve["norms"]) == 20 and all(0 < n < float("inf") for n in curve["norms"])
    both = cli_here("probe", "gradients", tmp_path / "run", "--cells", "tanh")
    assert both.returncode == 2 and both.stderr.strip() == "probe gradients: give a RUN or --cells, not both"
