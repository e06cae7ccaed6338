"""The command line itself: entry points, help, debug tracebacks, devices."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import cli_here, run_cli

from seqkit.device import resolve_device
from seqkit.errors import SeqkitError


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("validate", "plugins"):
        assert command in result.stdout


def test_console_script_is_installed():
    exe = shutil.which("seqkit")
    assert exe, "the 'seqkit' console script is not on PATH; install with pip install -e ."
    result = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("seqkit ")


def test_unknown_command_is_a_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr


@pytest.mark.parametrize("args", [
    ("validate", "recipes/char_lm.yaml", "--set", "model.cell=toycel", "--set", "train.stepz=3"),  # two problems
    ("show", "cell", "toycell", "--json"),  # a plugin's cell, from the site
    ("frobnicate",),  # argparse's usage error
])
def test_a_command_run_in_this_process_answers_as_the_console_script_does(toy_site, args):
    """conftest.cli_here, which most refusal tests use, against a fresh interpreter."""
    here, there = cli_here(*args, site=toy_site), run_cli(*args, site=toy_site)
    assert (here.returncode, here.stdout, here.stderr) == (there.returncode, there.stdout, there.stderr)
    assert here.stdout or here.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(tmp_path, how):
    missing = tmp_path / "missing.yaml"
    quiet = run_cli("validate", missing)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    if how == "flag":
        loud = run_cli("validate", missing, "--debug")
    else:
        loud = run_cli("validate", missing, env={"SEQKIT_DEBUG": "1"})
    assert "Traceback" in loud.stderr and "SeqkitError" in loud.stderr
    assert loud.returncode != 0


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("spec, message", [
    ("tpu", "is not one of auto, cpu, cuda, cuda:N, mps"),
    ("cuda:99", "cuda:99"),
])
def test_bad_or_absent_device_is_an_error_not_a_fallback(spec, message):
    with pytest.raises(SeqkitError, match=message):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_absent_cuda_says_so():
    with pytest.raises(SeqkitError, match="sees no CUDA device"):
        resolve_device("cuda")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])  # a rich table, a plain print
def test_a_reader_that_stops_reading_ends_the_command_quietly(json_flag):
    """`seqkit ... | head`: a closed pipe on stdout is no traceback, with or without --json."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "seqkit", "show", "recipe", *json_flag],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")
