"""Turn a recipe's ``device`` (auto | cpu | cuda | cuda:N | mps) into a torch.device, or say why not."""
from __future__ import annotations

import re

import torch

from seqkit.errors import SeqkitError

DEVICE_SPEC = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(spec: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU. A device that is absent is an error, not a fallback."""
    spec = str(spec).strip().lower()
    if not DEVICE_SPEC.match(spec):
        raise SeqkitError(f"device: '{spec}' is not one of auto, cpu, cuda, cuda:N, mps")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SeqkitError(f"device: '{spec}' was asked for but this torch sees no CUDA device "
                              f"(torch {torch.__version__}); use device: auto or cpu")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise SeqkitError(f"device: '{spec}' does not exist: {torch.cuda.device_count()} CUDA "
                              f"device(s) visible")
    if spec == "mps" and not _mps_available():
        raise SeqkitError("device: 'mps' was asked for but is not available; use device: auto or cpu")
    return torch.device(spec)


def flush_denormals(device: torch.device) -> None:
    """On CPU, treat subnormal floats (below 1.2e-38) as zero, for this process.

    Training drives some intermediate values there (products of tiny derivatives), and
    x86 CPUs compute with them many times slower: a G2P model's training step was 2.55x slower
    at step 3,124 with them (``benchmarks/denormals.py``: 0.566 s against 0.222 s, one thread).
    Rounding them to zero changes no result that matters; CUDA flushes them in its fast paths
    already.
    """
    if device.type == "cpu":
        torch.set_flush_denormal(True)
