"""seqkit serve under load: words per second and latency at 1 to 128 concurrent clients, memory over
20,000 requests, and a mixed load with bad requests.

    python -m benchmarks.serve [--run RUN] [--clients 1,8,32,128] [--requests 2000] [--seconds 30]
                               [--rss-requests 20000] [--train-steps 300] [--worker-batches 1,16,64,256]
                               [--no-write]

The server (``seqkit serve RUN --max-batch 64 --max-wait-ms 5``) runs in its own process on a free
localhost port and is driven from this one only, by threads that each hold one connection and send
one-word greedy requests (``{"inputs": [word], "strategy": "greedy"}``) one after another; every
level stops after ``--requests`` answers or ``--seconds``, whichever comes first. The words are the
distinct lowercase words of Python's own documentation (``pydoc_data``). Without ``--run`` a G2P run
is trained first (``recipes/g2p.yaml`` for ``--train-steps`` steps, in a temporary folder).

* throughput and p50/p99 latency per level; the words per second of 32 clients against 1 client
  (dynamic batching's gain), and against ``Run.decode`` of the same words in one process, which is
  what ``seqkit decode --input-file`` runs (timed here in this process, before the server starts),
  and against that command itself, its whole process timed (start-up and loading the run included);
* the worker's ceiling: ``Run.decode`` of the same words in batches of 1, 16, 32, 64 and 256 with
  one torch thread, as the server's worker decodes them (``seqkit serve`` leaves the other core to
  the event loop), alone in this process: the most words per second a batch of that size allows.
  32 clients with one word each form batches of 32 words at most, so the batch-32 rate over the
  batch-1 rate is what batching alone could give 32 clients over 1, were HTTP free;
* the server's RSS (``/proc/PID/status``) after 1,000 requests and after ``--rss-requests``;
* a mixed load at 32 clients, one request in ten malformed or over a cap: every good request must
  get its word's greedy output (as ``Run.decode`` gave it), every bad one a 4xx, none a 5xx.

The server and the clients share the machine's cores: run it alone.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from benchmarks._report import REPO, machine, write_section
from seqkit.errors import SeqkitWarning

LISTENING = re.compile(r"seqkit serve: serving .* on http://(127\.0\.0\.1):(\d+) ")
BAD = [  # (body, why): malformed or over a cap; each must be answered 4xx
    (b'{"inputs": ["word"', "malformed JSON"),
    (b'["word"]', "not an object"),
    (json.dumps({"inputs": ["word"], "strategy": "greedy", "length": 10**6}).encode(), "length over the cap"),
    (json.dumps({"inputs": ["x" * 100_000], "strategy": "greedy"}).encode(), "input over the cap"),
    (json.dumps({"inputs": ["word"], "strategy": "beam", "beam_size": 0}).encode(), "option out of range"),
    (json.dumps({"inputs": ["word"], "strategy": "nonsense"}).encode(), "unknown strategy"),
    (json.dumps({"inputs": [], "strategy": "greedy"}).encode(), "no inputs"),
]


def words(count: int) -> list[str]:
    from pydoc_data.topics import topics
    found = dict.fromkeys(w for w in re.findall(r"[a-z]{3,12}", " ".join(topics.values()).lower()))
    return list(found)[:count]


def train_g2p(folder: Path, steps: int) -> Path:
    run = folder / "g2p"
    subprocess.run([sys.executable, "-m", "seqkit", "run", str(REPO / "recipes" / "g2p.yaml"), "--quiet",
                    "--set", f"output={run}", "--set", f"train.steps={steps}",
                    "--set", f"train.eval_every={steps}", "--set", "train.warmup_steps=20"],
                   check=True, cwd=folder, timeout=3600)
    return run


class Server:
    def __init__(self, run: Path, log: Path):
        with open(log, "w") as out:  # a file, never a pipe nobody reads
            self.process = subprocess.Popen(
                [sys.executable, "-m", "seqkit", "serve", str(run), "--port", "0", "--device", "cpu",
                 "--max-batch", "64", "--max-wait-ms", "5"], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (found := LISTENING.search(log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"seqkit serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        self.host, self.port, self.name = found[1], int(found[2]), run.name

    def counts(self) -> tuple[int, int]:
        """(decode requests answered through batches, batches decoded) so far, from ``/healthz``."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request("GET", "/healthz")
            health = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return health["requests"], health["batches"]

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status)[1]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def load(server: Server, clients: int, bodies: list[bytes], seconds: float) -> dict:
    """``clients`` threads send ``bodies`` (each once, in order) until all are answered or
    ``seconds`` pass: answers per second, latencies, and (status, answer) per body sent."""
    path = f"/v1/runs/{server.name}/decode"
    lock, next_body, answers, latencies = threading.Lock(), [0], {}, []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    index = next_body[0]
                    next_body[0] += 1
                if index >= len(bodies):
                    return
                sent = time.perf_counter()
                conn.request("POST", path, body=bodies[index], headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = response.read()
                took = time.perf_counter() - sent
                with lock:
                    answers[index] = (response.status, answer)
                    latencies.append(took)
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0  # noqa: E731
    return {"clients": clients, "answered": len(answers), "per_s": len(answers) / elapsed,
            "p50_ms": pick(0.5), "p99_ms": pick(0.99), "answers": answers}


def greedy_body(word: str) -> bytes:
    return json.dumps({"inputs": [word], "strategy": "greedy"}).encode()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run (default: train recipes/g2p.yaml briefly)")
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--requests", type=int, default=2000, help="answers per level, at most")
    parser.add_argument("--seconds", type=float, default=30, help="seconds per level, at most")
    parser.add_argument("--rss-requests", type=int, default=20000)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--worker-batches", default="1,16,32,64,256",
                        help="batch sizes of the worker's ceiling, measured on --requests words")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks/ alone")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]

    import seqkit
    with tempfile.TemporaryDirectory(prefix="seqkit-serve-bench-") as tmp:
        folder = Path(tmp)
        run = args.run or train_g2p(folder, args.train_steps)
        vocabulary = words(max(args.requests, 1000))
        loaded = seqkit.load_run(run, device="cpu")
        start = time.perf_counter()
        with warnings.catch_warnings():  # words with letters a small run never saw: read as unknown
            warnings.simplefilter("ignore", SeqkitWarning)
            expected = loaded.decode(vocabulary, "greedy")["results"]
        in_process = len(vocabulary) / (time.perf_counter() - start)
        outputs = {w: r["outputs"] for w, r in zip(vocabulary, expected)}
        ceiling = worker_ceiling(loaded, vocabulary[:args.requests],
                                 [int(b) for b in args.worker_batches.split(",") if b])
        del loaded
        cli = cli_words_per_second(run, vocabulary, folder)

        server = Server(run, folder / "server.log")
        try:
            rows = []
            for clients in levels:
                before = server.counts()
                result = load(server, clients, [greedy_body(w) for w in vocabulary][:args.requests], args.seconds)
                bad = sum(status != 200 for status, _ in result["answers"].values())
                if bad:
                    raise SystemExit(f"{bad} good requests failed at {clients} clients; see {folder / 'server.log'}")
                requests, batches = (after - first for after, first in zip(server.counts(), before))
                result["mean_batch"] = requests / max(1, batches)
                rows.append(result)
                print(f"{clients} clients: {result['per_s']:.0f} words/s, p50 {result['p50_ms']:.1f} ms, "
                      f"p99 {result['p99_ms']:.1f} ms, {result['mean_batch']:.1f} words per batch", flush=True)
            rss = memory(server, vocabulary, args.rss_requests)
            print(f"RSS {rss[0]:.0f} MB after 1,000 requests, {rss[1]:.0f} MB after {args.rss_requests:,}", flush=True)
            mixed = mixed_load(server, vocabulary, outputs, args.requests)
            print(f"mixed: {mixed}", flush=True)
        finally:
            server.stop()

    by_clients = {row["clients"]: row for row in rows}
    text = report(rows, in_process, cli, rss, args.rss_requests, mixed, by_clients, ceiling)
    print(text)
    if not args.no_write:
        page = write_section("serve", text)
        print(f"wrote {page}")
    return {"rows": rows, "in_process": in_process, "cli": cli, "rss": rss, "mixed": mixed, "ceiling": ceiling}


