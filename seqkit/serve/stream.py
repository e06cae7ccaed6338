"""``POST /v1/runs/{name}/stream``: one input decoded token by token, as server-sent events.

The decode is the one ``/decode`` runs (``Run.decode_report``), watched through
``seqkit.decoding.observe_steps``: each model step after the first is fed the token the search
chose at the step before, which becomes a ``token`` event (``{"index", "token", "text"}``); the
tokens no step was fed (the last one) follow when the search returns, then one ``result`` event
whose data is the report ``/decode`` answers, or one ``error`` event (``{"error": "..."}``). A client
that disconnects stops the decode at its next step.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable

from seqkit.api import Run
from seqkit.decoding import observe_steps
from seqkit.serve.batching import Stats, Worker, decode
from seqkit.serve.limits import DecodeJob

log = logging.getLogger("seqkit.serve")
_PRODUCERS: set[asyncio.Task] = set()


class Cancelled(Exception):
    """The stream's client has gone: its decode stops at the next model step."""


def event(name: str, data) -> bytes:
    """One server-sent event: its name, and its data as one line of JSON."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def token_text(run: Run, token: int) -> str | None:
    """A token's text, for a task that reads ids as text (``detokenize``); None for one that does not."""
    detokenize = getattr(run.task, "detokenize", None)
    return detokenize([token]) if callable(detokenize) else None


def decode_streamed(worker: Worker, run: Run, job: DecodeJob, emit: Callable[[bytes], None],
                    cancel: threading.Event) -> dict:
    """On the worker thread: ``job`` decoded, each token emitted as an event; returns the report."""
    emitted, steps = 0, 0

    def send(token: int) -> None:
        nonlocal emitted
        emit(event("token", {"index": emitted, "token": token, "text": token_text(run, token)}))
        emitted += 1

    def on_step(tokens) -> None:
        nonlocal steps
        if cancel.is_set():
            raise Cancelled(f"the client left after {emitted} tokens")
        worker.check_stopping()
        if steps > 0:
            send(int(tokens[0]))
        steps += 1

    def on_done(results) -> None:
        nonlocal steps
        if results and results[0].hypotheses:
            for token in results[0].hypotheses[0].tokens[emitted:]:
                send(int(token))
        steps = 0

    if cancel.is_set():
        raise Cancelled("the client left before decoding began")
    with observe_steps(on_step, on_done):
        return decode(run, job, list(job.texts))


class EventStream:
    """The ASGI response of a stream: ``events`` written as they come, ``cancel`` set when the
    client disconnects (or the stream ends), which stops the decode behind them."""

    def __init__(self, events: AsyncIterator[bytes], cancel: threading.Event):
        self.events, self.cancel = events, cancel

    async def __call__(self, scope, receive, send) -> None:
        async def watch() -> None:
            message = {}
            while message.get("type") != "http.disconnect":  # a request body may come first
                message = await receive()
            self.cancel.set()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
            async for chunk in self.events:
                if self.cancel.is_set():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client has gone (servers of ASGI 2.4 say so here): stop the decode
            self.cancel.set()
        finally:
            self.cancel.set()
            watcher.cancel()
            await self.events.aclose()


def stream(worker: Worker, stats: Stats, name: str, run: Run, job: DecodeJob,
           failure: Callable[[BaseException], str]) -> EventStream:
    """The ``EventStream`` of ``job`` for run ``name``: token events, then a result (or error)
    event. ``failure`` turns what the decode raised into the error event's one line."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    cancel = threading.Event()
    stats.streams += 1

    def emit(chunk: bytes) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, chunk)

    async def produce() -> None:
        try:
            report = await worker.run(decode_streamed, worker, run, job, emit, cancel)
            queue.put_nowait(event("result", report))
        except Cancelled as exc:
            stats.cancelled += 1
            log.info("a stream of run %s stopped: %s", name, exc)
        except BaseException as exc:
            if not cancel.is_set():
                queue.put_nowait(event("error", {"error": failure(exc)}))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            queue.put_nowait(None)

    producer = loop.create_task(produce())
    _PRODUCERS.add(producer)  # held until the decode has stopped, after the client perhaps
    producer.add_done_callback(_PRODUCERS.discard)

    async def events() -> AsyncIterator[bytes]:
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
        finally:
            cancel.set()

    return EventStream(events(), cancel)
