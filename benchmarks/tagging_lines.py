"""The Python highlighter on single lines: what ``seqkit decode --input`` is given, one line at a
time, scored against Python's own ``tokenize`` (issue 24).

    python -m benchmarks.tagging_lines [--run DIR] [--compare DIR ...] [--checkpoint best]
        [--package rich] [--lines N] [--seed S] [--device cpu] [--threads N] [--quick] [--json]
        [--no-write]

Without ``--run``, ``recipes/tagging.yaml`` is trained first (``seqkit.training.run.start_run``, the
recipe as it is: its steps and time limit) into a temporary folder; ``--run`` scores a trained
run instead (its best checkpoint, or ``--checkpoint``). ``--compare`` scores more runs on the same
lines, a table row each (the recipe trained with other data options, say).

Lines: every distinct single logical line of an installed package that is not in the standard
library (default ``rich``, a dependency of every seqkit install, so never in python-tokens'
training data): each statement (a ``NEWLINE`` token) that lies on one physical line, without its
indentation and newline. Blank and comment-only lines are left out (they are not statements);
lines continued over several physical lines (brackets, backslashes, triple-quoted strings) too,
as one ``--input`` cannot hold them. ``--lines N``: a fixed random sample of N of them (``--seed``).

Each line is one input of the run's task ``decode`` (the code ``seqkit decode --input`` runs, with
the recipe's strategy), and its tags are compared with the classes ``tokenize`` gives the line on
its own (``_python_token_classes``, python-tokens' labels): character accuracy, per class (recall,
and F1 by seqkit's ``TagCounts``), and the share of lines tagged wholly right. The example lines
of ``seqkit decode runs/tagging --input "..."`` in README.md, docs/tasks/tagging.md and
recipes/tagging.yaml are scored too: each must come out exactly as ``tokenize`` classes it.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import random
import re
import sys
import sysconfig
import tempfile
import time
import tokenize
import warnings
from pathlib import Path

import torch
import yaml

from benchmarks._report import machine, write_section
from seqkit.decoding import build_decoder
from seqkit.plugins.datasets import _python_token_classes as token_classes
from seqkit.plugins.tasks.tagging.metrics import TagCounts
from seqkit.plugins.tasks.tagging.output import tag_letters
from seqkit.recipe import load_recipe
from seqkit.registry import get_registry
from seqkit.training.run import load_run, start_run

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "tagging.yaml"
EXAMPLE_FILES = (REPO / "README.md", REPO / "docs" / "tasks" / "tagging.md", RECIPE)
EXAMPLE = re.compile(r'seqkit decode runs/tagging --input "([^"]+)"')
PACKAGE = "rich"
# --quick: a smoke run, not a measurement
QUICK_TRAINING = ["data.max_files=20", "data.test_files=0", "model.hidden_size=16", "train.steps=6",
                  "train.eval_every=6", "train.warmup_steps=0", "train.time_limit=60"]
QUICK_LINES = 200
# one letter per class, as seqkit decode shows the tags off a terminal
LETTERS = tag_letters(token_classes.CLASSES)


def package_files(package: str) -> list[Path]:
    """The ``.py`` files of an installed package, refused if it is part of the standard library."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"--package: {package} is not an installed package")
    root = Path(next(iter(spec.submodule_search_locations))).resolve()
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    if root.is_relative_to(stdlib) and not any(p in root.parts for p in ("site-packages", "dist-packages")):
        raise SystemExit(f"--package: {package} is in the standard library ({root}), which "
                         f"python-tokens trains on")
    return sorted(root.rglob("*.py"))


def single_lines(source: str) -> list[str]:
    """The statements of ``source`` that lie on one physical line, without indentation and newline
    (in order, repeats kept). Read from tokenize's tokens: a NEWLINE token ends a statement, and
    one whose first token is on the NEWLINE's row spans one physical line."""
    lines, physical = [], source.split("\n")  # tokenize's rows: decode_source made every newline \n
    first_row = None  # row of the current statement's first token
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NEWLINE:
            if first_row == tok.start[0] and first_row <= len(physical):
                lines.append(physical[first_row - 1].strip(" \t\f"))
            first_row = None
        elif first_row is None and tok.type not in skip:
            first_row = tok.start[0]
    return [line for line in lines if line]


