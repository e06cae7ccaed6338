"""Declared options for recipe sections: each plugin owns and validates its own keys."""
from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Option:
    """One recipe key: its default, accepted type(s), and the range or choices allowed.

    ``type`` is inferred from ``default`` when not given; ``required`` options have no default.
    """

    default: Any = None
    type: type | tuple[type, ...] | None = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    required: bool = False

    def types(self) -> tuple[type, ...]:
        if self.type is not None:
            return self.type if isinstance(self.type, tuple) else (self.type,)
        if self.default is None:
            return ()
        if isinstance(self.default, float):
            return (float, int)
        return (type(self.default),)


_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "mapping",
               list: "list"}


def type_label(types: tuple[type, ...], article: bool = False) -> str:
    """'number', 'string or list' ('a number' with ``article``, for messages); 'any' for no type."""
    if float in types:  # an integer is a number too
        types = tuple(t for t in types if t is not int)
    names = [_TYPE_NAMES.get(t, t.__name__) for t in types]
    if article:
        names = [("an " if n[0] in "aeiou" else "a ") + n if t in _TYPE_NAMES else n
                 for t, n in zip(types, names)]
    return " or ".join(dict.fromkeys(names)) or "any"


def _as_declared(value: Any, option: Option) -> Any:
    """An integral float where only an integer is accepted is that integer (``1e3`` steps: 1000)."""
    types = option.types()
    if isinstance(value, float) and value.is_integer() and int in types and float not in types:
        return int(value)
    return value


def _check_value(value: Any, option: Option) -> str | None:
    if value is None:
        return None if option.default is None and not option.required else "must be set"
    types = option.types()
    # bool is a subclass of int in Python; a recipe's `true` is never a count.
    ok = not types or any(
        isinstance(value, t) and not (isinstance(value, bool) and t is not bool) for t in types
    )
    if not ok:
        return f"expected {type_label(types, article=True)}, got {type(value).__name__} {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number; got {value!r}"
    if option.choices is not None and value not in option.choices:
        return f"must be one of {', '.join(map(str, option.choices))}; got {value!r}"
    if option.min is not None and value < option.min:
        return f"must be >= {option.min}; got {value!r}"
    if option.max is not None and value > option.max:
        return f"must be <= {option.max}; got {value!r}"
    return None


def suggest(name: str, known) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_options(values: dict | None, schema: dict[str, Option], path: str,
                  ignore: tuple[str, ...] = (), elsewhere: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """Fill defaults into ``values`` and return (resolved, problems), problems as 'path.key: msg'.

    Keys in ``ignore`` are left unjudged (those an unknown task might own).
    Keys in ``elsewhere`` are allowed and checked by the caller (a recipe's sections): they are
    skipped too, but named among the allowed keys and suggested for a near miss.
    """
    values = {} if values is None else values
    prefix = f"{path}." if path else ""
    if not isinstance(values, dict):
        return {}, [f"{path}: expected a mapping, got {type(values).__name__}"]
    problems, resolved = [], {}
    allowed = [*schema, *elsewhere]
    for key in values:
        if key not in allowed and key not in ignore:
            problems.append(f"{prefix}{key}: unknown key{suggest(key, allowed)}; "
                            f"allowed: {', '.join(allowed) or 'none'}")
    for key, option in schema.items():
        value = values.get(key, _MISSING)
        if value is _MISSING:
            if option.required:
                problems.append(f"{prefix}{key}: required key is missing")
                continue
            value = option.default
        value = _as_declared(value, option)
        problem = _check_value(value, option)
        if problem:
            problems.append(f"{prefix}{key}: {problem}")
        resolved[key] = value
    return resolved, problems


def options_elsewhere(keys, chosen: str, schemas: dict[str, dict], kind: str,
                      selector: str | None = None) -> dict[str, str]:
    """``{key: why}`` for the ``keys`` that other plugins of one kind declare but ``chosen`` does
    not (``schemas``: each plugin's name -> its options), as "does not apply to strategy 'greedy'
    (it is an option of sample); ...". ``selector``, the recipe key that chooses the plugin, adds
    how to choose its owner. A key no plugin declares is left to the unknown-key check.
    """
    owners: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        for key in schema:
            owners.setdefault(key, []).append(name)
    own = schemas[chosen]
    accepted = ", ".join(own) or "no options"
    found = {}
    for key in keys:
        if key in owners and key not in own:
            found[key] = (f"does not apply to {kind} '{chosen}' (it is an option of "
                          f"{', '.join(owners[key])}); '{chosen}' accepts: {accepted}")
            if selector:
                found[key] += (f"; to use it, set {selector}={owners[key][0]}" if len(owners[key]) == 1
                               else f"; to use it, set {selector} to one of those")
    return found


def options_of(cls, skip: tuple[str, ...] = ("self",)) -> dict[str, Option]:
    """A plugin's options: its ``options`` attribute, else the keyword arguments of its __init__."""
    declared = getattr(cls, "options", None)
    if isinstance(declared, dict):
        return declared
    schema = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is inspect.Parameter.empty:
            schema[name] = Option(required=True)
        else:
            schema[name] = Option(default=param.default)
    return schema


def describe(option: Option) -> dict:
    """One key as JSON: type, default, required, allowed values, help."""
    return {"type": type_label(option.types()), "default": option.default, "required": option.required,
            "choices": list(option.choices) if option.choices is not None else None,
            "min": option.min, "max": option.max, "help": option.help}
