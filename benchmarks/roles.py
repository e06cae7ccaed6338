"""The lecture's word-order claim, measured: a bag-of-words tagger against recurrent cells.

recipes/roles.yaml (the tagging task on the generated ``roles`` dataset) is trained with each cell
and seed, and each run's best checkpoint is scored on the test split: role F1 is the span F1 of
the role tags, which with one role per sentence (at the question) is the share of questions
answered right; chance is 0.5. ``data.tagged: phrases`` (the sentence's noun phrases tagged, no
question) is run for the bag of words and the LSTM as the contrast.

    python -m benchmarks.roles                 # every cell, 3 seeds; writes docs/benchmarks/lecture.md
    python -m benchmarks.roles --quick --json  # a smoke run
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._report import argument_parser, machine, write_section
from seqkit.recipe import load_recipe
from seqkit.training.run import start_run

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "roles.yaml"
QUESTION_CELLS = ("bow", "tanh", "residual", "gated", "lstm", "gru")
PHRASE_CELLS = ("bow", "lstm")
QUICK = ["train.steps=40", "train.eval_every=40", "data.train_sentences=500",
         "data.dev_sentences=100", "data.test_sentences=100"]


def train_and_score(cell: str, tagged: str, seed: int, folder: Path, extra: list[str]) -> dict:
    recipe = load_recipe(RECIPE, [f"model.cell={cell}", f"data.tagged={tagged}", f"seed={seed}",
                                  f"output={folder}", *extra])
    start = time.perf_counter()
    result = start_run(recipe, display="silent")
    metrics = result.test["test"]["metrics"]
    return {"role_f1": metrics["span_f1"], "accuracy": metrics["accuracy"],
            "seconds": time.perf_counter() - start, "steps": result.step}


def measure(cells: tuple[str, ...], tagged: str, seeds: range, extra: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for cell in cells:
            runs = []
            for seed in seeds:
                runs.append(train_and_score(cell, tagged, seed, Path(scratch) / f"{tagged}-{cell}-{seed}", extra))
                print(f"{tagged} {cell} seed {seed}: role F1 {runs[-1]['role_f1']:.3f} "
                      f"({runs[-1]['seconds']:.0f} s)", file=sys.stderr, flush=True)
            f1 = [r["role_f1"] for r in runs]
            rows.append({"cell": cell, "tagged": tagged, "seeds": len(runs),
                         "role_f1": statistics.mean(f1), "role_f1_min": min(f1), "role_f1_max": max(f1),
                         "accuracy": statistics.mean(r["accuracy"] for r in runs),
                         "seconds": statistics.mean(r["seconds"] for r in runs), "runs": runs})
    return rows


def markdown(rows: list[dict], seeds: int) -> str:
    lines = ["| cell | tagged | role F1, test (mean of seeds; min–max) | token accuracy | seconds per run |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['cell']}` | {r['tagged']} | {r['role_f1']:.3f} ({r['role_f1_min']:.3f}–"
                     f"{r['role_f1_max']:.3f}) | {r['accuracy']:.3f} | {r['seconds']:.0f} |")
    return (f"## The word-order claim (`python -m benchmarks.roles`)\n\nMachine: {machine()}\n\n"
            f"`recipes/roles.yaml` with each cell, {seeds} seed(s) each: a one-layer, left-to-right "
            f"tagger on generated sentences such as \"the hot dog ate the man ? man\", whose last "
            f"word is tagged with the role of the noun asked about (chance: 0.5). `bow` is "
            f"h_t = h_{{t-1}} + W x_t: at the question it holds the sum of the sentence's words, the "
            f"same for \"the man ate the hot dog\" and \"the hot dog ate the man\". With `tagged: "
            f"phrases` the sentence's own noun phrases are tagged: there the words *so far* tell an "
            f"agent (no verb yet) from a patient, and a bag of prefixes is far above chance, if not "
            f"exact.\n\n"
            + "\n".join(lines))


def main(argv=None) -> None:
    parser = argument_parser(__doc__, "tiny data and 40 steps, one seed (smoke run)",
                             "seeds per cell (default 3)", "tiny models are")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--cells", help="comma-separated cells for the question rows "
                                        f"(default: {','.join(QUESTION_CELLS)})")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = range(1 if args.quick else (args.repeats or 3))
    extra = QUICK if args.quick else []
    cells = tuple(args.cells.split(",")) if args.cells else QUESTION_CELLS
    rows = measure(cells, "question", seeds, extra)
    rows += measure(tuple(c for c in PHRASE_CELLS if c in cells), "phrases", seeds, extra)
    if args.json:
        print(json.dumps({"machine": machine(), "seeds": len(seeds), "rows": rows}))
    else:
        print(markdown(rows, len(seeds)))
    if not (args.quick or args.no_write):
        write_section("roles", markdown(rows, len(seeds)))


if __name__ == "__main__":
    main()