def package_lines(package: str) -> list[str]:
    """The package's distinct single lines, sorted."""
    found = set()
    for path in package_files(package):
        try:
            found.update(single_lines(token_classes.decode_source(path.read_bytes())))
        except (token_classes.TokenizeFailed, SyntaxError, UnicodeDecodeError):
            continue  # a file this Python does not tokenize: left out
    return sorted(line for line in found if _tokenizes(line))


def sample(lines: list[str], count: int = 0, seed: int = 0) -> list[str]:
    """A fixed sample of ``count`` of ``lines`` (sorted), or all of them."""
    return sorted(random.Random(seed).sample(lines, count)) if 0 < count < len(lines) else lines


def draw_lines(package: str, count: int = 0, seed: int = 0) -> list[str]:
    """The package's distinct single lines, sorted; ``count``: a fixed sample of that many."""
    return sample(package_lines(package), count, seed)


def _tokenizes(line: str) -> bool:
    try:
        token_classes.label_source(line)
    except token_classes.TokenizeFailed:
        return False
    return True


def reference(line: str) -> list[str]:
    """The class ``tokenize`` gives each character of ``line`` read on its own."""
    return [token_classes.CLASSES[c] for c in token_classes.label_source(line).classes]


def example_lines(paths=EXAMPLE_FILES) -> list[str]:
    """The inputs of ``seqkit decode runs/tagging --input "..."`` in the README, the docs and the recipe."""
    found = [line for path in paths for line in EXAMPLE.findall(Path(path).read_text(encoding="utf-8"))]
    return list(dict.fromkeys(found))


def tag(run_dir: Path, lines: list[str], device: str, checkpoint: str = "best") -> tuple[list, tuple]:
    """(each line's tags, the run's tag names): every line one input of the task's ``decode``, as
    ``seqkit decode --input LINE`` decodes it, with the recipe's strategy and its options."""
    run = load_run(run_dir, checkpoint, device)
    recipe_decode = run.recipe.get("decode", {})
    strategy = recipe_decode["strategy"]
    schema = get_registry().get("decoder", strategy).options
    decoder = build_decoder(strategy, {k: v for k, v in recipe_decode.items() if k in schema})
    with warnings.catch_warnings():  # characters never seen in training: counted, not warned
        warnings.simplefilter("ignore")
        report = run.task.decode(run.model, lines, decoder)
    return [entry["tags"] for entry in report["results"]], tuple(run.task.tag_names)


def score(lines: list[str], predicted: list[list[str]], tag_names: tuple) -> dict:
    """Character accuracy, per-class recall and F1, and the share of lines wholly right, of
    ``predicted`` against ``reference`` of each line."""
    index = {name: i for i, name in enumerate(tag_names)}
    gold = [torch.tensor([index[t] for t in reference(line)]) for line in lines]
    guess = [torch.tensor([index[t] for t in tags], dtype=torch.long) for tags in predicted]
    lengths = torch.tensor([len(g) for g in gold])
    if any(len(g) != len(p) for g, p in zip(gold, guess)):
        raise ValueError("a line's tags do not have one tag per character")
    gold = torch.nn.utils.rnn.pad_sequence(gold, batch_first=True)
    guess = torch.nn.utils.rnn.pad_sequence(guess, batch_first=True)
    counts = TagCounts(tag_names, scheme="none")
    counts.update(gold, guess, lengths)
    mask = torch.arange(gold.shape[1]) < lengths.unsqueeze(1)
    right_lines = ((gold == guess) | ~mask).all(1)
    per_class = {name: {"characters": row["support"], "recall": row["recall"], "f1": row["f1"]}
                 for name, row in counts.per_tag().items() if row["support"]}
    return {"lines": len(lines), "characters": int(lengths.sum()),
            "accuracy": counts.compute()["accuracy"], "lines_right": float(right_lines.double().mean()),
            "per_class": per_class}


