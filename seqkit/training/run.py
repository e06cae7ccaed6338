"""Run directories: start a training run, resume one, and load one back for decoding.

A run directory holds ``recipe.yaml`` (resolved), ``metrics.jsonl`` and
``checkpoints/{last,best}.pt``. A run is resumed from ``last.pt``; its ``metrics.jsonl`` is cut
back to that checkpoint's step first, so the file reads as if the run had never stopped.

Under torchrun every process calls ``start_run`` or ``resume_run``: they join the process group
(``seqkit.distributed``), rank 0 alone reads and writes the run directory and hands what it
decided (the recipe, the checkpoint, or the error) to the others. After torchrun restarts a
failed job (``--max-restarts``), ``start_run`` resumes the run from ``last.pt``
(``train.resume: auto``).
"""
from __future__ import annotations

import json
import shlex
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import NamedTuple

import torch

import seqkit.distributed as distributed
from seqkit.atomic import atomic_write, remove_torn_writes
from seqkit.contracts.task import Task
from seqkit.device import flush_denormals, resolve_device
from seqkit.distributed import decided_by_main, is_main
from seqkit.errors import SeqkitError, SeqkitWarning
from seqkit.recipe import apply_overrides, dump_recipe, resolve
from seqkit.registry import get_registry
from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.created_paths import CreatedPaths
from seqkit.training.final_test import score_final_splits
from seqkit.training.loggers import Loggers
from seqkit.training.progress import DataProgress, LogLines, ProgressBar, Silent
from seqkit.training.run_lock import busy, is_training, training_lock
from seqkit.training.trainer import Trainer, TrainResult, checkpoint_world_size, rank_state_of


class LoadedRun(NamedTuple):
    recipe: dict  # the resolved recipe stored in the checkpoint
    task: Task  # rebuilt from the checkpoint (vocabulary etc.), without reading data
    model: torch.nn.Module  # on the device, in eval mode


def make_display(mode: str, total: int, start: int = 0):
    """``mode``: "bar", "log" (--quiet) or "silent"; ranks other than 0 are always silent.

    A bar needs a terminal: into a log file or a CI pipe it would show nothing until the end,
    so there it falls back to log lines.
    """
    if not is_main() or mode == "silent":
        return Silent(total, start)
    if mode == "log" or not sys.stderr.isatty():
        return LogLines(total, start)
    return ProgressBar(total, start)


def _task(recipe: dict, device: torch.device) -> Task:
    return get_registry().get("task", recipe["task"])(recipe, device)


def _train(recipe: dict, run_dir: Path, display_mode: str, checkpoint: dict | None) -> TrainResult:
    device = distributed.device_for_rank(resolve_device(recipe["device"]))
    flush_denormals(device)
    rank, world = distributed.placement()
    torch.manual_seed(recipe["seed"])  # the same model on every rank
    task = _task(recipe, device)
    task.rank, task.world_size = rank, world
    shows_bar = is_main() and display_mode == "bar" and sys.stderr.isatty()
    task.data_progress = DataProgress() if shows_bar else None
    try:
        task.prepare()
    finally:
        if task.data_progress is not None:
            task.data_progress.close()
    if checkpoint is not None:
        own = rank_state_of(checkpoint, rank, world)
        task_state = checkpoint["task"] if own is None else own["task"]
        problems = task.check_resume(task_state)
        if problems:
            raise SeqkitError(*(f"{run_dir}: {problem}" for problem in problems))
        task.load_state_dict(task_state)
    model = task.build_model().to(device)
    if rank:  # dropout and sampling draw other numbers on every rank (rank 0: one process's)
        torch.manual_seed((recipe["seed"] * 1_000_003 + rank) % 2**63)
    start = checkpoint["step"] if checkpoint else 0
    with training_lock(run_dir) if is_main() else nullcontext():
        loggers = Loggers.open(recipe["train"]["loggers"] if is_main() else [], run_dir, recipe, start)
        display = make_display(display_mode, recipe["train"]["steps"], start)
        try:
            trainer = Trainer(recipe, task, model, run_dir, display, device, loggers)
            if checkpoint is not None:
                trainer.load_state_dict(checkpoint)
            result = trainer.fit()
            result.test = score_final_splits(trainer)  # on every rank: each scores its share
            # the run ended as planned (a signal or a crash leaves no such line: `seqkit runs`)
            trainer._log({"step": result.step, "split": "end", "stopped": result.stopped})
            return result
        finally:
            display.close()
            loggers.close()


