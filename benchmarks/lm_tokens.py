"""Characters or subwords: recipes/char_lm.yaml against recipes/subword_lm.yaml, as shipped.

    python -m benchmarks.lm_tokens [--quick] [--no-write]

Both recipes train the same model (embedding 64 -> 2-layer 256-unit LSTM -> linear, 64 streams
of 100 tokens, state carried) on the same python-docs text and validation split; one reads
characters, the other byte-level BPE pieces (1,024). Each runs as users run it, ``seqkit run
RECIPE`` in its own process (its data prepared beforehand, ``seqkit prepare``, so neither pays
for preparing), timed from outside; the subword recipe's steps are chosen so that its wall time
matches the character recipe's on a quiet 2-core machine. Both report ``bits_per_char`` on the
dev text: the loss of every dev token, summed and divided by the dev text's characters, so the two
compare whatever their tokens. Run it alone on the machine: the figures are wall-time bound.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import machine, write_section

REPO = Path(__file__).resolve().parent.parent
RECIPES = {"characters": "char_lm.yaml", "BPE 1,024": "subword_lm.yaml"}


def run(recipe: Path, output: Path, quick: bool) -> dict:
    seqkit = [sys.executable, "-m", "seqkit"]
    extra = ["--set", "train.steps=30", "--set", "train.eval_every=15"] if quick else []
    subprocess.run([*seqkit, "prepare", str(recipe), *extra], check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([*seqkit, "run", str(recipe), "--quiet", "--set", f"output={output}", "--set",
                    "train.sample_chars=0", *extra], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    val = [line for line in lines if line.get("split") == "val"]
    best = min(val, key=lambda line: line["loss"])
    return {"seconds": seconds, "steps": val[-1]["step"], "bits_per_char": best["bits_per_char"],
            "loss": best["loss"], "training_seconds": val[-1]["elapsed"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 steps each: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks/ alone")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="seqkit-lm-tokens-"))
    results = {label: run(REPO / "recipes" / name, folder / name.removesuffix(".yaml"), args.quick)
               for label, name in RECIPES.items()}
    rows = [f"| {label} (`recipes/{RECIPES[label]}`) | {r['steps']} | {r['seconds']:.0f} s | "
            f"{r['loss']:.4f} | **{r['bits_per_char']:.3f}** |" for label, r in results.items()]
    text = "\n".join([
        f"Machine: {machine()}. `python -m benchmarks.lm_tokens`: each recipe as shipped, `seqkit run` in its "
        "own process, its data prepared beforehand, wall time from outside, alone on the machine.", "",
        "| tokens | steps | wall time | best dev loss (nats per token) | best dev bits per character |",
        "|---|---|---|---|---|", *rows])
    print(text)
    if not (args.no_write or args.quick):
        page = write_section("lm-tokens", text)
        print(f"wrote {page}")
    return results


if __name__ == "__main__":
    main()
