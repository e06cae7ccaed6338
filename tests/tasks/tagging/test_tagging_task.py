"""The ``tagging`` task: batches, metrics, and the CLI from run to eval to decode, per output.

Word runs train on a small CoNLL corpus drawn from a grammar (``_tagging_runs``); character runs on
a fixed sample of the standard library's files (``python-tokens``).
"""
from __future__ import annotations

import itertools
import json
import os
import random

import pytest
import torch
import yaml
from _tagging_runs import sentence, tagging_recipe, write_conll
from _tiny_runs import ONE_THREAD_ENV
from conftest import cli_here
from conftest import run_cli as run_cli_anywhere

from seqkit.plugins.tasks.common.length_batches import plan_batches
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, UNKNOWN_ID, Vocabulary
from seqkit.plugins.tasks.tagging.data import BatchPlan, encode_split
from seqkit.plugins.tasks.tagging.task import Tagging
from seqkit.training.run import load_run

OUTPUTS = ("softmax", "crf", "autoregressive")
pytestmark = pytest.mark.usefixtures("cache")  # prepared data in a fresh cache folder per test (conftest)


def command_env(**more: str) -> dict:
    """One torch thread and this test's cache folder (the ``cache`` fixture's), so that the runs'
    prepared data is not left in the user's cache."""
    return {**ONE_THREAD_ENV, "SEQKIT_CACHE_DIR": os.environ["SEQKIT_CACHE_DIR"], **more}


def run_cli(*args, env: dict | None = None):
    """``conftest.run_cli`` in ``command_env``."""
    return run_cli_anywhere(*args, env=command_env(**(env or {})))


def here(*args):
    """``run_cli``'s command in this process (``conftest.cli_here``): for what reads a trained run."""
    return cli_here(*args, env=command_env())


def prepared(tmp_path, *overrides) -> Tagging:
    task = Tagging(tagging_recipe(tmp_path, tmp_path / "run", *overrides))
    task.prepare()
    return task


# -- batches ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_planned_batches_hold_every_sentence_once_sorted_and_within_budget(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 200))]
    size, budget = rng.randint(1, 20), rng.choice([0, 60, 200])
    for same_length in (False, True):
        batches = plan_batches(lengths, size, budget, same_length)
        assert sorted(itertools.chain(*batches)) == list(range(len(lengths)))
        order = [lengths[i] for i in itertools.chain(*batches)]
        assert order == sorted(order)
        for batch in batches:
            longest = max(lengths[i] for i in batch)
            assert len(batch) <= size
            assert not budget or len(batch) == 1 or len(batch) * longest <= budget
            assert not same_length or len({lengths[i] for i in batch}) == 1


def test_a_gathered_batch_is_each_sentence_padded_with_its_words_characters():
    sentences = [(["ab", "c"], ["X", "Y"]), (["hello", "wörld", "x"], ["Y", "Y", "X"]), (["zz"], ["X"])]
    words = Vocabulary.build({"ab": 1, "c": 1, "hello": 2, "x": 1})  # wörld, zz unseen
    chars = Vocabulary.build({c: 1 for c in "abchelowrdx"})
    split = encode_split(sentences, "word", words, {"X": 0, "Y": 1}, chars, max_word_chars=4)
    batch = BatchPlan(split, [[2, 0, 1]]).batch(0)
    assert batch.lengths.tolist() == [1, 2, 3]
    for row, index in enumerate([2, 0, 1]):
        tokens, tags = sentences[index]
        expected = [words.index.get(w, UNKNOWN_ID) for w in tokens]
        assert batch.tokens[row].tolist() == expected + [PADDING_ID] * (3 - len(tokens))
        assert batch.tags[row, :len(tags)].tolist() == [{"X": 0, "Y": 1}[t] for t in tags]
        for position, word in enumerate(tokens):  # cut to 4 characters; unseen ones read as unknown
            ids = [chars.index.get(c, UNKNOWN_ID) for c in word[:4]]
            assert batch.chars[row, position].tolist() == ids + [PADDING_ID] * (4 - len(ids))
        assert (batch.chars[row, len(tokens):] == PADDING_ID).all()


def test_character_ids_are_read_without_a_loop_and_unseen_ones_are_unknown():
    symbols = Vocabulary.build({"a": 3, "b": 1, "\n": 2, "é": 1})
    text = "ab\nzé🙂a"
    assert symbols.encode(text).tolist() == [symbols.index.get(c, UNKNOWN_ID) for c in text]


