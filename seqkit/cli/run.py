"""``seqkit run``: train a recipe, or resume a run, and print what came out."""
from __future__ import annotations

import argparse
import json
import sys

from seqkit.cli._common import add_recipe_args, breakdown_tables, stdout_console
from seqkit.cli._common import overrides as recipe_overrides
from seqkit.distributed import is_main
from seqkit.errors import SeqkitError
from seqkit.recipe import load_recipe
from seqkit.training.progress import format_metric
from seqkit.training.run import resume_run, start_run


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser("run", parents=[common], help="train a recipe (or resume a run)",
                       description="Train a recipe into its run directory, or continue one.")
    p.add_argument("recipe", nargs="?", help="recipe YAML (optional with --resume)")
    add_recipe_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar: plain log lines")
    p.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    p.add_argument("--force", action="store_true",
                   help="with --resume: continue even if the recipe differs from the run's")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    overrides = recipe_overrides(args)
    display = "log" if args.quiet else "bar"
    if args.resume:
        recipe = load_recipe(args.recipe, overrides) if args.recipe else None
        result = resume_run(args.resume, recipe, () if args.recipe else overrides, args.force, display)
        run_dir = args.resume
    else:
        if not args.recipe:
            raise SeqkitError("seqkit run: give a recipe file, or --resume RUN")
        if args.force:
            raise SeqkitError("--force: only applies with --resume RUN")
        recipe = load_recipe(args.recipe, overrides)
        result = start_run(recipe, display, source=args.recipe)
        run_dir = recipe["output"]
    if not is_main():  # rank 0 reports for every process
        return 0
    if args.json:
        print(json.dumps({"run": str(run_dir), "step": result.step, "stopped": result.stopped,
                          "elapsed": result.elapsed, "final": result.final, "best": result.best,
                          "best_metric": dict(zip(("metric", "mode"), result.best_metric)),
                          "sample": result.sample, "tables": result.tables, "test": result.test}))
        return 0
    minutes, seconds = divmod(int(result.elapsed), 60)
    print(f"run {run_dir}: {result.stopped} at step {result.step} in {minutes}m{seconds:02d}s")
    print("validation: " + "  ".join(f"{k} {format_metric(v)}" for k, v in result.final.items()))
    best = {k: v for k, v in result.best.items() if k != "step"}
    metric, mode = result.best_metric
    which = f"{'lowest' if mode == 'min' else 'highest'} {metric}"
    print(f"best (step {result.best['step']}, {which}): "
          + "  ".join(f"{k} {format_metric(v)}" for k, v in best.items()))
    for split, scored in result.test.items():
        decoded = f", {scored['strategy']}" if "strategy" in scored else ""
        print(f"{split} (best checkpoint, step {scored['step']}{decoded}): "
              + "  ".join(f"{k} {format_metric(v)}" for k, v in scored["metrics"].items()))
    sys.stdout.flush()
    if result.tables:
        console = stdout_console()
        for table in breakdown_tables(result.tables):
            console.print(table)
    if result.sample is not None:
        print("sample:\n" + result.sample)
    sys.stdout.flush()
    return 0
