"""train.precision: bf16-mixed runs the training step's forward under torch.autocast (bfloat16) and
keeps everything else (weights, optimizer state, validation, the final test) in float32."""
from __future__ import annotations

import pytest
import torch
from _tiny_runs import metric_lines, tiny_recipe
from _translation_runs import translation_recipe

import seqkit.training.trainer as trainer_module
from seqkit.errors import SeqkitWarning
from seqkit.registry import get_registry
from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.run import start_run


def _autocast_seen(monkeypatch, task: str) -> dict[str, set]:
    """Record, for each call of the task's loss and evaluate, the autocast dtype in force (or None)."""
    cls = get_registry().get("task", task)
    seen: dict[str, set] = {"loss": set(), "evaluate": set()}
    for name in seen:
        original = getattr(cls, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            on = torch.is_autocast_enabled("cpu")
            seen[_name].add(torch.get_autocast_dtype("cpu") if on else None)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(cls, name, spy)
    return seen


@pytest.mark.parametrize("precision, expected", [("fp32", None), ("bf16-mixed", torch.bfloat16)])
def test_only_the_training_forward_runs_under_autocast(tmp_path, monkeypatch, precision, expected):
    seen = _autocast_seen(monkeypatch, "char_lm")
    start_run(tiny_recipe(tmp_path / "r", f"train.precision={precision}"), display="silent")
    assert seen == {"loss": {expected}, "evaluate": {None}}
    state = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert {t.dtype for t in state["model"].values()} == {torch.float32}
    moments = [t for s in state["optimizer"]["state"].values() for k, t in s.items() if k != "step"]
    assert moments and {t.dtype for t in moments} == {torch.float32}


def test_bf16_mixed_trains_as_float32_does_to_bfloat16_rounding(tmp_path):
    lines = {}
    for precision in ("fp32", "bf16-mixed"):
        start_run(tiny_recipe(tmp_path / precision, f"train.precision={precision}"), display="silent")
        lines[precision] = [l for l in metric_lines(tmp_path / precision) if l["split"] == "val"]
    for full, mixed in zip(lines["fp32"], lines["bf16-mixed"], strict=True):
        assert mixed["loss"] != full["loss"]  # the products were rounded to bfloat16...
        assert mixed["loss"] == pytest.approx(full["loss"], rel=0.02)  # ...and trained the same


def test_a_translation_model_trains_in_bf16_mixed(tmp_path):
    results = {}
    for precision in ("fp32", "bf16-mixed"):
        recipe = translation_recipe(tmp_path, tmp_path / precision, f"train.precision={precision}",
                                    "train.steps=30", "train.eval_every=30")
        results[precision] = start_run(recipe, display="silent")
    full, mixed = results["fp32"].final, results["bf16-mixed"].final
    assert mixed["loss"] == pytest.approx(full["loss"], rel=0.05)
    assert abs(mixed["token_error_rate"] - full["token_error_rate"]) <= 0.05


def test_bf16_mixed_on_a_cpu_without_bfloat16_instructions_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "_cpu_has_bfloat16", lambda unknown=True: False)
    with pytest.warns(SeqkitWarning, match="train.precision: bf16-mixed on a CPU without bfloat16"):
        start_run(tiny_recipe(tmp_path / "r", "train.precision=bf16-mixed", "train.steps=2",
                              "train.eval_every=2"), display="silent")


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, None)])
def test_auto_is_bf16_mixed_where_the_cpu_multiplies_bfloat16_and_fp32_elsewhere(tmp_path, monkeypatch, capsys,
                                                                                  native, expected):
    monkeypatch.setattr(trainer_module, "_cpu_has_bfloat16", lambda unknown=True: native)
    seen = _autocast_seen(monkeypatch, "char_lm")
    start_run(tiny_recipe(tmp_path / "r", "train.precision=auto", "train.steps=2", "train.eval_every=2"),
              display="log")
    assert seen == {"loss": {expected}, "evaluate": {None}}
    chosen = "bf16-mixed" if native else "fp32"
    assert capsys.readouterr().err.splitlines()[0] == f"train.precision: auto is {chosen} on this cpu"
    # the run keeps what its recipe said: resumed on another machine, it chooses again there
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["recipe"]["train"]["precision"] == "auto"


def test_auto_takes_fp32_where_torch_cannot_tell(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    cpu = torch.device("cpu")
    assert trainer_module.resolve_precision("auto", cpu) == "fp32"
    assert trainer_module._cpu_has_bfloat16()  # bf16-mixed asked for by name is not warned about
    assert [trainer_module.resolve_precision(p, cpu) for p in ("fp32", "bf16-mixed")] == ["fp32", "bf16-mixed"]
