"""``seqkit decode``: decode from a trained run with any registered strategy.

Every option a registered decoder declares becomes a flag (``top_k`` -> ``--top-k``), so a
third-party decoder's options work on the command line too. Values come from, in order: the
flags, the run's recipe ``decode:`` section (when it chose the same strategy), the defaults
(``seqkit.cli._strategy_flags``, shared with ``seqkit eval``).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from rich.text import Text

from seqkit.api import load_run
from seqkit.cli._common import add_run_args, stdout_console
from seqkit.cli._strategy_flags import CLI_NAMING, given_options, use_strategy_flags
from seqkit.contracts import ShowsDecoded
from seqkit.decoding import check_strategy_options
from seqkit.decoding.progress import decode_progress
from seqkit.errors import SeqkitError
from seqkit.text_files import read_text_file

# Flags of the command itself; a decoder option with one of these names is only settable in a recipe.
_OWN_FLAGS = {"checkpoint", "strategy", "prompt", "input", "input_file", "length", "json", "details",
              "device", "debug", "help"}


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "decode", parents=[common], help="decode from a trained run (greedy, sample, beam, exact, ...)",
        description="Decode from a trained run. Defaults come from the run's recipe (decode:).")
    use_strategy_flags(p, _OWN_FLAGS)
    add_run_args(p)
    p.add_argument("--strategy", help="registered decoder (default: the recipe's decode.strategy)")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompt", action="append", metavar="TEXT",
                       help="text to continue; repeat for several (default: the recipe's decode.prompt)")
    given.add_argument("--input", action="append", metavar="TEXT", help="an input; repeat for several")
    given.add_argument("--input-file", metavar="FILE", help="one input per line")
    p.add_argument("--length", type=int, help="tokens to generate (default: the recipe's decode.length)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--json", action="store_true", help="print JSON: per input, outputs and log-probabilities")
    p.add_argument("--details", action="store_true",
                   help="with --json: add each output token's log-probability (token_log_probs) and, for a "
                        "translator with attention, its attention over the source (attention, source_tokens)")
    p.set_defaults(func=command)
    return p


def _given_inputs(args) -> list[str] | None:
    """Inputs from the command line (--prompt, --input, --input-file), or None for the recipe's."""
    if args.input_file:
        if not Path(args.input_file).exists():
            raise SeqkitError(f"{args.input_file}: no such input file")
        lines = read_text_file(args.input_file).removeprefix("\ufeff").splitlines()
        if not lines:
            raise SeqkitError(f"{args.input_file}: no inputs (the file is empty); put one per line")
        return lines
    return args.prompt or args.input


def _inputs_source(args) -> str:
    """Where the inputs came from, as a warning about them names it."""
    if args.input_file:
        return str(args.input_file)
    if args.prompt or args.input:
        return "--prompt" if args.prompt else "--input"
    return "decode.prompt (the run's recipe)"


def command(args) -> int:
    flags = given_options(args)
    naming = replace(CLI_NAMING, inputs=_inputs_source(args), no_inputs=(
        "seqkit decode: give --input TEXT or --input-file FILE (the run's recipe has no decode.prompt)"))
    if args.strategy is not None:  # mistakes in flags fail before a model is loaded
        check_strategy_options(args.strategy, flags, naming)
    if args.length is not None and args.length < 1:
        raise SeqkitError(f"--length: must be >= 1; got {args.length}")
    if args.details and not args.json:
        raise SeqkitError("--details: adds fields to the JSON output; give --json too")
    inputs = _given_inputs(args)
    run = load_run(args.run, checkpoint=args.checkpoint, device=args.device or "auto")
    report = run.decode_report(inputs, args.strategy, args.length, flags, naming, decode_progress,
                               details=args.details)
    if args.json:
        print(json.dumps(report))
    else:
        _print(run.task, report)
    return 0


def _print(task, report: dict) -> None:
    console = stdout_console()
    options = ", ".join(f"{k}={v}" for k, v in report["options"].items())
    length = f", {report['length']} tokens" if report.get("length") is not None else ""
    console.print(Text(f"{report['strategy']}" + (f" ({options})" if options else "") + length,
                       style="bold"))
    if not isinstance(task, ShowsDecoded):  # a task with no display of its own: its JSON, per input
        for entry in report["results"]:
            console.print(json.dumps(entry), markup=False, highlight=False)
        return
    for renderable in task.show_decoded(report):
        console.print(renderable)