def http_stack() -> str:
    """uvicorn's HTTP parser and event loop, as it picks them (``auto``) in this environment."""
    from importlib.metadata import version
    from importlib.util import find_spec
    parser = "httptools" if find_spec("httptools") else "h11"
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    return f"uvicorn {version('uvicorn')} on {parser} and {loop}"


def worker_ceiling(loaded, vocabulary: list[str], sizes: list[int]) -> dict[int, float]:
    """Words per second of ``Run.decode`` on ``vocabulary`` in batches of each size, one torch
    thread (the server worker's), after one warm-up batch."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rates = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SeqkitWarning)
            for size in sizes:
                batches = [vocabulary[i:i + size] for i in range(0, len(vocabulary), size)]
                loaded.decode(batches[0], "greedy")
                start = time.perf_counter()
                for batch in batches:
                    loaded.decode(batch, "greedy")
                rates[size] = len(vocabulary) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return rates


def cli_words_per_second(run: Path, vocabulary: list[str], folder: Path) -> float:
    """Words per second of the command ``seqkit decode RUN --input-file WORDS --strategy greedy
    --json``, its whole process (start-up and loading the run included)."""
    inputs = folder / "words.txt"
    inputs.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seqkit", "decode", str(run), "--input-file", str(inputs),
                    "--strategy", "greedy", "--json", "--device", "cpu"], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
    return len(vocabulary) / (time.perf_counter() - start)


def memory(server: Server, vocabulary: list[str], total: int) -> tuple[float, float]:
    """The server's RSS after 1,000 requests and after ``total`` (32 clients, the words cycled)."""
    cycle = [greedy_body(vocabulary[i % len(vocabulary)]) for i in range(total)]
    load(server, 32, cycle[:1000], 3600)
    first = server.rss_mb()
    load(server, 32, cycle[1000:], 3600)
    return first, server.rss_mb()


