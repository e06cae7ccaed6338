"""The plugin registry: registration path, rejections, broken third-party plugins."""
from __future__ import annotations

import json
import sys
import warnings

import pytest
import torch
from conftest import cli_here, make_plugin_dist, run_cli

import seqkit
from seqkit.errors import PluginWarning, SeqkitError
from seqkit.registry import Registry


class EchoCell(seqkit.Cell):
    def step(self, x_t, state):
        return state + x_t.sum(1, keepdim=True), state


class Beam2(seqkit.Decoder):
    """Only registered, never run."""


class SmallTask(seqkit.Task):
    """Only registered, never run."""


class Corpus(seqkit.Dataset):
    """Only registered, never read."""


class Letters(seqkit.Tokenizer):
    """Only registered, never trained."""


class AllKinds:
    """A plugin object implementing every hook, as a third-party plugin would."""

    @seqkit.hookimpl
    def register_cells(self, register):
        register("echo", EchoCell)

    @seqkit.hookimpl
    def register_decoders(self, register):
        register("beam2", Beam2)

    @seqkit.hookimpl
    def register_tasks(self, register):
        register("small", SmallTask)

    @seqkit.hookimpl
    def register_datasets(self, register):
        register("corpus", Corpus)

    @seqkit.hookimpl
    def register_tokenizers(self, register):
        register("letters", Letters)


@pytest.fixture
def all_kinds(registry):
    registry.add(AllKinds(), "all-kinds", source="tests")
    yield registry
    registry.remove("all-kinds")
    assert "all-kinds" not in registry.plugins


def test_every_hook_registers_its_kind(all_kinds):
    assert all_kinds.get("cell", "echo") is EchoCell
    assert all_kinds.get("decoder", "beam2") is Beam2
    assert all_kinds.get("task", "small") is SmallTask
    assert all_kinds.get("dataset", "corpus") is Corpus
    assert all_kinds.get("tokenizer", "letters") is Letters
    info = all_kinds.plugins["all-kinds"]
    assert info.hooks == ["register_cells", "register_decoders", "register_tasks", "register_datasets",
                          "register_tokenizers"]
    assert info.components == {"cell": ["echo"], "decoder": ["beam2"], "task": ["small"],
                               "dataset": ["corpus"], "tokenizer": ["letters"]}
    assert all_kinds.owner("cell", "echo") == "all-kinds"


def test_remove_forgets_components(registry):
    registry.add(AllKinds(), "temp", source="tests")
    registry.remove("temp")
    for kind, name in [("cell", "echo"), ("decoder", "beam2"), ("task", "small"), ("dataset", "corpus")]:
        assert name not in registry.names(kind)
    # the name is free again
    registry.add(AllKinds(), "temp", source="tests")
    assert "echo" in registry.names("cell")


def test_duplicate_name_names_both_plugins(all_kinds):
    class Again:
        @seqkit.hookimpl
        def register_cells(self, register):
            register("echo", EchoCell)

    with pytest.raises(SeqkitError, match=r"cell 'echo' from plugin 'again' is already registered "
                                          r"by plugin 'all-kinds'"):
        all_kinds.add(Again(), "again", strict=True)
    assert "again" not in all_kinds.plugins


def test_duplicate_within_one_plugin(registry):
    class Twice:
        @seqkit.hookimpl
        def register_tasks(self, register):
            register("dup", SmallTask)
            register("dup", SmallTask)

    with pytest.raises(SeqkitError, match="already registered by plugin 'twice'"):
        registry.add(Twice(), "twice", strict=True)


@pytest.mark.parametrize("hook, obj", [
    ("register_cells", torch.nn.LSTMCell),
    ("register_cells", EchoCell(1, 1)),  # an instance, not a class
    ("register_decoders", SmallTask),
    ("register_tasks", "not a class"),
    ("register_datasets", EchoCell),
])
def test_wrong_kind_is_rejected(registry, hook, obj):
    plugin = type("Wrong", (), {hook: seqkit.hookimpl(lambda self, register: register("x", obj))})()
    with pytest.raises(SeqkitError, match="must be a subclass of seqkit"):
        registry.add(plugin, "wrong", strict=True)
    for kind in ("cell", "decoder", "task", "dataset"):
        assert "x" not in registry.names(kind)


def test_failing_plugin_contributes_nothing_and_warns(registry):
    class HalfBroken:
        @seqkit.hookimpl
        def register_cells(self, register):
            register("fine", EchoCell)
            raise RuntimeError("boom")

    with pytest.warns(PluginWarning, match=r"plugin 'half' \(tests\) failed to load: RuntimeError: boom"):
        info = registry.add(HalfBroken(), "half", source="tests", strict=False)
    assert info.error == "RuntimeError: boom"
    assert "fine" not in registry.names("cell")
    assert not registry.pm.has_plugin("half")


def test_unknown_hook_name_is_a_plugin_error(registry):
    class Typo:
        @seqkit.hookimpl
        def register_cell(self, register):  # missing 's'
            register("t", EchoCell)

    with pytest.raises(SeqkitError, match="plugin 'typo'"):
        registry.add(Typo(), "typo", strict=True)


def test_unknown_component_lists_registered(all_kinds):
    with pytest.raises(SeqkitError, match=r"unknown cell 'ecko' \(did you mean 'echo'\?\); registered: .*echo"):
        all_kinds.get("cell", "ecko")


BROKEN_IMPORT = "import this_module_does_not_exist\n"
BROKEN_HOOK = """
import seqkit

@seqkit.hookimpl
def register_cells(register):
    raise ValueError("hook exploded")
"""


