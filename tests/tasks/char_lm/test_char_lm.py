"""The char_lm task: vocabulary, batches as index arithmetic, loss modes, metrics, decoding."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import yaml
from _tiny_runs import tiny_recipe
from conftest import REPO
from torch.nn import functional as F

from seqkit import SeqkitError
from seqkit.plugins.tasks.char_lm.data import build_vocabulary, split_text, vocabulary_from_state, vocabulary_state
from seqkit.plugins.tasks.char_lm.metrics import _EVAL_SEED, next_char_loss, stream_loss
from seqkit.plugins.tasks.char_lm.task import CharLM
from seqkit.plugins.tasks.common.vocabulary import UNKNOWN_CHAR as UNKNOWN
from seqkit.training.run import load_run, start_run


def as_ids(array) -> torch.Tensor:
    """Token ids (a memory map's slice, an encoded text) as the int64 tensor a batch holds."""
    return torch.from_numpy(np.asarray(array, dtype=np.int64))


def test_vocabulary_maps_unseen_characters_to_the_unknown_symbol():
    vocab = build_vocabulary("hello world")
    assert vocab.symbols[0] == UNKNOWN and len(vocab) == 9
    ids = vocab.encode("hold z!")
    assert vocab.decode(ids) == f"hold {UNKNOWN}{UNKNOWN}"
    assert vocabulary_from_state(vocabulary_state(vocab)).symbols == vocab.symbols
    assert vocab.encode("").shape == (0,)


def test_lecture_alphabet_lowercases_and_drops_everything_else():
    data = yaml.safe_load((REPO / "recipes" / "char_lm_seed.yaml").read_text())["data"]
    alphabet = data["alphabet"]  # the lecture's 32 symbols
    assert alphabet == "abcdefghijklmnopqrstuvwxyz .:?[]" and data["unknown"] == "drop"
    text = "Hello, World: [Applause] 42?\n" + alphabet.upper()
    vocab = build_vocabulary(text, lowercase=True, alphabet=alphabet, unknown="drop")
    assert UNKNOWN not in vocab.symbols and set(vocab.symbols) <= set(alphabet)
    assert vocab.decode(vocab.encode("Hi, There: [X] 7?")) == "hi there: [x] ?"
    assert vocab.decode(vocab.encode("two\nlines\tand a tab")) == "two lines and a tab"


def test_read_shows_inputs_as_the_model_reads_them_and_names_what_it_replaced():
    mapped = build_vocabulary("hello world")
    read, note = mapped.read(["hold zé!", "low é"])
    assert read == [f"hold {UNKNOWN}{UNKNOWN}{UNKNOWN}", f"low {UNKNOWN}"]
    assert [mapped.decode(mapped.encode(text)) for text in ("hold zé!", "low é")] == read
    assert note == f"characters not in the vocabulary replaced by '{UNKNOWN}': 'z', 'é', '!'"
    assert mapped.read(["hello", UNKNOWN]) == (["hello", UNKNOWN], None)

    dropped = build_vocabulary("Hello world", lowercase=True, unknown="drop")
    assert dropped.read(["HELLO\tWörld"]) == (
        ["hello wrld"], "characters not in the vocabulary dropped (whitespace read as a space): '\\t', 'ö'")
    assert dropped.read(["Low"]) == (["low"], None)  # lowercasing was asked for: nothing to say


def test_blocks_split_holds_out_evenly_spaced_blocks_and_tail_the_end():
    text = "".join(f"{i:04d}" for i in range(1000))  # 4000 characters, 100 blocks of 40
    train, val = split_text(text, 0.1, "blocks")
    assert len(train) == 3600 and len(val) == 400
    assert val[:40] == text[360:400] and val[-40:] == text[3960:]  # blocks 9, 19, ..., 99
    assert train[:360] == text[:360]
    assert split_text(text, 0.1, "tail") == (text[:3600], text[3600:])


@pytest.fixture
def task(tmp_path):
    def make(*overrides):
        t = CharLM(tiny_recipe(tmp_path / "run", *overrides), "cpu")
        t.prepare()
        return t
    return make


def test_stream_batches_are_consecutive_windows_of_parallel_streams(task):
    t = task("train.batch_size=4", "train.window=16")
    x0, y0, fresh0 = t.train_batch(0)
    x1, _, fresh1 = t.train_batch(1)
    assert x0.shape == y0.shape == (4, 16) and fresh0 and not fresh1
    assert torch.equal(y0[:, :-1], x0[:, 1:])  # targets are the inputs shifted by one
    assert torch.equal(x1[:, 0], y0[:, -1])  # the next window continues the stream
    assert torch.equal(x0[0], as_ids(t.train_tokens[:16]))
    streams_len = len(t.train_tokens) // 4
    assert torch.equal(x0[1], as_ids(t.train_tokens[streams_len:streams_len + 16]))
    assert t.train_batch(t.windows_per_epoch)[2]  # a new epoch starts the state afresh


def test_random_batches_depend_only_on_seed_and_step(task):
    t = task("train.sampling=random", "train.carry_state=false")
    a, b = t.train_batch(5), t.train_batch(5)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], t.train_batch(6)[0])
    x, y, _ = a
    assert torch.equal(y[:, :-1], x[:, 1:])
    pooled = task("train.sampling=random", "train.carry_state=false", "train.pool=4")
    full = [pooled.train_batch(s)[0] for s in range(3)]
    assert all(torch.equal(full[0], f) for f in full)  # batch_size >= pool: the full batch every step


