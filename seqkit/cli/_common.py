"""What every command shares: the common flags, recipe overrides, one-line warnings, the stdout
console, per-class tables, and matplotlib for the commands that draw."""
from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from seqkit.errors import SeqkitError, SeqkitWarning
from seqkit.recipe import override_problem
from seqkit.training.progress import format_metric

EXIT_INPUT_ERROR = 2
PLOT_INSTALL = 'matplotlib is not installed: pip install "seqkit[plot]"'
# Wide enough for any line seqkit prints: piped output is never wrapped or cut to fit a window.
_UNBOUNDED_WIDTH = 10**9


def common_parser() -> argparse.ArgumentParser:
    """The flags every command takes (``--debug``), as argparse ``parents``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks (also SEQKIT_DEBUG=1)")
    return parent


class _Override(argparse.Action):
    """``--set KEY=VALUE``, appended to ``overrides``. ``--set train.steps 100`` is refused here, in
    one line: argparse would only say that ``100`` is an unrecognized argument, after a usage."""

    def __call__(self, parser, namespace, value, option_string=None):
        problem = override_problem(value)
        if problem:
            parser.exit(EXIT_INPUT_ERROR, problem + "\n")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), value])


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) and ``--device``, for the commands that read a recipe."""
    parser.add_argument("--set", dest="overrides", action=_Override, default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set train.steps=100 (value parsed as YAML)")
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (overrides the recipe)")


def add_run_args(parser: argparse.ArgumentParser, exported: bool = True) -> None:
    """``RUN`` and ``--checkpoint``, for the commands that read a trained run (``exported``: a file
    of ``seqkit export`` stands in for the run)."""
    what = "run directory written by 'seqkit run'" + (", or a file of 'seqkit export'" if exported else "")
    parser.add_argument("run", help=what)
    parser.add_argument("--checkpoint", default="best", help="best | last | PATH to a .pt file (default: best)")


def overrides(args) -> list[str]:
    """The ``--set`` overrides, with ``--device`` as one more."""
    found = list(getattr(args, "overrides", []) or [])
    if getattr(args, "device", None):
        found.append(f"device={args.device}")
    return found


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for people: one line, no source location."""
    prefix = "seqkit: warning: " if issubclass(category, SeqkitWarning) else f"{category.__name__}: "
    print(prefix + str(message).replace("\n", " "), file=sys.stderr)


def stdout_console() -> Console:
    """A rich console on stdout. Text is never broken with inserted newlines (``soft_wrap``: a
    terminal wraps long lines itself, and copying them gives the original); written to a file or a
    pipe, tables take their natural width too, whatever ``COLUMNS`` or the 80-column default says."""
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = _UNBOUNDED_WIDTH
    return console


def breakdown_tables(tables: dict) -> list:
    """A task's per-class tables (``Breakdown``) as rich tables: a row per class, a column per measure."""
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


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), or a one-line install hint.
    Imported here, not at the top: matplotlib is an optional extra and slow to import."""
    try:
        import matplotlib
    except ImportError:
        raise SeqkitError(PLOT_INSTALL) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
