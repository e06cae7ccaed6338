"""Training to a time budget: ``train.schedule_by: time`` against ``steps`` on a quiet and a slowed machine.

    python -m benchmarks.time_budget [--recipes g2p,tagging] [--conditions quiet,slowed,busy] [--char-lm]
                                     [--budget SECONDS] [--set KEY=VALUE ...] [--no-write]

Each recipe runs as users run it (``seqkit run RECIPE --quiet``, its own process, data prepared
beforehand) with both schedules: ``time`` as shipped, and ``steps`` with the step count the recipe
was tuned to end at on a quiet 2-core Xeon (``STEP_PLAN``), the behaviour before the time schedule.
The figure is the task's own test metric of the best checkpoint (G2P: word error rate; tagging:
accuracy), from the run's ``metrics.jsonl``.

* quiet: one run at a time, nothing else on the machine;
* slowed: each run alone, pinned to one core (``taskset -c 0``; torch then takes one thread),
  the other core idle;
* busy: each run unpinned (torch's threads on every core) beside a process that spins on one core,
  as other work on a shared machine does: the case where a step schedule is cut at a high rate.

``--char-lm``: ``recipes/char_lm.yaml`` with ``train.time_limit: 240`` under both schedules, in
each condition, compared on the best validation bits per character. Run it alone: every figure is
wall-time bound.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._report import REPO, machine, write_section

# The step counts the recipes' cosine schedules were tuned to end at within their time limits on a
# quiet 2-core Xeon, as they shipped before schedule_by: time.
STEP_PLAN = {"g2p": 4400, "tagging": 800}
METRIC = {"g2p": ("word_error_rate", "WER", 100), "tagging": ("accuracy", "accuracy", 100)}
CHAR_LM_LIMIT = 240
CHAR_LM_STEP_BOUND = 100_000


def seqkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqkit", *args]


def command(recipe: str, output: Path, schedule: str, extra=()) -> list[str]:
    """``seqkit run`` of a shipped recipe with ``schedule``; ``extra``: more ``--set`` values."""
    sets = [f"output={output}", f"train.schedule_by={schedule}"]
    if schedule == "steps" and recipe in STEP_PLAN:
        sets.append(f"train.steps={STEP_PLAN[recipe]}")
    sets += extra
    return seqkit("run", str(REPO / "recipes" / f"{recipe}.yaml"), "--quiet",
                  *[arg for value in sets for arg in ("--set", value)])


def prepare(recipe: str, extra: list[str]) -> None:
    """Prepare the recipe's data first, so that no run's time includes it."""
    argv = seqkit("prepare", str(REPO / "recipes" / f"{recipe}.yaml"), *[a for v in extra for a in ("--set", v)])
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def outcome(output: Path) -> dict:
    lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    val = [line for line in lines if line["split"] == "val"]
    test = next((line for line in reversed(lines) if line["split"] == "test"), {})
    end = next(line for line in reversed(lines) if line["split"] == "end")
    return {"steps": val[-1]["step"], "elapsed": val[-1]["elapsed"], "budget_used": val[-1].get("budget_used"),
            "stopped": end["stopped"], "test": test, "val": val}


CONDITIONS = ("quiet", "slowed", "busy")
SPIN = "while True: pass"  # the other work of a busy machine: one core's worth of it


def run_one(argv: list[str], condition: str, log: Path) -> None:
    """Run ``argv`` to its end under ``condition``, its output into ``log``."""
    pinned = ["taskset", "-c", "0", *argv] if condition == "slowed" else argv
    burner = subprocess.Popen([sys.executable, "-c", SPIN]) if condition == "busy" else None
    try:
        with open(log, "w") as out:
            if subprocess.run(pinned, stdout=out, stderr=subprocess.STDOUT).returncode:
                raise SystemExit(f"{' '.join(pinned)} failed; see {log}")
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()


def measure(recipes: list[str], conditions: list[str], extra: list[str], folder: Path) -> dict:
    results = {}
    for recipe in recipes:
        prepare(recipe, extra)
        for condition in conditions:
            outputs = {s: folder / f"{recipe}-{condition}-{s}" for s in ("time", "steps")}
            for schedule, output in outputs.items():  # one at a time
                run_one(command(recipe, output, schedule, extra), condition, folder / f"{output.name}.log")
            for schedule, output in outputs.items():
                results[recipe, condition, schedule] = outcome(output)
                shutil.rmtree(output / "checkpoints", ignore_errors=True)
            print(json.dumps({f"{recipe} {condition} {s}": _brief(recipe, results[recipe, condition, s])
                              for s in outputs}), flush=True)
    return results


def _brief(recipe: str, result: dict) -> dict:
    key, _, scale = METRIC[recipe]
    return {"test": round(scale * result["test"].get(key, float("nan")), 2), "steps": result["steps"],
            "stopped": result["stopped"], "elapsed": round(result["elapsed"], 1)}


def char_lm(conditions: list[str], extra: list[str], folder: Path) -> dict:
    """{(condition, schedule): outcome with the best validation bits per character}."""
    extra = [f"train.time_limit={CHAR_LM_LIMIT}", "train.sample_chars=0", *extra]
    prepare("char_lm", extra)
    found = {}
    for condition in conditions:
        for schedule in ("time", "steps"):
            output = folder / f"char_lm-{condition}-{schedule}"
            # the time schedule's train.steps is only a bound: lifted, so the budget ends the run (as
            # in the time-limited recipes); the step schedule keeps the recipe's 900 steps
            bound = [f"train.steps={CHAR_LM_STEP_BOUND}"] if schedule == "time" else []
            run_one(command("char_lm", output, schedule, [*extra, *bound]), condition,
                    folder / f"{output.name}.log")
            result = outcome(output)
            best = min(result["val"], key=lambda line: line["bits_per_char"])
            found[condition, schedule] = {**result, "bits_per_char": best["bits_per_char"]}
            shutil.rmtree(output / "checkpoints", ignore_errors=True)
            print(json.dumps({f"char_lm {condition} {schedule}": {
                k: found[condition, schedule][k] for k in ("steps", "stopped", "bits_per_char")}}), flush=True)
    return found


def char_lm_limit(extra: list[str]) -> float:
    """The char_lm runs' ``train.time_limit``: the last one ``--set`` or ``--budget`` gave, else 240."""
    given = [float(value.split("=", 1)[1]) for value in extra if value.startswith("train.time_limit=")]
    return given[-1] if given else CHAR_LM_LIMIT


