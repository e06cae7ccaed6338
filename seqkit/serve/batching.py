"""Dynamic batching, and the one thread that does all model work.

Requests for the same run, strategy, options and length that arrive while the worker is busy with
an earlier batch, or together (read in the same turn of the event loop, or while another is still
being read, for ``max_wait_ms`` at most), are decoded as one batch (at most ``max_batch`` inputs),
then answered separately: each gets
its own slice of the report's ``"results"``; the other keys (strategy, options, length) are the
batch's, the same for all. A batch that raises is decoded again one request at a time, so that each
gets its own answer. Decoding runs on one worker thread, off the event loop (torch work is
serialized; ``/healthz`` answers meanwhile).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from seqkit.api import Run
from seqkit.decoding import observe_steps
from seqkit.serve.limits import HTTP_NAMING, DecodeJob

log = logging.getLogger("seqkit.serve")


class Stopping(Exception):
    """The server is shutting down: a decode in progress stops at its next model step."""


@dataclass
class Stats:
    """What the server has done, for ``/healthz``: a page's status line, and the tests' proof of batching."""

    requests: int = 0       # decode requests answered through batches
    batches: int = 0        # batches decoded
    largest_batch: int = 0  # requests in the largest batch
    streams: int = 0        # streams started
    cancelled: int = 0      # streams stopped because their client left
    failed: int = 0         # decodes that raised something other than an input problem

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Worker:
    """The one thread that runs the models. ``busy``: a job is running; ``queued``: jobs waiting or running."""

    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="seqkit-serve-decode"))
    stopping: threading.Event = field(default_factory=threading.Event)
    busy: bool = False
    queued: int = 0

    async def run(self, fn, *args):
        """``fn(*args)`` on the worker thread."""
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._call, fn, args)
        finally:
            self.queued -= 1

    def _call(self, fn, args):
        if self.stopping.is_set():
            raise Stopping("the server is shutting down")
        self.busy = True
        try:
            return fn(*args)
        finally:
            self.busy = False

    def check_stopping(self, tokens=None) -> None:
        """An ``observe_steps`` callback: stops a decode when the server shuts down."""
        if self.stopping.is_set():
            raise Stopping("the server is shutting down")

    def shutdown(self) -> None:
        self.stopping.set()
        self.executor.shutdown(wait=False, cancel_futures=True)


def decode(run: Run, job: DecodeJob, texts: list[str]) -> dict:
    """``job``'s strategy, options and length on ``texts``: the report ``seqkit decode --json`` prints.
    Warnings (``seqkit.SeqkitWarning``) are logged, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = run.decode_report(texts, job.strategy, job.length, dict(job.options), HTTP_NAMING,
                                   details=job.details)
    for warning in caught:
        log.warning("warning: %s", str(warning.message).replace("\n", " "))
    return report


def split_report(report: dict, counts: list[int]) -> list[dict]:
    """The report of a batch as one report per request, of ``counts`` inputs each."""
    results = report["results"]
    if len(results) != sum(counts):
        raise RuntimeError(f"the task answered {len(results)} inputs of {sum(counts)}")
    shared = {k: v for k, v in report.items() if k != "results"}
    answers, start = [], 0
    for count in counts:
        answers.append({**shared, "results": results[start:start + count]})
        start += count
    return answers


def decode_batch(worker: Worker, run: Run, jobs: list[DecodeJob]) -> list:
    """On the worker thread: one answer per job, a report or the exception its decoding raised."""
    with observe_steps(worker.check_stopping):
        try:
            report = decode(run, jobs[0], [text for job in jobs for text in job.texts])
            return split_report(report, [len(job.texts) for job in jobs])
        except Stopping:
            raise
        except Exception as exc:
            if len(jobs) == 1:
                return [exc]
            log.info("a batch of %d requests failed (%s); decoding them one by one", len(jobs),
                     str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        answers = []
        for job in jobs:
            try:
                answers.append(decode(run, job, list(job.texts)))
            except Stopping:
                raise
            except Exception as exc:
                answers.append(exc)
        return answers


@dataclass
class _Batch:
    run: Run
    timer: asyncio.TimerHandle
    jobs: list[tuple[DecodeJob, asyncio.Future]] = field(default_factory=list)
    inputs: int = 0
    waited: bool = False  # max_wait_ms has passed: it goes to the worker as soon as the worker is free


class Batcher:
    """Collects decode requests into batches (per run and ``DecodeJob.key``) and answers each.

    Continuous batching: a batch goes to the worker as soon as the worker is free and no other
    decode request is still arriving (its body being read and checked), or once ``max_wait_ms``
    have passed since its first request, or when it is full (``max_batch`` inputs). A lone request
    to an idle server is decoded at once; while the worker decodes one batch the next keeps
    growing, so under load batches fill up instead of queueing behind each other small. One batch
    is decoded at a time, the oldest ready first."""

    def __init__(self, worker: Worker, stats: Stats, max_batch: int = 64, max_wait_ms: float = 5.0):
        self.worker, self.stats = worker, stats
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self._open: dict[tuple, _Batch] = {}  # taking requests, oldest first
        self._full: deque[_Batch] = deque()  # closed, waiting for the worker
        self._running: asyncio.Task | None = None
        self._arriving = 0  # decode requests being read and checked: company on its way

    @contextlib.contextmanager
    def arriving(self):
        """Around reading and checking a decode request: open batches wait for it (``max_wait_ms``
        at most). The request joins with ``submit`` inside the block."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1
            # next loop turn: requests read in this one (their tasks already queued) join first
            asyncio.get_running_loop().call_soon(self._dispatch)

    def submit(self, name: str, run: Run, job: DecodeJob) -> asyncio.Future:
        """The future of the report for ``job`` alone, decoded with whatever joins it before its
        batch starts."""
        loop = asyncio.get_running_loop()
        key = (name, job.key)
        batch = self._open.get(key)
        if batch is not None and batch.inputs + len(job.texts) > self.max_batch:
            self._close(key)
            batch = None
        if batch is None:
            batch = self._open[key] = _Batch(run, loop.call_later(self.max_wait, self._waited, key))
        answer = loop.create_future()
        batch.jobs.append((job, answer))
        batch.inputs += len(job.texts)
        if batch.inputs >= self.max_batch:
            self._close(key)
        return answer

    def _waited(self, key: tuple) -> None:
        batch = self._open.get(key)
        if batch is not None:
            batch.waited = True
            self._dispatch()

    def _close(self, key: tuple) -> None:
        batch = self._open.pop(key)
        batch.timer.cancel()
        self._full.append(batch)
        self._dispatch()

    def _dispatch(self) -> None:
        """Start the next batch on the worker if it is free: a full one, else the oldest open one
        that has waited or has no request left to wait for."""
        if self._running is not None:
            return
        if self._full:
            batch = self._full.popleft()
        else:
            key = next((key for key, batch in self._open.items() if batch.waited or not self._arriving), None)
            if key is None:
                return
            batch = self._open.pop(key)
        batch.timer.cancel()
        self._running = asyncio.get_running_loop().create_task(self._decode(batch))

    async def _decode(self, batch: _Batch) -> None:
        jobs = [job for job, _ in batch.jobs]
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        self.stats.largest_batch = max(self.stats.largest_batch, len(jobs))
        try:
            answers = await self.worker.run(decode_batch, self.worker, batch.run, jobs)
        except Exception as exc:  # the worker is gone (shutting down)
            answers = [exc] * len(jobs)
        finally:
            self._running = None
            self._dispatch()
        for (_, future), answer in zip(batch.jobs, answers):
            if future.done():  # its client has gone
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
