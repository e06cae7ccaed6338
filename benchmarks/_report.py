"""Shared by the benchmarks: describe the machine and write one section of a page of docs/benchmarks/.

Each script writes its sections (between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``) into the
page of its area, ``PAGES[NAME]``; BENCHMARKS.md, kept by hand, indexes the headline figures.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DOCS_BENCHMARKS = REPO / "docs" / "benchmarks"

# section -> the page of docs/benchmarks/ it is written into (its area)
PAGES = {
    "decode": "decoding",
    "cells": "cells",
    "overhead": "training",
    "ddp": "training",
    "time-budget": "training",
    "quality": "char_lm",
    "scale": "char_lm",
    "lm-tokens": "char_lm",
    "tagging-crf": "tagging",
    "tagging-step": "tagging",
    "tagging-python": "tagging",
    "tagging-treebank": "tagging",
    "tagging-lines": "tagging",
    "translation-step": "translation",
    "translation-decoding": "translation",
    "roles": "lecture",
    "serve": "serving",
}
TITLES = {"decoding": "decoding", "cells": "cells", "training": "training", "char_lm": "the char_lm task",
          "tagging": "the tagging task", "translation": "the translation task", "lecture": "the lecture, measured",
          "serving": "seqkit serve"}


def page(name: str, folder: Path = DOCS_BENCHMARKS) -> Path:
    """The page section ``name`` is written into."""
    if name not in PAGES:
        raise KeyError(f"benchmark section {name!r} has no page: add it to PAGES in benchmarks/_report.py")
    return folder / f"{PAGES[name]}.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")  # Linux only; elsewhere platform's answer stands
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only"
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}, {device}")


def write_section(name: str, markdown: str, folder: Path = DOCS_BENCHMARKS) -> Path:
    """Replace (or append) the section between this benchmark's markers in its page of
    docs/benchmarks/, leaving the others; returns the page."""
    path = page(name, folder)
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else (
        f"# Benchmarks: {TITLES[PAGES[name]]}\n\nSections between `<!-- begin NAME -->` and `<!-- end NAME -->` "
        f"are written by the scripts in benchmarks/; rerun one to refresh its section. Headline figures: "
        f"[BENCHMARKS.md](../../BENCHMARKS.md).\n")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def argument_parser(doc: str, quick: str, repeats: str, latency_bound: str) -> argparse.ArgumentParser:
    """The flags every benchmark takes: --quick, --repeats, --threads (default 1) and --no-write."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--repeats", type=int, default=None, help=repeats)
    parser.add_argument("--threads", type=int, default=1,
                        help=f"torch threads (default 1: {latency_bound} latency-bound, and one "
                             f"thread keeps a shared CPU measurable)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks/")
    return parser


def paired_rounds(calls: dict, repeats: int) -> dict:
    """Seconds per call of every contender, one entry per round; the order rotates each round, so
    a busy shared CPU slows every contender alike and per-round ratios pair calls run side by side."""
    for call in calls.values():
        call()  # warm-up: allocator, kernels
    names = list(calls)
    times = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times
