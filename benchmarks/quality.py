"""Quality in a fixed wall-clock budget: the lecture's procedure against loss on every position.

    python -m benchmarks.quality [--quick] [--minutes M] [--threads N] [--no-write]

Both train the lecture's model (2-layer LSTM, 200 units, one-hot inputs over its 32 symbols,
Adam at 0.005, no clipping) on the same python-docs training split for the same wall-clock
budget (``train.time_limit``), through ``seqkit run``:

* lecture: 10,000 random 30-character windows drawn once, the full batch each step, the loss
  only on the character after each window (``recipes/char_lm_seed.yaml``);
* every position: 64 parallel streams read 100 characters at a time with the state carried,
  the loss on every character.

Each best checkpoint is then scored the same two ways on the validation split: bits per
character for the next character after 2,000 random 30-character windows (the lecture's own
measure, context-limited), and for every character of the split read as streams (full context).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks._report import machine, write_section
from seqkit.plugins.tasks.char_lm.metrics import char_metrics, next_char_loss, stream_loss
from seqkit.recipe import load_recipe
from seqkit.registry import get_registry
from seqkit.training.run import load_run, start_run

SEED_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "char_lm_seed.yaml"
EVERY_POSITION = ["train.batch_size=64", "train.window=100", "train.sampling=stream",
                  "train.carry_state=true", "train.pool=0", "train.loss_on=every", "train.eval_every=50"]


def train(name: str, overrides: list[str], seconds: float, folder: Path, quiet: bool):
    recipe = load_recipe(SEED_RECIPE, [f"output={folder / name}", "device=cpu", "train.steps=1000000",
                                       f"train.time_limit={seconds}", "train.sample_chars=0",
                                       *overrides])
    result = start_run(recipe, display="silent" if quiet else "log")
    return recipe, result


def score(run_dir: Path, val_tokens: torch.Tensor) -> dict[str, float]:
    _, task, model = load_run(run_dir, "best", device="cpu")
    with torch.no_grad():
        lecture = next_char_loss(model, val_tokens, 30, 2000)
        stream = stream_loss(model, val_tokens, 100, 64, carry=True)
    return {"next_char_bits": char_metrics(lecture)["bits_per_char"],
            "every_char_bits": char_metrics(stream)["bits_per_char"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 seconds each: a smoke run")
    parser.add_argument("--minutes", type=float, default=4.0, help="wall-clock budget per procedure")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    parser.add_argument("--quiet", action="store_true", help="no log lines while training")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks/")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seconds = 20.0 if args.quick else args.minutes * 60
    folder = Path(tempfile.mkdtemp(prefix="seqkit-quality-"))
    procedures = {
        "lecture (last character, 10k x 30 full batch)": ("lecture", ["train.eval_every=10"]),
        "every position (64 x 100 streams, state carried)": ("every", EVERY_POSITION),
    }
    rows = []
    for label, (name, overrides) in procedures.items():
        recipe, result = train(name, overrides, seconds, folder, args.quiet)
        task = get_registry().get("task", "char_lm")(recipe, torch.device("cpu"))
        task.prepare()  # the same validation split for both: same data settings and seed
        scores = score(folder / name, task.split_tokens["dev"])
        chars = result.step * recipe["train"]["batch_size"] * recipe["train"]["window"]
        rows.append((label, result.step, f"{result.elapsed:.0f}", f"{chars / 1e6:.1f}",
                     f"{scores['next_char_bits']:.3f}", f"{scores['every_char_bits']:.3f}"))

    from rich.console import Console
    from rich.table import Table

    headers = ("procedure", "steps", "seconds", "characters read (M)",
               "bits/char, next after 30 chars", "bits/char, every position")
    table = Table(title=f"char LM quality in {seconds / 60:.1f} minutes each")
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*map(str, row))
    Console().print(table)
    lecture_bits, every_bits = float(rows[0][4]), float(rows[1][4])
    print(f"every-position training: {every_bits:.3f} vs lecture {lecture_bits:.3f} bits/char "
          f"on the lecture's own measure ({lecture_bits / every_bits:.2f}x)")
    if args.no_write or args.quick:
        return
    lines = ["## Quality in a fixed budget (`python -m benchmarks.quality`)", "",
             f"Machine: {machine()}.", "",
             f"Same model (2x200 LSTM, one-hot over the lecture's 32 symbols, Adam 0.005), same "
             f"python-docs split, {seconds / 60:.1f} minutes of training each, best checkpoint scored "
             f"on the validation split.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    write_section("quality", "\n".join(lines))


if __name__ == "__main__":
    main()
