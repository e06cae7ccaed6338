"""What a run shows while it trains: a rich progress bar, or plain log lines with ``--quiet``."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def format_metric(value: float) -> str:
    """Four decimals, or four significant digits once the number is large: a diverged run's
    perplexity (up to 1e304) would otherwise print as 300 digits."""
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"


def _fmt(value) -> str:
    return "-" if value is None else format_metric(value)


class ProgressBar:
    """step, training loss, validation loss, tokens/s and time left, redrawn a few times a second.

    With a ``train.time_limit`` the bar fills by whichever bound ends the run first, the steps or
    the time budget, so its time left is the run's.
    """

    def __init__(self, total: int, start: int = 0, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.total, self.budget_used = total, 0.0
        self.bar = Progress(
            TextColumn("[bold]train[/bold]"), BarColumn(), TextColumn("{task.fields[steps]}"),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[speed]} tok/s"),
            TimeRemainingColumn(), TextColumn("{task.fields[budget]}"), console=self.console, transient=False)
        self.task = self.bar.add_task("train", total=1.0, completed=start / total, steps=f"{start}/{total}",
                                      loss="-", val="-", speed="-", budget="")
        self.bar.start()

    def advance(self, step: int) -> None:
        self.bar.update(self.task, completed=max(step / self.total, self.budget_used), steps=f"{step}/{self.total}")

    def time_used(self, elapsed: float, limit: float) -> None:
        self.budget_used = min(1.0, elapsed / limit)
        minutes, seconds = divmod(int(max(0.0, limit - elapsed)), 60)
        self.bar.update(self.task, budget=f"budget {minutes}:{seconds:02d} left")

    def train_log(self, step: int, loss: float, tokens_per_s: float) -> None:
        self.bar.update(self.task, completed=step, loss=_fmt(loss), speed=f"{tokens_per_s:,.0f}")

    def val_log(self, step: int, metrics: dict) -> None:
        self.bar.update(self.task, val=_fmt(metrics.get("loss")))

    def message(self, text: str) -> None:
        self.bar.console.print(text, highlight=False, markup=False)

    def close(self) -> None:
        self.bar.stop()


class LogLines:
    """``--quiet``: no bar; one plain line per validation and for messages, on stderr."""

    def __init__(self, total: int, start: int = 0, stream=None):
        self.total, self.stream = total, stream or sys.stderr

    def advance(self, step: int) -> None:
        """Nothing to redraw without a bar."""

    def time_used(self, elapsed: float, limit: float) -> None:
        """The validation lines say the time (metrics.jsonl has the budget used)."""

    def train_log(self, step: int, loss: float, tokens_per_s: float) -> None:
        """Training losses go to metrics.jsonl only; the log stays short."""

    def val_log(self, step: int, metrics: dict) -> None:
        fields = "  ".join(f"{k} {format_metric(v)}" for k, v in metrics.items())
        print(f"step {step}/{self.total}  val {fields}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Nothing to tear down."""


class Silent(LogLines):
    """Nothing at all: ranks other than 0, and library use with ``display="silent"``."""

    def val_log(self, step: int, metrics: dict) -> None:
        """Other ranks stay quiet."""

    def message(self, text: str) -> None:
        """Other ranks stay quiet."""


class DataProgress:
    """A bar in bytes while a task prepares its data (``Task.data_progress``), one line per stage
    (reading, training the tokenizer, encoding); nothing at all when the data is already prepared."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.bar: Progress | None = None
        self.stage: str | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(TextColumn("[bold]{task.description}[/bold]"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(), console=self.console)
            self.bar.start()
        if stage != self.stage:
            self.stage, self.task = stage, self.bar.add_task(stage, total=total or None)
        self.bar.update(self.task, completed=done, total=total or None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