def report(results: dict, recipes: list[str], conditions: list[str], lm: dict | None,
           lm_limit: float = CHAR_LM_LIMIT) -> str:
    lines = ["## Training to a time budget (`python -m benchmarks.time_budget`)", "",
             f"Machine: {machine()}. `python -m benchmarks.time_budget`: each recipe as shipped "
             f"(`schedule_by: time`) and with the step schedule it was tuned to before (`steps`, "
             f"{', '.join(f'{r} {STEP_PLAN[r]:,} steps' for r in recipes)}); test metric of the best "
             f"checkpoint. One run at a time, alone on the machine; slowed: pinned to one core with "
             f"`taskset -c 0` (torch then takes one thread), the other core idle; busy: unpinned, "
             f"beside a process spinning on one core.", "",
             "| recipe | machine | schedule | steps | training time | stopped by | test |",
             "|---|---|---|---|---|---|---|"]
    for recipe in recipes:
        key, label, scale = METRIC[recipe]
        for condition in conditions:
            for schedule in ("time", "steps"):
                r = results[recipe, condition, schedule]
                lines.append(f"| {recipe} | {condition} | {schedule} | {r['steps']:,} | {r['elapsed']:.0f} s | "
                             f"{r['stopped']} | {label} {scale * r['test'].get(key, float('nan')):.2f} % |")
    slower = [c for c in conditions if c != "quiet"] if "quiet" in conditions else []
    if slower:
        lines.append("")
    for recipe in recipes if slower else ():
        key, label, scale = METRIC[recipe]
        for condition in slower:
            for schedule in ("time", "steps"):
                quiet, slow = (scale * results[recipe, c, schedule]["test"].get(key, float("nan"))
                               for c in ("quiet", condition))
                lines.append(f"- {recipe}, `{schedule}`: {condition} {label} {slow:.2f} % against quiet "
                             f"{quiet:.2f} % ({slow - quiet:+.2f} points).")
    if lm:
        lines += ["", f"`recipes/char_lm.yaml` with `train.time_limit: {lm_limit:g}`, best validation bits per "
                  f"character (the time schedule's step bound lifted; the step schedule's plan is 900 steps):", "",
                  "| machine | schedule | steps | stopped by | bits/char |", "|---|---|---|---|---|"]
        for (condition, schedule), r in lm.items():
            lines.append(f"| {condition} | {schedule} | {r['steps']:,} | {r['stopped']} | {r['bits_per_char']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="g2p,tagging", help="comma-separated, of: g2p, tagging")
    parser.add_argument("--conditions", default="quiet,slowed,busy",
                        help=f"comma-separated, of: {', '.join(CONDITIONS)}")
    parser.add_argument("--char-lm", action="store_true", help=f"also char_lm.yaml with a {CHAR_LM_LIMIT} s limit")
    parser.add_argument("--budget", type=float, help="seconds: every run's train.time_limit instead of "
                                                     "its recipe's (a smoke run; writes nothing)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another recipe value for every run (a smoke run; writes nothing)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks/ alone")
    args = parser.parse_args(argv)
    recipes = [r for r in args.recipes.split(",") if r]
    conditions = [c for c in args.conditions.split(",") if c]
    unknown = sorted(set(recipes) - set(STEP_PLAN)) + sorted(set(conditions) - set(CONDITIONS))
    if unknown:
        parser.error(f"unknown recipe or condition: {', '.join(unknown)}")
    extra = [*args.set, *([f"train.time_limit={args.budget:g}"] if args.budget else [])]
    with tempfile.TemporaryDirectory(prefix="seqkit-time-budget-") as name:
        folder = Path(name)
        results = measure(recipes, conditions, extra, folder)
        lm = char_lm(conditions, extra, folder) if args.char_lm else None
        text = report(results, recipes, conditions, lm, char_lm_limit(extra))
    print(text)
    if not (extra or args.no_write):
        page = write_section("time-budget", text)
        print(f"written to {page}")
    return {"results": results, "char_lm": lm, "report": text}


if __name__ == "__main__":
    main()
