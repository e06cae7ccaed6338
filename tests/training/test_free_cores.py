"""Torch's threads follow the cores other processes leave free (seqkit.training.free_cores)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from seqkit.training import free_cores
from seqkit.training.free_cores import FollowFreeCores, FreeCores, busy_seconds


class Machine:
    """A fake clock, /proc/stat and process CPU time: ``run(seconds, others, own)`` advances them."""

    def __init__(self):
        self.now = self.busy_total = self.own_total = 0.0

    def run(self, seconds: float, others: float, own: float) -> None:
        self.now += seconds
        self.busy_total += seconds * (others + own)
        self.own_total += seconds * own

    def cores(self, threads: int, cpus: set[int]) -> FreeCores:
        return FreeCores(threads, cpus, busy=lambda _: self.busy_total, own=lambda: self.own_total,
                         clock=lambda: self.now)


@pytest.fixture(autouse=True)
def no_omp_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("others,threads", [(0.0, 2), (0.3, 2), (0.45, 2), (0.55, 1), (0.67, 1), (1.9, 1)])
def test_a_core_counts_as_taken_once_others_use_half_of_it(others, threads):
    machine = Machine()
    cores = machine.cores(2, {0, 1})
    machine.run(free_cores.WINDOW, others, own=1.2)
    assert cores.threads() == threads
    assert cores.others == pytest.approx(others)


def test_it_looks_once_a_window_and_follows_the_load_both_ways():
    machine = Machine()
    cores = machine.cores(4, {0, 1, 2, 3})
    machine.run(free_cores.WINDOW / 2, others=3.0, own=1.0)
    assert cores.threads() is None  # not a whole window yet
    machine.run(free_cores.WINDOW / 2, others=3.0, own=1.0)
    assert cores.threads() == 1
    machine.run(free_cores.WINDOW, others=2.0, own=2.0)
    assert cores.threads() == 2
    machine.run(free_cores.WINDOW, others=0.1, own=3.5)
    assert cores.threads() == 4


def test_a_window_without_a_reading_gives_no_answer():
    machine, readable = Machine(), [True]
    cores = FreeCores(2, {0, 1}, busy=lambda _: machine.busy_total if readable[0] else None,
                      own=lambda: machine.own_total, clock=lambda: machine.now)
    readable[0] = False
    machine.run(free_cores.WINDOW, others=1.0, own=1.0)
    assert cores.threads() is None
    readable[0] = True
    machine.run(free_cores.WINDOW, others=1.0, own=1.0)
    assert cores.threads() is None  # the window began without a reading
    machine.run(free_cores.WINDOW, others=1.0, own=1.0)
    assert cores.threads() == 1


def test_never_more_threads_than_torch_started_with():
    machine = Machine()
    cores = machine.cores(2, {0, 1, 2, 3})
    machine.run(free_cores.WINDOW, others=0.0, own=2.0)
    assert cores.threads() == 2


@pytest.mark.parametrize("why", ["one thread", "OMP_NUM_THREADS", "no /proc/stat"])
def test_nothing_to_follow(why, monkeypatch):
    if why == "OMP_NUM_THREADS":
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    machine = Machine()
    cores = FreeCores(1 if why == "one thread" else 2, {0, 1},
                      busy=(lambda _: None) if why == "no /proc/stat" else (lambda _: machine.busy_total),
                      own=lambda: machine.own_total, clock=lambda: machine.now)
    machine.run(10 * free_cores.WINDOW, others=2.0, own=0.0)
    assert not cores.active and cores.threads() is None


def test_busy_seconds_sums_the_busy_columns_of_the_cpus_asked_for(tmp_path):
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat = tmp_path / "stat"
    stat.write_text("cpu  999 999 999 999 999 999 999 999 0 0\n"
                    "cpu0 100 10 50 7000 300 1 2 400 0 0\n"
                    "cpu1 200 0 100 6000 0 0 0 0 0 0\n"
                    "\n"
                    "intr 12345\n")
    ticks = os.sysconf("SC_CLK_TCK")
    assert busy_seconds({0}, stat) == pytest.approx(163 / ticks)
    assert busy_seconds({0, 1}, stat) == pytest.approx(463 / ticks)
    assert busy_seconds({0}, tmp_path / "missing") is None


class Told:
    """A FreeCores that answers what a test tells it."""

    def __init__(self, answers):
        self.answers, self.cpus, self.others = list(answers), {0, 1}, 1.0

    def threads(self):
        return self.answers.pop(0)


def test_following_sets_torch_threads_and_restores_them_at_the_end():
    start = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with FollowFreeCores(Told([None, 1, None, 2, 1])) as follow:
            follow.step()
            assert torch.get_num_threads() == 2
            follow.step()
            assert torch.get_num_threads() == 1
            follow.step()
            assert torch.get_num_threads() == 1
            follow.step()
            assert torch.get_num_threads() == 2
            follow.step()
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(start)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_process_spinning_on_one_of_two_cores_takes_it(monkeypatch):
    """Real /proc/stat, a real spinning process on the first of two of this process's cores: one
    thread. (Other work on the machine can only take more.)"""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    if len(cpus) < 2:
        pytest.skip("needs two cores")
    monkeypatch.setattr(free_cores, "WINDOW", 0.5)
    spin = f"import os; os.sched_setaffinity(0, {{{cpus[0]}}}); print(flush=True)\nwhile True: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        spinner.stdout.readline()  # pinned and about to spin
        cores = FreeCores(2, set(cpus))
        assert cores.active
        time.sleep(0.6)
        assert cores.threads() == 1 and cores.others >= free_cores.TAKEN
    finally:
        spinner.kill()
        spinner.wait()
