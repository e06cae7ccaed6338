"""translation on prepared, memory-mapped data: the same vocabularies, batches and metrics as the
in-memory path it replaced (kept below as the reference), reuse and change detection, the old
checkpoint format, the tokenizer keys, and ``seqkit prepare``."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
import yaml
from _translation_runs import PHONES, cli_env, translation_recipe, write_pairs
from conftest import needs_extra, run_cli

from seqkit.decoding import DecodeResult, Hypothesis, build_decoder
from seqkit.errors import SeqkitError
from seqkit.plugins.tasks.common.dataset_splits import load_corpus
from seqkit.plugins.tasks.common.length_batches import epoch_order, plan_batches
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, Vocabulary
from seqkit.plugins.tasks.translation import output as translation_output
from seqkit.plugins.tasks.translation.corpus import TARGET_SPECIALS, translation_corpus
from seqkit.plugins.tasks.translation.model import END_ID
from seqkit.plugins.tasks.translation.step import TranslationStepModel, start_decoding
from seqkit.plugins.tasks.translation.task import EVAL_BATCH_FACTOR, Translation
from seqkit.recipe import resolve
from seqkit.registry import get_registry

pytestmark = pytest.mark.usefixtures("cache")  # a fresh cache folder per test (conftest)


# -- the in-memory path before prepared data (plugins/tasks/translation/data.py and output.py) -----

class OldPath:
    """What translation did before prepared data: the dataset's splits encoded into int64 tensors
    with frequency-ordered vocabularies, batches gathered from them, outputs scored as tokens."""

    def __init__(self, recipe: dict):
        from seqkit.contracts.parallel_corpus import ParallelCorpus
        corpus = load_corpus(recipe["data"], ParallelCorpus, "parallel", "examples")
        self.levels, self.text = (corpus.source_tokens, corpus.target_tokens), corpus.text
        train = corpus.splits["train"]
        self.source_symbols = Vocabulary.build(Counter(t for source, _ in train for t in source))
        self.target_symbols = Vocabulary.build(
            Counter(t for _, references in train for reference in references for t in reference), TARGET_SPECIALS)
        self.splits = {split: self.encode(examples) for split, examples in corpus.splits.items() if examples}
        self.references = {split: [references for _, references in examples]
                           for split, examples in corpus.splits.items() if examples}
        train_cfg = recipe["train"]
        self.plan = self.batches(self.splits["train"], train_cfg["batch_size"], train_cfg["batch_tokens"])
        self.recipe = recipe

    def flat(self, sequences, symbols, level):
        if level == "char":
            return symbols.encode("".join(sequences))
        return torch.tensor(symbols.ids(t for s in sequences for t in s), dtype=torch.long)

    def encode(self, examples) -> dict:
        sources = [source for source, references in examples for _ in references]
        targets = [reference for _, references in examples for reference in references]
        per_example = torch.tensor([len(references) for _, references in examples])
        source_lengths = torch.tensor([len(s) for s in sources])
        target_lengths = torch.tensor([len(t) for t in targets])
        target_starts = torch.cumsum(target_lengths + 1, 0) - (target_lengths + 1)
        target = torch.full((int((target_lengths + 1).sum()),), END_ID, dtype=torch.long)
        inside = torch.ones(len(target), dtype=torch.bool)
        inside[target_starts + target_lengths] = False
        target[inside] = self.flat(targets, self.target_symbols, self.levels[1])
        return {"source": self.flat(sources, self.source_symbols, self.levels[0]),
                "source_starts": torch.cumsum(source_lengths, 0) - source_lengths, "source_lengths": source_lengths,
                "target": target, "target_starts": target_starts, "target_lengths": target_lengths + 1,
                "examples": torch.repeat_interleave(torch.arange(len(examples)), per_example),
                "first_pairs": torch.cumsum(per_example, 0) - per_example}

    @staticmethod
    def gather(flat, starts, lengths, time):
        mask = torch.arange(time) < lengths.unsqueeze(1)
        at = (starts.unsqueeze(1) + torch.arange(time)).masked_fill(~mask, 0)
        return flat[at].masked_fill(~mask, PADDING_ID)

    def batches(self, split: dict, batch_size: int, batch_tokens: int) -> list:
        longer = torch.maximum(split["source_lengths"], split["target_lengths"]).tolist()
        found = []
        for pairs in plan_batches(longer, batch_size, batch_tokens):
            pairs = torch.tensor(pairs)
            source_lengths, target_lengths = split["source_lengths"][pairs], split["target_lengths"][pairs]
            found.append((self.gather(split["source"], split["source_starts"][pairs], source_lengths,
                                      int(source_lengths.max())), source_lengths,
                          self.gather(split["target"], split["target_starts"][pairs], target_lengths,
                                      int(target_lengths.max())), target_lengths, pairs))
        return found

    def train_batch(self, step: int, seed: int):
        epoch, index = divmod(step, len(self.plan))
        return self.plan[int(epoch_order(len(self.plan), seed, epoch)[index])]

    def evaluate(self, model, split: str, decoder) -> dict:
        train = self.recipe["train"]
        total, tokens = 0.0, 0
        for source, source_lengths, target, target_lengths, _ in self.batches(
                self.splits[split], train["batch_size"] * EVAL_BATCH_FACTOR, train["batch_tokens"] * EVAL_BATCH_FACTOR):
            total -= float(model.log_likelihood(source, source_lengths, target, target_lengths).double().sum())
            tokens += int(target_lengths.sum())
        encoded, references = self.splits[split], self.references[split]
        pairs = encoded["first_pairs"]
        lengths = encoded["source_lengths"][pairs].tolist()
        outputs = [None] * len(pairs)
        for batch in plan_batches(lengths, 256):
            rows = pairs[torch.tensor(batch)]
            source = self.gather(encoded["source"], encoded["source_starts"][rows], encoded["source_lengths"][rows],
                                 max(lengths[i] for i in batch))
            state, first = start_decoding(model, source, encoded["source_lengths"][rows])
            for row, result in zip(batch, decoder.decode(TranslationStepModel(model), state, first,
                                                         self.recipe["decode"]["length"])):
                ids = result.hypotheses[0].tokens
                symbols = [self.target_symbols.symbols[i] for i in (ids[:-1] if ids and ids[-1] == END_ID else ids)]
                outputs[row] = "".join(symbols) if self.levels[1] == "char" else symbols
        from seqkit.plugins.tasks.translation.metrics import TranslationCounts, bleu_and_chrf
        counts = TranslationCounts()
        counts.update(outputs, references)
        metrics = {"loss": total / tokens, **counts.compute()}
        if self.text:
            metrics.update(bleu_and_chrf([" ".join(o) for o in outputs],
                                         [[" ".join(r) for r in refs] for refs in references]))
        return metrics


def cmudict_recipe(tmp_path, output):
    """A small dictionary in the CMU format (two pronunciations for some words), read by cmudict."""
    path = tmp_path / "small.dict"
    words = sorted({line.split("\t")[0] for line in write_pairs(tmp_path / "w.tsv", 400, 5).read_text().splitlines()})
    lines = []
    for word in words:
        lines.append(f"{word} {' '.join(PHONES[c] + ('1' if PHONES[c][0] in 'AEO' else '') for c in word)}")
        if "c" in word:
            lines.append(f"{word}(2) {' '.join(('S' if c == 'c' else PHONES[c]) for c in word)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {"task": "translation", "seed": 5, "device": "cpu", "output": str(output),
            "data": {"dataset": "cmudict", "path": str(path)},
            "model": {"cell": "gru", "hidden_size": 8, "encoder": {"embedding_size": 6},
                      "decoder": {"embedding_size": 6}},
            "train": {"steps": 4, "batch_size": 8, "batch_tokens": 40}, "decode": {"length": 10}}
    return resolve(data, get_registry())


CASES = {
    "pairs char to space": lambda tmp_path: translation_recipe(tmp_path, tmp_path / "run"),
    "pairs space to char": lambda tmp_path: translation_recipe(
        tmp_path, tmp_path / "run", "data.source_tokens=space", "data.target_tokens=char", "train.batch_tokens=30"),
    "cmudict": lambda tmp_path: cmudict_recipe(tmp_path, tmp_path / "run"),
    "pairs space to space, dev held out": lambda tmp_path: held_out(translation_recipe(
        tmp_path, tmp_path / "run", "data.source_tokens=space", "data.target_tokens=space")),
}


def held_out(recipe: dict) -> dict:
    """Without dev and test files: pairs streams every 10th example of the training file as dev."""
    recipe["data"].update(dev=None, test=None)
    return recipe


@pytest.mark.parametrize("case", list(CASES))
def test_vocabularies_batches_and_metrics_equal_the_in_memory_path(tmp_path, case):
    recipe = CASES[case](tmp_path)
    old = OldPath(recipe)
    task = Translation(recipe, "cpu")
    task.prepare()
    assert task.source_tokenizer.symbols == old.source_symbols.symbols
    assert task.target_tokenizer.symbols == old.target_symbols.symbols
    assert set(task.splits) == set(old.splits)
    for split, encoded in old.splits.items():
        new = task.splits[split]
        assert isinstance(new.source.ids, np.memmap) and new.source.ids.dtype == np.uint8
        for name, array in (("source", new.source.ids), ("source_starts", new.source.starts),
                            ("source_lengths", new.source.lengths), ("target", new.target.ids),
                            ("target_starts", new.target.starts), ("target_lengths", new.target.lengths),
                            ("examples", new.examples), ("first_pairs", new.first_pairs)):
            assert np.array_equal(np.asarray(array, dtype=np.int64), encoded[name].numpy()), (split, name)
        if split != "train":
            assert [new.references[i] for i in range(new.example_count)] == old.references[split]
    steps = 2 * len(old.plan) + 3  # more than two epochs
    for step in range(steps):
        batch, (source, source_lengths, target, target_lengths, pairs) = (task.train_batch(step),
                                                                          old.train_batch(step, recipe["seed"]))
        assert torch.equal(batch.source, source) and torch.equal(batch.target, target)
        assert torch.equal(batch.source_lengths, source_lengths) and torch.equal(batch.target_lengths, target_lengths)
        assert torch.equal(batch.pairs, pairs) and batch.source.dtype == torch.int64
    torch.manual_seed(0)
    model = task.build_model().eval()
    greedy = build_decoder("greedy", {})
    with torch.no_grad():
        for split in ("dev", "test") if "test" in old.splits else ("dev",):
            metrics = task.evaluate(model, split, greedy)
            assert metrics == pytest.approx(old.evaluate(model, split, greedy), rel=1e-12), split


def test_prepared_data_is_reused_and_a_changed_file_is_prepared_again(tmp_path):
    recipe = translation_recipe(tmp_path, tmp_path / "run")
    first = translation_corpus(recipe["data"])
    again = translation_corpus(recipe["data"])
    assert not first.reused and again.reused and again.path == first.path
    task = Translation(recipe, "cpu")
    task.prepare()  # from the prepared copy: the dataset is not read again
    train = tmp_path / "train.tsv"
    train.write_text(train.read_text() + "zz\tZ Z\n", encoding="utf-8")
    changed = translation_corpus(recipe["data"])
    assert not changed.reused and changed.path != first.path
    assert changed.meta["splits"]["train"]["pairs"] == first.meta["splits"]["train"]["pairs"] + 1
    other = translation_corpus({**recipe["data"], "target_tokenizer": {"name": "whitespace", "min_frequency": 2}})
    assert not other.reused and other.path != changed.path


def test_a_checkpoint_of_the_old_format_loads_and_reads_as_the_run_did(tmp_path):
    recipe = translation_recipe(tmp_path, tmp_path / "run")
    old, task = OldPath(recipe), Translation(recipe, "cpu")
    task.prepare()
    state = {"source_tokens": "char", "target_tokens": "space", "text": True, "lowercase": True,
             "source_symbols": old.source_symbols.state_dict(), "target_symbols": old.target_symbols.state_dict()}
    assert task.state_dict() == state  # what every default run writes, as before
    assert task.check_resume(state) == []
    loaded = Translation(recipe, "cpu")
    loaded.load_state_dict(state)
    assert loaded.state_dict() == state and loaded.by_level == {"source": True, "target": True}
    assert loaded.source_tokenizer.encode("cabx").tolist() == old.source_symbols.encode("cabx").tolist()
    word = [old.target_symbols.index[t] for t in ("K", "AH", "B")]
    assert translation_output.scored(loaded, word + [END_ID]) == ["K", "AH", "B"]
    changed = dict(state, target_symbols=state["target_symbols"][:-1])
    assert task.check_resume(changed) == ["the data has changed since this run started (its target symbols "
                                          "differ); start a new run instead of resuming"]


def resolved(tmp_path, **data):
    recipe = translation_recipe(tmp_path, tmp_path / "run")
    recipe["data"].update(data)
    return resolve(recipe, get_registry(), "r.yaml")


@pytest.mark.parametrize("data, problem", [
    ({"tokenizer": "bpe", "source_tokenizer": "char"},
     "r.yaml: data.tokenizer: one joint tokenizer reads both sides; remove it or data.source_tokenizer"),
    ({"source_tokenizer": "bpee"}, "r.yaml: data.source_tokenizer: unknown tokenizer 'bpee' (did you mean 'bpe'?)"),
    ({"target_tokenizer": {"name": "bpe", "vocab_sise": 300}},
     "r.yaml: data.target_tokenizer.vocab_sise: unknown key (did you mean 'vocab_size'?)"),
])
def test_tokenizer_keys_are_checked_with_the_recipe_in_one_line_each(tmp_path, data, problem):
    with pytest.raises(SeqkitError) as caught:
        resolved(tmp_path, **data)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_subword_sides_read_raw_text_and_scores_compare_detokenized_text(tmp_path):
    needs_extra("tokenizers", "subword")
    recipe = resolved(tmp_path, source_tokens="space", target_tokens="space",
                      source_tokenizer={"name": "bpe", "vocab_size": 270},
                      target_tokenizer={"name": "unigram", "vocab_size": 290})
    task = Translation(recipe, "cpu")
    task.prepare()
    assert task.by_level == {"source": False, "target": False}
    assert task.source_tokenizer.vocab_size <= 270 and task.target_tokenizer.specials == TARGET_SPECIALS
    dev = task.splits["dev"]
    first_line = (tmp_path / "dev.tsv").read_text().splitlines()[0]
    assert task.source_tokenizer.decode(dev.source.sequence(0)) == first_line.split("\t")[0]
    meta = translation_corpus(recipe["data"]).meta
    assert meta["tokenizers"]["source"]["name"] == "bpe" and not meta["joint"]
    # each dev example's first reference, as the target tokenizer encodes it: scored as its words
    examples = task._decoded_examples("dev")
    results = [DecodeResult([Hypothesis(task.target_tokenizer.encode(" ".join(task.references["dev"][i][0])).tolist()
                                        + [END_ID], -1.0)]) for i in examples.tolist()]
    metrics = task.score("dev", examples, results)
    assert metrics["word_error_rate"] == 0 and metrics["token_error_rate"] == 0
    assert metrics["bleu"] == pytest.approx(100) and metrics["chrf"] == pytest.approx(100)
    with torch.no_grad():
        assert np.isfinite(task.evaluate(task.build_model().eval(), "dev")["loss"])
    state = task.state_dict()
    assert {"source_tokenizer", "target_tokenizer"} <= set(state) and "source_symbols" not in state
    torch.save(state, tmp_path / "state.pt")
    loaded = Translation(recipe, "cpu")
    loaded.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert loaded.state_dict() == state and loaded.check_resume(state) == []


def test_a_joint_tokenizer_reads_both_sides_with_one_vocabulary(tmp_path):
    recipe = resolved(tmp_path, tokenizer={"name": "char"})
    task = Translation(recipe, "cpu")
    task.prepare()
    assert task.source_tokenizer is task.target_tokenizer and task.source_tokenizer.specials == TARGET_SPECIALS
    # trained on both sides: the phones' capital letters and the spellings' small ones
    assert {"K", "a", "c"} <= set(task.source_tokenizer.symbols)
    model = task.build_model()
    assert model.source_embedding.num_embeddings == model.target_vocab_size == task.source_tokenizer.vocab_size
    state = task.state_dict()
    assert set(state) == {"source_tokens", "target_tokens", "text", "lowercase", "tokenizer"}
    loaded = Translation(recipe, "cpu")
    loaded.load_state_dict(state)
    assert loaded.source_tokenizer is loaded.target_tokenizer and loaded.state_dict() == state
    report = translation_output.decode(task, model.eval(), ["cab", ""], build_decoder("greedy", {}), 4)
    assert report["results"][1]["outputs"] == [] and len(report["results"][0]["outputs"]) == 1


def test_seqkit_prepare_summarises_a_translation_recipe(tmp_path):
    recipe = translation_recipe(tmp_path, tmp_path / "run")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = cli_env()
    first = run_cli("prepare", path, "--json", env=env)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    lines = (tmp_path / "train.tsv").read_text().splitlines()
    assert summary["reused"] is False and summary["tokenizer"] == "char (source), whitespace (target)"
    assert summary["pairs"]["train"] == len(set(lines))
    assert summary["vocabulary"] == {"source": 10, "target": 12} and summary["files"] == 3
    assert set(summary["tokens"]) == {"train", "dev", "test"} and summary["tokens"]["dev"]["target"] > 0
    again = run_cli("prepare", path, env=env)
    assert again.returncode == 0 and "(already there)" in again.stdout and "source 10, target 12" in again.stdout


def test_preparing_reports_its_stages_in_bytes(tmp_path):
    needs_extra("tokenizers", "subword")
    recipe = resolved(tmp_path, source_tokenizer={"name": "bpe", "vocab_size": 270})
    seen = []
    translation_corpus(recipe["data"], lambda stage, done, total: seen.append((stage, done, total)))
    assert [stage for stage, _, _ in seen][0] == "reading"
    assert {stage for stage, _, _ in seen} == {"reading", "training tokenizer", "encoding"}
    training = [done for stage, done, _ in seen if stage == "training tokenizer"]
    assert training == sorted(training) and training[-1] > 0
    *_, (stage, done, total) = seen
    assert stage == "encoding" and done == total == seen[1][1]  # every byte read is encoded
