"""The ``translation`` task as recipes/g2p.yaml sets it up (CMU dictionary, stress stripped), with
the model sizes and batch size a benchmark asks for: what both sides of benchmarks/translation.py
train on and decode."""
from __future__ import annotations

from pathlib import Path

import yaml

from seqkit.plugins.tasks.translation.task import Translation
from seqkit.recipe import resolve
from seqkit.registry import get_registry

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "g2p.yaml"


def g2p_task(size: dict, run_dir: Path) -> Translation:
    """A prepared task: ``size`` gives the hidden units per encoder direction, the encoder layers,
    the decoder's hidden units (one layer), the embeddings and the words per batch. Label smoothing
    is off, so that the loss is the plain cross-entropy a hand-written model computes; input feeding
    is on, as the issue's hand-written model has it (the recipe turns it off for speed)."""
    recipe = yaml.safe_load(RECIPE.read_text())
    recipe.update(device="cpu", output=str(run_dir))
    model = recipe["model"]
    model.update(hidden_size=size["hidden"], layers=size["layers"], input_feeding=True)
    model["encoder"]["embedding_size"] = model["decoder"]["embedding_size"] = size["embedding"]
    model["decoder"].update(hidden_size=size["decoder_hidden"], layers=1)
    recipe["train"].update(batch_size=size["batch"], label_smoothing=0.0)
    task = Translation(resolve(recipe, get_registry()))
    task.prepare()
    return task
