"""``seqkit plugins`` printed to a pipe: every name a user must type appears whole."""
from __future__ import annotations

import pytest
from conftest import make_plugin_dist, run_cli

from seqkit.errors import PluginWarning
from seqkit.registry import KINDS, get_registry

LONG_NAMES = """
    import seqkit


    class Cell(seqkit.Cell):
        def step(self, x_t, state):
            return state, state


    @seqkit.hookimpl
    def register_cells(register):
        register("a-cell-with-a-name-longer-than-any-column-of-an-eighty-column-table", Cell)
"""


def test_piped_table_keeps_every_name_whole(tmp_path, monkeypatch):
    site = make_plugin_dist(tmp_path, "seqkit-a-distribution-with-a-long-name", "long_names",
                            LONG_NAMES, "long-names-plugin")
    make_plugin_dist(site, "seqkit-broken", "broken_plugin", "raise ImportError('[bold]x[/bold]')\n",
                     "broken")
    # COLUMNS is what a terminal-less rich console would fit its table to.
    result = run_cli("plugins", site=site, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(PluginWarning, match="plugin 'broken'"):
        registry = get_registry()
    names = [name for kind in KINDS for name in registry.names(kind)]
    assert "a-cell-with-a-name-longer-than-any-column-of-an-eighty-column-table" in names
    assert "python-source" in names
    for name in names:
        assert f" {name} " in result.stdout or f" {name}," in result.stdout, name
    for plugin in registry.plugins.values():
        assert plugin.name.removeprefix("seqkit.plugins.") in result.stdout
        assert plugin.source in result.stdout
    assert "…" not in result.stdout
    # An error message is shown as it is, not read as rich markup.
    assert "failed: ImportError: [bold]x[/bold]" in result.stdout
