"""Dropout's forward and backward: torch.nn.Dropout against seqkit.Dropout, side by side.

    python -m benchmarks.dropout [--shape B,T,H] [--p P] [--recipe RECIPE] [--repeats N] [--threads N] [--json]

The default shape is what recipes/g2p_full.yaml drops out between its encoder layers (256 words,
12 letters, 2 x 256 features). Paired rounds on the same input and output gradient, in float32
and in bfloat16 (what a bf16-mixed step feeds it); the ratio is the median of per-round ratios.
With ``--recipe``, also whole training steps (the trainer's own, as benchmarks.precision takes
them) of two copies of the recipe's model, one with its seqkit.Dropout modules swapped for
torch.nn.Dropout. Nothing is written to docs/benchmarks/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from benchmarks._report import machine, paired_rounds
from benchmarks.precision import trainer_for
from seqkit import Dropout
from seqkit.device import flush_denormals, resolve_device
from seqkit.recipe import load_recipe


def forward_backward(dropout: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor):
    def call():
        x.grad = None
        dropout(x).backward(grad)
    return call


def timings(times: dict) -> dict:
    """Median ms of each contender, and torch's time over seqkit's (median of per-round ratios)."""
    return {"ms": {name: 1e3 * statistics.median(t) for name, t in times.items()},
            "speedup": statistics.median(a / b for a, b in zip(times["torch.nn.Dropout"], times["seqkit.Dropout"]))}


def compare(shape: tuple[int, ...], p: float, repeats: int) -> dict:
    result = {"machine": machine(), "shape": list(shape), "p": p}
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(shape, dtype=dtype, requires_grad=True)
        grad = torch.randn(shape, dtype=dtype)
        calls = {"torch.nn.Dropout": forward_backward(torch.nn.Dropout(p), x, grad),
                 "seqkit.Dropout": forward_backward(Dropout(p), x, grad)}
        result[str(dtype).removeprefix("torch.")] = timings(paired_rounds(calls, repeats))
    return result


def with_torch_dropout(model: torch.nn.Module) -> int:
    """Swap every seqkit.Dropout of ``model`` for a torch.nn.Dropout of the same p; how many."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))
                swapped += 1
    return swapped


def compare_steps(recipe_path: str, repeats: int) -> dict:
    recipe = load_recipe(recipe_path)
    device = resolve_device(recipe["device"])
    flush_denormals(device)
    precision = recipe["train"]["precision"]
    with tempfile.TemporaryDirectory(prefix="seqkit-dropout-") as folder:
        trainers = {name: trainer_for(recipe, precision, device, Path(folder) / name)
                    for name in ("seqkit.Dropout", "torch.nn.Dropout")}
        swapped = with_torch_dropout(trainers["torch.nn.Dropout"].model)
        params = {n: [q for q in t.model.parameters() if q.requires_grad] for n, t in trainers.items()}
        times = paired_rounds({n: (lambda n=n: trainers[n]._optimizer_step(params[n])) for n in trainers},
                              repeats)
    return {"recipe": str(recipe_path), "precision": precision, "dropout_modules": swapped, **timings(times)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="256,12,512", help="comma-separated (default 256,12,512)")
    parser.add_argument("--p", type=float, default=0.2, help="drop probability (default 0.2)")
    parser.add_argument("--recipe", help="also time whole training steps of this recipe")
    parser.add_argument("--repeats", type=int, default=50, help="paired rounds (default 50)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = compare(tuple(int(n) for n in args.shape.split(",")), args.p, args.repeats)
    if args.recipe:
        result["steps"] = compare_steps(args.recipe, args.repeats)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['machine']}\ndropout p={result['p']} on {tuple(result['shape'])}, forward and backward:")
    for dtype in ("float32", "bfloat16"):
        ms = result[dtype]["ms"]
        print(f"  {dtype:>8}: torch.nn.Dropout {ms['torch.nn.Dropout']:.2f} ms, seqkit.Dropout "
              f"{ms['seqkit.Dropout']:.2f} ms, {result[dtype]['speedup']:.2f}x")
    if "steps" in result:
        steps, ms = result["steps"], result["steps"]["ms"]
        print(f"{steps['recipe']} ({steps['precision']}, {steps['dropout_modules']} dropout modules), a "
              f"training step: torch.nn.Dropout {ms['torch.nn.Dropout']:.1f} ms, seqkit.Dropout "
              f"{ms['seqkit.Dropout']:.1f} ms, {steps['speedup']:.2f}x")


if __name__ == "__main__":
    main()
