"""`seqkit validate` rejects what `seqkit run` would: rules across keys, the dataset's files, the
device, the model's memory. Each used to validate "ok" and then fail the run."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO, cli_here, run_cli

from seqkit.errors import SeqkitError
from seqkit.recipe import load_recipe

RECIPE = "recipes/char_lm.yaml"
CPU = ("device=cpu",)


def problems(*overrides: str) -> list[str]:
    with pytest.raises(SeqkitError) as info:
        load_recipe(RECIPE, overrides)
    return info.value.problems


def test_random_sampling_validates_and_carries_no_state():
    assert load_recipe(RECIPE, ("train.sampling=random", *CPU))["train"]["carry_state"] is False
    result = cli_here("validate", RECIPE, "--set", "train.sampling=random", "--device", "cpu")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_cross_key_and_dataset_problems_at_once(tmp_path):
    missing = tmp_path / "missing.txt"
    result = cli_here("validate", RECIPE, "--set", "train.sampling=random", "--set", "train.carry_state=true",
                     "--set", "data.dataset=text", "--set", f"data.path={missing}", "--device", "cpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{RECIPE}: train.carry_state: state is only carried between consecutive windows "
        f"(train.sampling: stream); remove it or set train.carry_state=false",
        f"{RECIPE}: data.path: no such file '{missing}'"]


def test_text_dataset_needs_a_path():
    assert problems("data.dataset=text", *CPU) == [
        f"{RECIPE}: data.path: the text dataset needs a file or glob, e.g. --set data.path=corpus.txt"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_device_fails_validation():
    assert problems("device=cuda") == [
        f"{RECIPE}: device: 'cuda' was asked for but this torch sees no CUDA device "
        f"(torch {torch.__version__}); use device: auto or cpu"]


def test_a_model_too_big_for_memory_is_refused_with_the_size_it_needs():
    # 2 LSTM layers of 10^7 units: 1.2e15 parameters, 4 bytes each, 4 copies with adam
    [line] = problems("model.hidden_size=10000000", *CPU)
    assert line.startswith(f"{RECIPE}: model: 1.2e+15 parameters need at least 17.1 PiB to train "
                           f"(weights, gradients and adam's state), but cpu has "), line
    assert line.endswith(" free; make the model smaller (model.hidden_size is 10000000, model.layers 2)")
    # 10^12 units: a weight of 4e12 x 1e12 floats is past what torch can count at all
    assert problems("model.hidden_size=1000000000000", *CPU) == [
        f"{RECIPE}: model: one of its tensors alone would need more than 8.0 EiB, more than torch "
        f"can address; make the model smaller (model.hidden_size is 1000000000000, model.layers 2)"]


def test_run_refuses_it_before_making_a_folder(tmp_path):
    output = tmp_path / "runs" / "big"
    result = run_cli("run", RECIPE, "--set", "model.hidden_size=1000000000000", "--set", f"output={output}",
                     "--device", "cpu", "--quiet")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"{RECIPE}: model: one of its tensors alone would need")
    assert not (tmp_path / "runs").exists()


def test_a_model_that_cannot_be_built_on_meta_gets_no_estimate_and_no_error():
    """A constructor that reads its weights' values works on real tensors only: not a reason to
    refuse a run, so no memory estimate is made for it."""
    from seqkit.memory import memory_problems

    class ReadsItsWeights:
        @classmethod
        def model_outline(cls, recipe):
            layer = torch.nn.Linear(2, 2)
            layer.weight.data /= float(layer.weight.detach().abs().max())
            return layer

    recipe = load_recipe(RECIPE, CPU)
    assert memory_problems(recipe, ReadsItsWeights, torch.device("cpu")) == []


def test_checking_a_recipe_does_not_import_torch_dynamo():
    # the memory check builds the model on the meta device; torch's meta normal_ would import
    # torch._dynamo (a second added to every run, validate and prepare)
    code = ("import sys\nfrom seqkit.cli import main\ncode = main(['validate', 'recipes/char_lm.yaml'])\n"
            "print(code, 'torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.stdout.split()[-2:] == ["0", "False"], result.stderr
