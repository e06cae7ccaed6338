"""Data-parallel training with torch.distributed (gloo on the CPU), for real.

Two processes with a global batch of B take the steps one process takes with B; under torchrun
only rank 0 writes; a rank killed mid-run stops the others in one line, and the run then goes
on exactly where it was, by ``--resume`` or by torchrun's own restart.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from _ddp import assert_same_training, final_parameters, free_port, rank_environment, train_on_ranks
from _tagging_runs import tagging_recipe
from _tiny_runs import metric_lines, tiny_recipe, write_tiny_recipe
from _translation_runs import translation_recipe
from conftest import REPO, SAME_KERNELS, make_plugin_dist

from seqkit.training.checkpoint import load_checkpoint
from seqkit.training.run import start_run

pytestmark = pytest.mark.slow  # end to end: each runs a benchmark script or trains

NO_DROPOUT = ("model.dropout=0", "train.steps=8")
EQUIVALENT = {
    # streams carried across windows: each rank carries its own half of them
    "char_streams": lambda folder, out: tiny_recipe(out, *NO_DROPOUT),
    # random windows, scoring only the last character
    "char_random": lambda folder, out: tiny_recipe(out, *NO_DROPOUT, "train.sampling=random",
                                                   "train.carry_state=false", "train.loss_on=last",
                                                   "data.eval_windows=51"),
    # batches of one long sentence leave a rank an empty share; word dropout drawn per step
    "tagging": lambda folder, out: tagging_recipe(folder, out, "train.batch_tokens=8",
                                                  "train.word_dropout=0.3", "train.steps=10"),
    "tagging_crf_chars": lambda folder, out: tagging_recipe(folder, out, "model.output=crf",
                                                            "model.char_features=4", "train.steps=6"),
    # long pairs alone in a batch; dev sources decoded on both ranks, scored together; a test
    # split scored at the end by both
    "translation": lambda folder, out: translation_recipe(folder, out, "train.batch_tokens=8",
                                                          "train.steps=8", "train.eval_every=4"),
}
# Dropout on and carried streams: a resumed run needs each rank's RNG and carried state back.
RESUMED = ("model.dropout=0.1",)

FAULT_PLUGIN = """
    import os
    import signal

    import seqkit
    from seqkit.plugins.tasks.char_lm.task import CharLM


    class CharLMWithFault(CharLM):
        # char_lm whose rank R kills itself before step S when FAULT_AT="R:S", unless torchrun
        # has restarted the job

        def train_batch(self, step):
            if (os.environ.get("FAULT_AT") == f"{self.rank}:{step}"
                    and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"):
                os.kill(os.getpid(), signal.SIGKILL)
            return super().train_batch(step)


    @seqkit.hookimpl
    def register_tasks(register):
        register("char_lm_with_fault", CharLMWithFault)
"""
TIMEOUT = 30  # SEQKIT_DDP_TIMEOUT of the runs below: a peer that died is noticed well before


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """The EQUIVALENT recipes, an uninterrupted RESUMED one, and one whose rank 1 alone gets
    SIGTERM after step 6, trained on two processes at once."""
    folder = tmp_path_factory.mktemp("two")
    recipes = [make(folder, folder / name) for name, make in EQUIVALENT.items()]
    recipes += [tiny_recipe(folder / "resumed", *RESUMED), tiny_recipe(folder / "signalled", *RESUMED)]
    train_on_ranks(recipes, last_rank_stops_at={len(recipes) - 1: 6})
    return folder


@pytest.mark.parametrize("name", list(EQUIVALENT))
def test_two_processes_train_as_one_does(two_process_runs, tmp_path, name):
    start_run(EQUIVALENT[name](two_process_runs, tmp_path / name), display="silent")
    assert_same_training(two_process_runs / name, tmp_path / name)


def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step(two_process_runs):
    # (train_on_ranks fails if rank 0 goes on training)
    state = load_checkpoint(two_process_runs / "signalled" / "checkpoints" / "last.pt")
    assert state["step"] == 6 and len(state["ranks"]) == 2
    assert max(line["step"] for line in metric_lines(two_process_runs / "signalled")) == 6
    # each rank's own carried state and random numbers, to go on exactly
    carries = [rank["task"]["carry"][0][0] for rank in state["ranks"]]
    assert [rank["task"]["carry_streams"] for rank in state["ranks"]] == [[0, 2, 4], [2, 4, 4]]
    assert not torch.equal(carries[0], carries[1])
    assert not torch.equal(state["ranks"][0]["rng"]["torch"], state["ranks"][1]["rng"]["torch"])


@pytest.fixture(scope="module")
def fault_env(tmp_path_factory):
    """Subprocess environment: the task char_lm_with_fault installed, one thread and one kernel
    choice (the reference runs' too: bit for bit across processes), a short timeout."""
    site = make_plugin_dist(tmp_path_factory.mktemp("site"), "seqkit-fault", "seqkit_fault", FAULT_PLUGIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEQKIT_", "TORCHELASTIC_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(REPO)]), OMP_NUM_THREADS="1", **SAME_KERNELS,
               SEQKIT_DDP_TIMEOUT=str(TIMEOUT), TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    return env


def torchrun(*args, env, cwd, timeout=180) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 ARGS`` (torchrun is torch.distributed.run)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def assert_continued_exactly(run, reference) -> None:
    """The same logged numbers and final parameters, bit for bit (one thread per process)."""
    assert metric_lines(run) == metric_lines(reference)
    ours, theirs = final_parameters(run), final_parameters(reference)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)


