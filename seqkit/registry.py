"""The plugin registry: built-in and third-party plugins register components through one path.

Built-ins are the modules under ``seqkit.plugins``; third-party plugins are found through the
entry-point group ``seqkit``. Each hook implementation is called on its own, with a ``register``
callback bound to its plugin, so a broken plugin contributes nothing and takes nothing down.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import warnings
from dataclasses import dataclass, field

import pluggy

import seqkit.hookspecs as hookspecs
from seqkit.contracts import Cell, Dataset, Decoder, MetricLogger, Task, Tokenizer
from seqkit.errors import PluginWarning, SeqkitError
from seqkit.options import suggest
from seqkit.version import __version__

ENTRY_POINT_GROUP = "seqkit"
BUILTIN_PACKAGE = "seqkit.plugins"

# kind -> (hook that registers it, base class every registered object must subclass)
KINDS = {
    "cell": ("register_cells", Cell),
    "decoder": ("register_decoders", Decoder),
    "task": ("register_tasks", Task),
    "dataset": ("register_datasets", Dataset),
    "logger": ("register_loggers", MetricLogger),
    "tokenizer": ("register_tokenizers", Tokenizer),
}


@dataclass
class PluginInfo:
    name: str
    version: str | None
    source: str  # "built-in" or the name of the distribution that provides it
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    """Components by kind and name, and a record of which plugin registered what."""

    def __init__(self, strict: bool | None = None):
        self.strict = _env_flag("SEQKIT_STRICT_PLUGINS") if strict is None else strict
        self.pm = pluggy.PluginManager("seqkit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._components: dict[str, dict[str, object]] = {kind: {} for kind in KINDS}
        self._owners: dict[tuple[str, str], str] = {}

    # -- loading ---------------------------------------------------------------------------
    def load_builtins(self) -> None:
        package = importlib.import_module(BUILTIN_PACKAGE)
        for module_info in sorted(pkgutil.walk_packages(package.__path__, BUILTIN_PACKAGE + "."),
                                  key=lambda m: m.name):
            if module_info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            module = importlib.import_module(module_info.name)
            if any(self.pm.parse_hookimpl_opts(module, attr) for attr in dir(module)):
                # A broken built-in is a bug in seqkit itself: always fail loudly.
                self.add(module, module_info.name, source="built-in", version=__version__, strict=True)

    def load_entry_points(self) -> None:
        only = os.environ.get("SEQKIT_LOAD_PLUGINS")
        wanted = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if wanted is not None and ep.name not in wanted:
                continue
            source = ep.dist.name if ep.dist else "unknown distribution"
            version = ep.dist.version if ep.dist else None
            try:
                plugin = ep.load()
            except Exception as exc:  # any import-time failure of someone else's code
                self._fail(PluginInfo(ep.name, version, source), exc, self.strict)
                continue
            self.add(plugin, ep.name, source=source, version=version)

    def add(self, plugin, name: str, source: str = "built-in", version: str | None = None,
            strict: bool | None = None) -> PluginInfo:
        """Register ``plugin`` (a module or object with hook implementations) under ``name``."""
        strict = self.strict if strict is None else strict
        info = PluginInfo(name, version, source)
        try:
            self.pm.register(plugin, name)
            self.pm.check_pending()  # a hook name seqkit does not define is a typo, not a no-op
        except Exception as exc:
            if self.pm.has_plugin(name) and self.pm.get_plugin(name) is plugin:
                self.pm.unregister(name=name)
            return self._fail(info, exc, strict)
        staged: dict[str, dict[str, object]] = {kind: {} for kind in KINDS}
        try:
            for kind, (hook, _) in KINDS.items():
                for impl in getattr(self.pm.hook, hook).get_hookimpls():
                    if impl.plugin_name == name:
                        info.hooks.append(hook)
                        impl.function(register=self._register_callback(kind, name, staged))
        except Exception as exc:
            self.pm.unregister(name=name)
            return self._fail(info, exc, strict)
        for kind, objs in staged.items():
            self._components[kind].update(objs)
            for component in objs:
                self._owners[kind, component] = name
            if objs:
                info.components[kind] = sorted(objs)
        self.plugins[name] = info
        if not info.components:
            self._registered_nothing(plugin, info, strict)
        return info

    def _registered_nothing(self, plugin, info: PluginInfo, strict: bool) -> None:
        """A plugin that contributes nothing is almost always a hook missing its marker: say so."""
        unmarked = [hook for hook, _ in KINDS.values()
                    if callable(getattr(plugin, hook, None)) and hook not in info.hooks]
        why = (f"{', '.join(unmarked)} not marked @seqkit.hookimpl" if unmarked
               else "its hooks called register() for nothing")
        message = f"plugin '{info.name}' ({info.source}) registered nothing: {why}"
        if strict:
            raise SeqkitError(message)
        warnings.warn(message, PluginWarning, stacklevel=3)

    def remove(self, name: str) -> None:
        """Unregister a plugin and everything it registered."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        for (kind, component), owner in list(self._owners.items()):
            if owner == name:
                del self._owners[kind, component]
                del self._components[kind][component]
        self.plugins.pop(name, None)

    def _register_callback(self, kind: str, plugin_name: str, staged: dict):
        base = KINDS[kind][1]

        def register(name, obj):
            if not isinstance(name, str) or not name:
                raise SeqkitError(f"{kind} names must be non-empty strings, got {name!r}")
            if not (isinstance(obj, type) and issubclass(obj, base)):
                raise SeqkitError(f"{kind} '{name}' must be a subclass of seqkit.{base.__name__}, "
                                  f"got {obj!r}")
            owner = self._owners.get((kind, name)) or (plugin_name if name in staged[kind] else None)
            if owner is not None:
                raise SeqkitError(f"{kind} '{name}' from plugin '{plugin_name}' is already "
                                  f"registered by plugin '{owner}'")
            staged[kind][name] = obj

        return register

    def _fail(self, info: PluginInfo, exc: Exception, strict: bool) -> PluginInfo:
        info.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        message = (f"plugin '{info.name}' ({info.source}) failed to load: {info.error}")
        if strict:
            raise SeqkitError(message) from exc
        self.plugins[info.name] = info
        warnings.warn(message + " (set SEQKIT_LOAD_PLUGINS to choose plugins)", PluginWarning,
                      stacklevel=2)
        return info

    # -- lookup ----------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._components[kind])

    def get(self, kind: str, name: str):
        try:
            return self._components[kind][name]
        except (KeyError, TypeError):
            known = self.names(kind)
            raise SeqkitError(f"unknown {kind} '{name}'{suggest(name, known)}; "
                              f"registered: {', '.join(known) or 'none'}") from None

    def owner(self, kind: str, name: str) -> str:
        return self._owners[kind, name]


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry with built-in and installed plugins, loaded on first use."""
    global _registry
    if _registry is None:
        registry = Registry()
        registry.load_builtins()
        registry.load_entry_points()
        _registry = registry
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry (tests, or after installing a plugin in the same process)."""
    global _registry
    _registry = None
