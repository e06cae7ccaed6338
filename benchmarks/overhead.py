"""Trainer overhead: the seqkit trainer against a hand-written torch training loop.

    python -m benchmarks.overhead [--quick] [--steps N] [--repeats N] [--threads N] [--no-write]

Both train the same model (embedding 64 -> 2-layer 256-unit LSTM -> linear, the default
``recipes/char_lm.yaml`` architecture) on the same python-docs token streams, 64 windows of
100 characters per step with the state carried between windows, Adam, cosine schedule,
gradient clipping, a training-loss log line every 20 steps, then one evaluation of the
validation split and one checkpoint at the end. The hand-written loop is what a careful user
writes with ``nn.Embedding``, ``nn.LSTM`` and ``nn.Linear``; seqkit runs ``Trainer.fit()``
(metrics.jsonl, atomic checkpoints, task batches). Setup (reading data, building models) is
outside the timings. The two alternate, repeat after repeat, and each keeps its best time
(a busy shared CPU only ever slows a repeat down); medians are shown beside.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks._report import machine, write_section
from seqkit.plugins.tasks.char_lm.metrics import stream_loss
from seqkit.recipe import resolve
from seqkit.registry import get_registry
from seqkit.training.progress import Silent
from seqkit.training.trainer import Trainer, lr_factor

TARGET = 1.05


def recipe(steps: int, hidden: int, batch: int, window: int, output: str) -> dict:
    data = {"task": "char_lm", "seed": 0, "device": "cpu", "output": output,
            "model": {"cell": "lstm", "hidden_size": hidden, "layers": 2, "embedding_size": 64},
            "train": {"steps": steps, "batch_size": batch, "window": window, "lr": 0.005,
                      "schedule": "cosine", "warmup_steps": 5, "clip_grad_norm": 1.0,
                      "eval_every": steps, "log_every": 20, "sample_chars": 0}}
    return resolve(data, get_registry())


class HandWrittenLM(nn.Module):
    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 64)
        self.lstm = nn.LSTM(64, hidden, 2, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embedding(x), state)
        return self.head(out), state


def hand_written(task, r: dict, folder: Path) -> float:
    """Seconds for the training loop, the final evaluation and checkpoint, written by hand."""
    train = r["train"]
    torch.manual_seed(0)
    model = HandWrittenLM(task.tokenizer.vocab_size, r["model"]["hidden_size"])
    opt = torch.optim.Adam(model.parameters(), lr=train["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, train))
    # a user's loop holds the streams in memory as one tensor (seqkit reads them from a memory map)
    streams, window = torch.from_numpy(np.asarray(task.streams, dtype=np.int64)), train["window"]
    per_epoch = (streams.shape[1] - 1) // window
    log = open(folder / "log.txt", "w")
    start = time.perf_counter()
    state = None
    for step in range(train["steps"]):
        i = step % per_epoch
        x = streams[:, i * window:(i + 1) * window]
        y = streams[:, i * window + 1:(i + 1) * window + 1]
        logits, state = model(x, None if i == 0 else state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train["clip_grad_norm"])
        opt.step()
        sched.step()
        if (step + 1) % train["log_every"] == 0:
            log.write(f"{step + 1} {loss.item()}\n")
    model.eval()
    val = stream_loss(model, task.split_tokens["dev"], window, train["batch_size"], carry=True)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "val": val},
               folder / "checkpoint.pt")
    elapsed = time.perf_counter() - start
    log.close()
    return elapsed


def seqkit_trainer(task, r: dict, folder: Path) -> float:
    """Seconds for ``Trainer.fit()`` on the same task, with a fresh run directory."""
    torch.manual_seed(0)
    task.carry = None
    model = task.build_model()
    run_dir = folder / f"run-{time.perf_counter_ns()}"
    run_dir.mkdir()
    trainer = Trainer(r, task, model, run_dir, Silent(r["train"]["steps"]), torch.device("cpu"))
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model and few steps: a smoke run")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks/")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    hidden, batch, window, steps, repeats = 256, 64, 100, args.steps, args.repeats
    if args.quick:
        hidden, batch, window, steps, repeats = 32, 16, 50, 10, 2
    folder = Path(tempfile.mkdtemp(prefix="seqkit-overhead-"))
    r = recipe(steps, hidden, batch, window, str(folder / "run"))
    task = get_registry().get("task", "char_lm")(r, torch.device("cpu"))
    task.prepare()
    times = {"hand-written loop": [], "seqkit trainer": []}
    for _ in range(repeats):  # alternate, so a busy CPU slows both alike
        times["hand-written loop"].append(hand_written(task, r, folder))
        times["seqkit trainer"].append(seqkit_trainer(task, r, folder))
    base = statistics.median(times["hand-written loop"])
    best_base = min(times["hand-written loop"])

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"training overhead: {steps} steps of {batch}x{window} characters, "
                        f"2x{hidden} LSTM")
    for column in ("loop", "best s", "median s", "ms/step (best)", "ratio (best)", "ratio (median)"):
        table.add_column(column)
    rows = []
    for name, values in times.items():
        median, best = statistics.median(values), min(values)
        row = (name, f"{best:.2f}", f"{median:.2f}", f"{1000 * best / steps:.0f}",
               f"{best / best_base:.3f}x", f"{median / base:.3f}x")
        table.add_row(*row)
        rows.append(row)
    Console().print(table)
    ratio = min(times["seqkit trainer"]) / best_base
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"seqkit / hand-written = {ratio:.3f}x ({verdict} the {TARGET}x target)")
    if args.no_write or args.quick:
        return
    lines = ["## Trainer overhead (`python -m benchmarks.overhead`)", "",
             f"Machine: {machine()}.", "",
             f"{steps} optimizer steps of {batch}x{window} characters through a 2x{hidden} LSTM char LM, "
             f"plus one evaluation and one checkpoint; {repeats} alternating repeats.", "",
             "| loop | best s | median s | ms/step (best) | ratio (best) | ratio (median) |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"seqkit / hand-written, best against best: **{ratio:.3f}x** "
                  f"(target <= {TARGET}x: {verdict})."]
    write_section("overhead", "\n".join(lines))


if __name__ == "__main__":
    main()
