"""Torch's CPU threads kept to the cores other processes leave free, while a run trains.

torch starts one intra-op thread per core and keeps them. When other work takes a core, every
parallel region waits at its barrier for the thread that is off its core: measured on 2 cores with
one other busy process, a G2P run took 28 % of its quiet steps with 2 threads, and 57 % with 1.
``FreeCores`` watches, every ``WINDOW`` seconds, how much of this process's cores other processes
used (the cores' busy time in /proc/stat less this process's own CPU time) and gives the thread
count that fits: a core counts as taken once others used ``TAKEN`` of it. Never more threads than
torch started with; nothing to do where OMP_NUM_THREADS is set (the user chose), where torch has
one thread, or without /proc/stat (not Linux).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

log = logging.getLogger("seqkit.threads")

WINDOW = 2.0  # seconds between looks: long enough to average a scheduler's time slices
# Share of a core others must use for it to count as theirs. Half: two threads, one of them on a
# core others use half the time, go at the speed of one thread alone (each region waits for the
# slower); and a process spinning beside two busy threads on two cores gets only 2/3 of a core.
TAKEN = 0.5
_BUSY_FIELDS = (0, 1, 2, 5, 6)  # user nice system irq softirq (not idle, iowait, or steal by a hypervisor)


def busy_seconds(cpus: set[int], stat: Path = Path("/proc/stat")) -> float | None:
    """Seconds the CPUs ``cpus`` have been busy since boot, by whatever ran on them; None where
    the system does not say."""
    try:
        lines = stat.read_text().splitlines()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    busy = 0
    for name, *fields in (line.split() for line in lines if line.strip()):
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            busy += sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
    return busy / ticks


def _allowed_cpus() -> set[int]:
    """The CPUs this process may run on (``taskset``), or all of them where the system does not say."""
    if hasattr(os, "sched_getaffinity"):  # not on macOS or Windows
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


class FreeCores:
    """``threads()`` every ``WINDOW`` seconds: the torch thread count for the cores others left free
    over the last window (None in between, or where there is nothing to follow)."""

    def __init__(self, threads: int, cpus: set[int] | None = None,
                 busy: Callable[[set[int]], float | None] = busy_seconds,
                 own: Callable[[], float] = time.process_time, clock: Callable[[], float] = time.monotonic):
        self.most = threads
        self.cpus = cpus if cpus is not None else _allowed_cpus()
        self.busy, self.own, self.clock = busy, own, clock
        self.active = threads > 1 and "OMP_NUM_THREADS" not in os.environ and busy(self.cpus) is not None
        self.mark = self._now() if self.active else None
        self.others = 0.0  # cores other processes used over the last window

    def _now(self) -> tuple[float, float | None, float]:
        return self.clock(), self.busy(self.cpus), self.own()

    def threads(self) -> int | None:
        if not self.active or self.clock() - self.mark[0] < WINDOW:
            return None
        now = self._now()
        if now[1] is None or self.mark[1] is None:  # /proc/stat unreadable for a moment: no answer
            self.mark = now
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self.mark, now
        self.mark = now
        self.others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)
        taken = int(self.others + (1 - TAKEN))
        return max(1, min(self.most, len(self.cpus) - taken))


class FollowFreeCores:
    """Around a training loop: ``step()`` after each optimizer step sets torch's thread count to
    what ``FreeCores`` says; the count torch had is restored at the end."""

    def __init__(self, cores: FreeCores | None = None):
        self.start = torch.get_num_threads()
        self.cores = cores or FreeCores(self.start)

    def step(self) -> None:
        threads = self.cores.threads()
        if threads is not None and threads != torch.get_num_threads():
            log.info("other processes used %.1f of %d cores: %d torch threads", self.cores.others,
                     len(self.cores.cpus), threads)
            torch.set_num_threads(threads)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.start:
            torch.set_num_threads(self.start)
