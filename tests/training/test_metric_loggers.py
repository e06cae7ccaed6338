"""train.loggers: the TensorBoard logger's event file holds every scalar, a third-party logger
from an entry point gets the recipe, every record and a close, a failing one is switched off
without stopping the run, and a missing package fails validation in one line."""
from __future__ import annotations

import json

import pytest
from _tiny_runs import metric_lines, tiny_recipe, write_tiny_recipe
from conftest import make_plugin_dist, needs_extra, run_cli, site_without

from seqkit.errors import SeqkitError
from seqkit.training.run import resume_run, start_run

RECORDING_LOGGER = """
import json
import seqkit


class Recording(seqkit.MetricLogger):
    def start(self, recipe, step):
        self.out = open(self.run_dir / "recorded.jsonl", "a")
        self.out.write(json.dumps({"start": step, "task": recipe["task"]}) + "\\n")

    def log(self, record):
        self.out.write(json.dumps(record) + "\\n")

    def close(self):
        self.out.write(json.dumps({"closed": True}) + "\\n")
        self.out.close()


class Failing(seqkit.MetricLogger):
    def log(self, record):
        if record["split"] == "val":
            raise ConnectionError("the dashboard is down")


@seqkit.hookimpl
def register_loggers(register):
    register("recording", Recording)
    register("failing", Failing)
"""


def test_tensorboard_event_files_hold_every_scalar_of_metrics_jsonl(tmp_path):
    needs_extra("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    start_run(tiny_recipe(run, "train.loggers=[tensorboard]"), display="silent")
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    for record in metric_lines(run):
        for key, value in record.items():
            if key not in ("step", "split") and isinstance(value, float):
                logged = {e.step: e.value for e in events.Scalars(f"{record['split']}/{key}")}
                assert logged[record["step"]] == pytest.approx(value, rel=1e-6), (record, key)
    assert "loggers" in events.Tensors("recipe/text_summary")[0].tensor_proto.string_val[0].decode()


def test_a_resumed_run_leaves_tensorboard_one_value_per_step(tmp_path):
    """Records logged after the checkpoint a run resumes from come again; TensorBoard shows the
    new ones only, as metrics.jsonl does."""
    needs_extra("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    start_run(tiny_recipe(run, "train.loggers=[tensorboard]", "train.steps=8"), display="silent")
    at_8 = (run / "checkpoints" / "last.pt").read_bytes()
    resume_run(run, overrides=["train.steps=12"], force=True, display="silent")
    (run / "checkpoints" / "last.pt").write_bytes(at_8)  # as if the run died after step 12's lines
    resume_run(run, overrides=["train.steps=12"], force=True, display="silent")
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("train/loss")]
    expected = [(r["step"], r["loss"]) for r in metric_lines(run) if r["split"] == "train"]
    assert [step for step, _ in logged] == [step for step, _ in expected] == [2, 4, 6, 8, 10, 12]
    assert [value for _, value in logged] == pytest.approx([value for _, value in expected], rel=1e-6)


def test_a_third_party_logger_gets_the_recipe_every_record_and_a_close(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "seqkit-recording", "recording_logger", RECORDING_LOGGER)
    recipe = write_tiny_recipe(tmp_path / "r.yaml", tmp_path / "run", "train.loggers=[recording]")
    done = run_cli("run", recipe, "--quiet", site=site, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    recorded = [json.loads(line) for line in (tmp_path / "run" / "recorded.jsonl").read_text().splitlines()]
    written = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert recorded[0] == {"start": 0, "task": "char_lm"} and recorded[-1] == {"closed": True}
    assert recorded[1:-1] == written and written[-1] == {"step": 12, "split": "end", "stopped": "finished"}


def test_a_failing_logger_is_switched_off_with_one_warning_and_the_run_finishes(tmp_path):
    site = make_plugin_dist(tmp_path / "site", "seqkit-recording", "recording_logger", RECORDING_LOGGER)
    recipe = write_tiny_recipe(tmp_path / "r.yaml", tmp_path / "run", "train.loggers=[failing, recording]")
    done = run_cli("run", recipe, "--quiet", site=site, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "logger" in line]
    assert warnings == ["seqkit: warning: logger 'failing' failed (ConnectionError: the dashboard is "
                        "down); it is off for the rest of the run, metrics.jsonl has every record"]
    assert "finished at step 12" in done.stdout
    assert (tmp_path / "run" / "recorded.jsonl").read_text().count("\n") == \
        (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") + 2


def test_unknown_and_uninstalled_loggers_fail_validation_in_one_line_each(tmp_path, monkeypatch):
    with pytest.raises(SeqkitError) as info:
        tiny_recipe(tmp_path / "run", "train.loggers=[tensorbord]")
    assert info.value.problems == [
        "recipe: train.loggers: unknown logger 'tensorbord' (did you mean 'tensorboard'?); "
        "registered: tensorboard"]
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(SeqkitError) as info:
        tiny_recipe(tmp_path / "run", "train.loggers=[tensorboard]")
    assert info.value.problems == ['recipe: train.loggers: tensorboard: the tensorboard package is not '
                                   'installed: pip install "seqkit[tensorboard]"']
    assert not (tmp_path / "run").exists()


def test_the_cli_says_how_to_install_tensorboard_when_it_is_missing(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "r.yaml", tmp_path / "run", "train.loggers=[tensorboard]")
    done = run_cli("validate", recipe, site=site_without("tensorboard", tmp_path / "hide"))
    assert done.returncode == 2
    assert done.stderr.strip() == (f'{recipe}: train.loggers: tensorboard: the tensorboard package is '
                                   f'not installed: pip install "seqkit[tensorboard]"')