def test_carry_state_follows_the_sampling_mode(tmp_path):
    assert tiny_recipe(tmp_path)["train"]["carry_state"] is True
    assert tiny_recipe(tmp_path, "train.sampling=random")["train"]["carry_state"] is False
    with pytest.raises(SeqkitError, match="train.carry_state: state is only carried between"):
        tiny_recipe(tmp_path, "train.sampling=random", "train.carry_state=true")


def test_loss_on_every_position_or_only_the_last(task):
    t = task("model.dropout=0.0")
    torch.manual_seed(0)
    model = t.build_model()
    x, y, _ = t.train_batch(0)
    logits, _ = model(x)
    every, count = t.loss(model, (x, y, True))
    assert count == y.numel()
    assert every.item() == pytest.approx(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item(), abs=1e-6)
    t.train_cfg = {**t.train_cfg, "loss_on": "last"}
    last, count = t.loss(model, (x, y, True))
    assert count == len(y)
    assert last.item() == pytest.approx(F.cross_entropy(logits[:, -1], y[:, -1]).item(), abs=1e-6)


def test_carried_state_is_detached_and_continues_the_stream(task):
    t = task("model.dropout=0.0")
    model = t.build_model()
    t.loss(model, t.train_batch(0))
    assert all(not s.requires_grad for layer in t.carry for s in layer)
    x1, y1, _ = t.train_batch(1)
    carried, _ = t.loss(model, (x1, y1, False))
    x0 = t.train_batch(0)[0]
    logits, _ = model(torch.cat([x0, x1], 1))
    whole = F.cross_entropy(logits[:, 16:].flatten(0, 1), y1.flatten())
    assert carried.item() == pytest.approx(whole.item(), abs=1e-5)


def test_evaluate_reports_nats_bits_and_perplexity(task):
    t = task("model.dropout=0.0")
    model = t.build_model().eval()
    metrics = t.evaluate(model)
    assert metrics["bits_per_char"] == pytest.approx(metrics["loss"] / math.log(2))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    # streamed with carry = one pass over each stream; without carry = independent windows
    tokens = as_ids(t.split_tokens["dev"])
    length = (len(tokens) - 1) // 4
    logits, _ = model(tokens[:4 * length].view(4, length))
    expected = F.cross_entropy(logits.flatten(0, 1), tokens[1:4 * length + 1].view(4, length).flatten())
    assert stream_loss(model, tokens, 16, 4, carry=True) == pytest.approx(expected.item(), abs=1e-5)
    n = (len(tokens) - 1) // 16
    logits, _ = model(tokens[:n * 16].view(n, 16))
    expected = F.cross_entropy(logits.flatten(0, 1), tokens[1:n * 16 + 1].view(n, 16).flatten())
    assert stream_loss(model, tokens, 16, 4, carry=False) == pytest.approx(expected.item(), abs=1e-5)


def test_a_text_shorter_than_the_streams_is_scored_with_fewer_streams(task):
    """``seqkit eval --input-file`` takes any text of train.window + 1 characters, whatever
    train.batch_size: 8 streams of a 5-character text would hold no character each."""
    t = task("model.dropout=0.0")
    model = t.build_model().eval()
    tokens = t.split_tokens["dev"][:5]
    expected = stream_loss(model, tokens, 16, 4, carry=True)  # 4 streams: one prediction each
    assert stream_loss(model, tokens, 16, 8, carry=True) == expected


def score_after_window(model, tokens, start, window) -> float:
    """Loss in nats of the character after ``tokens[start:start + window]``, by one plain forward pass."""
    with torch.no_grad():
        logits, _ = model(tokens[start:start + window].view(1, -1))
    return -logits[0, -1].log_softmax(-1)[tokens[start + window]].item()


