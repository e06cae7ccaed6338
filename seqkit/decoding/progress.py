"""The progress bar of a long decode: on stderr, only on a terminal, only once decoding is slow.

``Decoder.decode`` calls ``advance(rows)`` after every model step. That call only adds to a
counter; the bar is touched once per thousandth of the work, and drawn only after a second, so a
short decode shows nothing and a long one costs a few additions per step.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

SHOW_AFTER_S = 1.0


class DecodeBar:
    """Counts rows stepped towards ``total``; draws a transient rich bar once ``delay`` has passed."""

    def __init__(self, total: int, console: Console, delay: float = SHOW_AFTER_S):
        self.total, self.console, self.delay = total, console, delay
        self.done, self.started = 0, time.monotonic()
        self.next_update = self.every = max(1, total // 1000)
        self.bar: Progress | None = None

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.done >= self.next_update:
            self._update()

    def _update(self) -> None:
        self.next_update = self.done + self.every
        if self.bar is None:
            if time.monotonic() - self.started < self.delay:
                return
            self.bar = Progress(TextColumn("[bold]decode[/bold]"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("tokens"), TimeRemainingColumn(), console=self.console,
                                transient=True)
            self.task = self.bar.add_task("decode", total=self.total)
            self.bar.start()
        self.bar.update(self.task, completed=min(self.done, self.total))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@contextmanager
def decode_progress(total: int, console: Console | None = None):
    """``Decoder.decode``'s ``progress``: an ``advance(rows)`` that draws on stderr if it is a
    terminal, and does nothing otherwise (a log file gets no bar and no escape codes)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield lambda rows: None
        return
    bar = DecodeBar(total, console)
    try:
        yield bar.advance
    finally:
        bar.close()
