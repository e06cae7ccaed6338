"""The end of a run: the best checkpoint scored on the splits its task holds back for testing.

Training selects ``checkpoints/best.pt`` on the dev split; the test split is scored once, at the
end, with the recipe's ``decode:`` strategy where the task's evaluation decodes (a translator's
beam search), so the figure a run reports is the one a user of the checkpoint gets. Each split's
metrics go to ``metrics.jsonl`` as a line with ``"split": "test"`` and into the run's result.
"""
from __future__ import annotations

import torch

from seqkit.contracts import Task, breakdown_of
from seqkit.decoding import recipe_decoder
from seqkit.distributed import decided_by_main
from seqkit.training.checkpoint import load_checkpoint


def _test_decoder(task: Task, recipe: dict):
    """The recipe's decoder, or None where the task's evaluation decodes nothing."""
    if task.eval_strategy_problem(recipe["decode"]["strategy"]) is not None:
        return None
    return recipe_decoder(recipe)


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
    decoder = _test_decoder(task, recipe)
    scored = {}
    for split in splits:
        with torch.no_grad():
            metrics = {k: float(v) for k, v in task.evaluate(model, split, decoder).items()}
        scored[split] = {"checkpoint": str(best), "step": state["step"],
                         **({"strategy": recipe["decode"]["strategy"], "options": decoder.config} if decoder else {}),
                         "metrics": metrics, "tables": breakdown_of(task, split)}
        trainer._log({"step": trainer.counters.step, "split": split, "checkpoint_step": state["step"], **metrics})
    return scored
