"""``seqkit eval`` on a real (tiny) trained char LM, in subprocesses (its refusals in this process,
``conftest.cli_here``): the trainer's own numbers."""
from __future__ import annotations

import json

import pytest
from _tiny_runs import ONE_THREAD_ENV, write_tiny_recipe
from conftest import cli_here, run_cli

from seqkit.plugins.tasks.char_lm.data import dataset_text, split_text
from seqkit.plugins.tasks.char_lm.metrics import char_metrics, stream_loss
from seqkit.plugins.tasks.common.vocabulary import UNKNOWN_CHAR as UNKNOWN
from seqkit.training.run import load_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory, its corpus file): 12 steps of `seqkit run` on a text file, validated at
    steps 4, 8 and 12."""
    root = tmp_path_factory.mktemp("eval")
    corpus = root / "corpus.txt"
    corpus.write_text(dataset_text({"dataset": "python-docs", "max_chars": 6000}), encoding="utf-8")
    recipe = write_tiny_recipe(root / "recipe.yaml", root / "run", "data.dataset=text",
                               f"data.path={corpus}", "data.max_chars=0")
    result = run_cli("run", recipe, "--quiet", env=ONE_THREAD_ENV)
    assert result.returncode == 0, result.stderr
    return root / "run", corpus


def evaluate(*args, in_process: bool = False):
    """``seqkit eval ARGS --json``'s report: in a subprocess, or with ``in_process`` in this one
    (``conftest.cli_here``), for the tests that compare two evaluations with each other."""
    # the run's device: `auto` would pick CUDA where there is one, whose sums differ in the last bits
    result = (cli_here if in_process else run_cli)("eval", *args, "--json", "--device", "cpu", env=ONE_THREAD_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fails(*args) -> str:
    """The one stderr line of a refused `seqkit eval`, which exits with status 2."""
    result = cli_here("eval", *args, env=ONE_THREAD_ENV)
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    return line


def dev_text(corpus) -> str:
    recipe = {"val_fraction": 0.2, "val_split": "blocks"}  # the tiny recipe's
    return split_text(corpus.read_text(encoding="utf-8"), recipe["val_fraction"], recipe["val_split"])[1]


def test_dev_metrics_are_exactly_what_the_trainer_logged_for_the_checkpoint(trained):
    run_dir, _ = trained
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [{k: v for k, v in line.items() if k not in ("step", "split", "elapsed")}
           for line in logged if line["split"] == "val"]
    last = evaluate(run_dir, "--checkpoint", "last")
    assert last["metrics"] == val[-1]
    best = evaluate(run_dir)  # --checkpoint best by default, --split dev
    assert best["metrics"] == min(val, key=lambda m: m["loss"])
    assert set(best) == {"run", "task", "checkpoint", "split", "metrics", "tables"}
    assert best["tables"] == {}  # char_lm has no per-class breakdown
    assert (best["run"], best["task"], best["split"]) == (str(run_dir), "char_lm", "dev")
    assert best["checkpoint"] == str(run_dir / "checkpoints" / "best.pt")
    assert set(best["metrics"]) == {"loss", "bits_per_char", "perplexity"}


def test_a_file_holding_the_dev_text_scores_as_the_dev_split(trained, tmp_path):
    run_dir, corpus = trained
    text_file = tmp_path / "dev.txt"
    text_file.write_text(dev_text(corpus), encoding="utf-8")
    report = evaluate(run_dir, "--input-file", text_file, in_process=True)
    assert report["metrics"] == evaluate(run_dir, "--split", "dev", in_process=True)["metrics"]
    assert set(report) == {"run", "task", "checkpoint", "file", "metrics", "tables"}
    assert report["file"] == str(text_file)


def test_characters_outside_the_vocabulary_score_as_the_unknown_symbol(trained, tmp_path):
    run_dir, corpus = trained
    run = load_run(run_dir, device="cpu")
    text = "Ωé" + dev_text(corpus)[:300] + "ЖЖ"
    assert {"Ω", "é", "Ж"}.isdisjoint(run.task.tokenizer.symbols)
    given, mapped = tmp_path / "given.txt", tmp_path / "mapped.txt"
    given.write_text(text, encoding="utf-8")
    mapped.write_text(text.replace("Ω", UNKNOWN).replace("é", UNKNOWN).replace("Ж", UNKNOWN),
                      encoding="utf-8")
    report = evaluate(run_dir, "--input-file", given, "--device", "cpu", in_process=True)  # as `direct` below
    assert report["metrics"] == evaluate(run_dir, "--input-file", mapped, "--device", "cpu", in_process=True)["metrics"]
    # the same numbers computed directly: 4 streams (train.batch_size) of 16-character windows
    direct = char_metrics(stream_loss(run.model, run.task.tokenizer.encode(text), 16, 4, carry=True))
    assert report["metrics"] == pytest.approx(direct, rel=1e-6)


def test_the_table_names_checkpoint_and_split_and_is_not_cut_when_piped(trained):
    run_dir, _ = trained
    result = run_cli("eval", run_dir, "--checkpoint", "last", env={**ONE_THREAD_ENV, "COLUMNS": "40"})
    assert result.returncode == 0, result.stderr
    metrics = evaluate(run_dir, "--checkpoint", "last")["metrics"]
    assert f"char_lm {run_dir / 'checkpoints' / 'last.pt'}: split dev" in result.stdout
    rows = {line.split()[1]: line.split()[3] for line in result.stdout.splitlines()
            if line.startswith("│ ") and line.split()[1] in metrics}
    assert rows == {name: f"{value:.4f}" for name, value in metrics.items()}


@pytest.mark.slow
def test_strategies_are_refused_for_char_lm_saying_why(trained):
    run_dir, _ = trained
    assert fails(run_dir, "--strategy", "greedy") == (
        "--strategy: 'greedy' does not apply to evaluating a char_lm run: its metrics score each "
        "next character of the text given the true ones before it; nothing is decoded, so no "
        "strategy applies")
    assert fails(run_dir, "--beam-size", "4") == (
        "--beam-size: an option of a decoding strategy; give --strategy NAME too")
    assert fails(run_dir, "--strategy", "greedy", "--beam-size", "4").startswith(
        "--beam-size: does not apply to strategy 'greedy'")
    assert fails(run_dir, "--strategy", "bean").startswith(
        "--strategy: unknown strategy 'bean' (did you mean 'beam'?)")


def test_a_split_the_task_does_not_hold_is_one_line(trained):
    run_dir, _ = trained
    assert fails(run_dir, "--split", "test") == (
        "--split: a char_lm run holds no split 'test' (it holds: dev); score a file with "
        "--input-file FILE")


@pytest.mark.slow
def test_unusable_files_are_one_line_naming_the_file(trained, tmp_path):
    run_dir, _ = trained
    empty, binary, latin1, short = (tmp_path / name for name in ("empty.txt", "model.bin",
                                                                 "latin1.txt", "short.txt"))
    empty.write_text("")
    binary.write_bytes(b"\x80\x03}q\x00(X\x05\x00\x00\x00model")
    latin1.write_bytes("caf\xe9 au lait, ".encode("latin-1") * 10)
    short.write_text("def f(x):")
    assert fails(run_dir, "--input-file", tmp_path / "missing.txt") == (
        f"{tmp_path / 'missing.txt'}: cannot read: No such file or directory")
    assert fails(run_dir, "--input-file", empty) == (
        f"{empty}: the file is empty; give UTF-8 text to score")
    assert fails(run_dir, "--input-file", binary).startswith(f"{binary}: looks binary")
    assert fails(run_dir, "--input-file", latin1).startswith(f"{latin1}: not UTF-8 text")
    assert fails(run_dir, "--input-file", short) == (
        f"{short}: 9 characters as the model reads them, fewer than train.window + 1 = 17 to "
        f"score; give more text")


def test_the_dev_split_of_data_that_changed_since_training_is_refused(trained):
    run_dir, corpus = trained
    original = corpus.read_text(encoding="utf-8")
    try:
        corpus.write_text("Ω" + original, encoding="utf-8")  # a new character in the training part
        assert fails(run_dir, "--split", "dev") == (
            "data: the data has changed since this run trained (its vocabulary differs), so its "
            "dev split is not the text it validated on; score a file with --input-file FILE")
    finally:
        corpus.write_text(original, encoding="utf-8")


def test_load_split_reads_the_dev_split_without_the_training_data(trained):
    run_dir, corpus = trained
    task = load_run(run_dir, device="cpu").task
    task.load_split("dev")
    assert not hasattr(task, "train_tokens") and list(task.split_tokens) == ["dev"]
    [as_read], _ = task.tokenizer.read([dev_text(corpus)])  # unknown characters as the symbol
    assert task.tokenizer.decode(task.split_tokens["dev"]) == as_read
