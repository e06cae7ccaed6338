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
    p.add_argument("run", help="run directory written by 'seqkit run'")
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
    decoder = build_decoder(strategy, strategy_values(strategy, flags, recipe_decode))
    length = args.length or recipe_decode["length"]
    inputs = inputs or _recipe_inputs(recipe_decode)
    normalized, note = run.task.normalize_inputs(inputs)
    if note:
        warnings.warn(f"{_inputs_source(args)}: {note}", SeqkitWarning)
    step_model = run.task.step_model(run.model)
    for key, why in decoder.ineffective_options(step_model).items():
        where = flag(key) if key in flags else f"decode.{key} (the run's recipe)"
        warnings.warn(f"{where}: {why}", SeqkitWarning)
    try:
        results = decoder.decode(step_model, *run.task.start_decoding(run.model, inputs), length,
                                 progress=decode_progress)
    except NonFiniteLogProbs as exc:
        raise SeqkitError(f"{checkpoint_path(args.run, args.checkpoint)}: {exc}") from None
    except SeqkitError as exc:  # name the flags the user typed (--length), not recipe keys
        raise SeqkitError(*map(flag_named, exc.problems)) from None
    report = _report(run.task, step_model, strategy, decoder.config, length, inputs, normalized,
                     results)
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0


def _report(task, step_model, strategy, config, length, inputs, normalized, results) -> dict:
    end = step_model.end_token

    def text(tokens):
        return task.detokenize(tokens[:-1] if end is not None and tokens and tokens[-1] == end else tokens)

    entries = []
    for source, read, result in zip(inputs, normalized, results):
        entry = {"input": source, "normalized_input": read, "outputs": [
            {"text": text(h.tokens), "tokens": h.tokens, "log_prob": h.log_prob,
             **({"score": h.score} if h.score is not None else {})} for h in result.hypotheses]}
        if "marginals" in result.extras:
            entry["marginals"] = {
                "symbols": [task.detokenize([v]) for v in range(step_model.vocab_size)],
                "rows": "symbols", "columns": "positions",
                "table": result.extras["marginals"].tolist()}
        entry.update({k: v for k, v in result.extras.items() if k != "marginals"})
        entries.append(entry)
    return {"strategy": strategy, "options": config, "length": length, "results": entries}


def _print(report: dict) -> None:
    from rich.text import Text

    from seqkit.console import stdout_console

    console = stdout_console()
    options = ", ".join(f"{k}={v}" for k, v in report["options"].items())
    console.print(Text(f"{report['strategy']}" + (f" ({options})" if options else "")
                       + f", {report['length']} tokens", style="bold"))
    for entry in report["results"]:
        for rank, output in enumerate(entry["outputs"], 1):
            line = Text()
            if len(entry["outputs"]) > 1:
                line.append(f"{rank}. ", style="dim")
            line.append(entry["normalized_input"], style="cyan")
            line.append(output["text"])
            line.append(f"   log p = {output['log_prob']:.3f}", style="dim")
            console.print(line)
        if "marginals" in entry:
            console.print(_marginals_table(entry))
            console.print(Text(f"{entry['sequences']:,} sequences enumerated from {entry['prefixes']:,} "
                               f"prefixes; probability mass {entry['mass']:.6f}", style="dim"))


def _marginals_table(entry: dict, shown: float = 0.01):
    """Symbols that reach ``shown`` probability somewhere; the rest summed in one row."""
    from rich.table import Table

    marginals = entry["marginals"]
    table = Table(title=f"p(y_s = v) after {entry['normalized_input']!r}", title_justify="left")
    table.add_column("symbol")
    positions = len(marginals["table"][0]) if marginals["table"] else 0
    for s in range(positions):
        table.add_column(str(s + 1), justify="right")
    rest = [0.0] * positions
    for symbol, row in zip(marginals["symbols"], marginals["table"]):
        if max(row) >= shown:
            table.add_row(repr(symbol), *(f"{p:.3f}" for p in row))
        else:
            rest = [a + b for a, b in zip(rest, row)]
    if any(rest):
        table.add_row("(others)", *(f"{p:.3f}" for p in rest), style="dim")
    return table
