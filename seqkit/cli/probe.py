"""``seqkit probe gradients``: the lecture's vanishing-gradient claim, measured on any registered
cell (``seqkit.analysis.gradient_probe``): a table of ‖∂h_T/∂s_t‖ at a few distances, the whole curves
as JSON, and a log-scale plot."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.table import Table

from seqkit.analysis.gradient_probe import probe_cell, probe_run
from seqkit.cli._common import pyplot, stdout_console
from seqkit.contracts import GradientProbe
from seqkit.errors import SeqkitError
from seqkit.registry import get_registry
from seqkit.training.run import load_run

DISTANCES = (1, 10, 50, 100, 200)
VANISHED = 1e-3  # "vanished": below this fraction of the norm at distance 1


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("probe", parents=[common], help="measure what the lecture claims about cells",
                       description="Probes of recurrent cells.")
    probes = p.add_subparsers(dest="probe", required=True, metavar="PROBE")
    g = probes.add_parser(
        "gradients", parents=[common], help="how fast ‖∂h_T/∂s_t‖ falls with the distance T − t",
        description="For each cell, at initialisation: run --length steps on random inputs and "
                    "measure the Frobenius norm of the Jacobian of the last output h_T with respect "
                    "to the state after step t (the whole state: LSTM's (h, c)), for every distance "
                    "T − t, averaged over the batch and the seeds. For a RUN: its trained model on "
                    "windows of its dev data, with the gradient of the last step's loss too.")
    g.add_argument("run", nargs="?", help="a trained run: probe its model on real dev inputs, with "
                                        "‖∂L_T/∂s_t‖ of the last step's loss too (instead of --cells)")
    g.add_argument("--checkpoint", default="best", help="with RUN: best | last | PATH (default: best)")
    g.add_argument("--cells", help="comma-separated registered cells (default: every registered cell)")
    g.add_argument("--length", type=int, default=200, help="steps T (default: 200)")
    g.add_argument("--hidden-size", type=int, default=128, help="default: 128")
    g.add_argument("--input-size", type=int, default=32, help="default: 32")
    g.add_argument("--batch", type=int, default=32, help="sequences averaged over (default: 32)")
    g.add_argument("--seeds", type=int, default=3, help="fresh cells and inputs averaged over (default: 3)")
    g.add_argument("--plot", metavar="PNG", help="also draw the curves, log scale (pip install \"seqkit[plot]\")")
    g.add_argument("--json", action="store_true", help="print the whole curves as one JSON object")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    for flag in ("length", "hidden_size", "input_size", "batch", "seeds"):
        if getattr(args, flag) < 1:
            raise SeqkitError(f"--{flag.replace('_', '-')}: must be at least 1; got {getattr(args, flag)}")
    if args.plot:
        pyplot()  # a missing matplotlib is reported before minutes of probing
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # small matrices: threads only wait on each other
        curves = _probe_run(args) if args.run else _probe_cells(args)
    finally:
        torch.set_num_threads(threads)
    if args.plot:
        _plot(curves, args)
    if args.json:
        setting = ({"run": args.run, "checkpoint": args.checkpoint} if args.run else
                   {"hidden_size": args.hidden_size, "input_size": args.input_size, "seeds": args.seeds})
        print(json.dumps({
            "length": args.length, "batch": args.batch, **setting, "vanished_below": VANISHED,
            **({"plot": args.plot} if args.plot else {}),
            "curves": {c.cell: {"norms": c.norms, "vanishing_distance": c.vanishing_distance(VANISHED)}
                       for c in curves}}))
    else:
        _print_table(curves, args)
    return 0


def _probe_cells(args) -> list:
    registry = get_registry()
    names = registry.names("cell") if args.cells is None else \
        [n.strip() for n in args.cells.split(",") if n.strip()]
    if not names:
        raise SeqkitError("--cells: name at least one cell, e.g. --cells tanh,lstm")
    classes = {name: registry.get("cell", name) for name in names}  # unknown names: one line
    return [probe_cell(name, cls, args.length, args.hidden_size, args.input_size, args.batch, args.seeds)
            for name, cls in classes.items()]


def _probe_run(args) -> list:
    if args.cells is not None:
        raise SeqkitError("probe gradients: give a RUN or --cells, not both")
    run = load_run(args.run, args.checkpoint, "cpu")
    model = run.model.double()  # norms far below float32's range stay exact
    if not isinstance(run.task, GradientProbe):
        raise SeqkitError(f"probe gradients: a {type(run.task).__name__} run is not probed yet: the task "
                          f"does not say which recurrence and inputs to differentiate")
    probe = run.task.gradient_probe(model, args.length, args.batch)
    return list(probe_run(run.recipe["model"]["cell"], probe))


def _print_table(curves, args) -> None:
    distances = [d for d in DISTANCES if d <= args.length]
    title = (f"‖∂h_T/∂s_t‖ and ‖∂L_T/∂s_t‖ of {args.run} ({args.checkpoint}), {args.batch} dev windows"
             if args.run else f"‖∂h_T/∂s_t‖ at initialisation (hidden {args.hidden_size}, batch "
                              f"{args.batch}, {args.seeds} seed(s))")
    table = Table(title=title)
    table.add_column("run" if args.run else "cell")
    for d in distances:
        table.add_column(f"T−t = {d}", justify="right")
    table.add_column(f"below {VANISHED:g}× at", justify="right")
    for curve in curves:
        vanished = curve.vanishing_distance(VANISHED)
        table.add_row(curve.cell, *(f"{curve.at(d):.3g}" for d in distances),
                      f"T−t = {vanished}" if vanished else f"never (≤ {args.length})")
    console = stdout_console()
    console.print(table)
    if args.plot:
        console.print(f"plot: {args.plot}")


def _plot(curves, args) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    for curve in curves:
        positive = [(d, n) for d, n in enumerate(curve.norms, 1) if n > 0]
        if positive:
            axes.plot(*zip(*positive), label=curve.cell)
    axes.set_yscale("log")
    axes.set_xlabel("distance T − t (steps)")
    axes.set_ylabel("‖∂h_T / ∂s_t‖ (Frobenius)" + (", ‖∂L_T / ∂s_t‖" if args.run else ""))
    axes.set_title(f"gradient through time: {args.run}" if args.run else
                   f"gradient through time at initialisation, hidden {args.hidden_size}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.plot)
    plt.close(figure)
