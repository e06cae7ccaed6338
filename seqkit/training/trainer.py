"""The one generic training loop: any task, any model, resumable to the exact same numbers.

Each optimizer step asks the task for the batch of that step and its loss; every
``eval_every`` steps it evaluates, appends to metrics.jsonl and writes checkpoints. SIGINT
(Ctrl-C) or SIGTERM lets the current step finish, checkpoints it and stops. Everything
that decides the next step (weights, optimizer, schedule, RNG states, the task's carried
state, running sums) is in the checkpoint, so a resumed run continues bit for bit on CPU
with one torch thread (OMP_NUM_THREADS=1; the tests check this exactly) and the same kernels
(SEQKIT_KERNEL: each process measures its own choice, seqkit.nn.kernels). With several threads
the bits depend on the thread count (a reduction is split per thread), and oneDNN's and MKL's
multi-threaded kernels do not promise the same summation order in every process, so two
identical runs, resumed or not, may agree only to float rounding: a relative 1e-5 in the loss
after 100 steps was reported on a loaded 2-core machine.

With several processes (torchrun; ``seqkit.distributed``) the model is wrapped in
DistributedDataParallel and each process trains on its share of every step's batch (the
task's ``train_batch`` gives it). Each step's loss is the sum of every rank's token losses over
the global token count, so N processes with shares of a batch of B take the step one process
takes on the whole batch. What decides the next step (a stop signal, the time limit, the
logged loss, the validation metrics) is reduced over every rank, so all take the same decision
and none waits forever in a collective; a peer that dies or hangs past the timeout ends the
run with one line. Checkpoints hold each rank's RNG states and task state (its carried state).
"""
from __future__ import annotations

import json
import math
import shlex
import signal
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

import seqkit.distributed as distributed
from seqkit.contracts import Task, breakdown_of
from seqkit.distributed import is_main
from seqkit.errors import RunInterrupted, SeqkitError, SeqkitWarning
from seqkit.plugin_errors import describe_failure
from seqkit.training.checkpoint import save_checkpoint
from seqkit.training.free_cores import FollowFreeCores
from seqkit.training.loggers import Loggers
from seqkit.training.progress import format_metric
from seqkit.training.schedule import budget_fraction, lr_factor
from seqkit.training.stop_signals import StopSignals

# A loss this many times the untrained model's means the run diverged (see Trainer._check_loss).
DIVERGENCE_FACTOR = 100


def build_optimizer(params, train: dict) -> torch.optim.Optimizer:
    name, lr, decay = train["optimizer"], train["lr"], train["weight_decay"]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    return torch.optim.SGD(params, lr=lr, momentum=train["momentum"], weight_decay=decay)


def _best_metric(task: Task, name: str) -> tuple[str, str]:
    """The task's ``best_metric`` (metric, "min" or "max"), checked once before training."""
    best = getattr(task, "best_metric", None)
    if (not isinstance(best, tuple) or len(best) != 2 or not isinstance(best[0], str)
            or best[1] not in ("min", "max")):
        raise SeqkitError(f"task '{name}': best_metric must be (metric name, 'min' or 'max'); "
                          f"got {best!r}")
    return best


def _better(value: float, best: float | None, mode: str) -> bool:
    """Does ``value`` beat ``best`` (None: nothing to beat yet; a NaN never wins)?"""
    if math.isnan(value):
        return False
    return best is None or (value < best if mode == "min" else value > best)


@dataclass
class TrainResult:
    step: int
    stopped: str  # "finished", "patience" or "time_limit"
    final: dict  # validation metrics at the last step
    best: dict  # {"step": ..., **metrics} of the best evaluation by ``best_metric``
    sample: str | None = None
    elapsed: float = 0.0
    best_metric: tuple[str, str] = ("loss", "min")  # the task's: (metric, "min" or "max")
    tables: dict = field(default_factory=dict)  # the task's breakdown of the last evaluation
    test: dict = field(default_factory=dict)  # split -> the best checkpoint's scores (seqkit.training.final_test)


@dataclass
class _Counters:
    """Trainer state that is not in the model or optimizer; saved in every checkpoint."""

    step: int = 0
    elapsed: float = 0.0
    best_step: int = -1
    best_metrics: dict = field(default_factory=dict)  # all metrics of the best evaluation
    bad_evals: int = 0
    initial_loss: float | None = None  # the loss of the first step, before any update


