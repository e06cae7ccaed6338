"""``seqkit runs``: the runs under a folder at a glance — task, cell, progress, best and test
metrics, time, and whether each finished, stopped or is training now.

Everything comes from the files a run writes and its lock (``seqkit.training.run_folder``); no
checkpoint is opened, so listing stays fast for large models.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from seqkit.cli._common import stdout_console
from seqkit.errors import SeqkitError
from seqkit.training.progress import format_metric
from seqkit.training.run_folder import describe_run


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("runs", parents=[common], help="list the runs under a folder",
                       description="A table of the runs under DIR (default: runs/): task, cell, "
                                   "steps done, best validation and test metrics, training time "
                                   "(and the share of train.time_limit used), "
                                   "state (finished, stopped or running).")
    p.add_argument("dir", nargs="?", default="runs", help="folder holding run directories (default: runs)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per run")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise SeqkitError(f"{folder}: no such folder; name the folder your runs are in "
                          f"(seqkit runs DIR)")
    runs = [describe_run(path.parent) for path in sorted(folder.rglob("recipe.yaml"))
            if (path.parent / "metrics.jsonl").exists()]
    if args.json:
        print(json.dumps(runs))
    else:
        _print_table(folder, runs)
    return 0


def _print_table(folder: Path, runs: list[dict]) -> None:
    console = stdout_console()
    if not runs:
        console.print(f"no runs under {folder}")
        return
    table = Table(title=f"runs under {folder}")
    for column in ("run", "task", "cell", "steps", "best (val)", "test", "time", "state"):
        table.add_column(column, justify="right" if column in ("steps", "time") else "left")
    for run in runs:
        metric = run["best_metric"]
        best = run["best"]
        test = run["test"]
        cell = run["cell"] + (f" → {run['decoder_cell']}" if "decoder_cell" in run else "")
        table.add_row(
            run["run"], str(run["task"]), cell, f"{run['step']}/{run['steps']}",
            "-" if best is None else f"{metric} {format_metric(best[metric])} @ {best['step']}",
            "-" if test is None or metric not in test else f"{metric} {format_metric(test[metric])}",
            _time(run), run["state"])
    console.print(table)


def _time(run: dict) -> str:
    """Training time, and with a train.time_limit the share of it used: "4m05s (70% of 5m50s)"."""
    def clock(seconds: float) -> str:
        minutes, seconds = divmod(int(seconds), 60)
        return f"{minutes}m{seconds:02d}s"
    if not run.get("time_limit") or run.get("budget_used") is None:
        return clock(run["elapsed"])
    return f"{clock(run['elapsed'])} ({run['budget_used']:.0%} of {clock(run['time_limit'])})"
