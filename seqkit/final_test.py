"""The end of a run: the best checkpoint scored on the splits its task holds back for testing.

Training selects ``checkpoints/best.pt`` on the dev split; the test split is scored once, at the
end, with the recipe's ``decode:`` strategy where the task's evaluation decodes (a translator's
beam search), so the figure a run reports is the one a user of the checkpoint gets. Each split's
metrics go to ``metrics.jsonl`` as a line with ``"split": "test"`` and into the run's result.
"""
from __future__ import annotations

import torch

from seqkit.checkpoint import load_checkpoint
from seqkit.decoding import build_decoder
from seqkit.distributed import decided_by_main
from seqkit.plugin_types import Task
from seqkit.registry import get_registry


def recipe_decoder(task: Task, recipe: dict):
    """The recipe's decode strategy with its options, or None where the task's evaluation takes none."""
    decode = recipe["decode"]
    strategy = decode["strategy"]
    if task.eval_strategy_problem(strategy) is not None:
        return None
    own = get_registry().get("decoder", strategy).options
    return build_decoder(strategy, {k: v for k, v in decode.items() if k in own})


def score_final_splits(trainer) -> dict:
    """``{split: {"checkpoint", "step", "strategy", "options", "metrics", "tables"}}`` for each of
    the task's ``final_splits()``, scored with the best checkpoint's weights (loaded into the
    trainer's model, which has finished training); {} when the task holds none back."""
    task, model, recipe = trainer.task, trainer.model, trainer.recipe
    splits = task.final_splits()
    if not splits:
        return {}
    best = trainer.run_dir / "checkpoints" / "best.pt"
    # every rank scores its share; rank 0 reads the weights, which need not be on the others' disks
    state = decided_by_main(lambda: {key: load_checkpoint(best)[key] for key in ("model", "step")})
    model.load_state_dict(state["model"])
    model.eval()
    decoder = recipe_decoder(task, recipe)
    scored = {}
    for split in splits:
        with torch.no_grad():
            metrics = {k: float(v) for k, v in task.evaluate(model, split, decoder).items()}
        scored[split] = {"checkpoint": str(best), "step": state["step"],
                         **({"strategy": recipe["decode"]["strategy"], "options": decoder.config} if decoder else {}),
                         "metrics": metrics, "tables": task.breakdown(split)}
        trainer._log({"step": trainer.counters.step, "split": split, "checkpoint_step": state["step"], **metrics})
    return scored
