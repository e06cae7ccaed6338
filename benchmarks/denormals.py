"""Training steps with and without subnormal floats flushed to zero, from a run's checkpoint.

Training can drive intermediate values below 1.2e-38, where x86 CPUs compute many times slower;
seqkit flushes them on CPU (``seqkit.device.flush_denormals``). This times forward and backward
passes of a checkpoint's model on its own training batches both ways, alternating, in one
process:

    python -m benchmarks.denormals runs/g2p_full/checkpoints/last.pt --steps 8 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from seqkit.registry import get_registry
from seqkit.training.checkpoint import load_checkpoint


def seconds_per_step(task, model, first: int, steps: int) -> float:
    start = time.perf_counter()
    for step in range(first, first + steps):
        loss, _ = task.loss(model, task.train_batch(step))
        loss.backward()
        model.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a seqkit checkpoint (RUN/checkpoints/last.pt)")
    parser.add_argument("--steps", type=int, default=8, help="steps per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="measurements each way (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint)
    recipe = state["recipe"]
    task = get_registry().get("task", recipe["task"])(recipe, torch.device("cpu"))
    task.prepare()
    task.load_state_dict(state["task"])
    model = task.build_model()
    model.load_state_dict(state["model"])
    model.train()
    times = {"kept": [], "flushed": []}
    for round_ in range(args.rounds):
        for flush in (False, True):  # the same batches both ways
            torch.set_flush_denormal(flush)
            first = state["step"] + round_ * args.steps
            times["flushed" if flush else "kept"].append(seconds_per_step(task, model, first, args.steps))
    result = {"checkpoint": args.checkpoint, "step": state["step"], "threads": args.threads,
              **{f"{k}_s_per_step": min(v) for k, v in times.items()}}
    result["ratio"] = result["kept_s_per_step"] / result["flushed_s_per_step"]
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.checkpoint} (step {state['step']}): {result['kept_s_per_step']:.3f} s a step with "
              f"subnormal floats, {result['flushed_s_per_step']:.3f} s flushed: {result['ratio']:.2f}x")


if __name__ == "__main__":
    main()
