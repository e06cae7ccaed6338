"""``seqkit export``: a run's model as one file to share or deploy.

The file holds what decoding and evaluation need (the weights, the resolved recipe, the task's
state such as its vocabulary, and the checkpoint's step and validation metrics), not what only
training needs (optimizer moments, scheduler, random states): for Adam that is a third of a
checkpoint. It is a seqkit checkpoint, read as every checkpoint is (``weights_only=True``), so
``seqkit decode``, ``seqkit eval`` and ``seqkit.training.run.load_run`` take it in place of a run
directory or with ``--checkpoint``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqkit.cli._common import add_run_args
from seqkit.errors import SeqkitError
from seqkit.training.checkpoint import load_checkpoint, save_checkpoint
from seqkit.training.run import checked_checkpoint, checkpoint_path

# What an exported file keeps of a checkpoint (``seqkit.training.run`` needs the first four to load it).
KEPT = ("step", "recipe", "model", "task", "metrics")


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export", parents=[common], help="write a run's model without its training state",
        description="Write the weights, the resolved recipe and the task's state (vocabulary) of "
                    "a run's checkpoint to one file, without optimizer state or random states. "
                    "seqkit decode and seqkit eval read it in place of a run directory.")
    add_run_args(p, exported=False)
    p.add_argument("-o", "--output", help="file to write (default: RUN/model.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object: source, output, step, bytes")
    p.set_defaults(func=command)
    return p


def command(args) -> int:
    source = checkpoint_path(args.run, args.checkpoint)
    state = checked_checkpoint(load_checkpoint(source), source)
    if not args.output and not Path(args.run).is_dir():
        raise SeqkitError(f"{args.run}: is not a run directory; name the file to write with -o FILE")
    output = Path(args.output) if args.output else Path(args.run) / "model.pt"
    if output.resolve() == source.resolve() or output.resolve().parent == \
            (Path(args.run) / "checkpoints").resolve():
        raise SeqkitError(f"{output}: would replace a checkpoint the run resumes or decodes from; "
                          f"write the export elsewhere (-o FILE)")
    if output.is_dir():
        raise SeqkitError(f"{output}: is a folder; name the file to write, e.g. -o {output / 'model.pt'}")
    save_checkpoint({key: state[key] for key in KEPT if key in state}, output)
    report = {"source": str(source), "output": str(output), "step": state["step"],
              "bytes": output.stat().st_size, "source_bytes": source.stat().st_size}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"wrote {output} ({_size(report['bytes'])}; checkpoint {source} at step "
              f"{state['step']}, {_size(report['source_bytes'])})")
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
