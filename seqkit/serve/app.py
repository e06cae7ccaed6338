"""The ASGI app of ``seqkit serve``: its routes, errors as one-line JSON, the token, the page's files.

``create_app(runs, limits, token, max_batch, max_wait_ms)`` serves ``runs`` (name -> ``seqkit.Run``).
Decoding goes through ``Run.decode_report``, as ``seqkit decode`` does, so ``/decode`` answers
exactly what ``seqkit decode --json`` prints for the same arguments, batched with other requests
(``batching.py``) or streamed token by token (``stream.py``). Every error is ``{"error": "<one
line>"}``: a 4xx for what the request got wrong, a 500 for a diverged model or a plugin that
raised, whose traceback goes to the log, never into the response.
"""
from __future__ import annotations

import contextlib
import hmac
import json
import logging
from pathlib import Path

from seqkit.api import Run
from seqkit.contracts import NonFiniteLogProbs
from seqkit.errors import SeqkitError
from seqkit.plugin_errors import component_at_fault, describe_failure
from seqkit.serve.batching import Batcher, Stats, Stopping, Worker
from seqkit.serve.extra import install_hint, missing_packages
from seqkit.serve.limits import Limits, RequestProblem, check_decode_request, check_stream_request, parse_body
from seqkit.serve.openapi import openapi
from seqkit.serve.runs import describe, metrics
from seqkit.serve.stream import stream

# Starlette, the serve extra, is imported where it is used: every other command imports this
# module (through the CLI) and needs none of it, and without it create_app() says how to install it.

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("seqkit.serve")


def json_response(data, status: int = 200, headers: dict | None = None):
    """``data`` as ``seqkit decode --json`` writes it (``json.dumps``), with its status."""
    from starlette.responses import Response

    return Response(json.dumps(data, default=str), status_code=status, headers=headers,
                    media_type="application/json")


def error(status: int, message: str, headers: dict | None = None):
    """``{"error": message}``, on one line whatever a request put into it."""
    return json_response({"error": " ".join(message.splitlines())}, status, headers)