@pytest.mark.parametrize("source, error", [
    (BROKEN_IMPORT, "ModuleNotFoundError: No module named 'this_module_does_not_exist'"),
    (BROKEN_HOOK, "ValueError: hook exploded"),
])
def test_broken_entry_point_warns_then_fails_under_strict(tmp_path, monkeypatch, toy_site, source, error):
    site = make_plugin_dist(toy_site, "seqkit-broken", "broken_seqkit_plugin", source, "broken")
    monkeypatch.syspath_prepend(str(site))
    for strict in ("0", "1"):
        monkeypatch.setenv("SEQKIT_STRICT_PLUGINS", strict)
        registry = Registry()
        if strict == "1":
            with pytest.raises(SeqkitError, match=f"plugin 'broken' \\(seqkit-broken\\) failed to load: {error}"):
                registry.load_entry_points()
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry.load_entry_points()
        messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
        assert any(f"plugin 'broken' (seqkit-broken) failed to load: {error}" in m for m in messages)
        assert "toycell" in registry.names("cell")  # the healthy plugin still loads
        assert registry.plugins["broken"].error == error


def test_load_plugins_env_selects_third_party(monkeypatch, toy_site):
    make_plugin_dist(toy_site, "seqkit-broken", "broken_seqkit_plugin", BROKEN_IMPORT, "broken")
    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("SEQKIT_STRICT_PLUGINS", "1")
    monkeypatch.setenv("SEQKIT_LOAD_PLUGINS", "toy")
    registry = Registry()
    registry.load_entry_points()  # strict, yet the broken plugin is never imported
    assert set(registry.plugins) == {"toy"}
    monkeypatch.setenv("SEQKIT_LOAD_PLUGINS", "")
    registry = Registry()
    registry.load_entry_points()
    assert registry.plugins == {}


def test_cli_plugins_shows_failed_plugin_and_keeps_working(toy_site):
    make_plugin_dist(toy_site, "seqkit-broken", "broken_seqkit_plugin", BROKEN_IMPORT, "broken")
    result = run_cli("plugins", "--json", site=toy_site)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["toy"]["source"] == "seqkit-toy"
    assert plugins["toy"]["version"] == "1.0"
    assert plugins["toy"]["components"] == {"cell": ["toycell"], "decoder": ["toydec"], "task": ["toy"]}
    assert plugins["toy"]["hooks"] == ["register_cells", "register_decoders", "register_tasks"]
    assert plugins["broken"]["error"].startswith("ModuleNotFoundError")
    assert all(p["source"] == "built-in" for n, p in plugins.items() if n.startswith("seqkit.plugins."))
    warning_lines = [l for l in result.stderr.splitlines() if "broken" in l]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("seqkit: warning: plugin 'broken'")
    assert "Traceback" not in result.stderr

    strict = cli_here("plugins", site=toy_site, env={"SEQKIT_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2
    assert strict.stderr.strip().splitlines() == [
        "plugin 'broken' (seqkit-broken) failed to load: ModuleNotFoundError: "
        "No module named 'this_module_does_not_exist'"]


def test_cli_plugins_table(toy_site):
    result = cli_here("plugins", site=toy_site, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "seqkit-toy" in result.stdout and "toycell" in result.stdout


def test_builtins_are_plugins_like_any_other(registry):
    for name, info in registry.plugins.items():
        assert name.startswith("seqkit.plugins.")
        assert info.source == "built-in" and info.version == seqkit.__version__
        assert info.hooks and info.error is None
        module = sys.modules[name]
        assert registry.pm.get_plugin(name) is module


UNMARKED_HOOK = """
import torch
import seqkit


class Forgotten(seqkit.Cell):
    def step(self, x_t, state):
        return state, state


def register_cells(register):  # no @seqkit.hookimpl: pluggy never calls it
    register("forgotten", Forgotten)
"""


def test_a_plugin_that_registers_nothing_warns_naming_the_unmarked_hook(monkeypatch, toy_site):
    make_plugin_dist(toy_site, "seqkit-forgot", "forgot_seqkit_plugin", UNMARKED_HOOK, "forgot")
    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("SEQKIT_STRICT_PLUGINS", "0")
    with pytest.warns(PluginWarning, match=r"^plugin 'forgot' \(seqkit-forgot\) registered nothing: "
                                           r"register_cells not marked @seqkit\.hookimpl$"):
        Registry().load_entry_points()
    monkeypatch.setenv("SEQKIT_STRICT_PLUGINS", "1")
    with pytest.raises(SeqkitError, match="registered nothing"):
        Registry().load_entry_points()


def test_a_marked_hook_that_registers_nothing_warns_too(registry):
    class Empty:
        @seqkit.hookimpl
        def register_cells(self, register):
            """Registers only when some condition holds; here it does not."""

    with pytest.warns(PluginWarning, match=r"plugin 'empty' \(tests\) registered nothing: its hooks "
                                           r"called register\(\) for nothing"):
        registry.add(Empty(), "empty", source="tests", strict=False)
    assert "empty" in registry.plugins


def test_cli_prints_the_registered_nothing_warning_in_one_line(toy_site):
    make_plugin_dist(toy_site, "seqkit-forgot", "forgot_seqkit_plugin", UNMARKED_HOOK, "forgot")
    proc = run_cli("plugins", "--json", site=toy_site)
    assert proc.returncode == 0
    assert proc.stderr.strip() == ("seqkit: warning: plugin 'forgot' (seqkit-forgot) registered "
                                   "nothing: register_cells not marked @seqkit.hookimpl")
