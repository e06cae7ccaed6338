"""Two processes with a global batch of B take the steps one process takes with B: the same
parameters after training and the same logged losses and validation metrics, to float rounding."""
from __future__ import annotations

from seqkit.run import start_run

from _ddp import assert_same_training, train_on_ranks
from _tagging_runs import tagging_recipe
from _tiny_runs import tiny_recipe

NO_DROPOUT = ("model.dropout=0", "train.steps=8")


def test_two_processes_train_every_task_as_one_does(tmp_path):
    recipes = {
        # streams carried across windows: each rank carries its own half of them
        "char_streams": lambda out: tiny_recipe(out, *NO_DROPOUT),
        # random windows, scoring only the last character
        "char_random": lambda out: tiny_recipe(out, *NO_DROPOUT, "train.sampling=random",
                                              "train.carry_state=false", "train.loss_on=last",
                                              "data.eval_windows=51"),
        # batches of one long sentence leave a rank an empty share; word dropout drawn per step
        "tagging": lambda out: tagging_recipe(tmp_path, out, "train.batch_tokens=12",
                                              "train.word_dropout=0.3", "train.steps=10"),
        "tagging_crf_chars": lambda out: tagging_recipe(tmp_path, out, "model.output=crf",
                                                        "model.char_features=4", "train.steps=6"),
    }
    train_on_ranks([make(tmp_path / "two" / name) for name, make in recipes.items()])
    for name, make in recipes.items():
        start_run(make(tmp_path / "one" / name), display="silent")
        assert_same_training(tmp_path / "two" / name, tmp_path / "one" / name)