def mixed_load(server: Server, vocabulary: list[str], outputs: dict, count: int) -> dict:
    """One request in ten bad: good ones must get their word's output, bad ones a 4xx."""
    plan = [(None, vocabulary[i % len(vocabulary)]) if i % 10 else (BAD[(i // 10) % len(BAD)], None)
            for i in range(count)]
    bodies = [greedy_body(word) if bad is None else bad[0] for bad, word in plan]
    answers = load(server, 32, bodies, 3600)["answers"]
    counts = {"good_right": 0, "good_wrong": 0, "bad_4xx": 0, "bad_other": 0, "5xx": 0}
    for index, (bad, word) in enumerate(plan):
        status, body = answers[index]
        counts["5xx"] += status >= 500
        if bad is None:
            right = status == 200 and same_outputs(json.loads(body)["results"][0]["outputs"], outputs[word])
            counts["good_right" if right else "good_wrong"] += 1
        else:
            counts["bad_4xx" if 400 <= status < 500 else "bad_other"] += 1
    return counts


def same_outputs(got: list[dict], expected: list[dict]) -> bool:
    """The same tokens, and log-probabilities equal up to float rounding (a batch of other words
    sums in another order)."""
    return len(got) == len(expected) and all(
        g["tokens"] == e["tokens"] and abs(g["log_prob"] - e["log_prob"]) <= 1e-4 * max(1.0, abs(e["log_prob"]))
        for g, e in zip(got, expected))


def report(rows: list[dict], in_process: float, cli: float, rss: tuple[float, float], rss_requests: int,
           mixed: dict, by_clients: dict, ceiling: dict[int, float]) -> str:
    lines = [f"Machine: {machine()}. `python -m benchmarks.serve`: `seqkit serve --max-batch 64 --max-wait-ms 5` "
             f"on a G2P run ({http_stack()}), one-word greedy requests from local clients (threads, one "
             "connection each), server and clients on the same cores, alone on the machine.", "",
             "| clients | words/s | p50 latency | p99 latency | words per batch |", "|---|---|---|---|---|"]
    lines += [f"| {r['clients']} | {r['per_s']:,.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
              f"{r['mean_batch']:.1f} |" for r in rows]
    lines.append("")
    if 1 in by_clients and 32 in by_clients:
        gain = by_clients[32]["per_s"] / by_clients[1]["per_s"]
        lines.append(f"32 clients get **{gain:.1f}x** the words per second of 1 client (dynamic batching), and "
                     f"**{by_clients[32]['per_s'] / in_process:.2f}x** those of `Run.decode` of the same words in "
                     f"one process ({in_process:,.0f} words/s, what `seqkit decode --input-file` runs), "
                     f"**{by_clients[32]['per_s'] / cli:.2f}x** those of the command `seqkit decode --input-file` "
                     f"itself, start-up and loading included ({cli:,.0f} words/s).")
    if ceiling:
        lines.append("The worker's ceiling, `Run.decode` of the same words with one torch thread as the server's "
                     "worker has, alone: " + ", ".join(f"batches of {size}: {rate:,.0f} words/s"
                                                      for size, rate in ceiling.items()) + ".")
        if 1 in ceiling and 32 in ceiling:
            lines.append(f"A batch of 32 words, the most 32 one-word clients can form, decodes at "
                         f"**{ceiling[32] / ceiling[1]:.1f}x** the rate of a batch of 1: what batching alone "
                         "could give 32 clients over 1 here, were the HTTP work free and every batch full.")
    lines.append(f"Server RSS {rss[0]:,.0f} MB after 1,000 requests, {rss[1]:,.0f} MB after {rss_requests:,} "
                 f"({(rss[1] / rss[0] - 1) * 100:+.1f} %).")
    lines.append(f"Mixed load (32 clients, one request in ten malformed or over a cap): {mixed['good_right']:,} good "
                 f"requests answered with their word's output ({mixed['good_wrong']} wrong), {mixed['bad_4xx']:,} bad "
                 f"ones answered 4xx ({mixed['bad_other']} otherwise), {mixed['5xx']} answered 5xx.")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
