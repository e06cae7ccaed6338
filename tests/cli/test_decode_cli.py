"""``seqkit decode`` on a real (tiny) trained char LM, in a subprocess, and the same through Python."""
from __future__ import annotations

import json

import pytest
import torch
import yaml
from conftest import cli_here, run_cli

from seqkit import SeqkitError
from seqkit.decoding import decode_inputs
from seqkit.recipe import resolve
from seqkit.registry import get_registry
from seqkit.training.run import load_run

RECIPE = {
    "task": "char_lm", "seed": 0, "device": "cpu",
    "data": {"dataset": "text", "val_fraction": 0.2},
    "model": {"cell": "lstm", "hidden_size": 16, "layers": 2, "embedding_size": 8},
    "train": {"steps": 4, "batch_size": 4, "window": 16, "lr": 0.01, "eval_every": 2,
              "log_every": 2, "sample_chars": 0},
    "decode": {"strategy": "sample", "temperature": 0.5, "seed": 1, "length": 12, "prompt": "the "},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A char LM trained for a few steps with `seqkit run` (the real command)."""
    root = tmp_path_factory.mktemp("decode")
    corpus = root / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 30 + "a stitch in time. " * 30)
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["path"] = str(corpus)
    recipe["output"] = str(root / "run")
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = run_cli("run", root / "recipe.yaml", "--quiet")
    assert result.returncode == 0, result.stderr
    return root / "run"


def decode_json(run_dir, *args):
    result = cli_here("decode", run_dir, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_greedy_continues_the_prompt_like_the_python_api(run_dir):
    report = decode_json(run_dir, "--strategy", "greedy", "--prompt", "The ", "--length", "30")
    output = report["results"][0]["outputs"][0]
    run = load_run(run_dir, device="cpu")
    expected = decode_inputs(run.task, run.model, ["The "], "greedy", 30)[0].hypotheses[0]
    assert report["results"][0]["input"] == "The "
    assert output["tokens"] == expected.tokens and len(output["text"]) == 30
    assert output["text"] == run.task.detokenize(expected.tokens)
    assert output["log_prob"] == pytest.approx(expected.log_prob, rel=1e-5)

    text = run_cli("decode", run_dir, "--strategy", "greedy", "--prompt", "The ", "--length", "30")
    # The corpus has no capital T: the model reads (and the output shows) the unknown symbol.
    assert report["results"][0]["normalized_input"] == "\ufffdhe "
    assert text.returncode == 0 and "\ufffdhe " + output["text"] in text.stdout


def test_piped_text_is_the_json_text_byte_for_byte(run_dir):
    """Written to a pipe, a long output is one line: no newline inserted at 80 columns."""
    args = ("decode", run_dir, "--strategy", "greedy", "--prompt", "the ", "--length", "500")
    text = decode_json(run_dir, *args[2:])["results"][0]["outputs"][0]["text"]
    piped = run_cli(*args, env={"COLUMNS": "80"})
    assert piped.returncode == 0, piped.stderr
    assert len(text) == 500 and "\n" not in text
    assert piped.stdout.splitlines()[1].startswith("the " + text + "   log p = ")


def test_recipe_defaults_and_flags(run_dir):
    report = decode_json(run_dir)  # the recipe's decode section: sample, temperature 0.5, seed 1
    assert report["strategy"] == "sample" and report["length"] == 12
    assert report["options"]["temperature"] == 0.5 and report["options"]["seed"] == 1
    run = load_run(run_dir)  # the CLI's device: CPU and CUDA draw different numbers from a seed
    expected = decode_inputs(run.task, run.model, ["the "], "sample", 12,
                             {"temperature": 0.5, "seed": 1})[0].hypotheses[0]
    assert report["results"][0]["outputs"][0]["tokens"] == expected.tokens

    # Switching strategy drops the recipe's sampling options instead of rejecting them.
    beam = decode_json(run_dir, "--strategy", "beam", "--beam-size", "3", "--n-best", "2",
                       "--input", "a st", "--input", "the q", "--length", "5")
    assert beam["options"] == {"beam_size": 3, "n_best": 2, "length_penalty": 0.0}
    assert [len(r["outputs"]) for r in beam["results"]] == [2, 2]
    assert [r["input"] for r in beam["results"]] == ["a st", "the q"]


def test_exact_reports_marginals_and_mass(run_dir, tmp_path):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("the \nfox\n")
    report = decode_json(run_dir, "--strategy", "exact", "--length", "2", "--n-best", "3",
                         "--input-file", inputs)
    run = load_run(run_dir, device="cpu")
    vocab = run.task.tokenizer.vocab_size
    for entry in report["results"]:
        table = torch.tensor(entry["marginals"]["table"])
        assert table.shape == (vocab, 2) and len(entry["marginals"]["symbols"]) == vocab
        assert torch.allclose(table.sum(0), torch.ones(2, dtype=table.dtype), rtol=0, atol=1e-6)
        assert entry["mass"] == pytest.approx(1.0, abs=1e-6)
        assert entry["sequences"] == vocab ** 2 and entry["prefixes"] == 1 + vocab
        log_probs = [o["log_prob"] for o in entry["outputs"]]
        assert len(log_probs) == 3 and log_probs == sorted(log_probs, reverse=True)
    text = cli_here("decode", run_dir, "--strategy", "exact", "--length", "2", "--prompt", "the ")
    assert "p(y_s = v)" in text.stdout and "probability mass 1.000000" in text.stdout


def test_exact_with_pruning_finds_the_enumerated_answer_and_says_whether_it_is_proven(run_dir):
    length, prompts = 3, ["the ", "a st"]
    report = decode_json(run_dir, "--strategy", "exact", "--search", "branch_and_bound", "--length",
                         str(length), "--n-best", "2", *[arg for p in prompts for arg in ("--input", p)])
    run = load_run(run_dir, device="cpu")
    enumerated = decode_inputs(run.task, run.model, prompts, "exact", length, {"n_best": 2})
    for entry, full in zip(report["results"], enumerated):
        assert full.extras["search"] == "enumeration"
        assert entry["search"] == "branch_and_bound" and entry["proven"] is True
        assert "marginals" not in entry and entry["prefixes"] <= full.extras["prefixes"]
        assert [o["tokens"] for o in entry["outputs"]] == [h.tokens for h in full.hypotheses]
    text = cli_here("decode", run_dir, "--strategy", "exact", "--search", "branch_and_bound",
                   "--length", str(length), "--prompt", "the ")
    assert f"proven exact after {report['results'][0]['prefixes']:,} prefixes" in text.stdout
    # auto: the enumeration does not fit in 20 prefixes, so it prunes, and stops there
    stopped = cli_here("decode", run_dir, "--strategy", "exact", "--length", str(length),
                      "--prompt", "the ", "--max-prefixes", "20")
    assert stopped.returncode == 0 and "not proven exact: the search stopped at 20 prefixes" in stopped.stdout


@pytest.mark.parametrize("args,message", [
    (["--strategy", "greedy", "--top-p", "0.9"],
     "--top-p: does not apply to strategy 'greedy' (it is an option of sample); 'greedy' accepts: no options"),
    (["--strategy", "gredy"],
     "--strategy: unknown strategy 'gredy' (did you mean 'greedy'?); registered: beam, exact, greedy, sample"),
    (["--strategy", "exact", "--search", "enumeration", "--length", "9"],
     "--max-prefixes: enumerating every sequence of 9 tokens over "),
    (["--strategy", "sample", "--temperature", "-1"], "--temperature: must be >= 0.0; got -1.0"),
    (["--length", "0"], "--length: must be >= 1; got 0"),
    (["--strategy", "greedy", "--length", "1000000000000"],
     "--length: 1,000,000,000,000 tokens would need about "),
    (["--strategy", "beam", "--beam-size", "4", "--length", "1000000000000"],
     "--length: 1,000,000,000,000 tokens for each of 4 sequences would need about "),
    (["--input-file", "missing.txt"], "missing.txt: no such input file"),
])
def test_input_errors_are_one_line_and_exit_2(run_dir, args, message):
    result = cli_here("decode", run_dir, *args)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def diverged(run_dir, tmp_path_factory):
    """Checkpoints of the run with every weight nan, and with every weight +inf."""
    state = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    paths = {}
    for value in ("nan", "inf"):
        spoiled = {**state, "model": {k: torch.full_like(v, float(value)) if v.is_floating_point() else v
                                      for k, v in state["model"].items()}}
        paths[value] = tmp_path_factory.mktemp("diverged") / f"{value}.pt"
        torch.save(spoiled, paths[value])
    return paths


@pytest.mark.parametrize("strategy,value", [("greedy", "nan"), ("sample", "nan"), ("beam", "nan"),
                                            ("exact", "nan"), ("sample", "inf")])
def test_a_diverged_model_is_one_line_naming_the_checkpoint(run_dir, diverged, strategy, value):
    result = cli_here("decode", run_dir, "--checkpoint", diverged[value], "--strategy", strategy,
                     "--length", "2")
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [
        f"{diverged[value]}: the model's log-probabilities are not finite (nan); the run diverged: "
        f"retrain it with a lower train.lr"]


def test_length_penalty_without_an_end_symbol_warns_in_one_line(run_dir):
    result = cli_here("decode", run_dir, "--strategy", "beam", "--length-penalty", "1", "--length", "3")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "seqkit: warning: --length-penalty: has no effect: this task's outputs have no end symbol, "
        "so they all have the requested length"]
    assert cli_here("decode", run_dir, "--strategy", "beam", "--length", "3").stderr == ""


def test_characters_outside_the_vocabulary_are_named_and_shown_as_read(run_dir, tmp_path):
    warning = ("seqkit: warning: {}: characters not in the vocabulary replaced by '\ufffd': "
               "'T', 'é', 'ß'")
    result = cli_here("decode", run_dir, "--strategy", "greedy", "--prompt", "Thé ß", "--prompt", "the",
                     "--length", "5", "--json")
    assert result.returncode == 0 and result.stderr.splitlines() == [warning.format("--prompt")]
    entries = json.loads(result.stdout)["results"]
    assert [(e["input"], e["normalized_input"]) for e in entries] == [
        ("Thé ß", "\ufffdh\ufffd \ufffd"), ("the", "the")]

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("Thé ß\n", encoding="utf-8")
    human = cli_here("decode", run_dir, "--strategy", "greedy", "--input-file", inputs, "--length", "5")
    assert human.stderr.splitlines() == [warning.format(inputs)]
    text = entries[0]["outputs"][0]["text"]
    assert human.stdout.splitlines()[1].startswith("\ufffdh\ufffd \ufffd" + text + "   log p = ")


def test_a_missing_run_is_named(tmp_path):
    result = cli_here("decode", tmp_path / "nothing", "--strategy", "greedy")
    assert result.returncode == 2 and "nothing: no such run directory" in result.stderr


def test_all_strategies_through_the_python_api(run_dir):
    run = load_run(run_dir, device="cpu")
    prompts = ["the ", "a"]
    for strategy, options in [("greedy", {}), ("sample", {"num_samples": 2, "seed": 0}),
                              ("beam", {"beam_size": 4, "n_best": 2}), ("exact", {"n_best": 2})]:
        results = decode_inputs(run.task, run.model, prompts, strategy, 2, options)
        assert len(results) == 2
        for result in results:
            assert result.hypotheses and all(len(h.tokens) == 2 for h in result.hypotheses)
    # beam that keeps every prefix finds exact's answer on the real model too
    vocab = run.task.tokenizer.vocab_size
    beam = decode_inputs(run.task, run.model, prompts, "beam", 2, {"beam_size": vocab ** 2})
    exact = decode_inputs(run.task, run.model, prompts, "exact", 2)
    assert [r.hypotheses[0].tokens for r in beam] == [r.hypotheses[0].tokens for r in exact]


def test_recipe_rejects_options_of_another_strategy():
    registry = get_registry()
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["path"] = __file__  # a readable file: validation checks it exists
    recipe["decode"] = {"strategy": "greedy", "top_p": 0.9, "prompt": "x", "widht": 2}
    with pytest.raises(SeqkitError) as caught:
        resolve(recipe, registry, "r.yaml")
    assert caught.value.problems == [
        "r.yaml: decode.top_p: does not apply to strategy 'greedy' (it is an option of sample); "
        "'greedy' accepts: no options; to use it, set decode.strategy=sample",
        "r.yaml: decode.widht: unknown key; allowed: strategy, length, prompt"]
    recipe["decode"] = {"strategy": "beam", "beam_size": 3, "length_penalty": 1.0}
    assert resolve(recipe, registry)["decode"] == {"strategy": "beam", "length": 100, "prompt": "The ",
                                                   "beam_size": 3, "n_best": 1, "length_penalty": 1.0}


NO_REPEAT_PLUGIN = """
    import torch
    import seqkit
    from seqkit import Option
    from seqkit.decoding import DecodeResult, Hypothesis


    class NoRepeat(seqkit.Decoder):
        '''Greedy, with the previous token's log-probability lowered by ``penalty``.'''

        options = {"penalty": Option(100.0, min=0.0, help="subtracted from the last token")}

        def search(self, model, state, tokens, length):
            rows = torch.arange(tokens.shape[0], device=tokens.device)
            chosen, total = [], torch.zeros(tokens.shape[0], device=tokens.device)
            for _ in range(length):
                log_probs, state = model.step(tokens, state)
                penalised = log_probs.clone()
                penalised[rows, tokens] -= self.config["penalty"]
                tokens = penalised.argmax(1)
                total += log_probs[rows, tokens]
                chosen.append(tokens)
            out = torch.stack(chosen, 1).tolist()
            return [DecodeResult([Hypothesis(t, lp)]) for t, lp in zip(out, total.tolist())]


    @seqkit.hookimpl
    def register_decoders(register):
        register("norepeat", NoRepeat)
"""


def test_a_third_party_decoder_gets_its_own_flags(run_dir, tmp_path):
    from conftest import make_plugin_dist

    site = make_plugin_dist(tmp_path / "site", "seqkit-norepeat", "seqkit_norepeat", NO_REPEAT_PLUGIN)
    result = cli_here("decode", run_dir, "--strategy", "norepeat", "--penalty", "50", "--length", "40",
                     "--json", site=site)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)["results"][0]["outputs"][0]
    # "the " ends in a space: the first new character may not be one, nor any the same as before it.
    assert all(a != b for a, b in zip(["the "[-1]] + list(output["text"]), output["text"]))
    assert json.loads(result.stdout)["options"] == {"penalty": 50.0}

    wrong = cli_here("decode", run_dir, "--strategy", "beam", "--penalty", "5", site=site)
    assert wrong.returncode == 2
    assert "--penalty: does not apply to strategy 'beam' (it is an option of norepeat)" in wrong.stderr


def test_a_broken_plugin_is_one_warning_line_and_decoding_goes_on(run_dir, tmp_path):
    from conftest import make_plugin_dist

    site = make_plugin_dist(tmp_path / "site", "seqkit-broken", "seqkit_broken", "raise ImportError('boom')\n")
    result = cli_here("decode", run_dir, "--strategy", "greedy", "--length", "3", site=site)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines() == [
        "seqkit: warning: plugin 'seqkit-broken' (seqkit-broken) failed to load: ImportError: boom "
        "(set SEQKIT_LOAD_PLUGINS to choose plugins)"]
