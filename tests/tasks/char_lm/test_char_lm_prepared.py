"""char_lm on prepared, memory-mapped data: the same batches and metrics as the in-memory path it
replaced, the split at every size, reuse, change detection, ``seqkit prepare``."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_runs import tiny_recipe, write_tiny_recipe
from conftest import cli_here, run_cli
from torch.nn import functional as F

from seqkit.plugins.tasks.char_lm.corpus import _cut
from seqkit.plugins.tasks.char_lm.data import build_vocabulary, split_segments, split_text, step_starts
from seqkit.plugins.tasks.char_lm.task import CharLM
from seqkit.plugins.tasks.common.dataset_splits import recipe_dataset


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQKIT_CACHE_DIR", str(tmp_path / "cache"))


def in_memory(recipe: dict):
    """What char_lm did before prepared data: the whole text in memory, split, one vocabulary,
    int64 token tensors (the reference the memory-mapped path must equal)."""
    data = recipe["data"]
    text = recipe_dataset(data).load()
    train_text, dev_text = split_text(text, data["val_fraction"], data["val_split"])
    vocab = build_vocabulary(train_text, data["lowercase"], data["alphabet"], data["unknown"])
    return vocab, vocab.encode(train_text), vocab.encode(dev_text)


def old_stream_batch(tokens: torch.Tensor, step: int, batch: int, window: int):
    length = len(tokens) // batch
    streams = tokens[:batch * length].view(batch, length)
    index = step % ((length - 1) // window)
    start = index * window
    return streams[:, start:start + window], streams[:, start + 1:start + window + 1]


def old_stream_loss(model, tokens: torch.Tensor, window: int, streams: int) -> float:
    """The dev loss with carried state, as the in-memory path computed it."""
    streams = min(streams, len(tokens) - 1)
    length = (len(tokens) - 1) // streams
    x = tokens[:streams * length].view(streams, length)
    y = tokens[1:streams * length + 1].view(streams, length)
    total, n, states = 0.0, 0, None
    with torch.no_grad():
        for i in range(0, length, window):
            logits, states = model(x[:, i:i + window], states)
            total += float(F.cross_entropy(logits.flatten(0, 1), y[:, i:i + window].flatten(), reduction="sum"))
            n += y[:, i:i + window].numel()
    return total / n


@pytest.mark.parametrize("overrides", [(), ("data.lowercase=true", "data.unknown=drop",
                                           "data.alphabet='abcdefghijklmnopqrstuvwxyz .:'")])
def test_streams_and_dev_metrics_equal_the_in_memory_path(tmp_path, overrides):
    recipe = tiny_recipe(tmp_path / "run", *overrides)
    vocab, train_tokens, dev_tokens = in_memory(recipe)
    task = CharLM(recipe, "cpu")
    task.prepare()
    assert isinstance(task.train_tokens, np.memmap) and task.train_tokens.dtype == np.uint8
    assert torch.equal(torch.from_numpy(np.asarray(task.train_tokens, dtype=np.int64)), train_tokens)
    assert torch.equal(torch.from_numpy(np.asarray(task.split_tokens["dev"], dtype=np.int64)), dev_tokens)
    assert task.tokenizer.state_dict() == {"symbols": vocab.symbols, "lowercase": vocab.lowercase,
                                           "unknown": "drop" if vocab.unknown is None else "map"}
    train = recipe["train"]
    for step in (0, 1, 5, 40):
        x, y, _ = task.train_batch(step)
        old_x, old_y = old_stream_batch(train_tokens, step, train["batch_size"], train["window"])
        assert torch.equal(x, old_x) and torch.equal(y, old_y) and x.dtype == torch.int64
    torch.manual_seed(0)
    model = task.build_model().eval()
    metrics = task.evaluate(model)
    assert metrics["loss"] == pytest.approx(old_stream_loss(model, dev_tokens, train["window"], train["batch_size"]),
                                            rel=1e-6)
    assert metrics["bits_per_char"] == pytest.approx(metrics["loss"] / np.log(2))


def test_random_windows_equal_the_in_memory_path(tmp_path):
    recipe = tiny_recipe(tmp_path / "run", "train.sampling=random", "train.pool=10")
    _, train_tokens, _ = in_memory(recipe)
    task = CharLM(recipe, "cpu")
    task.prepare()
    window, batch, seed = recipe["train"]["window"], recipe["train"]["batch_size"], recipe["seed"]
    for step in (0, 3, 7):
        x, y, _ = task.train_batch(step)
        starts = step_starts(step, len(train_tokens), window, batch, seed, task.pool)
        chunk = train_tokens[starts.unsqueeze(1) + torch.arange(window + 1)]  # the in-memory indexing
        assert torch.equal(x, chunk[:, :-1]) and torch.equal(y, chunk[:, 1:])


def test_a_validation_share_below_one_percent_is_held_out_at_every_size():
    for n_chars in (10**6, 64 * 10**6):
        for fraction in (0.001, 0.002, 0.005):
            segments = split_segments(n_chars, fraction, "blocks", min_block=4 * 101)
            held = sum(b - a for a, b, h in segments if h)
            assert held == pytest.approx(n_chars * fraction, rel=0.1), (n_chars, fraction)
            # spread over the text: as many blocks as fit the share, up to ten
            assert sum(h for *_, h in segments) == min(10, int(n_chars * fraction) // (4 * 101))
            assert min(b - a for a, b, _ in segments) >= 4 * 101
    # 1 % and above: the 100 blocks of before, exactly
    assert split_segments(10**6, 0.1, "blocks") == [(i * 10**4, (i + 1) * 10**4, i % 10 == 9) for i in range(100)]
    # a short text: one block of at least min_block characters, never nothing
    segments = split_segments(5000, 0.001, "blocks", min_block=404)
    assert 404 <= sum(b - a for a, b, h in segments if h) < 1000


def test_a_large_text_with_a_tiny_validation_share_trains(tmp_path):
    corpus = tmp_path / "big.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(40000)))
    recipe = tiny_recipe(tmp_path / "run", "data.dataset=text", f"data.path={corpus}", "data.val_fraction=0.001",
                         "data.max_chars=0")
    task = CharLM(recipe, "cpu")
    task.prepare()
    total = len(task.train_tokens) + len(task.split_tokens["dev"])
    assert len(task.split_tokens["dev"]) == pytest.approx(0.001 * total, rel=0.1)


def test_a_second_prepare_reuses_the_files_and_a_changed_file_is_prepared_again(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text("abcdefgh " * 2000)
    recipe = tiny_recipe(tmp_path / "run", "data.dataset=text", f"data.path={corpus}", "data.max_chars=0")
    first = CharLM(recipe, "cpu").prepare_data()
    again = CharLM(recipe, "cpu").prepare_data()
    assert not first["reused"] and again["reused"] and again["path"] == first["path"]
    corpus.write_text("zyxwvuts " * 2000)  # same size, new text
    changed = CharLM(recipe, "cpu")
    assert not changed.prepare_data()["reused"]
    changed.prepare()
    assert changed.tokenizer.decode(np.asarray(changed.train_tokens[:9])) == "zyxwvuts "


def test_seqkit_prepare_prints_a_summary_then_reuses(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "r.yaml", tmp_path / "run")
    env = {"SEQKIT_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli("prepare", recipe, "--json", env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["reused"] is False and summary["tokenizer"] == "char" and summary["task"] == "char_lm"
    assert summary["tokens"]["train"] + summary["tokens"]["dev"] == 6000  # max_chars of the tiny recipe
    assert summary["tokens"] == summary["characters"]
    second = cli_here("prepare", recipe, "--json", env=env)
    assert json.loads(second.stdout)["reused"] is True
    table = cli_here("prepare", recipe, env=env)
    assert table.returncode == 0 and "train tokens" in table.stdout and "already there" in table.stdout
    # and a run after it reads what is there: nothing new in the cache
    before = sorted(p.name for p in (tmp_path / "cache" / "prepared").iterdir())
    ran = run_cli("run", recipe, "--quiet", "--set", "train.steps=2", env=env)
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.name for p in (tmp_path / "cache" / "prepared").iterdir()) == before


def test_an_unwritable_cache_folder_is_one_line_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    recipe = write_tiny_recipe(tmp_path / "r.yaml", tmp_path / "run")
    result = cli_here("prepare", recipe, env={"SEQKIT_CACHE_DIR": str(blocker / "cache")})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "SEQKIT_CACHE_DIR" in result.stderr and str(blocker) in result.stderr


def test_pieces_cut_at_the_split_give_the_split_wherever_the_pieces_end():
    rng = random.Random(0)
    for trial in range(200):
        n = rng.randint(1, 3000)
        text = "".join(rng.choice("abcdef\n") for _ in range(n))
        segments = split_segments(n, rng.choice([0.1, 0.2, 0.003, 0.5]), rng.choice(["blocks", "tail"]),
                                  rng.randint(1, 50))
        cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 20)))) if n > 1 else []
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [n])]
        parts = list(_cut(pieces, segments))
        assert all(part for part, _ in parts)
        for held in (False, True):
            assert "".join(p for p, h in parts if h == held) == "".join(text[a:b] for a, b, h in segments
                                                                       if h == held), trial


def test_a_damaged_prepared_file_is_prepared_again_with_one_warning(tmp_path):
    recipe = write_tiny_recipe(tmp_path / "r.yaml", tmp_path / "run")
    env = {"SEQKIT_CACHE_DIR": str(tmp_path / "cache")}
    first = json.loads(run_cli("prepare", recipe, "--json", env=env).stdout)
    [train] = Path(first["path"]).glob("train.*")
    train.write_bytes(train.read_bytes()[:-100])  # torn, as by a crash or a full disk
    again = cli_here("prepare", recipe, "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["reused"] is False
    [warning] = again.stderr.strip().splitlines()
    assert "damaged" in warning and "preparing it again" in warning and first["path"] in warning
    assert json.loads(cli_here("prepare", recipe, "--json", env=env).stdout)["tokens"] == first["tokens"]
