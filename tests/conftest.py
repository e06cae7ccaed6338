"""Shared fixtures and helpers: fresh registries, installed-looking plugin distributions without pip,
and the command line run in a subprocess (``run_cli``) or in this process (``cli_here``)."""
from __future__ import annotations

import atexit
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from seqkit.registry import Registry, reset_registry

REPO = Path(__file__).resolve().parent.parent

# The CLI runs the tests start are tiny too, and pytest-xdist runs several tests at once: one
# torch thread each keeps the cores from being oversubscribed (a test may still set its own).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# And one kernel choice: each process measures which recurrent kernel is faster (seqkit.nn.kernels)
# and two may choose differently, which moves the last bits of results that tests compare across
# processes (a CLI run against this process's, a resumed run against an uninterrupted one). The
# measurement itself is tested in tests/nn/test_kernels.py, which unsets this.
SAME_KERNELS = {"SEQKIT_KERNEL": "torch"}
os.environ.update(SAME_KERNELS)
# Prepared data of a test that names no cache folder (SEQKIT_CACHE_DIR) goes to a scratch folder,
# never the user's ~/.cache/seqkit: the default, $XDG_CACHE_HOME/seqkit, points there for this
# process and every command it starts (set here, before any test module copies os.environ).
_SCRATCH_CACHE = tempfile.mkdtemp(prefix="seqkit-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _SCRATCH_CACHE
atexit.register(shutil.rmtree, _SCRATCH_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(items):
    """Files with end-to-end (``slow``) tests first, each file's tests in their order: under
    ``--dist loadfile`` the long files start early, and the short ones fill the workers at the end,
    instead of one worker running the last long file while the others wait."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture
def registry():
    """A registry with the built-in plugins only (no third-party entry points)."""
    reg = Registry(strict=True)
    reg.load_builtins()
    return reg


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Test models are tiny: threads gain nothing, and on a busy 2-core machine torch's waiting
    worker threads make each op milliseconds instead of microseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_process_registry():
    """Tests that touch the process-wide registry or its env variables start from scratch."""
    reset_registry()
    yield
    reset_registry()


def make_plugin_dist(site: Path, dist: str, module: str, source: str, entry_point: str | None = None,
                     version: str = "1.0") -> Path:
    """Lay out ``module.py`` and a ``dist-info`` with a ``seqkit`` entry point under ``site``.

    Putting ``site`` on sys.path (or PYTHONPATH) makes importlib.metadata see it exactly as an
    installed distribution, so the real entry-point loading path runs without pip.
    """
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[seqkit]\n{entry_point or dist} = {module}\n")
    return site


TOY_PLUGIN = """
    import torch
    import seqkit
    from seqkit import Option


    class ToyTask(seqkit.Task):
        options = {"data": {"size": Option(10, min=1)}, "decode": {"prompt": Option("a")}}


    class ToyCell(seqkit.Cell):
        def __init__(self, input_size, hidden_size, scale=1.0):
            super().__init__(input_size, hidden_size)
            self.scale = scale
            self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)

        def step(self, x_t, state):
            h = torch.tanh(self.linear(torch.cat([x_t, state], 1))) * self.scale
            return h, h


    class ToyDecoder(seqkit.Decoder):
        options = {"width": Option(2, min=1)}


    @seqkit.hookimpl
    def register_decoders(register):
        register("toydec", ToyDecoder)


    @seqkit.hookimpl
    def register_tasks(register):
        register("toy", ToyTask)


    @seqkit.hookimpl
    def register_cells(register):
        register("toycell", ToyCell)
"""


@pytest.fixture
def toy_site(tmp_path):
    """A site folder with the 'seqkit-toy' distribution (task toy, cell toycell, decoder toydec)."""
    return make_plugin_dist(tmp_path / "site", "seqkit-toy", "toy_seqkit_plugin", TOY_PLUGIN, "toy")


def run_cli(*args, site: Path | None = None, env: dict | None = None, cwd=None):
    """Run ``python -m seqkit ARGS`` in a subprocess, optionally with extra plugin sites."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEQKIT_")} | SAME_KERNELS
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(site)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else []))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "seqkit", *map(str, args)], capture_output=True,
                          text=True, env=full_env, cwd=cwd or REPO, timeout=300)


def cli_here(*args, site: Path | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``seqkit ARGS`` run in this process (``seqkit.cli.main``), returning what ``run_cli`` returns.

    A new interpreter spends about 2 s importing torch, most of a test that checks one error line.
    The many such checks run here instead: the same ``main`` the console script calls, with the
    environment, plugin site, working folder, standard streams and warning filters a fresh process
    would have, all restored after. What needs a process of its own (the console script itself,
    signals, ``--debug`` logging, training) keeps ``run_cli``."""
    from seqkit.cli import main

    if site is not None and (Path(site) / "sitecustomize.py").exists():
        raise ValueError("a site_without site works at interpreter start: use run_cli")
    out, err = io.StringIO(), io.StringIO()
    # The site's modules are imported afresh, as a new interpreter would: another test may have
    # imported a module of the same name from another site.
    fresh = set() if site is None else {path.stem for path in Path(site).glob("*.py")}
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.resetwarnings()  # an interpreter's defaults: each warning once per place
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", DeprecationWarning)
        for key in [k for k in os.environ if k.startswith("SEQKIT_")]:
            patch.delenv(key)
        for key, value in (SAME_KERNELS | (env or {})).items():
            patch.setenv(key, str(value))
        if site is not None:
            patch.syspath_prepend(str(site))
        for name in [name for name in sys.modules if name.partition(".")[0] in fresh]:
            patch.delitem(sys.modules, name)  # put back after the call
        patch.chdir(cwd or REPO)
        patch.setattr(sys, "stdin", io.StringIO(""))
        patch.setattr(sys, "stdout", out)
        patch.setattr(sys, "stderr", err)
        reset_registry()
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exc:  # argparse's usage errors; a message, as the interpreter shows it
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=err)
        finally:
            reset_registry()
            for name in [name for name in sys.modules if name.partition(".")[0] in fresh]:
                del sys.modules[name]  # this call's imports of them
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def site_without(package: str, site: Path) -> Path:
    """A site folder that, on PYTHONPATH (``run_cli(site=...)``), makes ``package`` look not
    installed: its ``sitecustomize`` refuses the import, as a machine without the package would."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""\
        import sys
        class _Missing:
            def find_spec(self, name, path=None, target=None):
                if name == {package!r} or name.startswith({package!r} + "."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, _Missing())
        """))
    return site


def needs_extra(distribution: str, extra: str) -> None:
    """Skip the calling test when an optional dependency is not installed, naming the install; in
    CI, which installs every extra (the README's test command), fail instead, so that a broken
    install step cannot hide behind skips. Looks the distribution up without importing it."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        message = f'{distribution} is not installed: pip install -e ".[{extra}]"'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh cache folder for prepared data (``SEQKIT_CACHE_DIR``), empty until a test writes to it."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """One cache folder for prepared data (``SEQKIT_CACHE_DIR``) shared by a module's tests, so the
    runs its module-scoped fixtures train never write to the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQKIT_CACHE_DIR", str(folder))
        yield folder


def contents(cache: Path) -> list[str]:
    """Every path under ``cache``, relative to it, sorted."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []
