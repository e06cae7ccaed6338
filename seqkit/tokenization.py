"""A recipe's tokenizer: validated, built, saved in a checkpoint and rebuilt from it.

A recipe names a tokenizer by a mapping, ``{name: bpe, vocab_size: 8000}``, or by a bare name,
``char``; the keys beside ``name`` are the registered tokenizer's ``options``. Problems are one
line each, starting with the recipe key they belong to (``data.tokenizer.vocab_size: ...``).
A checkpoint holds a trained tokenizer as ``tokenizer_state``: plain types only, so that it loads
with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import importlib.util

from seqkit.contracts import Tokenizer
from seqkit.errors import MissingPackage, SeqkitError
from seqkit.options import check_options
from seqkit.registry import get_registry


def _installed(package: str) -> bool:
    """Can ``package`` be imported? Found, not imported, so that validation stays quick."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
        return False


def _resolve(spec, key: str):
    """(class, name, resolved options, problems with the value, the first package it needs that is
    missing as (package, install command) or None) of the recipe value ``spec`` at ``key``."""
    if isinstance(spec, str):
        name, values, name_key = spec, {}, key
    elif isinstance(spec, dict):
        name, name_key = spec.get("name"), f"{key}.name"
        values = {k: v for k, v in spec.items() if k != "name"}
    else:
        return None, None, {}, [f"{key}: expected a tokenizer name or a mapping with 'name' (e.g. "
                                f"{{name: bpe, vocab_size: 8000}}), got {type(spec).__name__} {spec!r}"], None
    registry = get_registry()
    known = registry.names("tokenizer")
    if name is None:
        return None, None, {}, [f"{name_key}: required key is missing; registered tokenizers: "
                                f"{', '.join(known) or 'none'}"], None
    try:
        cls = registry.get("tokenizer", name)
    except SeqkitError as exc:
        return None, name, {}, [f"{name_key}: {exc}"], None
    resolved, problems = check_options(values, cls.options, key)
    return cls, name, resolved, problems, _missing_package(cls)


def _missing_package(cls) -> tuple[str, str] | None:
    """(package, install command) of the first package in ``cls.packages`` that is not installed."""
    return next(((package, install) for package, install in cls.packages.items() if not _installed(package)),
                None)


def _missing_line(key: str, name: str, missing: tuple[str, str]) -> str:
    return f"{key}: {name} needs the {missing[0]} package, which is not installed: {missing[1]}"


def tokenizer_problems(spec, key: str) -> list[str]:
    """What is wrong with the recipe value ``spec`` (a name, or a mapping with ``name`` and the
    tokenizer's options) at ``key``, found without reading data: an unknown name, an unknown or
    invalid option, a package it needs that is not installed. Each a line starting with its key."""
    _, name, _, problems, missing = _resolve(spec, key)
    return problems + ([_missing_line(key, name, missing)] if missing else [])


def build_tokenizer(spec, key: str, specials: tuple[str, ...] = ()) -> Tokenizer:
    """The untrained tokenizer of the recipe value ``spec`` at ``key``, with the task's
    ``specials`` at ids 0, 1, ...; raises ``SeqkitError`` with ``tokenizer_problems`` (a
    ``MissingPackage`` when a package is all that is missing)."""
    cls, name, resolved, problems, missing = _resolve(spec, key)
    if missing is not None and not problems:
        raise MissingPackage(_missing_line(key, name, missing), *missing)
    if problems or missing:
        raise SeqkitError(*problems, *([_missing_line(key, name, missing)] if missing else []))
    return cls(specials=tuple(specials), **resolved)


def spec_identity(spec) -> dict:
    """``{"name": ..., "options": {...}}``, the recipe value ``spec`` with every default filled
    in: JSON-able, and the same for every spelling of one tokenizer (part of a cache key)."""
    _, name, resolved, problems, _ = _resolve(spec, "tokenizer")
    if problems:
        raise SeqkitError(*problems)
    return {"name": name, "options": dict(sorted(resolved.items()))}


def tokenizer_state(tok: Tokenizer) -> dict:
    """A trained tokenizer as a checkpoint holds it: its registered name, options, specials and
    ``state_dict()``, plus the plugin that registered it, for the message when it is missing."""
    registry = get_registry()
    name = next((n for n in registry.names("tokenizer") if registry.get("tokenizer", n) is type(tok)), None)
    if name is None:
        raise SeqkitError(f"tokenizer {type(tok).__name__} is not a registered tokenizer; register it "
                          f"with the register_tokenizers hook")
    plugin = registry.plugins[registry.owner("tokenizer", name)]
    return {"name": name, "options": dict(tok.config), "specials": list(tok.specials),
            "state": tok.state_dict(), "plugin": plugin.source}


def tokenizer_from_state(state: dict) -> Tokenizer:
    """The trained tokenizer of ``tokenizer_state``, rebuilt through the registry."""
    registry = get_registry()
    name = state.get("name")
    if name not in registry.names("tokenizer"):
        plugin = state.get("plugin")
        where = (f"install the plugin that provides it ({plugin})" if plugin and plugin != "built-in"
                 else "install the plugin that provides it")
        raise SeqkitError(f"tokenizer '{name}' of this checkpoint is not registered here (registered: "
                          f"{', '.join(registry.names('tokenizer')) or 'none'}); {where}, then see "
                          f"seqkit plugins")
    cls = registry.get("tokenizer", name)
    stored = {k: v for k, v in (state.get("options") or {}).items() if k in cls.options}
    resolved, problems = check_options(stored, cls.options, f"tokenizer {name}")
    missing = _missing_package(cls)
    if missing is not None:
        raise MissingPackage(f"tokenizer {name} of this checkpoint needs the {missing[0]} package, "
                             f"which is not installed: {missing[1]}", *missing)
    if problems:
        raise SeqkitError(*(f"checkpoint: {p}" for p in problems))
    tok = cls(specials=tuple(state.get("specials") or ()), **resolved)
    tok.load_state_dict(state["state"])
    return tok
