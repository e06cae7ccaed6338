"""recipes/translation_bpe.yaml, tiny: a pairs file of real text (lines of the Python documentation
that ships with Python, pydoc_data, each paired with its words in reverse order) read with a BPE
tokenizer per side, through ``seqkit run``, ``seqkit decode`` (detokenized output), ``seqkit eval``
and ``seqkit export``."""
from __future__ import annotations

import json

import pytest
import torch
from _translation_runs import cache_folder, cli_env
from conftest import REPO, cli_here, needs_extra, run_cli

RECIPE = REPO / "recipes" / "translation_bpe.yaml"
TINY = ("train.steps=6", "train.eval_every=3", "train.log_every=3", "train.eval_size=12", "train.batch_size=16",
        "train.batch_tokens=0", "train.warmup_steps=0", "model.hidden_size=16", "model.layers=1",
        "model.encoder.embedding_size=8", "model.decoder.hidden_size=16", "model.decoder.embedding_size=8",
        "data.source_tokenizer.vocab_size=400", "data.target_tokenizer.vocab_size=400", "decode.beam_size=2",
        "decode.length=12", "device=cpu")


def documentation_pairs(count: int, skip: int = 0) -> list[str]:
    """``count`` lines of 3 to 8 words of the Python documentation, each with its words reversed."""
    import pydoc_data.topics  # 0.7 MB of text: imported where it is used
    lines = (line.strip() for text in pydoc_data.topics.topics.values() for line in text.splitlines())
    chosen = [line for line in lines if 3 <= len(line.split()) <= 8 and "\t" not in line][skip:skip + count]
    return [f"{line}\t{' '.join(reversed(line.split()))}" for line in chosen]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    needs_extra("tokenizers", "subword")
    needs_extra("sacrebleu", "bleu")
    folder = tmp_path_factory.mktemp("bpe")
    (folder / "train.tsv").write_text("\n".join(documentation_pairs(240)) + "\n", encoding="utf-8")
    (folder / "test.tsv").write_text("\n".join(documentation_pairs(20, skip=240)) + "\n", encoding="utf-8")
    with cache_folder(folder / "cache"):
        sets = [f"data.path={folder / 'train.tsv'}", f"data.test={folder / 'test.tsv'}",
                f"output={folder / 'run'}", *TINY]
        result = run_cli("run", RECIPE, *(arg for s in sets for arg in ("--set", s)), "--quiet", "--json",
                         env=cli_env())
        assert result.returncode == 0, result.stderr
        yield folder / "run", json.loads(result.stdout)


def cli_json(*args, **env):
    result = cli_here(*args, "--json", env=cli_env(**env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_decode_prints_detokenized_text(trained):
    run_dir, _ = trained
    report = cli_json("decode", run_dir, "--input", "The simple form of the statement", "--strategy", "greedy")
    [entry] = report["results"]
    assert entry["normalized_input"] == "The simple form of the statement"
    [output] = entry["outputs"]
    assert output["text"] == "".join(output["tokens"])  # pieces of text, not byte-level symbols
    assert "Ġ" not in output["text"] and output["log_prob"] < 0
    shown = run_cli("decode", run_dir, "--input", "if not expression", env=cli_env())
    assert shown.returncode == 0 and "if not expression → " in shown.stdout


def test_eval_scores_detokenized_text_as_the_run_validated(trained, tmp_path):
    run_dir, result = trained
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = next(r for r in logged if r["split"] == "val" and r["step"] == result["best"]["step"])
    metrics = cli_json("eval", run_dir)["metrics"]
    assert set(metrics) == {"loss", "word_error_rate", "token_error_rate", "bleu", "chrf"}
    assert metrics == pytest.approx({k: v for k, v in best.items() if k in metrics}, rel=1e-6)
    test = cli_json("eval", run_dir, "--split", "test")["metrics"]
    assert test == pytest.approx(result["test"]["test"]["metrics"], rel=1e-6)
    # where the data was never prepared, the split is read and encoded with the run's tokenizers
    elsewhere = cli_json("eval", run_dir, SEQKIT_CACHE_DIR=str(tmp_path / "empty"))["metrics"]
    assert elsewhere == metrics and not (tmp_path / "empty").exists()


def test_checkpoints_and_exports_keep_the_tokenizers(trained, tmp_path):
    run_dir, _ = trained
    exported = tmp_path / "model.pt"
    assert run_cli("export", run_dir, "-o", exported, env=cli_env()).returncode == 0
    for path in (run_dir / "checkpoints" / "best.pt", exported):
        task = torch.load(path, weights_only=True)["task"]
        for side in ("source", "target"):
            state = task[f"{side}_tokenizer"]
            assert state["name"] == "bpe" and state["options"]["vocab_size"] == 400
            assert isinstance(state["state"]["json"], str)
    from_file = cli_json("decode", exported, "--input", "if not expression", "--strategy", "greedy")
    from_run = cli_json("decode", run_dir, "--input", "if not expression", "--strategy", "greedy")
    assert from_file["results"] == from_run["results"]