def test_loss_on_last_evaluation_scores_the_character_after_each_window(task):
    t = task("model.dropout=0.0", "train.loss_on=last", "data.eval_windows=40")
    model = t.build_model().eval()
    tokens, window = as_ids(t.split_tokens["dev"]), t.train_cfg["window"]
    # The windows are a fixed draw (the same for every run); the value is scored here one window
    # at a time through the model's forward pass, not through next_char_loss's batch.
    draw = torch.Generator().manual_seed(_EVAL_SEED)
    starts = torch.randint(0, len(tokens) - window, (40,), generator=draw)
    expected = sum(score_after_window(model, tokens, s, window) for s in starts.tolist()) / 40
    metrics = t.evaluate(model)
    assert metrics["loss"] == pytest.approx(expected, rel=0, abs=1e-5)
    assert metrics["bits_per_char"] == pytest.approx(expected / math.log(2), rel=0, abs=1e-5)
    # With room for a single window the draw cannot matter: every row is the whole text but its last.
    only = len(tokens) - 1
    assert next_char_loss(model, tokens, only, 3) == pytest.approx(
        score_after_window(model, tokens, 0, only), rel=0, abs=1e-5)


def test_one_hot_inputs_as_in_the_lecture(task):
    t = task("model.embedding_size=0")
    model = t.build_model()
    assert model.embedding is None and model.recurrent.cells[0].input_size == t.tokenizer.vocab_size
    logits, _ = model(t.train_batch(0)[0])
    assert logits.shape == (4, 16, t.tokenizer.vocab_size)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    start_run(tiny_recipe(run_dir, "model.dropout=0.0"), display="silent")
    return load_run(run_dir, device="cpu")  # the tests below make their inputs on the CPU


def test_load_run_rebuilds_task_and_model_without_data(trained):
    recipe, task, model = trained
    assert recipe["task"] == "char_lm" and not model.training
    assert not hasattr(task, "train_tokens")  # vocabulary from the checkpoint, no data read
    assert task.detokenize(task.tokenizer.encode("def f(x):").tolist()) == "def f(x):"


def test_start_decoding_batches_prompts_of_different_lengths(trained):
    _, task, model = trained
    prompts = ["The value", "a", "", "import os"]
    state, tokens = task.start_decoding(model, prompts)
    step = task.step_model(model)
    assert step.end_token is None and step.vocab_size == task.tokenizer.vocab_size
    log_probs, _ = step.step(tokens, state)
    assert log_probs.shape == (4, task.tokenizer.vocab_size)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(4), rtol=0, atol=1e-5)
    for row, prompt in enumerate(prompts):
        ids = as_ids(task.tokenizer.encode(prompt if prompt else "\n"))
        with torch.no_grad():
            logits, _ = model(ids.view(1, -1))
        assert torch.allclose(log_probs[row], logits[0, -1].log_softmax(-1), rtol=0, atol=1e-5), prompt
        assert int(tokens[row]) == int(ids[-1])


def test_stepping_carries_state_and_matches_a_whole_sequence_pass(trained):
    _, task, model = trained
    ids = as_ids(task.tokenizer.encode("for item in items:"))
    state, tokens = task.start_decoding(model, ["f"])
    step = task.step_model(model)
    with torch.no_grad():
        logits, _ = model(ids.view(1, -1))
    for t in range(1, len(ids)):
        log_probs, state = step.step(tokens, state)
        assert torch.allclose(log_probs[0], logits[0, t - 1].log_softmax(-1), rtol=0, atol=1e-5)
        tokens = ids[t:t + 1]


def test_sample_continues_the_prompt_with_the_recipes_decoder(trained):
    recipe, task, model = trained
    assert recipe["decode"]["strategy"] == "greedy"
    text = task.sample(model)
    prompt = recipe["decode"]["prompt"]
    assert text.startswith(prompt) and len(text) == len(prompt) + recipe["train"]["sample_chars"]
    state, tokens = task.start_decoding(model, [prompt])
    step, greedy = task.step_model(model), []
    for _ in range(recipe["train"]["sample_chars"]):
        log_probs, state = step.step(tokens, state)
        tokens = log_probs.argmax(1)
        greedy.append(int(tokens))
    assert text == prompt + task.detokenize(greedy)


def test_sample_shows_the_prompt_as_the_model_read_it(trained):
    _, task, model = trained
    shown = copy.copy(task)
    shown.recipe = {**task.recipe, "decode": {**task.recipe["decode"], "prompt": "snow \u2603 "}}
    assert shown.sample(model).startswith(f"snow {UNKNOWN} ")
