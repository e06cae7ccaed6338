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


def breakdown_tables(tables: dict) -> list:
    """``Task.breakdown``'s tables as rich tables: a row per class, a column per measure."""
    from rich.table import Table

    from seqkit.progress import format_metric

    shown = []
    for title, rows in tables.items():
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        columns = list(dict.fromkeys(column for row in rows.values() for column in row))
        table.add_column("", overflow="fold")
        for column in columns:
            table.add_column(column, justify="right")
        for name, row in rows.items():
            cells = (row.get(column, "") for column in columns)
            table.add_row(name, *(format_metric(v) if isinstance(v, float) else str(v) for v in cells))
        shown.append(table)
    return shown