def letters(tags: list[str]) -> str:
    return "".join(LETTERS[t] for t in tags)


def examples(lines: list[str], predicted: list[list[str]]) -> list[dict]:
    return [{"line": line, "exact": tags == reference(line), "tags": letters(tags),
             "reference": letters(reference(line))} for line, tags in zip(lines, predicted)]


def train(folder: Path, quick: bool, device: str) -> tuple[Path, dict]:
    """Train recipes/tagging.yaml as it is (``--quick``: tiny) into ``folder``."""
    overrides = [f"output={folder}", f"device={device}", *(QUICK_TRAINING if quick else [])]
    started = time.perf_counter()
    result = start_run(load_recipe(RECIPE, overrides), display="silent" if quick else "log")
    return folder, {"steps": result.step, "stopped": result.stopped, "train_seconds": result.elapsed,
                    "wall_seconds": time.perf_counter() - started}


def run_facts(run_dir: Path) -> dict:
    """What the run's metrics.jsonl says of its training: steps, why it stopped, its time, the
    last dev accuracy (on packed sequences of the dev files), and the recipe's data options."""
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    facts = {"data": {k: v for k, v in recipe["data"].items() if k not in ("dataset", "scheme")}}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "elapsed" in entry:
            facts["train_seconds"] = entry["elapsed"]
        if entry.get("split") in ("val", "test") and "accuracy" in entry:
            facts[f"{entry['split']}_accuracy"] = entry["accuracy"]
        if entry.get("split") == "end":
            facts.update(steps=entry["step"], stopped=entry["stopped"])
    return facts


def measure(run_dir: Path, package: str, count: int, seed: int, device: str, checkpoint: str) -> dict:
    everything, shown = package_lines(package), example_lines()
    lines = sample(everything, count, seed)
    started = time.perf_counter()
    predicted, tag_names = tag(run_dir, lines + shown, device, checkpoint)
    seconds = time.perf_counter() - started
    result = score(lines, predicted[:len(lines)], tag_names)
    return {**result, "package": package, "package_lines": len(everything), "decode_seconds": seconds,
            "examples": examples(shown, predicted[len(lines):])}


def percent(value: float) -> str:
    return f"{100 * value:.2f}"


def markdown(result: dict, command: str) -> str:
    run = result["run"]
    trained = (f"{run['steps']} steps in {run['train_seconds']:.0f} s of training "
               f"(stopped: {run['stopped']})" if "steps" in run else "a given run")
    options = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in run["data"].items())
    held_out = " and ".join(f"{name} {percent(run[key])} %" for name, key in
                            (("dev", "val_accuracy"), ("test", "test_accuracy")) if key in run)
    held_out = f"; on the packed sequences of held-out files: {held_out}" if held_out else ""
    which = (f"The {result['lines']:,}" if result["lines"] == result["package_lines"] else
             f"A fixed sample of {result['lines']:,} of the {result['package_lines']:,}")
    rows = ["| class | characters | right % | F1 |", "|---|---|---|---|"]
    rows += [f"| {name} | {row['characters']:,} | {percent(row['recall'])} | {row['f1']:.4f} |"
             for name, row in result["per_class"].items()]
    shown = [f"- `{e['line']}`: {'exact' if e['exact'] else 'not exact'}"
             + ("" if e["exact"] else f" (tags `{e['tags']}`, tokenize `{e['reference']}`)")
             for e in result["examples"]]
    compared = comparison([result, *result["compared"]]) if result["compared"] else []
    return "\n".join([
        f"## The Python highlighter on single lines (`{command}`)", "",
        f"Machine: {machine()}.", "",
        f"The run (python-tokens, {options}): {trained}{held_out}. {which} distinct single "
        f"logical lines of `{result['package']}` (not in the standard library, so never trained on; "
        f"one physical line each, indentation stripped, blank and comment-only lines left out; "
        f"{result['characters']:,} characters), each decoded as one input as `seqkit decode --input` "
        f"decodes it ({result['decode_seconds']:.0f} s in all), against the classes `tokenize` gives "
        f"the line alone: **{percent(result['accuracy'])} %** of characters right, "
        f"{percent(result['lines_right'])} % of lines wholly right.", "",
        *rows, "",
        "The example lines of the README, the docs and the recipe, against `tokenize` ("
        + ", ".join(f"`{letter}` {name}" for name, letter in LETTERS.items()) + "):", "", *shown,
        *compared])


