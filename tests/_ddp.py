"""Several training processes on this machine, joined with gloo, for the data-parallel tests."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from _tiny_runs import metric_lines
from conftest import SAME_KERNELS

from seqkit.training.progress import Silent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_environment(rank: int, world: int, port: int) -> dict[str, str]:
    """What torchrun tells each process it starts (one torch thread each, as the tests run)."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1", "SEQKIT_DDP_TIMEOUT": "60"}


class _SignalAt(Silent):
    """A silent display that sends this process SIGTERM once step ``at`` is done."""

    def __init__(self, total, start=0, at=0):
        super().__init__(total, start)
        self.at = at

    def advance(self, step):
        if step == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def _train_recipes(rank: int, world: int, recipes: list[dict], ports: list[int],
                   last_rank_stops_at: dict[int, int]) -> None:
    from seqkit.errors import RunInterrupted
    from seqkit.training import run as run_module

    torch.set_num_threads(1)
    os.environ.update(SAME_KERNELS)
    for index, (recipe, port) in enumerate(zip(recipes, ports)):  # a fresh process group (and port) each
        os.environ.update(rank_environment(rank, world, port))
        at = last_rank_stops_at.get(index)
        if at is None:
            run_module.start_run(recipe, display="silent")
            continue
        make_display = run_module.make_display
        if rank == world - 1:
            run_module.make_display = lambda mode, total, start=0: _SignalAt(total, start, at)
        try:
            run_module.start_run(recipe, display="silent")
        except RunInterrupted:
            continue  # every rank stops, not only the one the signal reached
        finally:
            run_module.make_display = make_display
        raise AssertionError(f"rank {rank} trained on after rank {world - 1}'s SIGTERM")


def train_on_ranks(recipes: list[dict], world: int = 2, timeout: float = 120,
                   last_rank_stops_at: dict[int, int] | None = None) -> None:
    """Train each resolved recipe with ``world`` processes, as torchrun would start them.
    ``last_rank_stops_at`` {index of a recipe: step}: the last rank alone gets SIGTERM after that
    step of that recipe's run, and every rank must stop (a rank that trains on fails)."""
    args = (world, recipes, [free_port() for _ in recipes], last_rank_stops_at or {})
    context = mp.start_processes(_train_recipes, args, nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=max(0.1, deadline - time.monotonic())):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"{world} training processes still running after {timeout} s")


def final_parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "checkpoints" / "last.pt", weights_only=True)["model"]


def assert_same_training(run: Path, reference: Path, rtol: float = 1e-4, atol: float = 2e-5) -> None:
    """``run`` ends with ``reference``'s parameters and logs its losses and metrics, to float
    rounding: sums over ranks add in another order, and Adam divides each gradient by its own
    size, so a rounding difference in a tiny gradient moves its weight by up to about 1e-5."""
    ours, theirs = final_parameters(run), final_parameters(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=rtol, atol=atol, msg=name)
    lines, expected = metric_lines(run), metric_lines(reference)
    assert [(line["step"], line["split"]) for line in lines] == [(e["step"], e["split"]) for e in expected]
    for line, wanted in zip(lines, expected):
        assert line.keys() == wanted.keys()
        for key, value in wanted.items():
            assert line[key] == (pytest.approx(value, rel=rtol, abs=atol) if isinstance(value, float)
                                 else value), (key, line, wanted)
