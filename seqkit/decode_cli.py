"""``seqkit decode``: decode from a trained run with any registered strategy.

Every option a registered decoder declares becomes a flag (``top_k`` -> ``--top-k``), so a
third-party decoder's options work on the command line too. Values come from, in order: the
flags, the run's recipe ``decode:`` section (when it chose the same strategy), the defaults
(``seqkit.strategy_flags``, shared with ``seqkit eval``).
"""
from __future__ import annotations

import argparse
import json
import warnings

from seqkit.errors import SeqkitError, SeqkitWarning
from seqkit.strategy_flags import (check_flags, check_strategy, flag, flag_named, given_options,
                                   strategy_values, use_strategy_flags)

# Flags of the command itself; a decoder option with one of these names is only settable in a recipe.
_OWN_FLAGS = {"checkpoint", "strategy", "prompt", "input", "input_file", "length", "json", "device",
              "debug", "help"}


def add_decode_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "decode", parents=[common], help="decode from a trained run (greedy, sample, beam, exact, ...)",
        description="Decode from a trained run. Defaults come from the run's recipe (decode:).")
    use_strategy_flags(p, _OWN_FLAGS)
    p.add_argument("run", help="run directory written by 'seqkit run', or a file of 'seqkit export'")
    p.add_argument("--checkpoint", default="best", help="best | last | PATH to a .pt file (default: best)")
    p.add_argument("--strategy", help="registered decoder (default: the recipe's decode.strategy)")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompt", action="append", metavar="TEXT",
                       help="text to continue; repeat for several (default: the recipe's decode.prompt)")
    given.add_argument("--input", action="append", metavar="TEXT", help="an input; repeat for several")
    given.add_argument("--input-file", metavar="FILE", help="one input per line")
    p.add_argument("--length", type=int, help="tokens to generate (default: the recipe's decode.length)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--json", action="store_true", help="print JSON: per input, outputs and log-probabilities")
    return p


def _given_inputs(args) -> list[str] | None:
    """Inputs from the command line (--prompt, --input, --input-file), or None for the recipe's."""
    if args.input_file:
        try:
            with open(args.input_file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            raise SeqkitError(f"{args.input_file}: no such input file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SeqkitError(f"{args.input_file}: cannot read inputs: {exc}") from None
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


def _recipe_inputs(recipe_decode: dict) -> list[str]:
    if isinstance(recipe_decode.get("prompt"), str):
        return [recipe_decode["prompt"]]
    raise SeqkitError("seqkit decode: give --input TEXT or --input-file FILE (the run's recipe "
                      "has no decode.prompt)")


def decode_command(args) -> int:
    from seqkit.decode_progress import decode_progress
    from seqkit.decoding import NonFiniteLogProbs, build_decoder
    from seqkit.run import checkpoint_path, load_run

    flags = given_options(args)
    if args.strategy is not None:  # mistakes in flags fail before a model is loaded
        check_flags(args.strategy, flags)
    if args.length is not None and args.length < 1:
        raise SeqkitError(f"--length: must be >= 1; got {args.length}")
    inputs = _given_inputs(args)
    run = load_run(args.run, args.checkpoint, args.device)
    recipe_decode = run.recipe.get("decode", {})
    strategy = args.strategy or recipe_decode["strategy"]
    check_strategy(strategy, flags)
    problem = run.task.decode_strategy_problem(strategy)
    if problem:
        where = "--strategy" if args.strategy else "decode.strategy (the run's recipe)"
        raise SeqkitError(f"{where}: '{strategy}' does not apply to this {run.recipe['task']} run: "
                          f"{problem}")
    decoder = build_decoder(strategy, strategy_values(strategy, flags, recipe_decode))
    inputs = inputs or _recipe_inputs(recipe_decode)
    _, note = run.task.normalize_inputs(inputs)
    if note:
        warnings.warn(f"{_inputs_source(args)}: {note}", SeqkitWarning)
    _warn_ineffective(run, decoder, flags)
    try:
        report = run.task.decode(run.model, inputs, decoder, args.length, progress=decode_progress)
    except NonFiniteLogProbs as exc:
        raise SeqkitError(f"{checkpoint_path(args.run, args.checkpoint)}: {exc}") from None
    except SeqkitError as exc:  # name the flags the user typed (--length), not recipe keys
        raise SeqkitError(*map(flag_named, exc.problems)) from None
    report = {"strategy": strategy, "options": decoder.config, **report}
    if args.json:
        print(json.dumps(report))
    else:
        _print(run.task, report)
    return 0


def _warn_ineffective(run, decoder, flags: dict) -> None:
    """Warn about options set to values that change nothing with this run's step model."""
    try:
        step_model = run.task.step_model(run.model)
    except SeqkitError:  # a task that decodes without one (a softmax tagger): nothing to check
        return
    for key, why in decoder.ineffective_options(step_model).items():
        where = flag(key) if key in flags else f"decode.{key} (the run's recipe)"
        warnings.warn(f"{where}: {why}", SeqkitWarning)


def _print(task, report: dict) -> None:
    from rich.text import Text

    from seqkit.console import stdout_console

    console = stdout_console()
    options = ", ".join(f"{k}={v}" for k, v in report["options"].items())
    length = f", {report['length']} tokens" if report.get("length") is not None else ""
    console.print(Text(f"{report['strategy']}" + (f" ({options})" if options else "") + length,
                       style="bold"))
    for renderable in task.show_decoded(report):
        console.print(renderable)
