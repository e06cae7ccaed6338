"""Does training a recipe's model fit in memory? Counted on the meta device before a run starts.

A task's ``model_outline(recipe)`` is built on torch's ``meta`` device, where tensors have shapes
and dtypes but no storage, so a model of any size costs nothing to count. Training holds the
weights, their gradients and the optimizer's state at least (activations come on top), so a
model whose count alone exceeds the free memory can never train.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

_TORCH_BYTE_LIMIT = 2**63  # torch counts a tensor's bytes in a signed 64-bit integer
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def format_bytes(count: float) -> str:
    unit = 0
    while count >= 1024 and unit < len(_UNITS) - 1:
        count, unit = count / 1024, unit + 1
    return f"{count:.0f} B" if unit == 0 else f"{count:.1f} {_UNITS[unit]}"


def optimizer_copies(train: dict) -> int:
    """Tensors the size of the weights that the trainer's optimizer keeps per weight."""
    if train["optimizer"] in ("adam", "adamw"):
        return 2  # first and second moments
    return 1 if train["momentum"] else 0


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on ``device``; None where the system does not say."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    # a container's cgroup limit can be lower than what the host has free
    known = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass  # no /proc (not Linux): the physical memory below is the bound
    try:  # not Linux (macOS): the physical memory, an upper bound of what is free
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """The memory left under this process's cgroup v2 limit, or None without a limit."""
    folder = Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        used = int((folder / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


class _NoNormalInit(TorchFunctionMode):
    """Meta tensors hold no values, so drawing them from a normal distribution is skipped: torch's
    meta ``normal_`` imports torch._dynamo first, a second added to every command that checks a
    recipe (nn.Embedding's initialisation calls it)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.init.normal_ or func is torch.Tensor.normal_:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def memory_problems(recipe: dict, task_cls, device: torch.device) -> list[str]:
    """``["model: ..."]`` when training the recipe's model cannot fit on ``device``, else []."""
    smaller = (f"make the model smaller (model.hidden_size is {recipe['model']['hidden_size']}, "
               f"model.layers {recipe['model']['layers']})")
    try:
        with torch.device("meta"), _NoNormalInit():
            model = task_cls.model_outline(recipe)
    except Exception as exc:  # any plugin's constructor, run on the meta device
        if not (isinstance(exc, RuntimeError) and "overflow" in str(exc)):
            # No estimate: a real build reports its own errors, and a constructor that works
            # only on real tensors (one that reads its weights' values) must not block a run.
            return []
        # torch refuses a tensor whose byte count does not fit its 64-bit counter
        return [f"model: one of its tensors alone would need more than "
                f"{format_bytes(_TORCH_BYTE_LIMIT)}, more than torch can address; {smaller}"]
    if model is None:
        return []
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    copies = 2 + optimizer_copies(recipe["train"])  # weights, gradients, optimizer state
    needed = weights * copies + buffers
    free = available_bytes(device)
    if free is None or needed <= free:
        return []
    count = sum(p.numel() for p in model.parameters())
    return [f"model: {count:.3g} parameters need at least {format_bytes(needed)} to train (weights, "
            f"gradients and {recipe['train']['optimizer']}'s state), but {device} has "
            f"{format_bytes(free)} free; {smaller}"]
