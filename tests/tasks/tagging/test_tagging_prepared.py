"""tagging on prepared, memory-mapped data: the same vocabularies, batches, losses and metrics as the
in-memory path it replaced (kept here as the reference), reuse and change detection of the
prepared corpus, ``seqkit prepare`` of a tagging recipe, files scored in memory."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import yaml
from _tagging_runs import tagging_recipe, write_conll
from _tiny_runs import ONE_THREAD_ENV
from conftest import cli_here, run_cli

from seqkit.contracts.tagged_corpus import TaggedCorpus
from seqkit.plugins.tasks.common.dataset_splits import load_corpus
from seqkit.plugins.tasks.common.length_batches import epoch_order, plan_batches
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, Vocabulary
from seqkit.plugins.tasks.tagging.data import MAX_WORD_CHARS, Batch
from seqkit.plugins.tasks.tagging.metrics import TagCounts
from seqkit.plugins.tasks.tagging.task import Tagging

pytestmark = pytest.mark.usefixtures("cache")  # a fresh cache folder per test (conftest)


# -- the in-memory path before prepared data: every split flat on the device ------------------
@dataclass
class EncodedSplit:
    tokens: torch.Tensor
    tags: torch.Tensor
    starts: torch.Tensor
    lengths: torch.Tensor
    host_lengths: list[int]
    chars: torch.Tensor | None = None
    char_starts: torch.Tensor | None = None
    char_lengths: torch.Tensor | None = None
    host_widths: list[int] | None = None


def encode_split(sentences, level, words, tags, chars, device, max_word_chars=0) -> EncodedSplit:
    lengths = [len(tokens) for tokens, _ in sentences]
    if level == "char":
        token_ids = words.encode("".join(t for t, _ in sentences))
    else:
        token_ids = torch.tensor(words.ids(w for tokens, _ in sentences for w in tokens), dtype=torch.long)
    tag_ids = torch.tensor([tags[t] for _, sentence_tags in sentences for t in sentence_tags], dtype=torch.long)
    host_lengths = torch.tensor(lengths, dtype=torch.long)
    starts = torch.cumsum(host_lengths, 0) - host_lengths
    split = EncodedSplit(token_ids.to(device), tag_ids.to(device), starts.to(device),
                         host_lengths.to(device), lengths)
    if chars is not None:
        all_words = [w[:max_word_chars] if max_word_chars else w for tokens, _ in sentences for w in tokens]
        char_lengths = torch.tensor([len(w) for w in all_words], dtype=torch.long)
        split.chars = chars.encode("".join(all_words)).to(device)
        split.char_starts = (torch.cumsum(char_lengths, 0) - char_lengths).to(device)
        split.char_lengths = char_lengths.to(device)
        split.host_widths = (np.maximum.reduceat(char_lengths.numpy(), starts.numpy()).tolist()
                             if lengths else [])
    return split


def gather_batch(split: EncodedSplit, sentences: torch.Tensor, time: int, width: int = 0) -> Batch:
    device = split.tokens.device
    lengths = split.lengths[sentences]
    steps = torch.arange(time, device=device)
    mask = steps < lengths.unsqueeze(1)
    at = (split.starts[sentences].unsqueeze(1) + steps).masked_fill(~mask, 0)
    tokens = split.tokens[at].masked_fill(~mask, PADDING_ID)
    tags = split.tags[at].masked_fill(~mask, 0)
    chars = None
    if split.chars is not None:
        offsets = torch.arange(max(width, 1), device=device)
        inside = (offsets < split.char_lengths[at].unsqueeze(2)) & mask.unsqueeze(2)
        where = (split.char_starts[at].unsqueeze(2) + offsets).masked_fill(~inside, 0)
        chars = split.chars[where].masked_fill(~inside, PADDING_ID) if len(split.chars) else \
            torch.zeros_like(where)
    return Batch(tokens, tags, lengths, chars, sentences)


class OldBatchPlan:
    def __init__(self, split: EncodedSplit, batches: list[list[int]]):
        self.split = split
        flat = [i for batch in batches for i in batch]
        self.ids = torch.tensor(flat, dtype=torch.long, device=split.tokens.device)
        self.bounds = np.cumsum([0] + [len(b) for b in batches]).tolist()
        self.times = [max(split.host_lengths[i] for i in batch) for batch in batches]
        self.widths = ([max(split.host_widths[i] for i in batch) for batch in batches]
                       if split.host_widths is not None else [0] * len(batches))

    def __len__(self) -> int:
        return len(self.times)

    def batch(self, index: int) -> Batch:
        ids = self.ids[self.bounds[index]:self.bounds[index + 1]]
        return gather_batch(self.split, ids, self.times[index], self.widths[index])

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        return epoch_order(len(self), seed, epoch)


class InMemoryTagging(Tagging):
    """The task's data as it was before prepared data (the rest of the task is the same)."""

    def prepare(self) -> None:
        corpus = load_corpus(self.data, TaggedCorpus, "tagged sentences", "sentences")
        train = corpus.splits["train"]
        self.level, self.tag_names = corpus.level, tuple(corpus.tag_set)
        self.tag_styles = dict(getattr(corpus, "tag_styles", {}) or {})
        self.words = Vocabulary.build(Counter(c for tokens, _ in train for c in tokens))
        if self.model_cfg["char_features"]:
            self.chars = Vocabulary.build(Counter(c for words, _ in train for w in words for c in w))
        self.scheme = TagCounts(self.tag_names, self.data["scheme"]).scheme
        self.splits["train"] = self._old_encode(train)
        split, train_cfg = self.splits["train"], self.train_cfg
        self.train_plan = OldBatchPlan(split, plan_batches(split.host_lengths, train_cfg["batch_size"],
                                                           train_cfg["batch_tokens"]))
        for name in ("dev", "test"):
            if corpus.splits.get(name):
                self.splits[name] = self._old_encode(corpus.splits[name])
        counts = Counter(t for tokens, _ in train for t in tokens)
        self.rare = torch.tensor([counts.get(s, 0) == 1 for s in self.words.symbols]).to(self.device)

    def _old_encode(self, sentences) -> EncodedSplit:
        tag_ids = {name: i for i, name in enumerate(self.tag_names)}
        return encode_split(sentences, self.level, self.words, tag_ids, self.chars, self.device, MAX_WORD_CHARS)

    def _eval_plan(self, split: str, same_length: bool = False) -> OldBatchPlan:
        train, encoded = self.train_cfg, self.splits[split]
        return OldBatchPlan(encoded, plan_batches(encoded.host_lengths, train["batch_size"] * 4,
                                                  train["batch_tokens"] * 4, same_length))


