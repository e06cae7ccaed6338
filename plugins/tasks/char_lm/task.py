"""``char_lm``: next-character prediction, the lecture's speech generator (section 12.4).

The task reads a text dataset, holds out ``data.val_fraction`` of it as the ``dev`` split, and
trains on windows of the rest. Its tokens are characters (the ``char`` tokenizer, the default) or
those of ``data.tokenizer`` (``bpe``, ``unigram``, ``whitespace``, any plugin's), trained on the
training text. The data is prepared once on disk (``corpus.py``) and read through memory maps:
batches are index arithmetic on one token array per split (``data.py``), and only a batch is
copied to the device. ``loss_on: every`` scores every position of a window;
``loss_on: last`` only the character after it (the lecture's procedure). With several processes
each rank reads its own block of the ``batch_size`` streams (or windows) and carries its own
streams' state; validation splits its streams or windows the same way and adds the sums over the
ranks. Metrics (``metrics.py``): loss in nats per token, bits per character of the text (whatever the
tokens, so character and subword models compare), perplexity, on the ``dev`` split or on any UTF-8
text (``seqkit eval --input-file``), read with the run's tokenizer.
Decoding continues a prompt (``seqkit.decoding.Continuation`` over ``step.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from seqkit import Option, SeqkitError, Task
from seqkit.analysis.gradient_probe import ProbeInputs
from seqkit.contracts import read_text_file
from seqkit.decoding import Continuation, recipe_decoder
from seqkit.registry import get_registry
from seqkit.state import map_state
from seqkit.tokenization import tokenizer_from_state, tokenizer_problems, tokenizer_state

from .corpus import corpus_summary, lm_corpus, tokenizer_spec
from .data import (
    cut_streams,
    random_starts,
    share_bounds,
    step_starts,
    stream_window,
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
            "tokenizer": Option(None, type=(str, dict),
                                help="a registered tokenizer, e.g. {name: bpe, vocab_size: 8000}; "
                                     "default: characters (char, with lowercase, alphabet, unknown above)"),
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
        data = recipe["data"]
        if data["tokenizer"] is None:
            return []
        defaults = cls.options["data"]
        return [f"data.{key}: sets char_lm's own character tokenizer; with data.tokenizer, give the "
                f"tokenizer's options there instead (e.g. data.tokenizer.{key})"
                for key in ("lowercase", "alphabet", "unknown") if data[key] != defaults[key].default
                ] + tokenizer_problems(data["tokenizer"], "data.tokenizer")

    @classmethod
    def model_outline(cls, recipe: dict) -> CharLanguageModel:
        # The vocabulary is known once the data is read: an alphabet bounds it (plus the unknown
        # symbol); else 256, more than most texts use. Next to hidden_size it barely counts.
        spec, alphabet = tokenizer_spec(recipe["data"]), recipe["data"]["alphabet"]
        if spec["name"] != "char":
            return _model(recipe, spec.get("vocab_size") or 256)
        return _model(recipe, len(set(alphabet)) + 1 if alphabet else 256)

    def __init__(self, recipe: dict, device="cpu"):
        super().__init__(recipe, device)
        self.data, self.train_cfg = recipe["data"], recipe["train"]
        self.seed = recipe.get("seed", 0)
        self.tokenizer = None  # trained with the data (prepare) or read from a checkpoint
        self.carry = None  # hidden state carried into the next training window
        # evaluation splits as token arrays (memory maps), and their characters per token
        self.split_tokens: dict[str, np.ndarray] = {}
        self.chars_per_token: dict[str, float] = {}

    # -- data ------------------------------------------------------------------------------
    def prepare_data(self) -> dict:
        """The corpus prepared on disk (or found there): its summary."""
        return corpus_summary(lm_corpus(self.data, self.train_cfg["window"], self.data_progress))

    def prepare(self) -> None:
        corpus = lm_corpus(self.data, self.train_cfg["window"], self.data_progress)
        self.tokenizer = tokenizer_from_state(corpus.meta["tokenizer"])
        self.train_tokens = corpus["train"]
        self._set_split("dev", corpus["dev"], corpus.meta["chars"]["dev"])
        window, batch = self.train_cfg["window"], self.recipe["train"]["batch_size"]
        for split, tokens in (("training", self.train_tokens), ("validation", self.split_tokens["dev"])):
            if len(tokens) < window + 2:
                raise SeqkitError(f"data: the {split} split has {len(tokens)} {self._unit}, fewer than "
                                  f"train.window + 2 = {window + 2}; use more text or a smaller window")
        if self.train_cfg["sampling"] == "stream":
            streams, self.windows_per_epoch = cut_streams(self.train_tokens, batch, window)
            first, end, _ = self.own_streams()
            self.streams = streams[first:end]
        elif self.train_cfg["pool"]:
            self.pool = random_starts(len(self.train_tokens), window, self.train_cfg["pool"], self.seed)

    @property
    def _unit(self) -> str:
        return "characters" if tokenizer_spec(self.data)["name"] == "char" else "tokens"

    def _set_split(self, split: str, tokens: np.ndarray, chars: int) -> None:
        self.split_tokens[split] = tokens
        self.chars_per_token[split] = chars / max(len(tokens), 1)

    def own_streams(self) -> tuple[int, int, int]:
        """(first, end, of): this rank's block of the ``train.batch_size`` streams (or windows)."""
        batch = self.recipe["train"]["batch_size"]
        return share_bounds(batch, self.rank, self.world_size) + (batch,)

    def train_batch(self, step: int):
        """(inputs, targets, fresh): ``fresh`` says the carried state starts over (a new epoch).
        This rank's streams, or its block of the step's random windows."""
        window, batch = self.train_cfg["window"], self.recipe["train"]["batch_size"]
        if self.train_cfg["sampling"] == "stream":
            index = step % self.windows_per_epoch
            return (*stream_window(self.streams, index, window, self.device), index == 0)
        starts = step_starts(step, len(self.train_tokens), window, batch, self.seed,
                             self.pool if self.train_cfg["pool"] else None)
        first, end, _ = self.own_streams()
        return (*windows(self.train_tokens, starts[first:end], window, self.device), True)

    # -- model, loss, metrics --------------------------------------------------------------
    def build_model(self) -> CharLanguageModel:
        return _model(self.recipe, self.tokenizer.vocab_size)

    def loss(self, model, batch):
        x, y, fresh = batch
        carry = self.train_cfg["carry_state"]
        states = None if (fresh or not carry) else self.carry
        total, count, states = window_loss(model, x, y, states, self.train_cfg["loss_on"] == "last")
        if carry:
            self.carry = map_state(torch.Tensor.detach, tuple(states))  # truncate the gradient here
        return total / count, count

    def load_split(self, split: str, path: str | Path | None = None) -> None:
        """The ``dev`` split (the prepared corpus, reused from disk or prepared again), or with
        ``path`` that UTF-8 file, read with the run's tokenizer: characters outside a character
        vocabulary are mapped or dropped as ``data.unknown`` says."""
        if path is None:
            where = "data: the dev split"
            corpus = lm_corpus(self.data, self.train_cfg["window"], self.data_progress)
            prepared_with = tokenizer_from_state(corpus.meta["tokenizer"])
            if self._checkpoint_tokenizer(prepared_with) != self._checkpoint_tokenizer():
                raise SeqkitError("data: the data has changed since this run trained (its vocabulary "
                                  "differs), so its dev split is not the text it validated on; "
                                  "score a file with --input-file FILE")
            tokens, chars = corpus["dev"], corpus.meta["chars"]["dev"]
        else:
            where, text = str(path), read_text_file(Path(path))
            if not text:
                raise SeqkitError(f"{path}: the file is empty; give UTF-8 text to score")
            tokens = self.tokenizer.encode(text)
            chars = len(self.tokenizer.decode(tokens))
        need = self.train_cfg["window"] + 1  # one window and the token after it
        if len(tokens) < need:
            raise SeqkitError(f"{where}: {len(tokens)} {self._unit} as the model reads them, fewer "
                              f"than train.window + 1 = {need} to score; give more text")
        self._set_split(split, tokens, chars)

    def evaluate(self, model, split: str = "dev", decoder=None) -> dict[str, float]:
        """Loss in nats per token, bits per character and perplexity of ``split``'s tokens, each
        given the ones before it. ``decoder`` is never set: no strategy applies (see
        ``eval_strategy_problem``)."""
        tokens, ranks = self.split_tokens[split], (self.rank, self.world_size)
        if self.train_cfg["loss_on"] == "last":
            nats = next_char_loss(model, tokens, self.train_cfg["window"], self.data["eval_windows"], *ranks,
                                  device=self.device)
        else:
            nats = stream_loss(model, tokens, self.train_cfg["window"], self.recipe["train"]["batch_size"],
                               self.train_cfg["carry_state"], *ranks, device=self.device)
        return char_metrics(nats, self.chars_per_token[split])

    def gradient_probe(self, model, length: int, batch: int) -> ProbeInputs:
        """``batch`` windows of ``length`` dev characters, evenly spaced; the loss is that of the
        character after each window."""
        self.load_split("dev")
        tokens = self.split_tokens["dev"]
        if len(tokens) < length + 1:
            raise SeqkitError(f"--length: the dev split has {len(tokens)} characters, too few for "
                              f"{length} steps and the character after them; probe fewer steps")
        starts = torch.linspace(0, len(tokens) - length - 1, batch).long()
        x, y = windows(tokens, starts, length, self.device)
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
        return {**self._checkpoint_tokenizer(), "carry": self.carry, "carry_streams": list(self.own_streams())}

    def _checkpoint_tokenizer(self, tokenizer=None) -> dict:
        """The tokenizer as checkpoints hold it: a character vocabulary as char_lm's checkpoints
        always have (``vocab``), any other as its registered name, options and state."""
        state = tokenizer_state(tokenizer or self.tokenizer)
        if state["name"] == "char" and not state["specials"]:
            return {"vocab": state["state"]}
        return {"tokenizer": state}

    def load_state_dict(self, state: dict) -> None:
        if "tokenizer" in state:
            self.tokenizer = tokenizer_from_state(state["tokenizer"])
        else:
            vocab = state["vocab"]
            self.tokenizer = tokenizer_from_state({"name": "char", "specials": [], "state": vocab, "options": {
                "lowercase": vocab["lowercase"], "alphabet": "", "unknown": vocab["unknown"]}})
        carry = state.get("carry")
        if carry is not None:  # (checkpoints of one process before carry_streams: all of them)
            rows = _batch_size(carry)
            if tuple(state.get("carry_streams", (0, rows, rows))) != self.own_streams():
                carry = None  # another train.batch_size or number of processes: its streams are gone
        self.carry = None if carry is None else map_state(lambda t: t.to(self.device), tuple(carry))

    def check_resume(self, stored: dict) -> list[str]:
        if {k: stored.get(k) for k in ("vocab", "tokenizer")} != {"vocab": None, "tokenizer": None,
                                                                    **self._checkpoint_tokenizer()}:
            return ["the data has changed since this run started (its vocabulary differs); start "
                    "a new run instead of resuming"]
        return []

    # -- decoding --------------------------------------------------------------------------
    def step_model(self, model) -> CharStepModel:
        return CharStepModel(model)

    def start_decoding(self, model, inputs: list[str]):
        return start_decoding(model, self.tokenizer, inputs, self.device)

    def normalize_inputs(self, inputs: list[str]) -> tuple[list[str], str | None]:
        return self.tokenizer.read(inputs)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)


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
