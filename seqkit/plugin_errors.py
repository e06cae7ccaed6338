"""Name the third-party component whose code raised an exception, in one line.

A plugin's bug surfaces deep inside seqkit's loops (a cell's ``step`` inside ``Recurrent``
inside the trainer), as a long traceback through seqkit's code. The innermost frame of the
traceback that runs a method of a third-party component (its ``self`` is an instance of a
registered class) says whose code failed, and the registry says which plugin registered it.
"""
from __future__ import annotations

import traceback

from seqkit.errors import SeqkitError
from seqkit.registry import KINDS, get_registry


def component_at_fault(exc: BaseException) -> str | None:
    """"cell 'mycell' (plugin seqkit-mycell) raised ZeroDivisionError: division by zero in step()",
    or None when no third-party component is on the traceback (then it is seqkit's own bug, and
    its traceback is what a report needs)."""
    registry = get_registry()
    third_party = {}  # class -> (kind, name, distribution)
    for kind in KINDS:
        for name in registry.names(kind):
            plugin = registry.plugins[registry.owner(kind, name)]
            if plugin.source != "built-in":
                third_party[registry.get(kind, name)] = (kind, name, plugin.source)
    if not third_party:
        return None
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        obj = frame.f_locals.get("self")
        for cls, (kind, name, source) in third_party.items():
            if isinstance(obj, cls):
                return f"{kind} '{name}' (plugin {source}) raised {_one_line(exc)} in {frame.f_code.co_name}()"
    return None


def describe_failure(exc: BaseException) -> str:
    """One line: the component at fault and what it raised, or just what was raised."""
    if isinstance(exc, SeqkitError):  # already a message for the user
        return str(exc).replace("\n", "; ")
    return component_at_fault(exc) or _one_line(exc)


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