def comparison(results: list[dict]) -> list[str]:
    """Markdown lines: the scored run against the ``--compare`` runs, a row each."""
    def held_out(run: dict, key: str) -> str:
        return percent(run[key]) if key in run else ""

    rows = ["", "The same lines through other runs:", "",
            "| run | data options | steps | dev % | test % | single lines: characters right % | "
            "lines wholly right % | example lines exact |", "|---|---|---|---|---|---|---|---|"]
    for result in results:
        run = result["run"]
        options = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in run["data"].items()
                            if k in ("whole_lines", "single_lines", "test_files"))
        exact = sum(e["exact"] for e in result["examples"])
        rows.append(f"| {run.get('path', 'trained here')} | {options} | {run.get('steps', '')} | "
                    f"{held_out(run, 'val_accuracy')} | {held_out(run, 'test_accuracy')} | "
                    f"{percent(result['accuracy'])} | {percent(result['lines_right'])} | "
                    f"{exact} of {len(result['examples'])} |")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"a tiny run (or --run's) and {QUICK_LINES} lines: a smoke run, writes nothing")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks/")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default 0: torch's, as seqkit run trains)")
    parser.add_argument("--run", type=Path, help="score this trained run (default: train recipes/tagging.yaml)")
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="RUN",
                        help="also score these runs on the same lines, one row each (say, the "
                             "recipe trained with other data options)")
    parser.add_argument("--checkpoint", default="best", help="the run's checkpoint (default best)")
    parser.add_argument("--package", default=PACKAGE, help=f"draw the lines from this installed "
                                                           f"package's source (default {PACKAGE})")
    parser.add_argument("--lines", type=int, default=0, help="a fixed sample of this many lines (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument("--device", default="cpu", help="where to train and decode (default cpu)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of text")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    count = args.lines or (QUICK_LINES if args.quick else 0)
    with tempfile.TemporaryDirectory(prefix="seqkit-tagging-lines-") as folder:
        if args.run is None:
            run_dir, run = train(Path(folder) / "run", args.quick, args.device)
            run.update({key: value for key, value in run_facts(run_dir).items() if key not in run})
        else:
            run_dir, run = args.run, {**run_facts(args.run), "path": str(args.run)}
        result = {**measure(run_dir, args.package, count, args.seed, args.device, args.checkpoint),
                  "run": run}
    result["compared"] = [{**measure(other, args.package, count, args.seed, args.device, args.checkpoint),
                           "run": {**run_facts(other), "path": str(other)}} for other in args.compare]
    command = " ".join(["python -m benchmarks.tagging_lines", *(["--run", str(args.run)] if args.run else []),
                        *(["--compare", *map(str, args.compare)] if args.compare else [])])
    text = markdown(result, command)
    if args.json:
        print(json.dumps({"machine": machine(), **result}, indent=2))
    else:
        print(text)
    for entry in result["examples"]:
        if not entry["exact"]:
            print(f"not exact: {entry['line']!r}\n  tags     {entry['tags']}\n  tokenize {entry['reference']}",
                  file=sys.stderr)
    if not (args.no_write or args.quick):
        write_section("tagging-lines", text)


if __name__ == "__main__":
    main()