class Trainer:
    """Train ``model`` for ``task`` as the resolved ``recipe['train']`` says, writing to ``run_dir``.

    Only rank 0 (``seqkit.distributed.is_main``) writes files; ``display`` is a
    ``seqkit.training.progress`` object (bar, log lines or silent).
    """

    # What measures training time (train.time_limit, schedule_by: time); tests put a fake one here.
    clock = staticmethod(time.perf_counter)

    def __init__(self, recipe: dict, task: Task, model: torch.nn.Module, run_dir: str | Path,
                 display, device: torch.device, loggers: Loggers | None = None):
        self.recipe, self.train = recipe, recipe["train"]
        self.loggers = loggers or Loggers({})  # the recipe's train.loggers (rank 0's)
        self.task, self.model, self.device = task, model, device
        self.run_dir = Path(run_dir)
        self.display = display
        self.optimizer = build_optimizer(model.parameters(), self.train)
        self.counters = _Counters()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.train, self.counters.elapsed))
        self.best_metric = _best_metric(task, recipe["task"])
        # Since the last log line: the sum of each step's mean loss times its token count, kept
        # on the device (no sync per step), and the tokens and steps it covers. The logged loss
        # is their ratio, a mean per token: a step with more tokens (a batch of longer
        # sentences) weighs more, as one large batch of the same tokens would.
        self.running = torch.zeros((), device=device)
        self.running_tokens = 0
        self.running_steps = 0
        self.last_metrics: dict = {}
        self.saved_step: int | None = None  # step of the newest checkpoint on disk
        self.world = torch.distributed.get_world_size() if distributed.active() else 1
        # The task's loss of a batch, through DistributedDataParallel with several processes.
        self.compute_loss: torch.nn.Module = _TaskLoss(task, model)
        if self.world > 1:
            self.compute_loss = DistributedDataParallel(
                self.compute_loss, device_ids=[device.index] if device.type == "cuda" else None)

        self.precision = resolve_precision(self.train["precision"], device)
        self.autocast = mixed_precision(self.precision, device)

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """This process's checkpoint: with several processes ``_save`` adds every rank's
        ``rank_state()`` as ``ranks`` (rank 0's are also ``rng`` and ``task``)."""
        c = self.counters
        own = self.rank_state()
        return {
            "step": c.step, "recipe": self.recipe, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "task": own["task"], "rng": own["rng"], "metrics": self.last_metrics,
            "trainer": {"elapsed": c.elapsed, "best_step": c.best_step,
                        "best_metrics": c.best_metrics, "bad_evals": c.bad_evals,
                        "initial_loss": c.initial_loss, "running": self.running.detach().cpu(),
                        "running_tokens": self.running_tokens, "running_steps": self.running_steps},
        }

    def rank_state(self) -> dict:
        """What this process alone holds and must get back to continue exactly: its RNG states
        and its task's state (carried hidden state of its own streams)."""
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"rng": rng, "task": self.task.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint written by ``state_dict`` (the task's state is loaded by the
        caller, from ``rank_state_of``). A checkpoint of as many processes gives each its own RNG
        states; one of another world size (a forced resume) gives its rank 0's to rank 0 only."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        t = state["trainer"]
        self.counters = _Counters(state["step"], t["elapsed"], t["best_step"],
                                  dict(t["best_metrics"]), t["bad_evals"], t.get("initial_loss"))
        self._apply_recipe_hyperparameters()
        self.running = t["running"].to(self.device)
        self.running_tokens = t.get("running_tokens", 0)
        self.running_steps = t["running_steps"]
        # Older checkpoints hold no token count. Those written right after a log line (all but a
        # signal's) had nothing running; a signal's holds per-step means no count can weigh.
        if "running_tokens" not in t and self.running_steps:
            warnings.warn(f"{self.run_dir / 'checkpoints' / 'last.pt'}: an older seqkit's checkpoint "
                          f"with a per-step loss sum; the training loss logged next covers only "
                          f"the steps after step {state['step']}", SeqkitWarning)
            self.running.zero_()
            self.running_steps = 0
        self.last_metrics = dict(state.get("metrics") or {})
        self.saved_step = state["step"]
        own = rank_state_of(state, distributed.placement()[0], self.world)
        if own is not None:
            torch.set_rng_state(own["rng"]["torch"])
            if "cuda" in own["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(own["rng"]["cuda"])

    def _apply_recipe_hyperparameters(self) -> None:
        """The recipe's lr, weight_decay and momentum win over the ones stored in a checkpoint's
        optimizer and scheduler state: otherwise a forced resume with a new ``train.lr`` silently
        kept the old one. With an unchanged recipe this recomputes the very same values."""
        train = self.train
        lr = train["lr"]
        self.scheduler.base_lrs = [lr] * len(self.optimizer.param_groups)
        for group in self.optimizer.param_groups:
            group.update(initial_lr=lr, lr=lr * lr_factor(self.scheduler.last_epoch, train,
                                                          self.counters.elapsed),
                         weight_decay=train["weight_decay"])
            if "momentum" in group:
                group["momentum"] = train["momentum"]

    def _save(self, improved: bool) -> None:
        """Every rank takes part (its ``rank_state`` goes to rank 0); rank 0 writes."""
        ranks = distributed.gather_to_main(self.rank_state()) if self.world > 1 else None
        self.saved_step = self.counters.step
        if not is_main():
            return
        state = self.state_dict()
        if ranks is not None:
            state["ranks"] = ranks
        folder = self.run_dir / "checkpoints"
        if improved:  # best first: a kill between the two leaves last.pt older, which is safe
            save_checkpoint(state, folder / "best.pt")
        save_checkpoint(state, folder / "last.pt")

    def _log(self, record: dict) -> None:
        if not is_main():
            return
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.loggers.log(record)

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        train, c = self.train, self.counters
        total, log_every, eval_every = train["steps"], train["log_every"], train["eval_every"]
        time_limit = train["time_limit"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        stopped = "finished"
        started, tokens_since, log_clock = self.clock(), 0, time.perf_counter()
        elapsed_before = c.elapsed
        self.model.train()
        if train["precision"] == "auto":
            self.display.message(f"train.precision: auto is {self.precision} on this {self.device.type}")
        with StopSignals() as stop, self._peer_failures(), FollowFreeCores() as threads:
            while c.step < total and self._signal(stop) is None:  # a signal waits for the whole step
                tokens_since += self._optimizer_step(params)
                threads.step()
                c.elapsed = self._agreed_elapsed(elapsed_before + self.clock() - started)
                self.scheduler.step()  # the next step's learning rate, from c.step and c.elapsed
                if time_limit:
                    self.display.time_used(c.elapsed, time_limit)
                out_of_time = bool(time_limit) and self._budget_spent()
                evaluate = c.step % eval_every == 0 or c.step == total or out_of_time
                if c.step % log_every == 0 or evaluate:
                    now = time.perf_counter()
                    speed = tokens_since / max(now - log_clock, 1e-9)
                    self._train_line(speed)
                    tokens_since, log_clock = 0, now
                self.display.advance(c.step)
                if evaluate:
                    if self._evaluate():
                        stopped = "patience"
                        break
                    log_clock = time.perf_counter()  # tokens/s counts training time only
                if out_of_time:
                    stopped = "time_limit"
                    break
            received = self._signal(stop)
            if received is not None:
                self._stop_for_signal(received)
        return TrainResult(c.step, stopped, dict(self.last_metrics),
                           {"step": c.best_step, **c.best_metrics}, self._sample(), c.elapsed,
                           self.best_metric, breakdown_of(self.task, "dev") if is_main() else {})

    def _signal(self, stop: StopSignals) -> int | None:
        """The stop signal any rank received (the same answer on every rank), or None."""
        if self.world == 1:
            return stop.received
        flag = distributed.all_reduce_max(torch.tensor([stop.received or 0]))
        return int(flag) or None

    def _agreed_elapsed(self, elapsed: float) -> float:
        """With a time schedule, rank 0's clock decides: every rank takes its elapsed time, so all
        take the same learning rate at every step and stop at the same step."""
        if self.world == 1 or self.train["schedule_by"] != "time":
            return elapsed
        return float(distributed.broadcast_from_main(torch.tensor([elapsed], dtype=torch.float64)))

    def _budget_spent(self) -> bool:
        """Has training used ``train.time_limit``? The same answer on every rank."""
        spent = self.counters.elapsed >= self.train["time_limit"]
        return spent if self.train["schedule_by"] == "time" else self._any_rank(spent)

    def _any_rank(self, flag: bool) -> bool:
        """Is ``flag`` true on some rank? (every rank's clock is its own; they stop together)"""
        if self.world == 1:
            return flag
        return bool(distributed.all_reduce_max(torch.tensor([int(flag)])))

    @contextmanager
    def _peer_failures(self):
        """A collective that failed because a peer died or hung past the timeout: one line."""
        try:
            yield
        except RuntimeError as exc:
            if not distributed.is_peer_failure(exc):
                raise
            raise SeqkitError(
                f"training stopped at step {self.counters.step} on rank {distributed.placement()[0]} of "
                f"{self.world}: another process died or stopped answering "
                f"({distributed.peer_failure_summary(exc)}); {self._kept()}; continue with: "
                f"{self._resume_command()}") from None

    def _optimizer_step(self, params: list) -> int:
        """Train on the batch of the current step (this rank's share of it); returns the number
        of tokens of the whole step, over every rank."""
        c = self.counters
        batch = self.task.train_batch(c.step)
        with self.autocast():
            loss, tokens = self.compute_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        weighted_sum = loss.detach() * tokens
        if self.world > 1:
            loss, weighted_sum, tokens = self._over_all_ranks(loss, weighted_sum, tokens)
        if c.initial_loss is None:  # one device sync, once per run
            c.initial_loss = float(loss.detach()) if self.world == 1 else float(weighted_sum) / tokens
        loss.backward()
        if self.train["clip_grad_norm"]:
            torch.nn.utils.clip_grad_norm_(params, self.train["clip_grad_norm"])
        self.optimizer.step()
        self.running += weighted_sum
        self.running_tokens += tokens
        self.running_steps += 1
        c.step += 1
        return tokens

    def _over_all_ranks(self, loss: torch.Tensor, weighted_sum: torch.Tensor, tokens: int):
        """This rank's (mean loss, its sum, its tokens) -> (the loss to differentiate, the sum and
        the tokens of the whole step). The step's loss is every rank's token losses summed over
        the global token count; DDP averages the ranks' gradients, so each rank's mean is weighted
        by its tokens times the world size over that count (zero for a rank whose share is empty)."""
        sums = distributed.all_reduce_sum(
            torch.stack([weighted_sum.double(), weighted_sum.new_tensor(tokens, dtype=torch.float64)]))
        global_tokens = int(sums[1])
        return loss * (tokens * self.world / global_tokens), sums[0], global_tokens

    def _sample(self) -> str | None:
        """The task's end-of-run sample. The checkpoints are written by now, so a sample that
        fails is a one-line note, not the end of a run that trained."""
        if not is_main():
            return None
        self.model.eval()
        try:
            return self.task.sample(self.model)
        except Exception as exc:  # the task's or a decoder plugin's code, on whatever weights trained
            self.display.message(f"sample skipped: {describe_failure(exc)}")
            return None

    def _train_line(self, speed: float) -> None:
        c = self.counters
        mean = float(self.running) / max(1, self.running_tokens)  # one device sync per log line
        self._check_loss(mean, "training", f"between steps {c.step - self.running_steps + 1} and {c.step}")
        self.running.zero_()
        self.running_tokens = self.running_steps = 0
        lr = self.optimizer.param_groups[0]["lr"]
        self._log({"step": c.step, "split": "train", "loss": mean, "lr": lr,
                   "tokens_per_s": speed, **self._time_fields()})
        self.display.train_log(c.step, mean, speed)

    def _time_fields(self) -> dict:
        """Training time so far, and with a ``train.time_limit`` the share of it used."""
        used = budget_fraction(self.counters.elapsed, self.train)
        return {"elapsed": self.counters.elapsed, **({} if used is None else {"budget_used": used})}

    def _evaluate(self) -> bool:
        """Validate, log, checkpoint; True when patience has run out."""
        c = self.counters
        self.model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in self.task.evaluate(self.model).items()}
        self.model.train()
        name, mode = self.best_metric
        missing = [key for key in dict.fromkeys(("loss", name)) if key not in metrics]
        if missing:
            raise SeqkitError(f"task '{self.recipe['task']}': evaluate() returned no "
                              f"{' or '.join(map(repr, missing))} (it returned {', '.join(metrics)})")
        self._check_loss(metrics["loss"], "validation", f"at step {c.step}")
        self.last_metrics = metrics
        improved = _better(metrics[name], c.best_metrics.get(name), mode)
        if improved:
            c.best_step, c.best_metrics, c.bad_evals = c.step, metrics, 0
        else:
            c.bad_evals += 1
        self._log({"step": c.step, "split": "val", **metrics, **self._time_fields()})
        self.display.val_log(c.step, metrics)
        self._save(improved)
        patience = self.train["patience"]
        return bool(patience) and c.bad_evals >= patience

    def _stop_for_signal(self, signal_number: int) -> None:
        """Checkpoint the step just finished (running loss sums included, so the resumed run
        logs the same numbers) and stop with the command that continues it."""
        if self.saved_step != self.counters.step:
            self._save(improved=False)
        # the step reached, which the last log line may be short of (`seqkit runs`); a resume
        # cuts this line (seqkit.training.run._truncate_metrics)
        self._log({"step": self.counters.step, "split": "stop",
                   "signal": signal.Signals(signal_number).name, **self._time_fields()})
        raise RunInterrupted(
            f"seqkit: {signal.Signals(signal_number).name}: stopped after step {self.counters.step}, "
            f"saved in {self.run_dir / 'checkpoints' / 'last.pt'}; continue with: "
            f"{self._resume_command()}", signal_number)

    def _check_loss(self, loss: float, which: str, when: str) -> None:
        """Stop a run whose loss is not finite, or over ``DIVERGENCE_FACTOR`` times the loss of
        its first step.

        The first step's loss is the untrained model's: for a fresh model, whose predictions are
        close to uniform, that is the task's chance level (log V nats for V classes), measured
        rather than declared, so every task gets the check. A run 100 times worse than knowing
        nothing is not learning but diverging: its weights have blown up (SGD at lr 1e30: a
        finite loss of 1e30, finite weights and gradients, so a check for non-finite numbers
        misses it), no schedule brings it back, and decoding from it fails. A loss at or below
        zero at the first step gives no scale; only finiteness is checked then.
        """
        initial = self.counters.initial_loss
        what = f"the {which} loss became {format_metric(loss)} {when}"
        if not math.isfinite(loss):
            self._diverged(what)
        if initial is not None and initial > 0 and loss > DIVERGENCE_FACTOR * initial:
            self._diverged(f"{what}, over {DIVERGENCE_FACTOR} times the untrained model's "
                           f"{format_metric(initial)}")

    def _resume_command(self) -> str:
        command = f"seqkit run --resume {shlex.quote(str(self.run_dir))}"
        return command if self.world == 1 else f"{command} under torchrun with {self.world} processes"

    def _kept(self) -> str:
        checkpoint = self.run_dir / "checkpoints" / "last.pt"
        return (f"the last good checkpoint {checkpoint} (step {self.saved_step}) is kept"
                if self.saved_step is not None else "no checkpoint had been written yet")

    def _diverged(self, what: str) -> None:
        raise SeqkitError(f"training stopped: {what}; {self._kept()}; try a lower train.lr or "
                          f"train.clip_grad_norm")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``train.precision`` as it runs on ``device``: ``auto`` is bf16-mixed where the device
    multiplies bfloat16 in hardware (a CUDA GPU with native bfloat16; a CPU with AMX or
    AVX512-BF16), else fp32, which is faster wherever bfloat16 would be emulated."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        try:
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch before 2.3 counts no emulation
            native = torch.cuda.is_bf16_supported()
    else:
        native = device.type == "cpu" and _cpu_has_bfloat16(unknown=False)
    return "bf16-mixed" if native else "fp32"


def mixed_precision(precision: str, device: torch.device):
    """The context of the training step's forward for ``train.precision``.

    ``bf16-mixed`` is torch.autocast in bfloat16: matrix products (and torch's fused RNN kernels)
    in bfloat16, the weights, their gradients and the optimizer in float32, so no loss scaling is
    needed (bfloat16 has float32's range). Validation, the final test and decoding stay in float32.
    """
    if precision != "bf16-mixed":
        return nullcontext
    if device.type == "cpu" and not _cpu_has_bfloat16() and is_main():
        warnings.warn("train.precision: bf16-mixed on a CPU without bfloat16 instructions "
                      "(AMX or AVX512-BF16) is slower than fp32; set train.precision: fp32",
                      SeqkitWarning)
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def _cpu_has_bfloat16(unknown: bool = True) -> bool:
    """Does this CPU multiply bfloat16 in hardware? ``unknown`` where this torch cannot tell."""
    checks = [getattr(torch.cpu, name, None)
              for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return unknown if not all(checks) else any(check() for check in checks)


class _TaskLoss(torch.nn.Module):
    """The task's loss as a module's forward. DistributedDataParallel synchronises the gradients
    of what runs inside its wrapper's forward, so it wraps this: the task calls its own model as it
    always does (``model.features``, ``model.loss``) and never sees the wrapper."""

    def __init__(self, task: Task, model: torch.nn.Module):
        super().__init__()
        self.task, self.model = task, model

    def forward(self, batch):
        return self.task.loss(self.model, batch)


def checkpoint_world_size(state: dict) -> int:
    """How many processes trained the run that wrote checkpoint ``state``."""
    return len(state.get("ranks") or ()) or 1


def rank_state_of(state: dict, rank: int, world: int) -> dict | None:
    """``rank``'s RNG states and task state in checkpoint ``state`` for a run on ``world``
    processes: its own where the checkpoint has as many; else rank 0's for rank 0 (which then
    does not continue exactly) and None for the others, which start afresh."""
    if checkpoint_world_size(state) == world:
        return state["ranks"][rank] if world > 1 else {"rng": state["rng"], "task": state["task"]}
    return {"rng": state["rng"], "task": state["task"]} if rank == 0 else None
