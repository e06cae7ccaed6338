"""Corpora larger than memory: preparing and training char_lm on 100 MB, 1 GB and 4 GB of text.

    python -m benchmarks.scale [--sizes 100MB,1GB,4GB] [--steps N] [--bpe-size 100MB]
                               [--before DIR] [--torchrun SIZE] [--keep DIR] [--timeout S]
                               [--no-write]

For each size the script writes a text corpus built from the standard library's own source
(every ``.py`` file under it, concatenated, repeated until the size is reached) into a temporary
folder it removes at the end (``--keep DIR`` writes there instead and leaves it), then measures,
each command in its own process and from outside (its rusage from ``wait4``, what
``/usr/bin/time -v`` reports), killed if it runs past ``--timeout``:

* ``seqkit prepare`` of the ``text`` dataset with the ``char`` tokenizer: seconds, MB of text per
  second, peak RSS;
* ``seqkit run`` of the default char_lm model (``recipes/char_lm.yaml``: 2-layer 256-unit LSTM,
  64 streams of 100 characters) for ``--steps`` steps on the prepared data (``val_fraction``
  0.001, one validation at the end): peak RSS, seconds from the start of the process to its first
  training step (the first line of metrics.jsonl, less the training time it reports), training
  tokens per second (the mean of the logged intervals but the first);
* at ``--bpe-size``, ``seqkit prepare`` with ``data.tokenizer: {name: bpe, vocab_size: 8000}``:
  training the tokenizer and encoding, seconds and MB/s;
* with ``--before DIR``, the same ``seqkit run`` through seqkit as it was before prepared data
  (commit c95e61d: ``git archive c95e61d | tar -x -C DIR && ln -s ../plugins DIR/seqkit/plugins``),
  which reads the whole text into memory, at the sizes that fit (its peak RSS is about 19 bytes
  per byte of text): the ratio of tokens/s, the two runs alternating;
* with ``--torchrun SIZE``, the run on two processes (``torchrun --nproc-per-node 2``, one thread
  each) at that size: the peak RSS of each worker (VmHWM) and the part of it that is the shared
  page cache of the mapped files (RssFile), read from /proc while they run.

Wall-time figures need a quiet machine: run it alone.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import yaml

from benchmarks._report import machine, write_section

REPO = Path(__file__).resolve().parent.parent
UNITS = {"MB": 10**6, "GB": 10**9}


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(MB|GB)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: give a size such as 100MB or 4GB")
    return int(float(match[1]) * UNITS[match[2]])


def size_label(size: int) -> str:
    return f"{size / 10**9:g} GB" if size >= 10**9 else f"{size / 10**6:g} MB"


def write_corpus(path: Path, size: int) -> None:
    """``size`` bytes of Python source: the standard library's files, in sorted order, repeated."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    written = 0
    with open(path, "wb") as out:
        while written < size:
            for file in files:
                try:
                    raw = file.read_bytes()
                    raw.decode("utf-8")
                except (OSError, UnicodeDecodeError):
                    continue  # a few test files are deliberately not UTF-8
                raw = raw[:size - written]
                raw = raw.decode("utf-8", "ignore").encode("utf-8")  # never end inside a character
                out.write(raw + b"\n")
                written += len(raw) + 1
                if written >= size:
                    break


