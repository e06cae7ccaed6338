"""The progress bar of ``seqkit decode``: drawn on a terminal once decoding is slow, never in a log."""
from __future__ import annotations

import io

from rich.console import Console

from seqkit.decoding.progress import DecodeBar, decode_progress


def console(terminal: bool) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=100)


def test_a_terminal_gets_a_bar_that_counts_to_the_total():
    shown = console(terminal=True)
    bar = DecodeBar(5000, shown, delay=0.0)
    for _ in range(5000):
        bar.advance(1)
    assert bar.bar is not None and bar.bar.tasks[0].completed == 5000
    bar.close()
    assert "decode" in shown.file.getvalue()


def test_a_short_decode_draws_nothing():
    shown = console(terminal=True)
    bar = DecodeBar(5000, shown, delay=60.0)
    for _ in range(5000):
        bar.advance(1)
    bar.close()
    assert bar.bar is None and shown.file.getvalue() == ""


def test_a_log_file_gets_no_bar():
    written = console(terminal=False)
    with decode_progress(10, written) as advance:
        for _ in range(10):
            advance(1)
    assert written.file.getvalue() == ""
    shown = console(terminal=True)
    with decode_progress(10, shown) as advance:
        assert advance.__self__.total == 10  # on a terminal: a DecodeBar's advance