class TokenAuth:
    """ASGI middleware: a request without ``Authorization: Bearer TOKEN`` gets 401, except GETs of
    the page's own files (``/`` and ``/static/...``: code, no data), which a browser opens before it
    can send a header; the page then asks for the token and sends it with every API call."""

    def __init__(self, app, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        public = scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and (
            scope["path"] == "/" or scope["path"].startswith("/static/"))
        if scope["type"] == "http" and not public:
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                response = error(401, "unauthorized: send the server's token as 'Authorization: Bearer TOKEN'",
                                 {"www-authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Server:
    """The runs served and what serving them needs: the caps, the worker thread, the batcher."""

    def __init__(self, runs: dict[str, Run], limits: Limits, max_batch: int, max_wait_ms: float):
        self.runs, self.limits = dict(runs), limits
        self.worker, self.stats = Worker(), Stats()
        self.batcher = Batcher(self.worker, self.stats, max_batch, max_wait_ms)
        self.described = [describe(name, run, limits) for name, run in self.runs.items()]

    # -- helpers -------------------------------------------------------------------------------
    def run_of(self, request) -> tuple[str, Run]:
        name = request.path_params["name"]
        if name not in self.runs:
            raise RequestProblem(404, f"unknown run '{name}'; serving: {', '.join(self.runs)}")
        return name, self.runs[name]

    async def body(self, request) -> dict:
        """The request's body as a JSON object, refused past ``max_body_bytes`` (413)."""
        cap = self.limits.max_body_bytes
        too_large = RequestProblem(413, f"request body: over this server's cap of {cap:,} bytes (--max-body-bytes)")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return parse_body(b"".join(chunks))

    def failure(self, exc: BaseException) -> tuple[int, str]:
        """(status, one line) for what handling a request raised."""
        if isinstance(exc, RequestProblem):
            return exc.status, exc.message
        if isinstance(exc, Stopping):
            return 503, "the server is shutting down"
        if isinstance(exc, SeqkitError):
            message = "; ".join(exc.problems) or type(exc).__name__
            # Run.decode_report gives a diverged model's NonFiniteLogProbs as a SeqkitError naming
            # the checkpoint, raised from it: the run is broken, not the request.
            if isinstance(exc, NonFiniteLogProbs) or isinstance(exc.__context__, NonFiniteLogProbs):
                self.stats.failed += 1
                log.error("decoding failed: %s", message)
                return 500, message
            return 400, message
        self.stats.failed += 1
        message = f"decoding failed: {describe_failure(exc)}"
        # a plugin's failure is the line naming it, as the CLI says it; seqkit's own bug, its traceback
        log.error("%s", message, exc_info=exc if component_at_fault(exc) is None else None)
        return 500, message

    def endpoint(self, handler):
        """``handler`` with every problem answered as a one-line JSON error."""
        async def handle(request):
            try:
                return await handler(request)
            except Exception as exc:
                return error(*self.failure(exc))
        return handle

    # -- endpoints -----------------------------------------------------------------------------
    async def healthz(self, request):
        """The server is up: ``{"status": "ok"}``, with what it is doing and has done."""
        return json_response({"status": "ok", "busy": self.worker.busy, "queued": self.worker.queued,
                              **self.stats.as_dict()})

    async def list_runs(self, request):
        return json_response({"runs": self.described})

    async def run_metrics(self, request):
        from starlette.concurrency import run_in_threadpool

        _, run = self.run_of(request)
        return json_response({"metrics": await run_in_threadpool(metrics, run)})

    async def decode(self, request):
        name, run = self.run_of(request)
        with self.batcher.arriving():
            job = check_decode_request(run, await self.body(request), self.limits)
            answer = self.batcher.submit(name, run, job)
        return json_response(await answer)

    async def stream(self, request):
        name, run = self.run_of(request)
        job = check_stream_request(run, await self.body(request), self.limits)
        return stream(self.worker, self.stats, name, run, job, lambda exc: self.failure(exc)[1])

    async def openapi(self, request):
        return json_response(openapi(self.limits.as_dict()))

    async def index(self, request):
        from starlette.responses import FileResponse

        page = STATIC / "index.html"
        if not page.is_file():
            raise RequestProblem(404, "no page here: the API is under /v1 (GET /openapi.json describes it)")
        return FileResponse(page)


async def _http_error(request, exc):
    """Starlette's own 404 and 405 (no route, wrong method, no such static file) as JSON."""
    where = f"{request.method} {request.url.path}"
    messages = {404: f"not found: {where}", 405: f"method not allowed: {where}"}
    allowed = next((v for k, v in (exc.headers or {}).items() if k.lower() == "allow"), None)
    message = messages.get(exc.status_code, f"{where}: {exc.detail}")
    return error(exc.status_code, message + (f"; use {allowed}" if allowed else ""), exc.headers)


def create_app(runs: dict[str, Run], limits: Limits | None = None, token: str | None = None,
               max_batch: int = 64, max_wait_ms: float = 5.0):
    """The ASGI app serving ``runs`` (name -> ``seqkit.Run``) under ``limits``; with ``token``,
    every request must carry ``Authorization: Bearer TOKEN``. Decode requests with the same run,
    strategy, options and length that arrive together or while the worker is busy are decoded as
    one batch of at most ``max_batch`` inputs (``batching.Batcher``; ``max_wait_ms``: the most a
    batch waits for requests still being read)."""
    missing = missing_packages()
    if missing:
        raise SeqkitError(install_hint(missing))
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    server = Server(runs, limits or Limits(), max_batch, max_wait_ms)
    handle = server.endpoint
    routes = [
        Route("/", handle(server.index), methods=["GET"]),
        Route("/healthz", handle(server.healthz), methods=["GET"]),
        Route("/openapi.json", handle(server.openapi), methods=["GET"]),
        Route("/v1/runs", handle(server.list_runs), methods=["GET"]),
        Route("/v1/runs/{name}/metrics", handle(server.run_metrics), methods=["GET"]),
        Route("/v1/runs/{name}/decode", handle(server.decode), methods=["POST"]),
        Route("/v1/runs/{name}/stream", handle(server.stream), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC, check_dir=False), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.worker.shutdown()

    middleware = [Middleware(TokenAuth, token=token)] if token else []
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error})
    app.state.server = server
    return app
