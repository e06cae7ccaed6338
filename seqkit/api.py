"""The Python API: load a trained run, decode and score with it, or train a recipe.

::

    import seqkit

    run = seqkit.load_run("runs/char_lm")                 # or a file of `seqkit export`
    report = run.decode("The ", strategy="beam", beam_size=8, n_best=3, length=40)
    metrics = run.evaluate("dev")["metrics"]
    run = seqkit.train("recipes/char_lm.yaml", overrides={"train.steps": 100})

``Run.decode`` and ``Run.evaluate`` return exactly the objects ``seqkit decode --json`` and
``seqkit eval --json`` print: the commands are thin layers over them. Input problems raise
``seqkit.SeqkitError`` with the CLI's one-line messages, naming the keyword arguments given here
where the CLI names its flags.
"""
from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path

import torch

from seqkit.contracts import DecodeDetails, NonFiniteLogProbs, StepDecoding, Task, breakdown_of
from seqkit.decoding import PYTHON, Naming, check_strategy_options, recipe_decoder
from seqkit.errors import MissingPackage, SeqkitError, SeqkitWarning
from seqkit.recipe import load_yaml, resolve, set_value
from seqkit.registry import get_registry
from seqkit.training.progress import DataProgress
from seqkit.training.run import checkpoint_path, start_run
from seqkit.training.run import load_run as load_parts

# The split a file given to ``evaluate(file=...)`` is held under (``Task.load_split``).
FILE_SPLIT = "file"




