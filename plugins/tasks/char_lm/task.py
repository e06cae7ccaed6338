"""``char_lm``: next-character prediction, the lecture's speech generator (section 12.4).

The task reads a text dataset, holds out ``data.val_fraction`` of it as the ``dev`` split, and
trains on windows of the rest (``data.py``: the vocabulary, the splits, batches by index
arithmetic on one token tensor per split). ``loss_on: every`` scores every position of a window;
``loss_on: last`` only the character after it (the lecture's procedure). With several processes
each rank reads its own block of the ``batch_size`` streams (or windows) and carries its own
streams' state; validation splits its streams or windows the same way and adds the sums over the
ranks. Metrics (``metrics.py``): loss in nats, bits per character, perplexity, on the ``dev``
split or on any UTF-8 text (``seqkit eval --input-file``), read with the run's vocabulary.
Decoding continues a prompt (``seqkit.decoding.Continuation`` over ``step.py``).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from seqkit import Option, SeqkitError, Task
from seqkit.analysis.gradient_probe import ProbeInputs
from seqkit.contracts import read_text_file
from seqkit.decoding import Continuation, recipe_decoder
from seqkit.plugins.tasks.common.vocabulary import Vocabulary
from seqkit.registry import get_registry
from seqkit.state import map_state

from .data import (
    build_vocabulary,
    cut_streams,
    dataset_text,
    random_starts,
    share_bounds,
    split_text,
    step_starts,
    stream_window,
    vocabulary_from_state,
    vocabulary_state,
    windows,
)
from .metrics import char_metrics, next_char_loss, stream_loss, window_loss
from .model import CharLanguageModel
from .step import CharStepModel, start_decoding


class CharLM(Continuation, Task):
    options = {
        "data": {
            "dataset": Option("python-docs", help="registered dataset name"),
            "val_fraction": Option(0.1, min=0.001, max=0.5, help="share of the text kept for validation"),
            "val_split": Option("blocks", choices=("blocks", "tail"),
                                help="blocks: evenly spaced blocks of the text, so validation reads "
                                     "like training; tail: the end of the text"),
            "lowercase": Option(False),
            "alphabet": Option("", help="keep only these characters (after lowercasing); '': all"),
            "unknown": Option("map", choices=("map", "drop"),
                              help="characters outside the vocabulary: map to an unknown symbol, or drop"),
            "eval_windows": Option(2000, min=1, help="validation windows scored when loss_on: last"),
        },
        "model": {
            "embedding_size": Option(64, min=0, help="0: one-hot inputs, as the lecture"),
        },
        "train": {
            "window": Option(100, min=1, help="characters per training window (BPTT length)"),
            "sampling": Option("stream", choices=("stream", "random")),
            "carry_state": Option(None, type=bool, help="carry the hidden state across windows; "
                                                        "stream only (default: true with stream, "
                                                        "false with random)"),
            "pool": Option(0, min=0, help="random only: draw this many windows once and cycle; 0: fresh"),
            "loss_on": Option("every", choices=("every", "last"),
                              help="score every position, or only the character after the window"),
            "sample_chars": Option(300, min=0, help="characters sampled at the end of a run, with "
                                                    "the decode section's strategy; 0: none"),
        },
        "decode": {
            "prompt": Option("The ", type=str, help="text the model continues"),
        },
    }

    @classmethod
    def check(cls, recipe: dict) -> list[str]:
        train = recipe["train"]
        if train["carry_state"] is None:  # the default follows the sampling mode
            train["carry_state"] = train["sampling"] == "stream"
        if train["carry_state"] and train["sampling"] != "stream":
            return ["train.carry_state: state is only carried between consecutive windows "
                    "(train.sampling: stream); remove it or set train.carry_state=false"]
        return []

    @classmethod
    def model_outline(cls, recipe: dict) -> CharLanguageModel:
        # The vocabulary is known once the data is read: an alphabet bounds it (plus the unknown
        # symbol); else 256, more than most texts use. Next to hidden_size it barely counts.
        alphabet = recipe["data"]["alphabet"]
        return _model(recipe, len(set(alphabet)) + 1 if alphabet else 256)

    def __init__(self, recipe: dict, device="cpu"):
        super().__init__(recipe, device)
        self.data, self.train_cfg = recipe["data"], recipe["train"]
        self.seed = recipe.get("seed", 0)
        self.vocab: Vocabulary | None = None
        self.carry = None  # hidden state carried into the next training window
        self.split_tokens: dict[str, torch.Tensor] = {}  # evaluation splits, read with self.vocab

    # -- data ------------------------------------------------------------------------------
    def prepare(self) -> None:
        train_text, dev_text = split_text(dataset_text(self.data), self.data["val_fraction"],
                                          self.data["val_split"])
        self.vocab = self._vocabulary(train_text)
        self.train_tokens = self.vocab.encode(train_text).to(self.device)
        self.split_tokens["dev"] = self.vocab.encode(dev_text).to(self.device)
        window, batch = self.train_cfg["window"], self.recipe["train"]["batch_size"]
        for split, tokens in (("training", self.train_tokens), ("validation", self.split_tokens["dev"])):
            if len(tokens) < window + 2:
                raise SeqkitError(f"data: the {split} split has {len(tokens)} characters, fewer than "
                                  f"train.window + 2 = {window + 2}; use more text or a smaller window")
        if self.train_cfg["sampling"] == "stream":
            streams, self.windows_per_epoch = cut_streams(self.train_tokens, batch, window)
            first, end, _ = self.own_streams()
            self.streams = streams[first:end]
        elif self.train_cfg["pool"]:
            self.pool = random_starts(len(self.train_tokens), window, self.train_cfg["pool"], self.seed).to(self.device)

    def own_streams(self) -> tuple[int, int, int]:
        """(first, end, of): this rank's block of the ``train.batch_size`` streams (or windows)."""
        batch = self.recipe["train"]["batch_size"]
        return share_bounds(batch, self.rank, self.world_size) + (batch,)

    def _vocabulary(self, train_text: str) -> Vocabulary:
        return build_vocabulary(train_text, self.data["lowercase"], self.data["alphabet"],
                                self.data["unknown"])

    def train_batch(self, step: int):
        """(inputs, targets, fresh): ``fresh`` says the carried state starts over (a new epoch).
        This rank's streams, or its block of the step's random windows."""
        window, batch = self.train_cfg["window"], self.recipe["train"]["batch_size"]
        if self.train_cfg["sampling"] == "stream":
            index = step % self.windows_per_epoch
            return (*stream_window(self.streams, index, window), index == 0)
        starts = step_starts(step, len(self.train_tokens), window, batch, self.seed,
                             self.pool if self.train_cfg["pool"] else None)
        first, end, _ = self.own_streams()
        return (*windows(self.train_tokens, starts[first:end], window), True)

    # -- model, loss, metrics --------------------------------------------------------------
    def build_model(self) -> CharLanguageModel:
        return _model(self.recipe, len(self.vocab))

    def loss(self, model, batch):
        x, y, fresh = batch
        carry = self.train_cfg["carry_state"]
        states = None if (fresh or not carry) else self.carry
        total, count, states = window_loss(model, x, y, states, self.train_cfg["loss_on"] == "last")
        if carry:
            self.carry = map_state(torch.Tensor.detach, tuple(states))  # truncate the gradient here
        return total / count, count

    def load_split(self, split: str, path: str | Path | None = None) -> None:
        """The ``dev`` split (the held-out text: the dataset is read again, the training text is
        not encoded), or with ``path`` that UTF-8 file, read with the run's vocabulary: characters
        outside it are mapped or dropped as ``data.unknown`` says."""
        if path is None:
            where = "data: the dev split"
            train_text, text = split_text(dataset_text(self.data), self.data["val_fraction"],
                                          self.data["val_split"])
            if vocabulary_state(self._vocabulary(train_text)) != vocabulary_state(self.vocab):
                raise SeqkitError("data: the data has changed since this run trained (its vocabulary "
                                  "differs), so its dev split is not the text it validated on; "
                                  "score a file with --input-file FILE")
        else:
            where, text = str(path), read_text_file(Path(path))
            if not text:
                raise SeqkitError(f"{path}: the file is empty; give UTF-8 text to score")
        tokens = self.vocab.encode(text)
        need = self.train_cfg["window"] + 1  # one window and the character after it
        if len(tokens) < need:
            raise SeqkitError(f"{where}: {len(tokens)} characters as the model reads them, fewer "
                              f"than train.window + 1 = {need} to score; give more text")
        self.split_tokens[split] = tokens.to(self.device)

    def evaluate(self, model, split: str = "dev", decoder=None) -> dict[str, float]:
        """Loss in nats, bits per character and perplexity of ``split``'s characters, each given
        the ones before it. ``decoder`` is never set: no strategy applies (see
        ``eval_strategy_problem``)."""
        tokens, ranks = self.split_tokens[split], (self.rank, self.world_size)
        if self.train_cfg["loss_on"] == "last":
            nats = next_char_loss(model, tokens, self.train_cfg["window"], self.data["eval_windows"], *ranks)
        else:
            nats = stream_loss(model, tokens, self.train_cfg["window"],
                               self.recipe["train"]["batch_size"], self.train_cfg["carry_state"], *ranks)
        return char_metrics(nats)

    def gradient_probe(self, model, length: int, batch: int) -> ProbeInputs:
        """``batch`` windows of ``length`` dev characters, evenly spaced; the loss is that of the
        character after each window."""
        self.load_split("dev")
        tokens = self.split_tokens["dev"]
        if len(tokens) < length + 1:
            raise SeqkitError(f"--length: the dev split has {len(tokens)} characters, too few for "
                              f"{length} steps and the character after them; probe fewer steps")
        starts = torch.linspace(0, len(tokens) - length - 1, batch, device=tokens.device).long()
        x, y = windows(tokens, starts, length)
        rnn = model.recurrent
        inputs = model.embed(x).detach()
        return ProbeInputs(rnn.step, rnn.initial_states(batch, device=inputs.device, dtype=inputs.dtype),
                           inputs, lambda h: F.cross_entropy(model.head(h), y[:, -1], reduction="none"))

    def eval_strategy_problem(self, strategy: str) -> str | None:
        return ("its metrics score each next character of the text given the true ones before it; "
                "nothing is decoded, so no strategy applies")

    def sample(self, model) -> str | None:
        """``train.sample_chars`` characters after ``decode.prompt``, by ``decode.strategy`` and its options."""
        length = self.train_cfg["sample_chars"]
        if not length:
            return None
        prompt = self.recipe["decode"]["prompt"]
        decoder = recipe_decoder(self.recipe)
        result = decoder.decode(self.step_model(model), *self.start_decoding(model, [prompt]), length)
        [prompt], _ = self.normalize_inputs([prompt])
        return prompt + self.detokenize(result[0].hypotheses[0].tokens)

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        # carry_streams: which of how many streams the carried state continues
        return {"vocab": vocabulary_state(self.vocab), "carry": self.carry,
                "carry_streams": list(self.own_streams())}

    def load_state_dict(self, state: dict) -> None:
        self.vocab = vocabulary_from_state(state["vocab"])
        carry = state.get("carry")
        if carry is not None:  # (checkpoints of one process before carry_streams: all of them)
            rows = _batch_size(carry)
            if tuple(state.get("carry_streams", (0, rows, rows))) != self.own_streams():
                carry = None  # another train.batch_size or number of processes: its streams are gone
        self.carry = None if carry is None else map_state(lambda t: t.to(self.device), tuple(carry))

    def check_resume(self, stored: dict) -> list[str]:
        if stored.get("vocab") != vocabulary_state(self.vocab):
            return ["the data has changed since this run started (its vocabulary differs); start "
                    "a new run instead of resuming"]
        return []

    # -- decoding --------------------------------------------------------------------------
    def step_model(self, model) -> CharStepModel:
        return CharStepModel(model)

    def start_decoding(self, model, inputs: list[str]):
        return start_decoding(model, self.vocab, inputs, self.device)

    def normalize_inputs(self, inputs: list[str]) -> tuple[list[str], str | None]:
        return self.vocab.read(inputs)

    def detokenize(self, ids: list[int]) -> str:
        return self.vocab.decode(ids)


def _batch_size(state) -> int:
    """Rows of a (nested tuple) state: every leaf is batch first."""
    while not isinstance(state, torch.Tensor):
        state = state[0]
    return state.shape[0]


def _model(recipe: dict, vocab_size: int) -> CharLanguageModel:
    model = recipe["model"]
    cell = get_registry().get("cell", model["cell"])
    return CharLanguageModel(vocab_size, model["embedding_size"], cell, model["hidden_size"],
                             model["layers"], model["dropout"], **model["cell_options"])
