"""benchmarks/tagging.py runs end to end (tiny sizes), and its hand-written baselines are checked
against seqkit before anything is timed: the CRF algorithms, and the bi-LSTM taggers of the
training-step section."""
import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains


@pytest.fixture(scope="module")
def quick_report() -> dict:
    result = subprocess.run([sys.executable, "-m", "benchmarks.tagging", "--quick", "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_benchmark_baselines_agree_with_the_crf(quick_report):
    """The hand-written Viterbi and forward algorithm, an independent implementation, give the
    same paths, log-partitions and gradients as LinearChainCRF."""
    assert [row["name"] for row in quick_report["crf"]] == ["viterbi", "log_partition", "log_partition + backward"]
    assert all(row["agree"] for row in quick_report["crf"])


def test_training_step_section_times_every_output_and_level_against_agreeing_taggers(quick_report):
    rows = quick_report["step"]
    assert [row["name"] for row in rows] == ["softmax, word", "crf, word", "softmax, char", "crf, char"]
    for row in rows:
        assert row["agree"], row["name"]
        assert set(row["ms"]) == {"seqkit", "hand packed", "hand reversed"}
        assert all(ms > 0 for ms in row["ms"].values())
        assert row["baseline"] in ("hand packed", "hand reversed") and row["status"] in ("ok", "MISSED")


def test_the_step_check_tells_a_different_optimizer_apart(monkeypatch, tmp_path):
    """The agreement check can fail: a hand-written tagger trained with twice the learning rate
    computes the same loss and gradients but is refused after its first step."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import _tagging_step as step

    size = step.QUICK_LEVELS["word"]
    task = step.synthetic_task("softmax", "word", size, tmp_path / "run")
    batches = [task.train_batch(0)]

    def agrees(lr_factor: float) -> bool:
        torch.manual_seed(0)
        model = task.build_model()
        trainer = step.Trainer(task.recipe, task, model, tmp_path, step.Silent(1), torch.device("cpu"))
        hand = step.HandTraining(step.HandTagger(len(task.words), len(task.tag_names), size["embedding"],
                                                 size["hidden"], crf=False, packed=False), batches)
        for group in hand.optimizer.param_groups:
            group["lr"] *= lr_factor
        return step.agreement(task, model, trainer, [hand])

    assert agrees(1.0)
    assert not agrees(2.0)