def write_recipe(folder: Path, corpus: Path, steps: int, output: Path, tokenizer: dict | None = None) -> Path:
    recipe = yaml.safe_load((REPO / "recipes" / "char_lm.yaml").read_text())
    recipe.update(device="cpu", output=str(output))
    recipe["data"] = {"dataset": "text", "path": str(corpus), "val_fraction": 0.001}
    if tokenizer:
        recipe["data"]["tokenizer"] = tokenizer
    recipe["train"].update(steps=steps, eval_every=steps, log_every=max(1, steps // 10), sample_chars=0,
                           warmup_steps=min(20, steps // 2))
    path = folder / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def timed(command: list[str], env: dict, timeout: float | None, watch: Path | None = None) -> dict:
    """Run ``command``: wall seconds, peak RSS in MB (the kernel's accounting of that process, read
    with ``wait4`` as ``/usr/bin/time -v`` reads it), its output, and, with ``watch`` (a
    metrics.jsonl), when its first line appeared, in seconds from the start. Output goes to files,
    never to pipes nobody reads, and a command still running after ``timeout`` seconds is killed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True)
        status, usage, first_line = _wait(process, timeout, started, watch)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if status is None:
        raise SystemExit(f"{' '.join(command)} still running after {timeout} s; killed:\n{stderr[-3000:]}")
    if status:
        raise SystemExit(f"{' '.join(command)} failed ({status}):\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout, "first_line": first_line}


def _wait(process: subprocess.Popen, timeout: float | None, started: float, watch: Path | None = None):
    """(exit status, rusage, first_line) of ``process``; status None when it ran past ``timeout``
    and was killed with its whole session (torchrun's workers too)."""
    first_line = None
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage, first_line
        now = time.perf_counter()
        if first_line is None and watch is not None and watch.exists() and watch.stat().st_size:
            first_line = now - started
        if timeout is not None and now - started > timeout:
            os.killpg(process.pid, signal.SIGKILL)
            _, _, usage = os.wait4(process.pid, 0)
            process.returncode = -signal.SIGKILL
            return None, usage, first_line
        time.sleep(0.02)


def run_figures(run_dir: Path, result: dict) -> dict:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [line for line in lines if line.get("split") == "train"]
    speeds = [line["tokens_per_s"] for line in train[1:]] or [train[0]["tokens_per_s"]]
    first = None if result["first_line"] is None else result["first_line"] - train[0]["elapsed"]
    return {"peak_rss_mb": result["peak_rss_mb"], "first_step_s": first,
            "tokens_per_s": sum(speeds) / len(speeds), "seconds": result["seconds"]}


def seqkit_command(code: Path | None = None) -> tuple[list[str], dict]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    if code is not None:  # an older checkout: its seqkit package, the same Python and torch
        env["PYTHONPATH"] = str(code)
    return [sys.executable, "-m", "seqkit"], env


def measure_size(folder: Path, size: int, steps: int, cache: Path, before: Path | None, bpe: bool,
                 timeout: float | None) -> dict:
    corpus = folder / f"corpus-{size}.txt"
    write_corpus(corpus, size)
    os.sync()  # the text on disk before anything is timed, as a corpus a user prepares is
    seqkit, env = seqkit_command()
    env["SEQKIT_CACHE_DIR"] = str(cache)
    row = {"size": size, "text_mb": corpus.stat().st_size / 1e6}
    recipe = write_recipe(folder, corpus, steps, folder / f"run-{size}")
    prepared = timed([*seqkit, "prepare", str(recipe), "--json"], env, timeout)
    summary = json.loads(prepared["stdout"])
    row["prepare"] = {"seconds": prepared["seconds"], "peak_rss_mb": prepared["peak_rss_mb"],
                      "mb_per_s": row["text_mb"] / prepared["seconds"], "inner_seconds": summary["seconds"],
                      "prepared_mb": summary["prepared_megabytes"], "tokens": summary["tokens"]}
    print(f"{size_label(size)}: prepare {prepared['seconds']:.1f} s, {row['prepare']['mb_per_s']:.1f} MB/s, "
          f"peak RSS {prepared['peak_rss_mb']:.0f} MB", flush=True)
    run_dir = folder / f"run-{size}"
    result = timed([*seqkit, "run", str(recipe), "--quiet"], env, timeout, watch=run_dir / "metrics.jsonl")
    row["run"] = run_figures(run_dir, result)
    print(f"{size_label(size)}: run peak RSS {row['run']['peak_rss_mb']:.0f} MB, first step after "
          f"{row['run']['first_step_s']:.1f} s, {row['run']['tokens_per_s']:,.0f} tokens/s", flush=True)
    if bpe:
        bpe_recipe = write_recipe(folder, corpus, steps, folder / f"bpe-{size}", {"name": "bpe", "vocab_size": 8000})
        prepared = timed([*seqkit, "prepare", str(bpe_recipe), "--json"], env, timeout)
        row["bpe"] = {"seconds": prepared["seconds"], "peak_rss_mb": prepared["peak_rss_mb"],
                      "mb_per_s": row["text_mb"] / prepared["seconds"]}
        print(f"{size_label(size)}: bpe prepare {prepared['seconds']:.1f} s, {row['bpe']['mb_per_s']:.2f} MB/s",
              flush=True)
    if before is not None and size <= 300 * 10**6:  # the old path needs ~19 bytes per byte of text
        old, old_env = seqkit_command(before)
        old_dir = folder / f"before-{size}"
        old_recipe = write_recipe(folder, corpus, steps, old_dir)
        result = timed([*old, "run", str(old_recipe), "--quiet"], old_env, timeout, watch=old_dir / "metrics.jsonl")
        row["before"] = run_figures(old_dir, result)
        print(f"{size_label(size)}: before, run peak RSS {row['before']['peak_rss_mb']:.0f} MB, "
              f"{row['before']['tokens_per_s']:,.0f} tokens/s", flush=True)
        # the new path once more after the old one, so that neither has the machine to itself alone
        shutil.rmtree(run_dir)
        result = timed([*seqkit, "run", str(recipe), "--quiet"], env, timeout, watch=run_dir / "metrics.jsonl")
        again = run_figures(run_dir, result)
        row["run"]["tokens_per_s"] = max(row["run"]["tokens_per_s"], again["tokens_per_s"])
    corpus.unlink()
    return row


def watch_workers(parent: int, stop: threading.Event, peaks: dict) -> None:
    """The peak RSS (VmHWM) and file-backed RSS of every python process under ``parent``."""
    while not stop.is_set():
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            if fields.get("PPid", "").strip() != str(parent) or "VmHWM" not in fields:
                continue
            pid = status.parent.name
            hwm = int(fields["VmHWM"].split()[0]) / 1024
            file_rss = int(fields.get("RssFile", "0 kB").split()[0]) / 1024
            old = peaks.get(pid, (0, 0))
            peaks[pid] = (max(old[0], hwm), max(old[1], file_rss))
        time.sleep(0.2)


def measure_torchrun(folder: Path, size: int, steps: int, cache: Path, timeout: float | None) -> dict:
    corpus = folder / f"corpus-{size}.txt"
    write_corpus(corpus, size)
    seqkit, env = seqkit_command()
    env.update(SEQKIT_CACHE_DIR=str(cache), OMP_NUM_THREADS="1")
    recipe = write_recipe(folder, corpus, steps, folder / f"ddp-{size}")
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                    "2", "-m", "seqkit", "run", str(recipe), "--quiet"], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True)
        peaks, stop = {}, threading.Event()
        watcher = threading.Thread(target=watch_workers, args=(process.pid, stop, peaks))
        watcher.start()
        try:
            status, _, _ = _wait(process, timeout, started)
        finally:
            stop.set()
            watcher.join()
        err.seek(0)
        stderr = err.read()
    corpus.unlink()
    if status is None:
        raise SystemExit(f"torchrun still running after {timeout} s; killed:\n{stderr[-3000:]}")
    if status:
        raise SystemExit(f"torchrun failed ({status}):\n{stderr[-3000:]}")
    workers = sorted(peaks.values(), reverse=True)[:2]
    return {"size": size, "workers": [{"peak_rss_mb": hwm, "file_rss_mb": f} for hwm, f in workers]}


def report(rows: list[dict], ddp: dict | None, steps: int) -> str:
    lines = [f"Machine: {machine()}. `python -m benchmarks.scale`, {steps} training steps per run, "
             "each command measured from outside (`wait4`, as `/usr/bin/time -v`), on a quiet machine.", "",
             "| text | prepare (char) | prepare peak RSS | run peak RSS | first step after | tokens/s | "
             "before: tokens/s, peak RSS | bpe prepare |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        before = row.get("before")
        old = (f"{before['tokens_per_s']:,.0f} ({row['run']['tokens_per_s'] / before['tokens_per_s']:.3f}x), "
               f"{before['peak_rss_mb']:,.0f} MB") if before else "does not fit"
        bpe = (f"{row['bpe']['seconds']:.0f} s, {row['bpe']['mb_per_s']:.2f} MB/s" if "bpe" in row else "")
        lines.append(f"| {size_label(row['size'])} | {row['prepare']['seconds']:.1f} s, "
                     f"{row['prepare']['mb_per_s']:.0f} MB/s | {row['prepare']['peak_rss_mb']:,.0f} MB | "
                     f"{row['run']['peak_rss_mb']:,.0f} MB | {row['run']['first_step_s']:.1f} s | "
                     f"{row['run']['tokens_per_s']:,.0f} | {old} | {bpe} |")
    if ddp:
        workers = ", ".join(f"{w['peak_rss_mb']:,.0f} MB ({w['file_rss_mb']:,.0f} MB of it mapped files)"
                            for w in ddp["workers"])
        lines += ["", f"Two processes (torchrun, {size_label(ddp['size'])}): peak RSS per worker {workers}; "
                      f"the mapped files are one copy in the page cache, shared by both."]
    return "\n".join(lines)


def main(argv=None) -> tuple[list[dict], dict | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100MB,1GB,4GB", help="comma-separated sizes (default: 100MB,1GB,4GB)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--bpe-size", type=parse_size, default=parse_size("100MB"),
                        help="the size at which bpe preparation is measured")
    parser.add_argument("--before", type=Path, help="a checkout of seqkit before prepared data, to compare")
    parser.add_argument("--torchrun", type=parse_size, help="also train on 2 processes at this size")
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it")
    parser.add_argument("--timeout", type=float, help="kill a command still running after this many seconds")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks/ alone")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="seqkit-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "cache"
    try:
        rows = [measure_size(folder, size, args.steps, cache, args.before, size == args.bpe_size,
                             args.timeout) for size in sizes]
        ddp = measure_torchrun(folder, args.torchrun, args.steps, cache, args.timeout) if args.torchrun else None
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    text = report(rows, ddp, args.steps)
    print(text)
    if not args.no_write:
        page = write_section("scale", text)
        print(f"wrote {page}")
    return rows, ddp


if __name__ == "__main__":
    main()
