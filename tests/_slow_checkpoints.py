"""``python -m seqkit`` whose checkpoint writes stop halfway for a moment, for the kill -9 test.

Each checkpoint's first half reaches its temporary file, then the writer sleeps ``PAUSE``
seconds before the rest, so a test that sees ``.last.pt.tmp-*`` can kill the run mid-write
every time rather than by luck. Nothing else changes: the bytes written are torch.save's.

    python tests/_slow_checkpoints.py run RECIPE --quiet
"""
from __future__ import annotations

import io
import sys
import time

import torch

from seqkit.cli import main

PAUSE = 0.15  # seconds; the test polls every 5 ms
_save = torch.save


def _save_with_a_pause(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    _save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[:len(data) // 2])
    f.flush()
    time.sleep(PAUSE)
    f.write(data[len(data) // 2:])


if __name__ == "__main__":
    torch.save = _save_with_a_pause  # seqkit.training.checkpoint writes through torch.save
    sys.exit(main())