class Run:
    """A trained run, loaded for decoding and scoring: ``seqkit.load_run`` builds one.

    ``path`` is what was loaded (a run directory or an exported file), ``checkpoint`` the file
    read, ``recipe`` the resolved recipe, ``task`` the task rebuilt from the checkpoint (its
    vocabulary; no data read), ``model`` the model on its device, in eval mode.
    """

    def __init__(self, path: Path, checkpoint: Path, recipe: dict, task: Task, model: torch.nn.Module):
        self.path, self.checkpoint = path, checkpoint
        self.recipe, self.task, self.model = recipe, task, model

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, task={self.recipe['task']!r}, "
                f"cell={self.recipe['model']['cell']!r}, checkpoint={str(self.checkpoint)!r})")

    @property
    def device(self) -> torch.device:
        return self.task.device

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, inputs: str | list[str] | None = None, strategy: str | None = None, *,
               length: int | None = None, details: bool = False, **options) -> dict:
        """Decode ``inputs`` (a text or a list of texts; None: the recipe's ``decode.prompt``) with
        ``strategy`` (None: the recipe's ``decode.strategy``) and its ``options`` (``beam_size=5``,
        ``temperature=0.8``, ...; unset ones come from the recipe's ``decode:`` section where it
        chose the same strategy). ``length``: tokens to generate, for tasks that generate (None: the
        recipe's ``decode.length``). ``details``: add to every output its ``token_log_probs`` (and
        a translator's ``attention``), for a task with the ``DecodeDetails`` capability. Returns
        what ``seqkit decode --json`` (``--details``) prints."""
        return self.decode_report(inputs, strategy, length, options, details=details)

    def decode_report(self, inputs, strategy: str | None, length: int | None, options: dict,
                      naming: Naming = PYTHON, progress=None, details: bool = False) -> dict:
        """``decode`` with the names the caller's problems and warnings use, and a progress
        callback as ``Decoder.decode`` takes it (the CLI's bar)."""
        if not isinstance(details, bool):
            raise SeqkitError(f"{naming.option('details')}: must be true or false; got {details!r}")
        if details and not isinstance(self.task, DecodeDetails):
            raise SeqkitError(f"{naming.option('details')}: a {self.recipe['task']} run cannot report "
                              f"per-token details (its task has no decode_details method)")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
            raise SeqkitError(f"{naming.option('length')}: must be an integer; got {length!r}")
        if length is not None and length < 1:
            raise SeqkitError(f"{naming.option('length')}: must be >= 1; got {length}")
        texts = self._inputs(inputs, naming)
        recipe_decode = self.recipe.get("decode", {})
        given_strategy = strategy is not None
        strategy = strategy if given_strategy else recipe_decode["strategy"]
        decoder = self.decoder(strategy, options, naming, given_strategy)
        problem = self.task.decode_strategy_problem(strategy)
        if problem:
            where = naming.strategy if given_strategy else "decode.strategy (the run's recipe)"
            raise SeqkitError(f"{where}: '{strategy}' does not apply to this {self.recipe['task']} "
                              f"run: {problem}")
        _, note = self.task.normalize_inputs(texts)
        if note:
            warnings.warn(f"{naming.inputs}: {note}", SeqkitWarning, stacklevel=3)
        self._warn_ineffective(decoder, options, naming)
        try:
            decode = self.task.decode_details if details else self.task.decode
            report = decode(self.model, texts, decoder, length, progress=progress)
        except NonFiniteLogProbs as exc:
            raise SeqkitError(f"{self.checkpoint}: {exc}") from None
        except SeqkitError as exc:
            raise SeqkitError(*map(naming.problem, exc.problems)) from None
        return {"strategy": strategy, "options": decoder.config, **report}

    def decoder(self, strategy: str, options: dict, naming: Naming = PYTHON,
                given_strategy: bool = True):
        """The registered decoder ``strategy`` built from ``options`` over the run's recipe
        ``decode:`` values (where it chose this strategy): the one place a run's decoder is built."""
        check_strategy_options(strategy, options, naming if given_strategy else
                               Naming(naming.option, "decode.strategy (the run's recipe)"))
        return recipe_decoder(self.recipe, strategy, options)

    def _inputs(self, inputs, naming: Naming) -> list[str]:
        if inputs is None:
            prompt = self.recipe.get("decode", {}).get("prompt")
            if not isinstance(prompt, str):
                raise SeqkitError(naming.no_inputs)
            return [prompt]
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts or not all(isinstance(text, str) for text in texts):
            raise SeqkitError(f"{naming.inputs}: expected a text or a non-empty list of texts; got "
                              f"{inputs!r:.80}")
        return texts

    def _warn_ineffective(self, decoder, options: dict, naming: Naming) -> None:
        """Warn about options set to values that change nothing with this run's step model."""
        if not isinstance(self.task, StepDecoding):
            return
        try:
            step_model = self.task.step_model(self.model)
        except SeqkitError:  # a model that decodes without one (a softmax tagger): nothing to check
            return
        for key, why in decoder.ineffective_options(step_model).items():
            where = naming.option(key) if key in options else f"decode.{key} (the run's recipe)"
            warnings.warn(f"{where}: {why}", SeqkitWarning, stacklevel=4)

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, split: str | None = None, *, file: str | Path | None = None,
                 strategy: str | None = None, **options) -> dict:
        """The task's metrics on ``split`` (default ``dev``; ``test`` where the task has one) or on
        ``file`` in the task's format, decoding with ``strategy`` and its ``options`` where the
        task's evaluation decodes. Returns what ``seqkit eval --json`` prints."""
        return self.evaluate_report(split, file, strategy, options)

    def evaluate_report(self, split: str | None, file, strategy: str | None, options: dict,
                        naming: Naming = PYTHON) -> dict:
        """``evaluate``, with the names of the caller's arguments in its problems."""
        task_name = self.recipe["task"]
        if split is not None and file is not None:
            raise SeqkitError(f"{naming.split}: give a split or {naming.file_hint}, not both")
        decoder = None
        if strategy is not None:
            decoder = self.decoder(strategy, options, naming)
            problem = self.task.eval_strategy_problem(strategy)
            if problem:
                raise SeqkitError(f"{naming.strategy}: '{strategy}' does not apply to evaluating a "
                                  f"{task_name} run: {problem}")
        elif options:
            raise SeqkitError(f"{naming.option(next(iter(options)))}: an option of a decoding "
                              f"strategy; give {naming.strategy_hint} too")
        held = self.load_split(split, file, naming)
        with torch.no_grad():
            metrics = {k: float(v) for k, v in self.task.evaluate(self.model, held, decoder).items()}
        return {"run": str(self.path), "task": task_name, "checkpoint": str(self.checkpoint),
                **({"file": str(file)} if file is not None else {"split": held}),
                **({"strategy": strategy, "options": decoder.config} if decoder else {}),
                "metrics": metrics, "tables": breakdown_of(self.task, held)}

    def load_split(self, split: str | None = None, file: str | Path | None = None,
                   naming: Naming = PYTHON) -> str:
        """Read ``split`` (default dev) or ``file`` into the task; the name it is held under."""
        if file is not None:
            self.task.load_split(FILE_SPLIT, Path(file))
            return FILE_SPLIT
        split = split or "dev"
        if split not in self.task.eval_splits:
            raise SeqkitError(f"{naming.split}: a {self.recipe['task']} run holds no split '{split}' (it "
                              f"holds: {', '.join(self.task.eval_splits)}); score a file with "
                              f"{naming.file_hint}")
        try:
            self.task.load_split(split)
        except MissingPackage as exc:  # its own advice may name recipe keys, which change nothing here
            raise SeqkitError(f"{self.path}: reading the {split} split of this {self.recipe['task']} "
                              f"run needs the {exc.package} package, which is not installed: "
                              f"{exc.install}") from None
        return split


