"""Kernels chosen by measurement (seqkit.nn.kernels): the faster candidate wins, once per shape; the
choice can be forced and cached on disk; measuring changes no weight, gradient or random stream;
and whichever kernel runs, the numbers are torch.nn's."""
from __future__ import annotations

import json
import logging
import time

import pytest
import torch
from _tiny_runs import tiny_recipe
from torch import nn

from seqkit import Recurrent, SeqkitError
from seqkit.nn import kernels
from seqkit.training.run import start_run


@pytest.fixture(autouse=True)
def fresh_choices(monkeypatch):
    monkeypatch.delenv("SEQKIT_KERNEL", raising=False)
    monkeypatch.delenv("SEQKIT_KERNEL_CACHE", raising=False)
    kernels.forget()
    yield
    kernels.forget()


def sleeper(seconds: float, calls: list, name: str):
    def run():
        calls.append(name)
        time.sleep(seconds)
    return run


def test_the_faster_candidate_is_chosen_once_and_kept_for_the_process(caplog):
    calls = []
    candidates = {"own": sleeper(0.02, calls, "own"), "torch": sleeper(0.001, calls, "torch")}
    with caplog.at_level(logging.DEBUG, logger="seqkit.kernels"):
        assert kernels.choose("shape A", candidates, torch.device("cpu")) == "torch"
    assert calls.count("own") == calls.count("torch") == 1 + kernels.REPEATS  # warm-up, then timed
    assert kernels.choose("shape A", candidates, torch.device("cpu")) == "torch"
    assert len(calls) == 2 * (1 + kernels.REPEATS)  # not measured again
    key = f"shape A | {torch.get_num_threads()} threads"  # on the CPU the thread count is part of a shape
    chosen = kernels.choices()[key]
    assert chosen["kernel"] == "torch" and chosen["ms"]["own"] > 10 > chosen["ms"]["torch"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{key}: torch (own {chosen['ms']['own']:.3f} ms, torch {chosen['ms']['torch']:.3f} ms; measured)"]


@pytest.mark.parametrize("forced", ["own", "torch"])
def test_seqkit_kernel_forces_a_kernel_without_measuring(monkeypatch, forced):
    monkeypatch.setenv("SEQKIT_KERNEL", forced)
    calls = []
    candidates = {"own": sleeper(0, calls, "own"), "torch": sleeper(0, calls, "torch")}
    assert kernels.choose("shape B", candidates, torch.device("cpu")) == forced and calls == []
    assert kernels.choose("no torch kernel", {"own": candidates["own"]}, torch.device("cpu")) == "own"


def test_a_bad_seqkit_kernel_is_one_line(monkeypatch):
    monkeypatch.setenv("SEQKIT_KERNEL", "fastest")
    with pytest.raises(SeqkitError) as info:
        kernels.choose("shape C", {"own": lambda: None}, torch.device("cpu"))
    assert str(info.value) == "SEQKIT_KERNEL: 'fastest' is not one of auto, torch, own; unset it to let seqkit measure"


def test_choices_are_cached_on_disk_per_machine_and_a_damaged_cache_is_measured_again(tmp_path, monkeypatch):
    cache = tmp_path / "kernels.json"
    monkeypatch.setenv("SEQKIT_KERNEL_CACHE", str(cache))
    calls = []
    candidates = {"own": sleeper(0.001, calls, "own"), "torch": sleeper(0.02, calls, "torch")}
    assert kernels.choose("shape D", candidates, torch.device("cpu")) == "own"
    key = f"shape D | {torch.get_num_threads()} threads"
    stored = json.loads(cache.read_text())
    assert stored[kernels.machine_key()][key]["kernel"] == "own"
    kernels.forget()
    calls.clear()
    assert kernels.choose("shape D", candidates, torch.device("cpu")) == "own" and calls == []
    assert kernels.choices()[key]["source"] == f"cached in {cache}"
    cache.write_text('{"torn": ')
    kernels.forget()
    assert kernels.choose("shape D", candidates, torch.device("cpu")) == "own" and calls
    assert key in json.loads(cache.read_text())[kernels.machine_key()]


@pytest.mark.parametrize("cell", ["lstm", "gru", "tanh"])
def test_measuring_changes_no_weight_gradient_or_random_stream(cell):
    torch.manual_seed(0)
    model = Recurrent(cell, 5, 8, layers=2)
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    x = torch.randn(3, 6, 5)
    rng = torch.get_rng_state()
    out, _ = model(x)  # the first sight of this shape: both kernels measured, training
    assert kernels.choices()  # it did measure
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, weights[name]) for name, p in model.named_parameters())
    with torch.no_grad():
        model.eval().step(x[:, 0], model.initial_states(3))
    assert torch.equal(torch.get_rng_state(), rng)


TORCH = {"lstm": nn.LSTM, "gru": nn.GRU, "tanh": nn.RNN}


@pytest.mark.parametrize("kernel", ["own", "torch"])
@pytest.mark.parametrize("cell", sorted(TORCH))
def test_a_step_through_every_layer_equals_torch_nn_with_either_kernel(monkeypatch, cell, kernel):
    monkeypatch.setenv("SEQKIT_KERNEL", kernel)
    torch.manual_seed(0)
    model = Recurrent(cell, 5, 8, layers=3).double().eval()
    reference = TORCH[cell](5, 8, num_layers=3, batch_first=True).double()
    with torch.no_grad():
        for layer, c in enumerate(model.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l{layer}").copy_(getattr(c, name))
    x = torch.randn(4, 7, 5, dtype=torch.float64)
    expected, _ = reference(x)
    states, steps = model.initial_states(4, dtype=torch.float64), []
    with torch.inference_mode():
        for t in range(7):
            h, states = model.step(x[:, t], states)
            steps.append(h)
    torch.testing.assert_close(torch.stack(steps, 1), expected, rtol=0, atol=1e-12)


def test_training_from_the_same_seed_gives_the_same_curve_with_either_kernel(tmp_path, monkeypatch):
    losses = {}
    for kernel in ("own", "torch"):
        monkeypatch.setenv("SEQKIT_KERNEL", kernel)
        start_run(tiny_recipe(tmp_path / kernel, "model.dropout=0"), display="silent")
        lines = [json.loads(line) for line in (tmp_path / kernel / "metrics.jsonl").read_text().splitlines()]
        losses[kernel] = [line["loss"] for line in lines if "loss" in line]
    assert len(losses["own"]) == len(losses["torch"]) > 4
    assert losses["own"] == pytest.approx(losses["torch"], rel=1e-4)
