"""``seqkit serve``: trained runs behind an HTTP API (decode, stream, metrics; docs/serve.md).

Each RUN is served under its folder's name (an exported file: its name without the suffix). The
runs are loaded before the server listens, so a missing or broken one is a one-line error (exit 2);
then one line on stderr says where the server listens (``--port 0``: a free port, named there).
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from seqkit.api import load_run
from seqkit.errors import SeqkitError
from seqkit.serve.app import create_app
from seqkit.serve.extra import install_hint, missing_packages
from seqkit.serve.limits import CAP_HELP, Limits, flag
from seqkit.serve.runs import run_name

_DEFAULTS = Limits()


def add_parser(sub, common) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve", parents=[common], help="serve trained runs over HTTP: decode, stream tokens, metrics (JSON)",
        description="Serve trained runs over HTTP (the serve extra: starlette and uvicorn). Each RUN is "
                    "served under its folder's name; an exported file under its name without the suffix.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directory written by 'seqkit run', or a file of 'seqkit export'")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on; 0: a free one (default: 8000)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--max-batch", type=int, default=64,
                   help="inputs decoded together, at most, from requests that arrive together (default: 64)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="the most a batch waits for requests still being read before it starts on an idle "
                        "worker; under load batches grow while the worker is busy (default: 5)")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every request")
    caps = p.add_argument_group("caps on one request (GET /v1/runs lists them)")
    for name, what in CAP_HELP.items():
        caps.add_argument(flag(name), type=int, default=getattr(_DEFAULTS, name), metavar="N",
                          help=f"cap on {what} (default: {getattr(_DEFAULTS, name):,})")
    p.set_defaults(func=command)
    return p


def _check_flags(args) -> None:
    if not 0 <= args.port <= 65535:
        raise SeqkitError(f"--port: must be between 0 and 65535; got {args.port}")
    if args.max_batch < 1:
        raise SeqkitError(f"--max-batch: must be >= 1; got {args.max_batch}")
    if not args.max_wait_ms >= 0:
        raise SeqkitError(f"--max-wait-ms: must be >= 0; got {args.max_wait_ms}")
    for name in CAP_HELP:
        if getattr(args, name) < 1:
            raise SeqkitError(f"{flag(name)}: must be >= 1; got {getattr(args, name)}")
    if args.token is not None and not args.token.strip():
        raise SeqkitError("--token: must not be empty")


def _names(paths: list[str]) -> dict[str, str]:
    """name -> path; two runs of one name are refused."""
    names: dict[str, str] = {}
    for path in paths:
        if not Path(path).exists():
            raise SeqkitError(f"{path}: no such run directory or exported file")
        name = run_name(path)
        if name in names:
            raise SeqkitError(f"seqkit serve: two runs named '{name}' ({names[name]} and {path}); each run "
                              f"is served under its folder's name, so give runs of different names")
        names[name] = path
    return names


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto named: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it a
        # response's headers and body wait on the client's delayed ACK, 40 ms per kept-alive request
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        raise SeqkitError(f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _leave_a_core_to_the_server() -> None:
    """One torch thread fewer than the cores torch would use: the event loop (HTTP, JSON) needs a
    core while the worker decodes, and torch's threads wait on each other at every small step when
    one of them is kept off its core (2 cores: a batch of 16 words took 27 ms against 17 ms)."""
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads() - 1))


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("seqkit serve: %(message)s"))
    logger = logging.getLogger("seqkit.serve")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def command(args) -> int:
    missing = missing_packages()
    if missing:
        raise SeqkitError(install_hint(missing))
    import uvicorn  # the serve extra: imported where it is used

    _check_flags(args)
    names = _names(args.runs)
    runs = {name: load_run(path, device=args.device) for name, path in names.items()}
    limits = Limits(**{name: getattr(args, name) for name in CAP_HELP})
    _leave_a_core_to_the_server()
    app = create_app(runs, limits, args.token, args.max_batch, args.max_wait_ms)
    _log_to_stderr()
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"seqkit serve: serving {', '.join(runs)} on http://{shown}:{port} (Ctrl-C stops)", file=sys.stderr,
          flush=True)
    config = uvicorn.Config(app, log_level="info", lifespan="on", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
