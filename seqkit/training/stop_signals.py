"""Stop a run cleanly on Ctrl-C (SIGINT) or SIGTERM: finish the step, checkpoint it, leave.

Inside ``StopSignals()`` the first SIGINT or SIGTERM is only recorded; the trainer looks at it
between optimizer steps, so it never checkpoints a half-updated model. The handlers the
process had before come back at once, so a second signal acts as usual (Ctrl-C raises
``KeyboardInterrupt``, the checkpoint on disk stays as it was).
"""
from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """A context manager; ``received`` is the first stop signal's number, or None."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self._previous = {s: signal.signal(s, self._record) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _record(self, signum, frame) -> None:
        self.received = signum
        self._restore()

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous = {}
