"""Which kernel runs a recurrence: chosen by measuring the candidates once per shape and process.

A built-in cell can run a sequence with seqkit's own kernel or with torch's fused one
(``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``; cuDNN's on CUDA), and a stack of them can take
a decoding step layer by layer or all layers in one fused call. Which is faster depends on the
CPU or GPU, the sizes, the batch, and whether it trains or decodes, so no choice written into the
code is right everywhere. As ``torch.backends.cudnn.benchmark`` does, the first time a shape is
seen in a process every candidate runs a few times on stand-in inputs and the fastest is kept for
the rest of the process. The measurement runs on stand-in inputs, inside ``torch.random.fork_rng``,
with gradients returned rather than accumulated, so it changes no weight, gradient or random
stream: a run trains the same whichever kernel wins.

``SEQKIT_KERNEL=auto`` (default) measures; ``torch`` or ``own`` forces one where it applies.
``SEQKIT_KERNEL_CACHE=FILE`` keeps the choices in a JSON file keyed by the machine (CPU or GPU
model, torch version, threads), so later processes skip the measurement. With ``--debug`` (or
``SEQKIT_DEBUG=1``) each choice is one line on stderr; ``choices()`` lists this process's.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from seqkit.atomic import atomic_write
from seqkit.errors import SeqkitError

MODES = ("auto", "torch", "own")
REPEATS = 3  # timed runs per candidate after one warm-up; the best counts
SEQUENCE_STEPS = 8  # a whole-sequence kernel is measured on this many steps at most
MEASURED_BATCH = 1024  # and on this many rows at most: beyond it time grows with the rows alike

log = logging.getLogger("seqkit.kernels")
_chosen: dict[str, dict] = {}  # key -> {"kernel": name, "ms": {name: best time}, "source": ...}
_forced: list[str] = []  # innermost forced() block first


def mode() -> str:
    """The kernel policy: a ``forced()`` block's, else ``SEQKIT_KERNEL``'s, else auto."""
    if _forced:
        return _forced[-1]
    value = os.environ.get("SEQKIT_KERNEL", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise SeqkitError(f"SEQKIT_KERNEL: '{value}' is not one of {', '.join(MODES)}; unset it to "
                          f"let seqkit measure")
    return value


@contextmanager
def forced(kernel: str):
    """Within the block, every choice takes ``kernel`` ("torch" or "own"; "auto" measures)."""
    if kernel not in MODES:
        raise ValueError(f"kernel must be one of {MODES}, got {kernel!r}")
    _forced.append(kernel)
    try:
        yield
    finally:
        _forced.pop()


def bucket(n: int) -> int:
    """The power of two at or above ``n``: shapes between two powers share one measurement."""
    return 1 << max(0, int(n) - 1).bit_length()


def batch_span(batch: int) -> tuple[str, int]:
    """(the batch's part of a key, the batch to measure): its power-of-two bucket, or all batches
    of ``MEASURED_BATCH`` rows and more together, measured at that many."""
    if batch >= MEASURED_BATCH:
        return f"batch >={MEASURED_BATCH}", MEASURED_BATCH
    return f"batch {bucket(batch)}", batch


def choose(key: str, candidates: dict[str, Callable[[], object]], device: torch.device) -> str:
    """The name of the fastest of ``candidates`` (zero-argument callables that run the work once
    on stand-in inputs) for ``key``; measured the first time ``key`` is seen. A forced kernel that
    is not a candidate falls back to "own"."""
    policy = mode()
    if policy != "auto":
        return policy if policy in candidates else "own"
    if device.type == "cpu":  # the fastest kernel may differ with the thread count
        key = f"{key} | {torch.get_num_threads()} threads"
    found = _chosen.get(key) or _from_disk(key)
    if found is None or found["kernel"] not in candidates:
        found = {"kernel": None, "ms": _measure(candidates, device), "source": "measured"}
        found["kernel"] = min(found["ms"], key=found["ms"].get)
        _to_disk(key, found)
    if key not in _chosen:
        _chosen[key] = found
        timings = ", ".join(f"{name} {ms:.3f} ms" for name, ms in found["ms"].items())
        log.debug("%s: %s (%s; %s)", key, found["kernel"], timings, found["source"])
    return found["kernel"]


def new_choices(before: dict[str, dict]) -> list[str]:
    """The kernels chosen since ``before`` (an earlier ``choices()``), one name per new key."""
    return [value["kernel"] for key, value in _chosen.items() if key not in before]


def choices() -> dict[str, dict]:
    """This process's choices so far: key -> {"kernel", "ms" (best time per candidate), "source"}."""
    return {key: dict(value) for key, value in _chosen.items()}


def forget() -> None:
    """Drop this process's choices (the on-disk cache stays): the next use measures again."""
    _chosen.clear()


def _measure(candidates: dict[str, Callable[[], object]], device: torch.device) -> dict[str, float]:
    devices = [device] if device.type == "cuda" else []
    best = {name: float("inf") for name in candidates}
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        for run in candidates.values():  # warm-up: allocations, oneDNN/cuDNN plans
            run()
        for _ in range(REPEATS):  # in alternation, so a busy moment hits every candidate alike
            for name, run in candidates.items():
                _synchronize(device)
                started = time.perf_counter()
                run()
                _synchronize(device)
                best[name] = min(best[name], 1e3 * (time.perf_counter() - started))
    return best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_key() -> str:
    """What makes timings comparable: the processor or GPU, torch's version, its thread count."""
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no gpu"
    return f"{cpu} | {os.cpu_count()} cores | {gpu} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def _cache_file() -> Path | None:
    path = os.environ.get("SEQKIT_KERNEL_CACHE", "").strip()
    return Path(path) if path else None


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing, unreadable or torn: measure again and rewrite it
    return data if isinstance(data, dict) else {}


def _from_disk(key: str) -> dict | None:
    path = _cache_file()
    if path is None:
        return None
    entry = _read_cache(path).get(machine_key(), {}).get(key)
    if not (isinstance(entry, dict) and isinstance(entry.get("kernel"), str)
            and isinstance(entry.get("ms"), dict)):
        return None
    return {"kernel": entry["kernel"], "ms": entry["ms"], "source": f"cached in {path}"}


def _to_disk(key: str, found: dict) -> None:
    path = _cache_file()
    if path is None:
        return
    data = _read_cache(path)
    data.setdefault(machine_key(), {})[key] = {"kernel": found["kernel"], "ms": found["ms"]}
    try:
        atomic_write(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError as exc:
        raise SeqkitError(f"SEQKIT_KERNEL_CACHE: cannot write {path} ({exc.strerror or exc}); "
                          f"point it at a writable file, or unset it") from None