# -- the same numbers ------------------------------------------------------------------------
CHARACTERS = {"dataset": "python-tokens", "max_files": 12, "max_length": 48, "scheme": "auto"}
LEVELS = {"words": ("train.word_dropout=0.3",),
          "words and characters": ("train.word_dropout=0.3", "model.char_features=3"),
          "characters": ("train.batch_tokens=600",),
          "words and characters, dev held out": ("model.char_features=3",)}  # conll streams every 10th


def recipe_of(tmp_path, level: str, *overrides: str) -> dict:
    recipe = tagging_recipe(tmp_path, tmp_path / "run", *LEVELS[level], *overrides)
    if level == "characters":
        recipe["data"] = dict(CHARACTERS)
    if level.endswith("dev held out"):
        recipe["data"].update(dev=None, test=None)
    return recipe


def trained(task: Tagging, steps: int):
    """(each step's batch and loss, dev and test metrics) of a few Adam steps from a fixed start."""
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    seen = []
    for step in range(steps):
        batch = task.train_batch(step)
        loss, count = task.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen.append((batch, loss.item(), count))
    model.eval()
    with torch.no_grad():
        return seen, {split: task.evaluate(model, split) for split in ("dev", "test") if split in task.splits}


@pytest.mark.parametrize("output", ["softmax", "crf"])
@pytest.mark.parametrize("level", list(LEVELS))
def test_training_and_metrics_equal_the_in_memory_path(tmp_path, level, output):
    recipe = recipe_of(tmp_path, level, f"model.output={output}")
    old, new = InMemoryTagging(recipe), Tagging(recipe)
    old.prepare()
    new.prepare()
    assert isinstance(new.splits["train"].tokens.ids, np.memmap)
    assert new.words.symbols == old.words.symbols and new.tag_names == old.tag_names
    assert (new.chars is None) == (old.chars is None) == ("model.char_features=3" not in LEVELS[level])
    assert new.chars is None or new.chars.symbols == old.chars.symbols
    assert torch.equal(new.rare, old.rare) and new.scheme == old.scheme and new.tag_styles == old.tag_styles
    assert len(new.train_plan) == len(old.train_plan)
    steps = len(old.train_plan) + 3  # into the second epoch
    old_steps, old_metrics = trained(old, steps)
    new_steps, new_metrics = trained(new, steps)
    for (a, loss_a, count_a), (b, loss_b, count_b) in zip(old_steps, new_steps):
        assert b.tokens.dtype == torch.int64 and b.tokens.device == a.tokens.device
        for field in ("tokens", "tags", "lengths", "sentences"):
            assert torch.equal(getattr(a, field), getattr(b, field)), field
        assert (a.chars is None and b.chars is None) or torch.equal(a.chars, b.chars)
        assert loss_a == loss_b and count_a == count_b
    assert new_metrics == old_metrics
    assert torch.equal(new.counts["dev"].counts, old.counts["dev"].counts)


