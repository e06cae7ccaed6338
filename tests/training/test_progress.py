"""What a run prints while it trains: numbers stay readable however large they get."""
from __future__ import annotations

import io

from rich.console import Console

from seqkit.training.progress import LogLines, ProgressBar, format_metric


def test_large_numbers_print_in_exponent_form_small_ones_with_four_decimals():
    assert format_metric(1.4567891) == "1.4568"
    assert format_metric(9.1e30) == "9.1e+30"
    assert format_metric(1.0142320547350045e+304) == "1.014e+304"
    assert format_metric(float("inf")) == "inf" and format_metric(float("nan")) == "nan"


def test_log_lines_and_the_bar_show_a_diverged_run_readably():
    stream = io.StringIO()
    LogLines(10, stream=stream).val_log(5, {"loss": 70.0, "perplexity": 2.5e30})
    assert stream.getvalue() == "step 5/10  val loss 70.0000  perplexity 2.5e+30\n"
    out = io.StringIO()
    bar = ProgressBar(10, console=Console(file=out, width=200))
    bar.train_log(5, 9.1e30, 1000.0)
    bar.val_log(5, {"loss": 8.2e30})
    bar.message("sample skipped: a note")
    bar.close()
    assert "loss 9.1e+30  val 8.2e+30" in out.getvalue()
    assert "sample skipped: a note\n" in out.getvalue()
