"""``seqkit eval``: a trained run's metrics on one of its task's splits, or on a file the user names.

The numbers come from the task's own ``evaluate``, the code the trainer validates with: the
``dev`` split of a checkpoint scores exactly what the trainer logged for it. A task whose
evaluation decodes (a tagger's autoregressive output) takes ``--strategy`` and its options, as
``seqkit decode`` does; the task says which strategies apply (``Task.eval_strategy_problem``).
"""
from __future__ import annotations

import argparse
import json

import torch
from rich.table import Table

from seqkit.analysis.search_report import EXACT, report_rows
from seqkit.api import load_run
from seqkit.cli._common import add_run_args, breakdown_tables, stdout_console
from seqkit.cli._strategy_flags import CLI_NAMING, flag, given_options, use_strategy_flags
from seqkit.contracts import SearchReport
from seqkit.decoding import build_decoder, check_strategy_options
from seqkit.errors import SeqkitError
from seqkit.training.progress import format_metric

# Flags of the command itself; a decoder option with one of these names is only settable in a recipe.
_OWN_FLAGS = {"checkpoint", "split", "input_file", "strategy", "json", "device", "debug", "help",
              "search_report", "beam_sizes", "limit"}


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "eval", parents=[common], help="a trained run's metrics on a split or a labelled file",
        description="Score a trained run with its task's metrics: on a split the task holds "
                    "(default: dev, the split training validated on) or on a file in the task's "
                    "format (char_lm: UTF-8 text).")
    use_strategy_flags(p, _OWN_FLAGS)
    add_run_args(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--split", help="a split the task holds: dev (default), test where it has one")
    where.add_argument("--input-file", metavar="FILE", help="score this labelled file instead")
    p.add_argument("--strategy", help="decoding strategy, for tasks whose evaluation decodes "
                                      "(default: the task's own choice)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: auto); the run's "
                                    "device reproduces its logged metrics to the last bit")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: run, task, checkpoint, split or file, metrics")
    report = p.add_argument_group("search errors (seqkit.analysis.search_report)")
    report.add_argument("--search-report", action="store_true",
                        help="compare greedy and beam search with the exact argmax: search errors, "
                             "score gaps, empty and truncated outputs, each one's metrics "
                             "(exact's options as flags: --max-prefixes, ...)")
    report.add_argument("--beam-sizes", default="5", help="with --search-report: beam sizes, e.g. "
                                                          "2,5,10 (default: 5)")
    report.add_argument("--limit", type=int, default=0,
                        help="with --search-report: this many inputs, evenly spaced (default: all)")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    flags = given_options(args)
    if args.search_report:
        return _search_report(args, flags)
    if args.limit or args.beam_sizes != "5":
        raise SeqkitError(f"{'--limit' if args.limit else '--beam-sizes'}: only applies with --search-report")
    if args.strategy is not None:  # mistakes in flags fail before a model is loaded
        check_strategy_options(args.strategy, flags, CLI_NAMING)
    elif flags:
        raise SeqkitError(f"{flag(next(iter(flags)))}: an option of a decoding strategy; give "
                          f"--strategy NAME too")
    run = load_run(args.run, checkpoint=args.checkpoint, device=args.device or "auto")
    report = run.evaluate_report(args.split, args.input_file, args.strategy, flags, CLI_NAMING)
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0


def _search_report(args, flags: dict) -> int:
    if args.strategy is not None:
        raise SeqkitError("--strategy: --search-report decodes with greedy, beam search (--beam-sizes) "
                          "and exact search itself; leave --strategy out")
    if args.limit < 0:
        raise SeqkitError(f"--limit: must be >= 0; got {args.limit}")
    sizes = _beam_sizes(args.beam_sizes)
    check_strategy_options(EXACT, flags, CLI_NAMING)  # the flags set exact's options (--max-prefixes, ...)
    run = load_run(args.run, checkpoint=args.checkpoint, device=args.device or "auto")
    if not isinstance(run.task, SearchReport):
        raise SeqkitError(f"--search-report: a {type(run.task).__name__} run's outputs are not decoded "
                          f"step by step, so there is no search to compare")
    decoders = {"greedy": build_decoder("greedy", {}),
                **{f"beam{size}": build_decoder("beam", {"beam_size": size}) for size in sizes},
                EXACT: run.decoder(EXACT, flags, CLI_NAMING)}
    split = run.load_split(args.split, args.input_file, CLI_NAMING)
    with torch.no_grad():
        found = run.task.search_report(run.model, split, decoders, args.limit)
    report = {"run": str(args.run), "task": run.recipe["task"], "checkpoint": str(run.checkpoint),
              **({"file": str(args.input_file)} if args.input_file else {}), "split": split,
              "inputs": found["inputs"], "options": {name: d.config for name, d in decoders.items()},
              "rows": report_rows(found)}
    if args.json:
        print(json.dumps(report))
    else:
        _print_search_report(report)
    return 0


def _print(report: dict) -> None:
    scored = f"file {report['file']}" if "file" in report else f"split {report['split']}"
    decoded = ""
    if "strategy" in report:
        options = ", ".join(f"{k}={v}" for k, v in report["options"].items())
        decoded = f", decoded by {report['strategy']}" + (f" ({options})" if options else "")
    table = Table(title=f"{report['task']} {report['checkpoint']}: {scored}{decoded}",
                  title_justify="left")
    table.add_column("metric", overflow="fold")
    table.add_column("value", justify="right")
    for name, value in report["metrics"].items():
        table.add_row(name, format_metric(value))
    console = stdout_console()
    console.print(table)
    for breakdown in breakdown_tables(report["tables"]):
        console.print(breakdown)


def _beam_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise SeqkitError(f"--beam-sizes: expected beam sizes >= 1 separated by commas (5 or 2,5,10); "
                          f"got {text!r}")
    return list(dict.fromkeys(sizes))


def _cell(column: str, value: float) -> str:
    return f"{value:,.0f}" if column == "median_prefixes" else format_metric(value)


def _print_search_report(report: dict) -> None:
    rows = report["rows"]
    columns = list(dict.fromkeys(k for row in rows.values() for k in row))
    table = Table(title=f"{report['task']} {report['checkpoint']}: search errors on {report['inputs']:,} "
                        f"inputs of split {report['split']}", title_justify="left")
    table.add_column("strategy")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for name, row in rows.items():
        table.add_row(name, *(_cell(c, row[c]) if c in row else "" for c in columns))
    console = stdout_console()
    console.print(table)
    exact = rows[EXACT]
    if exact.get("proven", 1.0) < 1.0:
        console.print(f"exact search stopped at --max-prefixes for {1 - exact['proven']:.1%} of the inputs: "
                      f"their 'argmax' is the best found, not proven", style="yellow")
