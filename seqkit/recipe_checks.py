"""Checks a recipe needs beyond each key's own ``Option``: the task's rules across keys, the
dataset's files, and whether the model fits in memory.

``resolve`` runs them once every key is valid, so ``seqkit validate`` rejects what ``seqkit run``
would, and a run fails on them before it reads data or makes its run folder. The core calls the
plugins' hooks (``Task.check``, ``Dataset.check``, ``Task.model_outline``); the plugins own the rules.
"""
from __future__ import annotations

from seqkit.device import resolve_device
from seqkit.memory import memory_problems
from seqkit.options import options_of


def checks_beyond_keys(recipe: dict, task_cls, dataset_cls) -> list[str]:
    """Problems as ``"key.path: message"``; the task's ``check`` may fill defaults in ``recipe``."""
    problems = list(task_cls.check(recipe))
    if dataset_cls is not None:
        data = recipe["data"]
        problems += dataset_cls.check({k: data[k] for k in options_of(dataset_cls) if k in data})
    if not problems:  # the model outline needs a recipe its task accepts
        problems += memory_problems(recipe, task_cls, resolve_device(recipe["device"]))
    return problems