def start_run(recipe: dict, display: str = "bar", source: str | None = None) -> TrainResult:
    """Train a resolved recipe from scratch into ``recipe['output']``.

    Input errors raised while the run prepares or trains name ``source``, the recipe file, as
    validation's do. A run that fails before it has logged or saved anything removes what it
    created, and nothing that was in its folder before. After a torchrun restart, with
    ``train.resume: auto``, a folder that holds a checkpoint is resumed instead.
    """
    with distributed.process_group():
        try:
            _check_world_size(recipe)
        except SeqkitError as exc:
            raise _named(exc, source) from None
        run_dir = Path(recipe["output"])
        if decided_by_main(lambda: _resumes_after_restart(run_dir, recipe)):
            return _resume(run_dir, recipe, (), False, display, restarted=True)
        created = CreatedPaths(run_dir) if is_main() else None
        try:
            decided_by_main(lambda: _create(run_dir, recipe))
            return _train(recipe, run_dir, display, None)
        except BaseException as exc:
            if is_main() and not _has_trained(run_dir):
                created.remove()
            if isinstance(exc, SeqkitError):
                raise _named(exc, source) from exc
            raise


def _named(exc: SeqkitError, source: str | None) -> SeqkitError:
    """``exc`` with each problem naming ``source`` (the recipe file) first."""
    if not source:
        return exc
    return SeqkitError(*(p if p.startswith(f"{source}: ") else f"{source}: {p}" for p in exc.problems))


def _check_world_size(recipe: dict) -> None:
    """``train.batch_size`` is the global batch: every rank takes an equal share of it."""
    _, world = distributed.placement()
    batch = recipe["train"]["batch_size"]
    if batch % world:
        raise SeqkitError(f"train.batch_size: {batch} is the batch of all {world} processes together "
                          f"and must divide by {world}; use a multiple of {world}")


def _resumes_after_restart(run_dir: Path, recipe: dict) -> bool:
    """Does ``run_dir`` already hold a run that this start continues (torchrun restarted the
    job, ``train.resume: auto``)? Otherwise a run there is refused."""
    if not (run_dir / "checkpoints" / "last.pt").exists():
        return False
    if recipe["train"]["resume"] == "auto" and distributed.restart_count() > 0:
        return True
    raise SeqkitError(f"{run_dir}: already holds a run; continue it with "
                      f"'seqkit run --resume {run_dir}', or pick another folder with "
                      f"--set output=DIR")


def _create(run_dir: Path, recipe: dict) -> None:
    try:  # validation refuses a file in the way; a folder made since, or not writable, fails here
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeqkitError(f"output: cannot make the run folder {run_dir}: {exc.strerror or exc}; "
                          f"name another folder, e.g. --set output=runs/NAME") from None
    atomic_write(run_dir / "recipe.yaml", dump_recipe(recipe))
    atomic_write(run_dir / "metrics.jsonl", "")


def _has_trained(run_dir: Path) -> bool:
    """Has the run logged a line or saved a checkpoint? Then its folder is kept, whatever happens."""
    metrics = run_dir / "metrics.jsonl"
    return (run_dir / "checkpoints" / "last.pt").exists() or (
        metrics.exists() and metrics.stat().st_size > 0)


