"""``seqkit serve``: trained runs behind an HTTP API (JSON; docs/serve.md).

``create_app(runs, ...)`` builds the ASGI app (Starlette, the ``serve`` extra) over ``seqkit.Run``
objects; ``seqkit serve`` runs it with uvicorn. One purpose per module: ``app`` (routes, errors,
the token), ``limits`` (caps and request checking), ``batching`` (the worker thread and dynamic
batching), ``stream`` (server-sent events), ``runs`` (what is said of each run), ``openapi``,
``extra`` (whether starlette and uvicorn are installed).
"""
from seqkit.serve.app import create_app
from seqkit.serve.limits import Limits

__all__ = ["Limits", "create_app"]