def assert_written_by_one_process(run) -> None:
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert files == ["checkpoints/best.pt", "checkpoints/last.pt", "metrics.jsonl", "recipe.yaml"]
    steps = [(line["step"], line["split"]) for line in metric_lines(run)]
    assert len(steps) == len(set(steps))  # no line written twice


def test_a_killed_rank_stops_the_other_in_one_line_then_resume_continues_exactly(
        two_process_runs, fault_env, tmp_path):
    run = tmp_path / "run"
    recipe = write_tiny_recipe(tmp_path / "recipe.yaml", run, "task=char_lm_with_fault", *RESUMED)
    port = free_port()
    ranks = [subprocess.Popen([sys.executable, "-m", "seqkit", "run", str(recipe), "--quiet"],
                              env={**fault_env, **rank_environment(rank, 2, port), "FAULT_AT": "1:10"},
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    try:
        assert ranks[1].wait(timeout=120) == -signal.SIGKILL
        killed = time.monotonic()
        _, stderr = ranks[0].communicate(timeout=TIMEOUT)
    finally:
        for process in ranks:
            process.kill()
    assert time.monotonic() - killed < TIMEOUT and ranks[0].returncode == 2
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == (
        f"{recipe}: training stopped at step 10 on rank 0 of 2: another process died or stopped "
        f"answering ({stderr.split('answering (')[1].split(')')[0]}); the last good checkpoint "
        f"{run}/checkpoints/last.pt (step 8) is kept; continue with: seqkit run --resume {run} "
        f"under torchrun with 2 processes")
    resumed = torchrun("-m", "seqkit", "run", "--resume", str(run), "--quiet", env=fault_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count(f"run {run}: finished at step 12") == 1  # rank 0 alone reports
    assert_written_by_one_process(run)
    assert_continued_exactly(run, two_process_runs / "resumed")


def test_torchrun_restarts_a_failed_job_which_resumes_by_itself(two_process_runs, fault_env, tmp_path):
    run = tmp_path / "run"
    recipe = write_tiny_recipe(tmp_path / "recipe.yaml", run, "task=char_lm_with_fault", *RESUMED)
    result = torchrun("--max-restarts", "1", "-m", "seqkit", "run", str(recipe), "--quiet",
                      env={**fault_env, "FAULT_AT": "1:10"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"seqkit: torchrun restarted the job (restart 1): resuming {run} from step 8" in result.stderr
    assert_written_by_one_process(run)
    assert_continued_exactly(run, two_process_runs / "resumed")
