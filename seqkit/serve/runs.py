"""What ``GET /v1/runs`` says of each run served, and ``GET /v1/runs/{name}/metrics``.

A run is served under its folder's name (an exported file: its file name without the suffix); the
names are the only way to a run, never a path.
"""
from __future__ import annotations

import json
from pathlib import Path

from seqkit.api import Run
from seqkit.contracts import StepDecoding
from seqkit.decoding import strategy_values
from seqkit.errors import SeqkitError
from seqkit.options import type_label
from seqkit.registry import get_registry
from seqkit.serve.limits import Limits


def run_name(path: str | Path) -> str:
    """The name a run is served under: its folder's name, or an exported file's name without the suffix."""
    path = Path(path)
    return path.stem if path.is_file() else path.resolve().name


def describe(name: str, run: Run, limits: Limits) -> dict:
    """One entry of ``GET /v1/runs``."""
    return {"name": name, "task": run.recipe["task"], "cell": run.recipe["model"]["cell"],
            "vocab_size": vocab_size(run), "path": str(run.path), "checkpoint": str(run.checkpoint),
            "strategies": strategies(run, limits), "limits": limits.as_dict(), "recipe": run.recipe}


def vocab_size(run: Run) -> int | None:
    """The size of the vocabulary the run writes (its step model's), or None for a task that does
    not decode token by token (a softmax tagger)."""
    if not isinstance(run.task, StepDecoding):
        return None
    try:
        return int(run.task.step_model(run.model).vocab_size)
    except SeqkitError:  # a model that decodes without one
        return None


def strategies(run: Run, limits: Limits) -> dict:
    """The registered strategies that apply to the run (``Task.decode_strategy_problem``), each with
    its first line of help and its options: type, default (the run's recipe ``decode:`` value
    where it chose that strategy, else the decoder's; a default over the server's cap is the cap,
    as decoding uses it), help, choices, range, and the cap."""
    registry = get_registry()
    recipe_decode = run.recipe.get("decode", {})
    found = {}
    for strategy in registry.names("decoder"):
        if run.task.decode_strategy_problem(strategy):
            continue
        decoder = registry.get("decoder", strategy)
        defaults = strategy_values(strategy, {}, recipe_decode)
        options = {}
        for key, option in getattr(decoder, "options", {}).items():
            default, cap = defaults.get(key, option.default), limits.option_cap(key)
            if cap is not None and isinstance(default, int | float) and default > cap:
                default = cap
            options[key] = {"type": type_label(option.types()), "default": default, "help": option.help,
                            "choices": list(option.choices) if option.choices is not None else None,
                            "min": option.min, "max": option.max, "cap": cap}
        doc = (decoder.__doc__ or "").strip()
        found[strategy] = {"help": doc.split("\n\n")[0].replace("\n", " ") if doc else "", "options": options}
    return found


def metrics(run: Run) -> list[dict]:
    """Every line of the run's metrics.jsonl, as objects ([] for an exported file); a line being
    written (a run still training) is left out."""
    path = Path(run.path) / "metrics.jsonl"
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found
