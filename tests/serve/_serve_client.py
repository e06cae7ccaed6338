"""A real ``seqkit serve`` subprocess on a free localhost port, and a small HTTP client for it
(the standard library's http.client: no dependency beyond the serve extra)."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import REPO, SAME_KERNELS

LISTENING = re.compile(r"seqkit serve: serving .* on http://(127\.0\.0\.1):(\d+) ")


class Server:
    """``python -m seqkit serve ARGS --port 0``: started, its address read from its first line."""

    def __init__(self, args: list, log: Path, token: str | None = None, env: dict | None = None):
        self.log, self.token = log, token
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEQKIT_")} | SAME_KERNELS
        full_env.update({"OMP_NUM_THREADS": "1", **(env or {})})
        with open(log, "w") as out:  # a file, not a pipe: nothing must wait for a reader
            self.process = subprocess.Popen([sys.executable, "-m", "seqkit", "serve", *map(str, args), "--port", "0"],
                                            stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
        deadline = time.monotonic() + 180  # loading the runs on a busy machine
        while time.monotonic() < deadline:
            found = LISTENING.search(log.read_text())
            if found:
                self.host, self.port = found.group(1), int(found.group(2))
                return
            if self.process.poll() is not None:
                raise AssertionError(f"seqkit serve exited with {self.process.returncode}:\n{log.read_text()}")
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"seqkit serve did not start:\n{log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def connection(self, timeout: float = 120) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, token: str | None = "default") -> dict:
        token = self.token if token == "default" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None,
                token: str | None = "default", headers: dict | None = None) -> tuple[int, dict, bytes]:
        """(status, headers, body) of one request; ``body`` is sent as JSON, ``raw`` as is."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn = self.connection()
        try:
            conn.request(method, path, body=data, headers={**self.headers(token), **(headers or {}),
                                                           **({"Content-Type": "application/json"} if data else {})})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body=None, **kwargs) -> tuple[int, dict]:
        status, headers, data = self.request(method, path, body, **kwargs)
        assert headers.get("content-type", "").startswith("application/json"), (status, headers, data)
        return status, json.loads(data)

    def ok(self, method: str, path: str, body=None) -> dict:
        status, data = self.json(method, path, body)
        assert status == 200, (status, data)
        return data

    def concurrently(self, requests: list[tuple[str, str, dict]]) -> list[tuple[int, dict]]:
        """The requests sent at once, from one thread each; their answers in order."""
        answers: list = [None] * len(requests)
        start = threading.Barrier(len(requests))

        def send(i, method, path, body):
            start.wait()
            answers[i] = self.json(method, path, body)

        threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        return answers


def read_events(response, limit: int | None = None) -> list[tuple[str, dict]]:
    """Server-sent events from an http.client response: (name, data), up to ``limit`` of them."""
    events, name, data = [], None, []
    while limit is None or len(events) < limit:
        line = response.readline()
        if not line:
            break
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        elif line == "" and name is not None:
            events.append((name, json.loads("\n".join(data))))
            name, data = None, []
    return events
