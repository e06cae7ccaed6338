"""``seqkit plot``: one metric of one or more runs against step or training time, as a PNG.

Reads each run's ``metrics.jsonl``; draws with matplotlib's headless Agg backend (an optional
extra: ``pip install "seqkit[plot]"``). Without ``-o`` the figure goes to the first run's folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqkit.cli._common import pyplot
from seqkit.errors import SeqkitError
from seqkit.training.run_folder import read_metrics


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("plot", parents=[common], help="plot a metric of runs against step or time",
                       description="Plot one metric of one or more runs (from metrics.jsonl) "
                                   "against step or training time, into a PNG.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--metric", default="loss", help="a logged metric: loss, bits_per_char, "
                                                   "word_error_rate, ... (default: loss)")
    p.add_argument("--split", default="val", choices=("train", "val"),
                   help="training lines or validations (default: val)")
    p.add_argument("--x", default="step", choices=("step", "time"),
                   help="horizontal axis: step, or time in minutes of training (default: step)")
    p.add_argument("-o", "--output", help="PNG to write (default: FIRST_RUN/plot.png)")
    p.add_argument("--json", action="store_true", help="print the plotted points as JSON as well")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    curves = {}
    for run in map(Path, args.runs):
        path = run / "metrics.jsonl"
        if not path.is_file():
            raise SeqkitError(f"{run}: no metrics.jsonl; is this a run directory written by 'seqkit run'?")
        records = [r for r in read_metrics(path) if r.get("split") == args.split]
        points = [(_x(r, args.x), r[args.metric]) for r in records
                  if isinstance(r.get(args.metric), (int, float)) and _x(r, args.x) is not None]
        if not points:
            logged = sorted({k for r in records for k, v in r.items()
                             if isinstance(v, (int, float)) and k not in ("step", "elapsed")})
            raise SeqkitError(f"{path}: no '{args.metric}' in its {args.split} lines; logged there: "
                              f"{', '.join(logged) or 'nothing yet'} (choose with --metric)")
        curves[_label(run, args.runs)] = points
    plt = pyplot()  # after the checks: a wrong metric is reported without matplotlib too
    output = Path(args.output) if args.output else Path(args.runs[0]) / "plot.png"
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, points in curves.items():
        xs, ys = zip(*points)
        axes.plot(xs, ys, label=label, marker="o" if len(points) < 30 else None, markersize=3)
    axes.set_xlabel("step" if args.x == "step" else "training time (minutes)")
    axes.set_ylabel(f"{args.metric} ({args.split})")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    plt.close(figure)
    if args.json:
        print(json.dumps({"output": str(output), "metric": args.metric, "split": args.split,
                          "x": args.x, "curves": curves}))
    else:
        print(output)
    return 0


def _x(record: dict, axis: str):
    if axis == "step":
        return record["step"]
    elapsed = record.get("elapsed")
    return elapsed / 60 if isinstance(elapsed, (int, float)) else None


def _label(run: Path, all_runs: list[str]) -> str:
    """The run's folder name, or its whole path where two runs share a name."""
    names = [Path(r).name for r in all_runs]
    return run.name if names.count(run.name) == 1 else str(run)
