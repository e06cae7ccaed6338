"""The example third-party package examples/seqkit-mingru, installed with pip, end to end."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "seqkit-mingru"
INSTALL = f"pip install {EXAMPLE.relative_to(EXAMPLE.parent.parent)}"


@pytest.fixture(scope="module")
def mingru():
    try:
        import seqkit_mingru
    except ImportError:
        pytest.fail(f"the example plugin is not installed; run `{INSTALL}` from the repository root")
    return seqkit_mingru


def test_listed_by_seqkit_plugins_with_its_distribution(mingru):
    result = subprocess.run([sys.executable, "-m", "seqkit", "plugins", "--json"],
                            capture_output=True, text=True, check=True)
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["mingru"]["source"] == "seqkit-mingru"
    assert plugins["mingru"]["version"] == "0.1.0"
    assert plugins["mingru"]["components"] == {"cell": ["mingru"]}
    assert plugins["mingru"]["error"] is None


def test_registered_cell_passes_the_conformance_kit(mingru):
    from seqkit.registry import get_registry
    from seqkit.testing import check_cell

    cell = get_registry().get("cell", "mingru")
    assert cell is mingru.MinGRUCell
    check_cell(cell)


def test_the_packages_own_tests_pass(mingru):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(EXAMPLE / "tests")], capture_output=True, text=True, cwd=EXAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr
