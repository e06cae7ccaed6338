"""Which process am I? Only rank 0 writes files and draws progress.

Single-process runs are rank 0 of 1. Under torchrun the launcher sets RANK;
wrapping the model in DistributedDataParallel can then be added in the trainer without
touching the code that writes files, which asks ``is_main()``.
"""
from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0
