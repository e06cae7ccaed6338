"""The console for what seqkit prints on stdout: decoded text and tables people copy or pipe."""
from __future__ import annotations

from rich.console import Console

# Wide enough for any line seqkit prints: piped output is never wrapped or cut to fit a window.
_UNBOUNDED_WIDTH = 10**9


def stdout_console() -> Console:
    """A rich console on stdout. Text is never broken with inserted newlines (``soft_wrap``: a
    terminal wraps long lines itself, and copying them gives the original); written to a file or a
    pipe, tables take their natural width too, whatever ``COLUMNS`` or the 80-column default says."""
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = _UNBOUNDED_WIDTH
    return console