def test_a_run_checkpoint_of_the_in_memory_path_loads_and_scores_the_same(tmp_path):
    """A checkpoint's task state (its vocabularies) from before prepared data: dev and test read
    from the prepared corpus with the same ids, and a file scored in memory, give its metrics."""
    recipe = recipe_of(tmp_path, "words and characters")
    old = InMemoryTagging(recipe)
    old.prepare()
    torch.manual_seed(0)
    model = old.build_model().eval()
    evaluating = Tagging(recipe)
    evaluating.load_state_dict(old.state_dict())
    for split in ("dev", "test"):
        evaluating.load_split(split)
        assert isinstance(evaluating.splits[split].tokens.ids, np.memmap)  # the prepared corpus
        with torch.no_grad():
            assert evaluating.evaluate(model, split) == old.evaluate(model, split)
    evaluating.load_split("file", tmp_path / "dev.conll")
    assert not isinstance(evaluating.splits["file"].tokens.ids, np.memmap)  # read whole, in memory
    with torch.no_grad():
        assert evaluating.evaluate(model, "file") == old.evaluate(model, "dev")


def test_a_changed_file_is_prepared_again_and_a_run_of_the_old_data_still_scores_it(tmp_path):
    recipe = recipe_of(tmp_path, "words")
    first = Tagging(recipe)
    summary = first.prepare_data()
    assert not summary["reused"] and Tagging(recipe).prepare_data()["reused"]
    first.prepare()
    write_conll(tmp_path / "train.conll", 150, seed=7)  # another training file: other words, other ids
    changed = Tagging(recipe)
    again = changed.prepare_data()
    assert not again["reused"] and again["path"] != summary["path"]
    assert again["sentences"]["train"] == 150 and again["sentences"]["dev"] == 30
    # the first run's checkpoint: its ids are no longer the prepared corpus's, so its dev split is
    # read again and encoded with its own vocabulary, as before prepared data
    evaluating = Tagging(recipe)
    evaluating.load_state_dict(first.state_dict())
    evaluating.load_split("dev")
    assert not isinstance(evaluating.splits["dev"].tokens.ids, np.memmap)
    torch.manual_seed(0)
    model = first.build_model().eval()
    with torch.no_grad():
        assert evaluating.evaluate(model, "dev") == first.evaluate(model, "dev")


def test_the_prepared_arrays_use_the_smallest_dtypes_and_hold_each_words_characters(tmp_path):
    task = Tagging(recipe_of(tmp_path, "words and characters"))
    task.prepare()
    train = task.splits["train"]
    assert train.tokens.ids.dtype == np.uint8 and train.tokens.aligned["tags"].dtype == np.uint8
    assert train.chars.ids.dtype == np.uint8 and train.lengths.dtype == np.int64
    assert len(train.chars) == len(train.tokens.ids)  # one sequence of characters per token
    words, tags = load_corpus(task.data, TaggedCorpus, "", "").splits["train"][5]
    first, length = int(train.tokens.starts[5]), int(train.lengths[5])
    assert length == len(words)
    assert [task.words.symbols[i] for i in train.tokens.sequence(5)] == words  # training words: all known
    assert [task.tag_names[t] for t in train.tokens.aligned["tags"][first:first + length]] == tags
    assert [task.chars.decode(train.chars.sequence(first + i)) for i in range(length)] == \
        [w[:MAX_WORD_CHARS] for w in words]


def test_preparing_reports_reading_then_encoding_in_bytes_and_nothing_when_reused(tmp_path):
    write_conll(tmp_path / "train.conll", 120, seed=0)
    (tmp_path / "train.conll").write_text((tmp_path / "train.conll").read_text() + "\ncafé X O\n", encoding="utf-8")
    calls = []
    task = Tagging(recipe_of(tmp_path, "words"))
    task.data_progress = lambda *call: calls.append(call)
    summary = task.prepare_data()
    assert calls[0] == ("reading", 0, 0) and {stage for stage, *_ in calls[1:]} == {"encoding"}
    assert [done for _, done, _ in calls[1:]] == sorted(done for _, done, _ in calls[1:])
    assert calls[-1][1] == calls[-1][2] == summary["text_megabytes"] * 1e6
    assert summary["text_megabytes"] * 1e6 == sum(summary["characters"].values()) + 1  # é: two bytes
    calls.clear()
    assert task.prepare_data()["reused"] and calls == []


def test_seqkit_prepare_of_a_tagging_recipe_then_a_run_reuses_it(tmp_path, cache):
    recipe = tagging_recipe(tmp_path, tmp_path / "run", "model.char_features=3", "train.steps=2",
                            "train.eval_every=2")
    path = tmp_path / "tagging.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**ONE_THREAD_ENV, "SEQKIT_CACHE_DIR": str(cache)}
    first = run_cli("prepare", path, "--json", env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["task"] == "tagging" and summary["reused"] is False and summary["files"] == 3
    assert summary["sentences"] == {"train": 120, "dev": 30, "test": 30}
    assert summary["tokenizer"] == "words, most frequent first" and summary["char_vocabulary"] > 2
    assert summary["tokens"]["train"] > 120 and summary["tags"] == 5
    second = cli_here("prepare", path, "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == {**summary, "reused": True}
    table = cli_here("prepare", path, env=env)
    assert table.returncode == 0 and "already there" in table.stdout and "train tokens" in table.stdout
    before = sorted(p.name for p in (cache / "prepared").iterdir())
    ran = run_cli("run", path, "--quiet", env=env)
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.name for p in (cache / "prepared").iterdir()) == before
