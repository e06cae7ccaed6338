"""The base class of tasks: data, model, loss, metrics and decoding for one kind of problem.

What a task may add beyond this life cycle (a search report, a gradient probe, per-class tables,
its own display of decoded outputs, step-by-step decoding) are the small protocols of
``seqkit.contracts.capabilities``, which a task opts into by defining their methods.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqkit.errors import SeqkitError
from seqkit.options import Option


class Task(ABC):
    """Owns data, model assembly, loss and metrics for one kind of problem.

    ``options`` maps a recipe section (``data``, ``model``, ``train``, ``decode``) to the extra
    keys this task adds to it. If ``options["data"]`` has a ``dataset`` key, the chosen dataset
    plugin's own options are merged into ``data:`` and validated too.

    The generic trainer (``seqkit.training.trainer``) drives a task through this life cycle::

        TaskClass.check(recipe)                 # validation: rules across keys, and the model's
        TaskClass.model_outline(recipe)         #   size, counted on the meta device
        task = TaskClass(recipe, device)        # recipe: resolved (defaults filled in)
        task.prepare()                          # read data, build vocabulary, put tokens on device
        #   ... when resuming, the data just read must fit the checkpoint's state:
        problems = task.check_resume(checkpoint["task"])   # [] or refused, naming each problem
        #   ... or, when rebuilding from a checkpoint without rereading data:
        task.load_state_dict(checkpoint["task"])
        model = task.build_model().to(device)
        for step in range(start, steps):
            batch = task.train_batch(step)      # a pure function of ``step`` (plus saved state)
            loss, tokens = task.loss(model, batch)
        metrics = task.evaluate(model)          # {"loss": ..., more metrics} on the dev split
        checkpoint["task"] = task.state_dict()  # vocabulary, carried state: tensors and plain types

    ``seqkit eval`` rebuilds the task from a checkpoint (``load_state_dict``, no ``prepare()``) and
    reads only the split it scores, through the same ``evaluate``::

        task.load_split("dev")                  # or "test"; or ("file", path): a labelled file
        metrics = task.evaluate(model, "dev", decoder)   # decoder: None, or a strategy the task
                                                         # accepts (``eval_strategy_problem``)

    The trainer logs the training loss as a mean per token (each step's mean weighted by its
    ``tokens``) and keeps the checkpoint whose evaluation is best by ``best_metric``.

    Batches must be index arithmetic on tensors already on the device, never a Python loop
    over samples. ``train_batch(step)`` depends only on ``step``, the seed and ``state_dict()``,
    so a resumed run reads exactly the batches an uninterrupted run would have read.

    **Several processes** (torchrun). Before ``prepare()`` the core sets ``task.rank`` and
    ``task.world_size`` (0 and 1 for one process). ``train.batch_size`` stays the batch of the
    whole step, and the task answers one question: which part of it is this rank's. Every rank
    runs ``train_batch(step)`` for every step and gets its own share, by index arithmetic, so
    that the shares of all ranks together are exactly the batch one process would take (a
    carried state then belongs to the rank that reads its stream); the trainer weighs each rank's
    mean by its ``tokens``, so N processes take the step of one. A share may be empty (a batch of
    fewer sentences than ranks): ``loss`` then still runs the model on some input and returns its
    loss with 0 tokens, so that this rank's backward, which DistributedDataParallel waits for,
    touches the same parameters (the trainer weighs it by zero). ``evaluate`` scores this rank's
    share of the split and adds its sums (loss × tokens, tokens, error counts) over the ranks
    with ``seqkit.distributed.all_reduce_sum`` before computing metrics, so that every rank
    returns the metrics one process would. ``state_dict()`` is saved per rank and given back to
    the same rank on resume. A task that ignores ``rank`` still trains correctly, each rank
    repeating the whole batch. ``seqkit eval`` and ``seqkit decode`` run one process.
    """

    options: dict[str, dict[str, Option]] = {}
    # (metric of ``evaluate``, "min" or "max"): the evaluation that ``checkpoints/best.pt`` keeps
    # and ``train.patience`` waits to improve; a tagger may keep the highest F1 instead.
    best_metric: tuple[str, str] = ("loss", "min")
    # The named splits ``evaluate`` scores; "dev" is the one the trainer validates on (its lines
    # in metrics.jsonl say "val"). A task with a test split adds "test".
    eval_splits: tuple[str, ...] = ("dev",)
    # This process's rank among ``world_size`` data-parallel processes, set by the core before
    # ``prepare()``: ``train_batch`` and ``evaluate`` take this rank's share (see above).
    rank: int = 0
    world_size: int = 1
    # Set by the core before ``prepare()`` / ``prepare_data()``: called as ``(stage, done, total)``
    # with bytes of text while data is prepared, so that a command can draw a progress bar (total
    # 0 while it is unknown); None when nothing is shown.
    data_progress: Callable[[str, int, int], None] | None = None

    # -- validation (``seqkit validate`` and ``seqkit run``, before any data is read) --------
    @classmethod
    def check(cls, recipe: dict) -> list[str]:
        """Rules that span keys, as problems ``"key.path: message"``; [] when the recipe is fine.

        ``recipe`` is resolved: every key has passed its own ``Option`` and defaults are filled
        in. A key whose default depends on another key is declared with default ``None`` and
        filled in here.
        """
        return []

    @classmethod
    def model_outline(cls, recipe: dict) -> nn.Module | None:
        """The model ``build_model`` would make for ``recipe``, from the recipe alone (what only the
        data tells, such as a vocabulary's size, estimated). seqkit builds it on the ``meta``
        device, where no memory is allocated, to check that training fits in memory before a
        run starts. None: no such check."""
        return None

    def __init__(self, recipe: dict, device: torch.device | str = "cpu"):
        self.recipe = recipe
        self.device = torch.device(device)

    # -- data ------------------------------------------------------------------------------
    @abstractmethod
    def prepare(self) -> None:
        """Read the data, build whatever the model needs (a vocabulary) and hold tensors on the device."""

    def prepare_data(self) -> dict | None:
        """Prepare the data on disk ahead of training (``seqkit prepare``), without building a
        model: a summary such as ``{"tokens": ..., "vocabulary": ..., "seconds": ..., "reused": ...}``.
        None: this task keeps nothing prepared."""
        return None

    @abstractmethod
    def train_batch(self, step: int) -> Any:
        """This rank's share of the batch of optimizer step ``step`` (0-based): with one process,
        the whole batch."""

    # -- model, loss, metrics --------------------------------------------------------------
    @abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh model for this task (on the CPU; the trainer moves it)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        """(mean loss over the batch's predicted tokens as a 0-dim tensor, number of those tokens).
        For an empty share (several processes): a loss computed by the model, and 0 tokens."""

    def load_split(self, split: str, path: str | Path | None = None) -> None:
        """Read what ``evaluate(model, split)`` needs into a task rebuilt by ``load_state_dict``,
        without the training data: the recipe's ``split`` (one of ``eval_splits``), or with
        ``path`` that labelled file in the task's own input format, held under the name
        ``split``. Problems with the file are one-line ``SeqkitError``s naming it."""
        raise SeqkitError(f"task {type(self).__name__} cannot read one split on its own")

    @abstractmethod
    def evaluate(self, model: nn.Module, split: str = "dev", decoder=None) -> dict[str, float]:
        """Metrics on ``split`` ("dev" after ``prepare()``; any split ``load_split`` read). They
        must include ``loss`` (the trainer stops a run whose loss diverges) and the
        ``best_metric``. With several processes, each scores its share and the sums are added
        over the ranks (see the class docstring). ``decoder``: a built ``seqkit.Decoder`` that
        ``eval_strategy_problem`` accepted, for a task whose outputs are decoded; None: the
        task's own choice (the trainer passes none).

        Called under ``torch.no_grad()`` with the model in eval mode.
        """

    def final_splits(self) -> tuple[str, ...]:
        """Splits ``prepare()`` read that the run scores once, at its end, with the best checkpoint
        and the recipe's decode strategy (``seqkit.training.final_test``): a held-out test split; () for none."""
        return ()

    def eval_strategy_problem(self, strategy: str) -> str | None:
        """Why the decoding ``strategy`` cannot be used to evaluate this run, in a few words, or
        None when ``evaluate(..., decoder=...)`` accepts it."""
        return "its evaluation decodes nothing, so no strategy applies"

    def sample(self, model: nn.Module) -> str | None:
        """Text shown at the end of a run (a generated sample), or None for nothing."""
        return None

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What a checkpoint must hold to rebuild this task without data: tensors and plain types only."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output; enough to build the model and decode. On resume it is
        called after ``prepare()`` with the (possibly changed, ``--force``) recipe: drop carried
        state that no longer fits it."""

    def check_resume(self, stored: dict) -> list[str]:
        """Problems that forbid resuming from ``stored`` (a checkpoint's ``state_dict()``) with the
        data ``prepare()`` has just read, such as a vocabulary that differs; [] when it fits."""
        return []

    # -- decoding (``seqkit decode``) --------------------------------------------------------
    def decode_strategy_problem(self, strategy: str) -> str | None:
        """Why ``seqkit decode`` cannot use the decoding ``strategy`` for this run, in a few
        words, or None when it can."""
        return None

    def normalize_inputs(self, inputs: list[str]) -> tuple[list[str], str | None]:
        """Each input as the model reads it (what outputs are shown after), and one line on what
        reading changed that the user did not ask for (characters it cannot represent), or None."""
        return list(inputs), None

    def decode(self, model: nn.Module, inputs: list[str], decoder, length: int | None = None,
               progress=None) -> dict:
        """What ``seqkit decode`` reports for ``inputs``, as JSON-able data with one entry per input
        under ``"results"`` (``input``, ``normalized_input``, ``outputs``: an empty input gets no
        outputs). ``decoder`` is a built ``seqkit.Decoder`` that ``decode_strategy_problem``
        accepted; ``length`` the tokens to write where the task generates (None: the recipe's
        ``decode.length``); ``progress`` as ``Decoder.decode`` takes it. A task whose outputs
        continue its inputs gets this from ``seqkit.decoding.Continuation``."""
        raise SeqkitError(f"task {type(self).__name__} does not decode")
