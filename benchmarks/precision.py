"""Training steps in fp32 and in bf16-mixed precision (``train.precision``), side by side.

    python -m benchmarks.precision [RECIPE] [--repeats N] [--threads N] [--json]

Two trainers of the recipe's task (default recipes/g2p_full.yaml) start from the same weights,
one per precision, and take the trainer's own optimizer steps (``Trainer._optimizer_step``:
batch, forward, backward, clipping, optimizer) on the same batches, alternating in paired
rounds; the ratio is the median of per-round ratios. A large matrix product in float32 and in
bfloat16 shows what the hardware offers (a CPU with AMX, or a GPU since Ampere, multiplies
bfloat16 many times faster). Nothing is written to docs/benchmarks/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._report import machine, paired_rounds
from seqkit.device import flush_denormals, resolve_device
from seqkit.recipe import load_recipe
from seqkit.training.progress import Silent
from seqkit.training.run import _task
from seqkit.training.trainer import Trainer

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "g2p_full.yaml"


def matmul_gflops(dtype: torch.dtype, device: torch.device, size=(2048, 576, 2048), repeats=20) -> float:
    """Throughput of an (m x k) by (k x n) product in ``dtype``."""
    m, k, n = size
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9


def trainer_for(recipe: dict, precision: str, device: torch.device, folder: Path) -> Trainer:
    recipe = {**recipe, "train": {**recipe["train"], "precision": precision}}
    torch.manual_seed(recipe["seed"])  # the same initial weights for both
    task = _task(recipe, device)
    task.prepare()
    model = task.build_model().to(device)
    return Trainer(recipe, task, model, folder / precision, Silent(1), device)


def compare(recipe_path: str, repeats: int) -> dict:
    recipe = load_recipe(recipe_path)
    device = resolve_device(recipe["device"])
    flush_denormals(device)  # as `seqkit run` does
    with tempfile.TemporaryDirectory(prefix="seqkit-precision-") as folder:
        trainers = {p: trainer_for(recipe, p, device, Path(folder)) for p in ("fp32", "bf16-mixed")}
        params = {p: [q for q in t.model.parameters() if q.requires_grad] for p, t in trainers.items()}
        times = paired_rounds({p: (lambda p=p: trainers[p]._optimizer_step(params[p])) for p in trainers},
                              repeats)
        losses = {p: float(t.running) / max(1, t.running_tokens) for p, t in trainers.items()}
    ratio = statistics.median(f / b for f, b in zip(times["fp32"], times["bf16-mixed"]))
    return {"recipe": str(recipe_path), "machine": machine(), "steps": repeats + 1,
            "ms_per_step": {p: 1e3 * statistics.median(t) for p, t in times.items()},
            "speedup": ratio, "mean_training_loss": losses,
            "matmul_gflops": {str(d).removeprefix("torch."): matmul_gflops(d, device)
                              for d in (torch.float32, torch.bfloat16)}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default=str(RECIPE))
    parser.add_argument("--repeats", type=int, default=50, help="paired rounds (default 50)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = compare(args.recipe, args.repeats)
    if args.json:
        print(json.dumps(result))
        return
    ms, loss, gflops = result["ms_per_step"], result["mean_training_loss"], result["matmul_gflops"]
    print(f"{result['machine']}\n{result['recipe']}: {result['steps']} steps each")
    for p in ms:
        print(f"  {p:>10}: {ms[p]:8.1f} ms a step, mean training loss {loss[p]:.4f}")
    print(f"  bf16-mixed is {result['speedup']:.2f}x faster a step (median of paired rounds)")
    print(f"  matrix product: {gflops['float32']:.0f} GFLOPS float32, {gflops['bfloat16']:.0f} bfloat16")


if __name__ == "__main__":
    main()