def test_the_batch_of_a_step_depends_on_the_step_alone(tmp_path):
    """Two tasks asked for steps in different orders give equal batches (word dropout included):
    a resumed run reads what an uninterrupted one would have."""
    overrides = ("train.word_dropout=0.5", "train.batch_tokens=40")
    first, second = prepared(tmp_path, *overrides), prepared(tmp_path, *overrides)
    steps = list(range(3 * len(first.train_plan)))
    batches = {step: first.train_batch(step) for step in steps}
    random.Random(0).shuffle(steps)
    for step in steps:
        again = second.train_batch(step)
        assert torch.equal(again.tokens, batches[step].tokens)
        assert torch.equal(again.tags, batches[step].tags)
    epoch = [batches[s].sentences.tolist() for s in range(len(first.train_plan))]
    assert sorted(itertools.chain(*epoch)) == list(range(len(first.splits["train"])))  # an epoch reads all
    assert epoch != [batches[s + len(epoch)].sentences.tolist() for s in range(len(epoch))]  # reshuffled


def test_word_dropout_hides_only_words_seen_once_in_training(tmp_path):
    plain, dropped = prepared(tmp_path), prepared(tmp_path, "train.word_dropout=1.0")
    for step in range(len(plain.train_plan)):
        before, after = plain.train_batch(step).tokens, dropped.train_batch(step).tokens
        changed = before != after
        assert (after[changed] == UNKNOWN_ID).all()
        assert torch.equal(changed, plain.rare[before] & (before != PADDING_ID))
    assert bool(plain.rare.any()) and not bool(plain.rare[:2].any())


@pytest.mark.parametrize("output", OUTPUTS)
def test_metrics_do_not_depend_on_how_a_split_is_batched(tmp_path, output):
    one = prepared(tmp_path, f"model.output={output}", "train.batch_size=1")
    many = prepared(tmp_path, f"model.output={output}", "train.batch_size=16")
    torch.manual_seed(0)
    model = one.build_model().eval()
    with torch.no_grad():
        a, b = one.evaluate(model), many.evaluate(model)
    assert len(one._eval_plan("dev")) > len(many._eval_plan("dev"))
    assert torch.equal(one.counts["dev"].counts, many.counts["dev"].counts)
    assert a.keys() == b.keys() and a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert {k: v for k, v in a.items() if k != "loss"} == {k: v for k, v in b.items() if k != "loss"}


def test_a_character_dataset_with_char_features_is_refused(tmp_path):
    task = Tagging(tagging_recipe(tmp_path, tmp_path / "run", "model.char_features=4"))
    task.data.update(dataset="python-tokens", max_files=12, max_length=64)
    with pytest.raises(Exception, match="model.char_features: 'python-tokens' is tagged per character"):
        task.prepare()


# -- the command line ------------------------------------------------------------------------
def run_recipe(tmp_path, name: str, *overrides: str):
    recipe = tagging_recipe(tmp_path, tmp_path / name, *overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_cli("run", path, "--quiet", "--json", env=ONE_THREAD_ENV)
    assert result.returncode == 0, result.stderr
    return tmp_path / name, json.loads(result.stdout)


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory):
    """(folder, run): one softmax tagger trained by ``seqkit run`` for the tests that only read it."""
    folder = tmp_path_factory.mktemp("softmax")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQKIT_CACHE_DIR", str(folder / "cache"))
        run_dir, _ = run_recipe(folder, "softmax")
    return folder, run_dir