def load_run(path: str | Path, *, checkpoint: str | Path = "best", device: str = "auto") -> Run:
    """A trained run: ``path`` is a run directory (``checkpoint`` "best", "last" or a .pt file) or
    a file of ``seqkit export``; ``device`` auto, cpu, cuda, cuda:N or mps."""
    loaded = load_parts(path, checkpoint, device)
    return Run(Path(path), checkpoint_path(path, checkpoint), *loaded)


def train(recipe: str | Path | dict, *, overrides: dict | None = None, output: str | Path | None = None,
          progress: bool = False) -> Run:
    """Train ``recipe`` (a YAML file or a dict) in this process, as ``seqkit run`` does, and return
    the run's best checkpoint, loaded. ``overrides``: dotted keys and values
    (``{"train.steps": 100}``), as ``--set`` gives them; ``output``: the run directory (default:
    the recipe's). ``progress``: a progress bar on a terminal (log lines elsewhere), else silent.
    Problems with the recipe raise ``SeqkitError`` with the CLI's one-line messages."""
    source, resolved = _resolved(recipe, overrides, output)
    start_run(resolved, "bar" if progress else "silent", source=source)
    return load_run(resolved["output"], device=resolved["device"])


def prepare(recipe: str | Path | dict, *, overrides: dict | None = None, progress: bool = False) -> dict:
    """Prepare ``recipe``'s data on disk, as ``seqkit prepare`` does, so that a run starts
    without reading and tokenizing it: the summary ``seqkit prepare --json`` prints (tokens,
    vocabulary, files, megabytes, seconds, whether it was already there). ``progress``: a bar in
    bytes on a terminal."""
    return prepare_resolved(*_resolved(recipe, overrides, None), progress=progress)


def prepare_resolved(source: str, resolved: dict, *, progress: bool = False) -> dict:
    """``prepare`` of a recipe already resolved; ``source`` names it in messages."""
    task = get_registry().get("task", resolved["task"])(resolved, "cpu")
    task.data_progress = DataProgress() if progress and sys.stderr.isatty() else None
    try:
        summary = task.prepare_data()
    finally:
        if task.data_progress is not None:
            task.data_progress.close()
    if summary is None:
        raise SeqkitError(f"{source}: task: {resolved['task']} keeps no prepared data; 'seqkit run' reads it directly")
    return {"recipe": source, "task": resolved["task"], **summary}


def _resolved(recipe: str | Path | dict, overrides: dict | None, output: str | Path | None) -> tuple[str, dict]:
    """(where the recipe came from, the recipe resolved with ``overrides`` and ``output`` set)."""
    if isinstance(recipe, dict):
        source, data = "recipe", copy.deepcopy(recipe)
    else:
        source, data = str(recipe), load_yaml(recipe)
    settings = dict(overrides or {})
    if output is not None:
        settings["output"] = str(output)
    problems = [f"{source}: overrides: {key}: {problem}" for key, value in settings.items()
                if (problem := set_value(data, str(key), value))]
    if problems:
        raise SeqkitError(*problems)
    return source, resolve(data, get_registry(), source)