def recipe_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'key.path: old -> new' for every leaf that differs."""
    lines = []
    for key in sorted(set(old) | set(new), key=str):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            lines += recipe_diff(a, b, name + ".")
        elif a != b:
            lines.append(f"{name}: {a!r} -> {b!r}")
    return lines


def resume_run(run_dir: str | Path, recipe: dict | None = None, overrides=(), force: bool = False,
               display: str = "bar") -> TrainResult:
    """Continue ``run_dir`` from ``checkpoints/last.pt``.

    ``recipe`` (resolved) or ``overrides`` that change the stored recipe are refused, naming
    the keys, unless ``force``; so is another number of processes than the run trained on.
    ``output`` is ignored: the run continues where it is.
    """
    with distributed.process_group():
        return _resume(Path(run_dir), recipe, overrides, force, display)


def _resume(run_dir: Path, recipe: dict | None, overrides, force: bool, display: str,
            restarted: bool = False) -> TrainResult:
    wanted, checkpoint = decided_by_main(lambda: _prepare_resume(run_dir, recipe, overrides, force))
    if restarted and is_main():
        print(f"seqkit: torchrun restarted the job (restart {distributed.restart_count()}): resuming "
              f"{run_dir} from step {checkpoint['step']}", file=sys.stderr, flush=True)
    return _train(wanted, run_dir, display, checkpoint)


def _prepare_resume(run_dir: Path, recipe: dict | None, overrides, force: bool) -> tuple[dict, dict]:
    """On rank 0: check the run can continue as asked, cut its metrics back to the checkpoint's
    step, and return (the recipe to train with, the checkpoint)."""
    if not run_dir.is_dir():
        raise SeqkitError(f"{run_dir}: no such run directory")
    if is_training(run_dir):  # before its metrics are cut back under the running process
        raise SeqkitError(busy(run_dir))
    path = run_dir / "checkpoints" / "last.pt"  # written atomically, so always complete
    if not path.exists():
        raise SeqkitError(f"{path}: no checkpoint to resume from (the run stopped before its "
                          f"first evaluation); start it again without --resume")
    checkpoint = checked_checkpoint(load_checkpoint(path), path)
    stored = checkpoint["recipe"]
    wanted = dict(recipe) if recipe is not None else json.loads(json.dumps(stored))
    if overrides:
        problems = apply_overrides(wanted, overrides)
        if problems:
            raise SeqkitError(*(f"{run_dir}: {p}" for p in problems))
        wanted = resolve(wanted, get_registry(), f"{run_dir}/recipe.yaml")
    wanted["output"] = str(run_dir)
    differences = recipe_diff({**stored, "output": str(run_dir)}, wanted)
    if differences and not force:
        raise SeqkitError(*(f"{run_dir}: recipe differs from the run's: {d}" for d in differences),
                          f"{run_dir}: resume with the run's own recipe, or add --force to continue "
                          f"with the new values")
    _check_time_left(run_dir, checkpoint, wanted["train"])
    _check_world_size(wanted)
    _check_same_world(run_dir, checkpoint, force)
    atomic_write(run_dir / "recipe.yaml", dump_recipe(wanted))
    _truncate_metrics(run_dir / "metrics.jsonl", checkpoint["step"])
    remove_torn_writes(run_dir)
    remove_torn_writes(run_dir / "checkpoints")
    return wanted, checkpoint


def _check_same_world(run_dir: Path, checkpoint: dict, force: bool) -> None:
    """A run continues exactly only on as many processes as it trained on: each holds its own
    random streams and carried state. ``force`` continues anyway, with fresh ones."""
    trained, now = checkpoint_world_size(checkpoint), distributed.placement()[1]
    if trained == now:
        return
    if not force:
        raise SeqkitError(f"{run_dir}: trained on {trained} process(es), resumed on {now}; resume it "
                          f"on {trained} (torchrun --nproc-per-node ...), or add --force to go on "
                          f"with {now}, which does not continue exactly")
    warnings.warn(f"{run_dir}: trained on {trained} process(es), going on with {now}: each starts "
                  f"with fresh random streams and carried state, so the run does not continue "
                  f"exactly", SeqkitWarning)


def _check_time_left(run_dir: Path, checkpoint: dict, train: dict) -> None:
    """``train.time_limit`` bounds the whole run's training time, as ``train.steps`` bounds its
    length: a run stopped early (Ctrl-C, a crash) resumes with the time it has left, and one
    that used it all is refused up front instead of training one more step each time."""
    limit, used = train["time_limit"], checkpoint.get("trainer", {}).get("elapsed", 0.0)
    step = checkpoint["step"]
    if limit and used >= limit and step < train["steps"]:
        raise SeqkitError(f"{run_dir}: train.time_limit: the run used its {limit:g} s at step {step} "
                          f"of {train['steps']}; to train on, raise it: seqkit run --resume "
                          f"{shlex.quote(str(run_dir))} --set train.time_limit={2 * limit:g} --force "
                          f"(0: no limit)")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint's step: they will be logged again. So are the
    end-of-run scores of held-out splits (``seqkit.training.final_test``), logged after the last checkpoint."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
            if record["step"] < step or (record["step"] == step and record.get("split") in ("train", "val")):
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            break  # a line torn by the kill: everything after it is newer anyway
    atomic_write(path, "".join(line + "\n" for line in kept))


_REQUIRED = ("step", "recipe", "model", "task")


def checked_checkpoint(state: dict, path: Path) -> dict:
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise SeqkitError(f"{path}: checkpoint lacks {', '.join(missing)}; it was not written by "
                          f"'seqkit run'")
    if not isinstance(state["recipe"], dict) or not isinstance(state["recipe"].get("task"), str):
        raise SeqkitError(f"{path}: checkpoint holds no valid recipe")
    return state


def checkpoint_path(run_dir: str | Path, checkpoint: str | Path = "best") -> Path:
    """The file ``load_run`` reads: ``checkpoint`` "best" or "last" of ``run_dir``, or a path;
    ``run_dir`` may itself be a file (``seqkit export``'s), read whatever ``checkpoint`` says."""
    run_dir = Path(run_dir)
    if checkpoint not in ("best", "last"):
        return Path(checkpoint)
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise SeqkitError(f"{run_dir}: no such run directory")
    return run_dir / "checkpoints" / f"{checkpoint}.pt"


def load_run(run_dir: str | Path, checkpoint: str | Path = "best", device=None) -> LoadedRun:
    """The recipe, task and model (eval mode) of a trained run, for decoding.

    ``checkpoint`` is "best", "last" or a path to a .pt file; ``run_dir`` may be a file too
    (an exported model). ``device`` defaults to ``auto``.
    Missing, corrupt or hostile files raise a one-line ``SeqkitError`` naming the file.
    """
    path = checkpoint_path(run_dir, checkpoint)
    state = checked_checkpoint(load_checkpoint(path), path)
    recipe = state["recipe"]
    device = resolve_device(device or "auto")
    flush_denormals(device)
    task = _task(recipe, device)
    try:
        task.load_state_dict(state["task"])
        model = task.build_model()
        model.load_state_dict(state["model"])
    except SeqkitError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SeqkitError(f"{path}: checkpoint does not match its recipe's task and model: {first}") from None
    return LoadedRun(recipe, task, model.to(device).eval())
