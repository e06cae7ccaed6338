"""Checkpoints: written atomically, read only through ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors and Python primitives, written with
``seqkit.atomic.atomic_write``: a kill at any moment leaves either the previous checkpoint or
the new one, never a torn file.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
import yaml

from seqkit.atomic import atomic_write
from seqkit.errors import SeqkitError

FORMAT = "seqkit-checkpoint/1"


def save_checkpoint(state: dict, path: str | Path) -> None:
    atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint's dict, or a one-line ``SeqkitError`` naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise SeqkitError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a torn or foreign file fails in many ways inside the unpickler
        lines = str(exc).strip().splitlines() or [""]
        needs_code = next((line.strip() for line in lines if "GLOBAL" in line.upper()), None)
        if isinstance(exc, pickle.UnpicklingError) and needs_code:
            # weights_only refuses any pickle that would import or call arbitrary code
            raise SeqkitError(f"{path}: refused: this file needs arbitrary code to unpickle, which "
                              f"seqkit never runs; it is not a seqkit checkpoint ({needs_code})") from None
        recipe = _recipe_in(path)
        if recipe is not None:
            output = recipe.get("output") or f"runs/{recipe['task']}"
            raise SeqkitError(f"{path}: is a recipe, not a trained run; train it with 'seqkit run "
                              f"{path}', then use its run folder ({output})") from None
        raise SeqkitError(f"{path}: not a readable checkpoint (corrupt or truncated): "
                          f"{type(exc).__name__}: {lines[0].split('. ')[0]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SeqkitError(f"{path}: not a seqkit checkpoint (expected format {FORMAT})")
    return state


def _recipe_in(path: Path) -> dict | None:
    """The recipe ``path`` holds, when a user gave a recipe where a run belongs; else None."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(1 << 20).decode("utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("task"), str) else None