def cli_json(*args):
    result = here(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("output", OUTPUTS)
def test_run_eval_decode_for_each_output(tmp_path, output):
    run_dir, result = run_recipe(tmp_path, output, f"model.output={output}", "model.char_features=3",
                                 "train.word_dropout=0.1")
    assert result["best_metric"] == {"metric": "span_f1", "mode": "max"}
    assert set(result["tables"]) == {"per tag", "per span type"}
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [{k: v for k, v in m.items() if k not in ("step", "split", "elapsed")}
           for m in logged if m["split"] == "val"]
    report = cli_json("eval", run_dir, "--checkpoint", "last", "--device", "cpu")  # the run's device
    assert report["metrics"] == val[-1]  # the trainer's own evaluation, exactly
    assert report["tables"] == result["tables"]
    assert {"accuracy", "macro_f1", "unseen_accuracy", "span_f1"} <= set(cli_json(
        "eval", run_dir, "--split", "test")["metrics"])

    decoded = cli_json("decode", run_dir, "--input", "the dog sees Anna Smith", "--input", "Zorro eats",
                       "--device", "cpu")
    run = load_run(run_dir, device="cpu")  # the tensors below are made on the CPU, as the decoding ran
    for entry, words in zip(decoded["results"], (["the", "dog", "sees", "Anna", "Smith"], ["Zorro", "eats"])):
        assert entry["tokens"] == words and len(entry["tags"]) == len(words)
        assert entry["unknown"] == [w not in run.task.words.index for w in words]
        ids = torch.tensor([run.task.words.index.get(w, UNKNOWN_ID) for w in words]).unsqueeze(0)
        chars = torch.tensor([[[run.task.chars.index.get(c, UNKNOWN_ID) for c in w] + [0] * (5 - len(w))
                               for w in words]])
        tags = torch.tensor([[run.task.tag_names.index(t) for t in entry["tags"]]])
        with torch.no_grad():
            log_likelihood = run.model.log_likelihood(ids, [len(words)], tags, chars)
        assert entry["log_prob"] == pytest.approx(float(log_likelihood), abs=1e-4)
        assert torch.equal(tags, run.model.predict(ids, [len(words)], chars))  # the model's own decoding
        if output != "autoregressive":
            table = torch.tensor(entry["marginals"]["table"])
            assert table.shape == (len(words), len(run.task.tag_names))
            assert torch.allclose(table, run.model.marginals(ids, [len(words)], chars)[0], atol=1e-5)


@pytest.mark.slow
def test_autoregressive_exact_decoding_through_the_cli_is_the_brute_force_argmax(tmp_path):
    run_dir, _ = run_recipe(tmp_path, "ar", "model.output=autoregressive")
    words = ["Bob", "likes", "a", "cat"]
    entry = cli_json("decode", run_dir, "--input", " ".join(words), "--strategy", "exact")["results"][0]
    run = load_run(run_dir, device="cpu")  # the tensors below are made on the CPU
    ids = torch.tensor([[run.task.words.index.get(w, UNKNOWN_ID) for w in words]])
    every = torch.tensor(list(itertools.product(range(len(run.task.tag_names)), repeat=len(words))))
    with torch.no_grad():
        log_p = run.model.log_likelihood(ids.expand(len(every), -1), [len(words)] * len(every), every)
    best = int(log_p.argmax())
    assert entry["tags"] == [run.task.tag_names[t] for t in every[best]]
    assert entry["log_prob"] == pytest.approx(float(log_p[best]), abs=1e-4)
    marginals = torch.zeros(len(words), len(run.task.tag_names), dtype=torch.float64)
    for tags, p in zip(every, log_p.double().exp()):
        marginals[torch.arange(len(words)), tags] += p
    assert torch.allclose(torch.tensor(entry["marginals"]["table"], dtype=torch.float64), marginals, atol=1e-5)
    beam = cli_json("decode", run_dir, "--input", " ".join(words), "--strategy", "beam",
                    "--beam-size", str(len(every)))["results"][0]
    assert beam["tags"] == entry["tags"]
    evaluated = cli_json("eval", run_dir, "--strategy", "exact")
    assert evaluated["strategy"] == "exact" and 0 <= evaluated["metrics"]["accuracy"] <= 1


@pytest.mark.slow
def test_a_character_run_highlights_its_input_with_a_legend(tmp_path):
    recipe = tagging_recipe(tmp_path, tmp_path / "chars", "train.steps=4", "train.eval_every=4")
    recipe["data"] = {"dataset": "python-tokens", "max_files": 12, "max_length": 64, "scheme": "auto"}
    path = tmp_path / "chars.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**ONE_THREAD_ENV, "SEQKIT_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("run", path, "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    assert "per tag" in result.stdout and "whitespace" in result.stdout
    shown = run_cli("decode", tmp_path / "chars", "--input", "def f(x): return x  # ☃", env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1].startswith("def f(x): return x  # ☃   log p = ")
    assert len(lines[2]) == len("def f(x): return x  # ☃")  # piped: one tag letter per character
    assert lines[3].startswith("tags: n=name k=keyword ")
    assert "never seen in training ('☃') read as the unknown token" in shown.stderr
    decoded = cli_json("decode", tmp_path / "chars", "--input", "x = 1", "--input", "")
    assert [e["tokens"] for e in decoded["results"]] == [list("x = 1"), []]
    assert decoded["results"][1]["tags"] == []
    code = tmp_path / "code.py"
    code.write_text('def f(x):\n    """Doc."""\n    return x + 1  # one\n', encoding="utf-8")
    scored = cli_json("eval", tmp_path / "chars", "--input-file", code)
    assert scored["file"] == str(code) and scored["tables"]["per tag"]["string"]["support"] == len('"""Doc."""')
    broken = tmp_path / "broken.py"
    broken.write_text("s = 'unterminated\n", encoding="utf-8")
    refused = run_cli("eval", tmp_path / "chars", "--input-file", broken, env=env)
    assert refused.returncode == 2 and refused.stderr.startswith(f"--input-file: {broken}: not Python source")


@pytest.mark.slow
def test_eval_scores_a_labelled_file_read_whole(tmp_path, softmax_run):
    folder, run_dir = softmax_run
    dev_file = folder / "dev.conll"
    assert cli_json("eval", run_dir, "--input-file", dev_file)["metrics"] == cli_json("eval", run_dir)["metrics"]
    short = write_conll(tmp_path / "short.conll", 3, seed=9)  # fewer than 10 sentences: not split
    assert cli_json("eval", run_dir, "--input-file", short)["file"] == str(short)
    unknown_tag = tmp_path / "new_tag.conll"
    unknown_tag.write_text("the X O\nZorro X B-MISC\n", encoding="utf-8")
    result = here("eval", run_dir, "--input-file", unknown_tag)
    assert result.returncode == 2
    assert result.stderr.startswith("data: the tag 'B-MISC' was not among the tags this run trained on")
    broken = tmp_path / "broken.conll"
    broken.write_text("the X O\ncat O\n", encoding="utf-8")
    result = here("eval", run_dir, "--input-file", broken)
    assert result.returncode == 2 and result.stderr.startswith(f"--input-file: {broken}:2:")


@pytest.mark.parametrize("command", ["decode", "eval"])
def test_a_search_strategy_on_a_softmax_tagger_is_refused_saying_why(softmax_run, command):
    _, run_dir = softmax_run
    extra = ("--input", "the dog") if command == "decode" else ()
    result = here(command, run_dir, "--strategy", "beam", *extra)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "'beam' does not apply" in result.stderr and "exactly by its per-position argmax" in result.stderr
    if command == "decode":
        result = here("decode", run_dir, "--input", "the dog", "--length", "3")
        assert result.returncode == 2 and result.stderr.startswith("--length: a tagger gives one tag per token")


@pytest.mark.slow
def test_resuming_a_tagging_run_continues_it_exactly(tmp_path):
    overrides = ("train.word_dropout=0.3", "train.steps=24", "train.eval_every=4")
    straight, _ = run_recipe(tmp_path, "straight", *overrides)
    recipe = tagging_recipe(tmp_path, tmp_path / "halves", *overrides, "train.steps=12")
    (tmp_path / "halves.yaml").write_text(yaml.safe_dump(recipe))
    assert run_cli("run", tmp_path / "halves.yaml", "--quiet", env=ONE_THREAD_ENV).returncode == 0
    resumed = run_cli("run", "--resume", tmp_path / "halves", "--set", "train.steps=24", "--force",
                      "--quiet", env=ONE_THREAD_ENV)
    assert resumed.returncode == 0, resumed.stderr

    def lines(run_dir):
        return [{k: v for k, v in json.loads(line).items() if k not in ("elapsed", "tokens_per_s")}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert lines(tmp_path / "halves") == lines(straight)


def test_validation_refuses_decoder_keys_without_the_autoregressive_output(tmp_path):
    recipe = tagging_recipe(tmp_path, tmp_path / "run")
    recipe["model"]["decoder_size"] = 12
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = here("validate", path)
    assert result.returncode == 2
    assert "model.decoder_size: only the autoregressive output has a decoder" in result.stderr


def test_the_conll_recipe_trains_on_a_conllu_file(tmp_path):
    """recipes/tagging_conll.yaml as the README runs it, shrunk: CoNLL-U files, form / upos."""
    rng = random.Random(5)
    for name, count in (("train", 60), ("dev", 12)):
        blocks = []
        for i in range(count):
            words = sentence(rng)
            upos = ["PROPN" if tag != "O" else ("DET" if w in ("the", "a") else "NOUN") for w, tag in words]
            lines = [f"# sent_id = {name}-{i}"] + [f"{k}\t{w}\t{w.lower()}\t{u}\t_\t_\t0\t_\t_\t_"
                                                   for k, ((w, _), u) in enumerate(zip(words, upos), 1)]
            blocks.append("\n".join(lines))
        (tmp_path / f"{name}.conllu").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    result = run_cli("run", "recipes/tagging_conll.yaml", "--quiet", "--json",
                     "--set", f"data.path={tmp_path / 'train.conllu'}", "--set", f"data.dev={tmp_path / 'dev.conllu'}",
                     "--set", f"output={tmp_path / 'run'}", "--set", "train.steps=4", "--set", "train.eval_every=4",
                     "--set", "model.hidden_size=8", "--set", "model.char_features=4", env=ONE_THREAD_ENV)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["best_metric"]["metric"] == "accuracy"  # UPOS tags are no span scheme
    assert set(report["tables"]["per tag"]) <= {"DET", "NOUN", "PROPN"}
