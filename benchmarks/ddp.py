"""Data-parallel scaling: char_lm training tokens per second on 1 and 2 processes (torchrun).

    python -m benchmarks.ddp [--quick] [--steps N] [--repeats N] [--no-write]

The default ``recipes/char_lm.yaml`` model (embedding 64 -> 2-layer 256-unit LSTM -> linear,
windows of 100 characters, state carried) trains ``--steps`` steps from the command line users
type: ``seqkit run`` for one process, ``torchrun --standalone --nproc-per-node 2 -m seqkit run``
for two, each process with one thread (``OMP_NUM_THREADS=1``). Three settings:

* 1 process, batch 64;
* 2 processes, the same global batch 64 (32 streams each): the same training, split;
* 2 processes, global batch 128 (64 streams each): each process does what the single one did.

Throughput is what the run logs in ``metrics.jsonl``: the tokens of all processes per second of
training between log lines, the first interval (warm-up) left out; process start-up, data
loading and the final evaluation are outside it. Settings alternate, repeat after repeat; each
keeps its best median (a busy shared CPU only ever slows a repeat down). Scaling efficiency is
tokens/s on 2 processes over twice the tokens/s on 1: 1.0 is a perfect doubling. The load
average before and after is printed, since other work on the machine takes cores away.

What data parallelism itself adds to a step is communication: the all-reduce of the gradients
(DistributedDataParallel) and seqkit's two small all-reduces (the step's token count and loss, and
the stop decision). Two processes time them alone (``--collectives``, started through torchrun),
to set against the time of a step.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from benchmarks._report import machine, write_section

REPO = Path(__file__).resolve().parent.parent


def write_recipe(folder: Path, name: str, steps: int, batch: int, quick: bool) -> Path:
    recipe = yaml.safe_load((REPO / "recipes" / "char_lm.yaml").read_text())
    recipe.update(device="cpu", output=str(folder / name))
    recipe["train"].update(steps=steps, batch_size=batch, eval_every=steps, log_every=max(1, steps // 6),
                           sample_chars=0)
    if quick:
        recipe["model"].update(hidden_size=32, embedding_size=16)
        recipe["train"]["window"] = 20
        recipe["data"]["max_chars"] = 60_000
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def train(recipe: Path, processes: int, folder: Path) -> float:
    """The run's median tokens/s over its log lines after the first."""
    launcher = [sys.executable, "-m", "seqkit"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
        str(processes), "-m", "seqkit"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_dir = Path(yaml.safe_load(recipe.read_text())["output"])
    shutil.rmtree(run_dir, ignore_errors=True)  # the previous repeat's
    subprocess.run([*launcher, "run", str(recipe), "--quiet"], env=env, cwd=folder, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [line["tokens_per_s"] for line in lines if line["split"] == "train"][1:]
    return statistics.median(speeds)


def collectives() -> None:
    """Under torchrun with 2 processes: median seconds of an all-reduce of the model's gradients
    and of a 2-number one, printed as JSON by rank 0."""
    import torch.distributed as dist

    from seqkit.plugins.tasks.char_lm.model import CharLanguageModel
    from seqkit.registry import get_registry

    dist.init_process_group("gloo")
    model = CharLanguageModel(100, 64, get_registry().get("cell", "lstm"), 256, 2)
    times = {}
    for name, tensor in (("gradients", torch.randn(sum(p.numel() for p in model.parameters()))),
                         ("two numbers", torch.zeros(2, dtype=torch.float64))):
        for _ in range(5):  # warm-up: connections, buffers
            dist.all_reduce(tensor)
        rounds = []
        for _ in range(41):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(tensor)
            rounds.append(time.perf_counter() - start)
        times[name] = statistics.median(rounds)
    if dist.get_rank() == 0:
        print(json.dumps({"parameters": sum(p.numel() for p in model.parameters()), **times}))
    dist.destroy_process_group()


def time_collectives(folder: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node", "2", "-m", "benchmarks.ddp", "--collectives"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO, check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model and few steps: a smoke run")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks/")
    parser.add_argument("--collectives", action="store_true",
                        help="(run by this script through torchrun) time the all-reduces alone")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as each training process has (machine() reports it)
    if args.collectives:
        collectives()
        return
    steps, repeats = (12, 1) if args.quick else (args.steps, args.repeats)
    folder = Path(tempfile.mkdtemp(prefix="seqkit-ddp-"))
    settings = {  # name: (processes, global batch)
        "1 process, batch 64": (1, 64),
        "2 processes, global batch 64 (32 each)": (2, 64),
        "2 processes, global batch 128 (64 each)": (2, 128),
    }
    recipes = {name: write_recipe(folder, f"run{i}", steps, batch, args.quick)
               for i, (name, (_, batch)) in enumerate(settings.items())}
    before = load()
    speeds: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(repeats):  # alternate, so a busy CPU slows every setting alike
        for name, (processes, _) in settings.items():
            speeds[name].append(train(recipes[name], processes, folder))
    after = load()
    communication = time_collectives(folder)

    single = max(speeds["1 process, batch 64"])
    rows = []
    for name, (processes, _) in settings.items():
        best = max(speeds[name])
        efficiency = best / (processes * single)
        rows.append(f"| {name} | {best:,.0f} | {statistics.median(speeds[name]):,.0f} | {efficiency:.2f} |")
    step = 64 * 100 / single  # seconds per step of 64 windows of 100 characters, on one process
    per_step = communication["gradients"] + 2 * communication["two numbers"]
    note = (f"Communication alone, 2 processes: an all-reduce of the {communication['parameters']:,} "
            f"gradients takes {1000 * communication['gradients']:.1f} ms and one of two numbers "
            f"{1e6 * communication['two numbers']:.0f} us, so {1000 * per_step:.1f} ms a step: "
            f"{100 * per_step / step:.1f}% of the {1000 * step:.0f} ms one process takes for a step "
            f"of batch 64. The rest of the gap is the CPU: two cores, shared with whatever else runs (the "
            f"load average), and at a global batch of 64 half the rows in each matrix product.")
    print(f"load average before {before}, after {after}")
    print("\n".join(rows))
    print(note)
    if args.no_write:
        return
    write_section("ddp", "\n".join([
        "## Data-parallel scaling (`python -m benchmarks.ddp`)",
        "",
        f"Machine: {machine()}. Load average (1, 5, 15 min) {before} before, {after} after.",
        "",
        f"char_lm with the `recipes/char_lm.yaml` model (2x256 LSTM, windows of 100), {steps} steps, "
        f"one thread per process, gloo; tokens of all processes per second of training, median over "
        f"the log lines after the first; {repeats} alternating repeats, best shown. Efficiency: "
        f"tokens/s over (processes x the 1-process tokens/s).",
        "",
        "| setting | tokens/s (best) | tokens/s (median) | scaling efficiency |",
        "|---|---|---|---|",
        *rows,
        "",
        note,
    ]))


if __name__ == "__main__":
    main()
