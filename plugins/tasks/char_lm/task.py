"""``char_lm``: next-character prediction, the lecture's speech generator (section 12.4).

Data is one token tensor per split on the device; a batch is index arithmetic on it:

* ``sampling: stream`` cuts the training text into ``batch_size`` parallel streams and reads
  consecutive ``window``-character slices of them, so the hidden state can be carried from one
  window to the next (truncated back-propagation through time).
* ``sampling: random`` draws ``batch_size`` random windows per step, or, with ``pool: N``,
  cycles through N windows drawn once (the lecture: 10,000 windows, full batch).

``loss_on: every`` scores every position of a window; ``loss_on: last`` only the character
after it (the lecture's procedure). With several processes each rank reads its own block of the
``batch_size`` streams (or windows) and carries its own streams' state; validation splits its
streams or windows the same way and adds the sums over the ranks. Metrics: loss in nats, bits per
character, perplexity, on
the ``dev`` split (the held-out ``data.val_fraction``) or on any UTF-8 text (``seqkit eval
--input-file``), read with the run's vocabulary.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.nn import functional as F

import seqkit
from seqkit import Option, SeqkitError, Task
from seqkit.analysis.gradient_probe import ProbeInputs
from seqkit.contracts import read_text_file
from seqkit.decoding import Continuation, recipe_decoder
from seqkit.distributed import all_reduce_sum
from seqkit.plugins.tasks.char_lm.data import build_vocabulary, vocabulary_from_state, vocabulary_state
from seqkit.plugins.tasks.char_lm.model import CharLanguageModel, CharStepModel
from seqkit.plugins.tasks.common.vocabulary import Vocabulary
from seqkit.registry import get_registry
from seqkit.state import map_state, where_state

_EVAL_SEED = 1234  # validation windows are the same for every run, whatever the training seed


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
            streams_len = len(self.train_tokens) // batch
            if streams_len < window + 1:
                raise SeqkitError(f"train.batch_size: {batch} streams of the {len(self.train_tokens)}-"
                                  f"character training split are shorter than train.window + 1; "
                                  f"lower train.batch_size or train.window")
            own = self.own_streams()
            self.streams = self.train_tokens[:batch * streams_len].view(batch, streams_len)[own[0]:own[1]]
            self.windows_per_epoch = (streams_len - 1) // window
        elif self.train_cfg["pool"]:
            self.pool = self._random_starts(len(self.train_tokens), self.train_cfg["pool"], self.seed)

    def own_streams(self) -> tuple[int, int, int]:
        """(first, end, of): this rank's block of the ``train.batch_size`` streams (or windows)."""
        batch = self.recipe["train"]["batch_size"]
        return share_bounds(batch, self.rank, self.world_size) + (batch,)

    def _vocabulary(self, train_text: str) -> Vocabulary:
        return build_vocabulary(train_text, self.data["lowercase"], self.data["alphabet"],
                                self.data["unknown"])

    def _random_starts(self, n_tokens: int, count: int, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        high = n_tokens - self.train_cfg["window"]  # a window plus its next character fits
        return torch.randint(0, high, (count,), generator=generator).to(self.device)

    def _windows(self, tokens: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (n, window) and the characters that follow each input position (n, window)."""
        offsets = torch.arange(self.train_cfg["window"] + 1, device=tokens.device)
        chunk = tokens[starts.unsqueeze(1) + offsets]
        return chunk[:, :-1], chunk[:, 1:]

    def train_batch(self, step: int):
        """(inputs, targets, fresh): ``fresh`` says the carried state starts over (a new epoch).
        This rank's streams, or its block of the step's random windows."""
        window, batch = self.train_cfg["window"], self.recipe["train"]["batch_size"]
        if self.train_cfg["sampling"] == "stream":
            index = step % self.windows_per_epoch
            start = index * window
            return (self.streams[:, start:start + window], self.streams[:, start + 1:start + window + 1],
                    index == 0)
        # a step's windows depend only on (seed, step): a resumed run reads the same ones
        step_seed = (self.seed * 1_000_003 + step) % 2**63
        if not self.train_cfg["pool"]:
            starts = self._random_starts(len(self.train_tokens), batch, step_seed)
        else:
            pool = len(self.pool)
            per_epoch = max(1, pool // batch)
            epoch, index = divmod(step, per_epoch)
            if batch >= pool:
                starts = self.pool  # full batch, as the lecture
            else:
                order = torch.randperm(pool, generator=torch.Generator().manual_seed(self.seed + epoch))
                starts = self.pool[order[index * batch:(index + 1) * batch].to(self.device)]
        first, end, _ = self.own_streams()
        x, y = self._windows(self.train_tokens, starts[first:end])
        return x, y, True

    # -- model, loss, metrics --------------------------------------------------------------
    def build_model(self) -> CharLanguageModel:
        return _model(self.recipe, len(self.vocab))

    def _score(self, model, x, y, states):
        """(summed loss in nats, count, final states) for every position, or for the last one."""
        outputs, states = model.features(x, states)
        if self.train_cfg["loss_on"] == "last":
            logits, targets = model.head(outputs[:, -1]), y[:, -1]
        else:
            logits, targets = model.head(outputs).flatten(0, 1), y.flatten()
        return F.cross_entropy(logits.float(), targets, reduction="sum"), targets.numel(), states

    def loss(self, model, batch):
        x, y, fresh = batch
        carry = self.train_cfg["carry_state"]
        states = None if (fresh or not carry) else self.carry
        total, count, states = self._score(model, x, y, states)
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
        chunk = tokens[starts.unsqueeze(1) + torch.arange(length + 1, device=tokens.device)]
        x, y = chunk[:, :-1], chunk[:, 1:]
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
        """Run each prompt but its last character in one batched pass (``lengths`` masks padding).

        Returns the state before each prompt's last character and that character, so the first
        decoder step predicts the first new one. A prompt that is empty (or empty once
        normalized) starts from the initial state with a newline, else a space, else symbol 0,
        as its last character: the model continues as if at the start of a line.
        """
        start = next((self.vocab.index[c] for c in ("\n", " ") if c in self.vocab.index), 0)
        encoded = [self.vocab.encode(text) for text in inputs]
        encoded = [ids if len(ids) else torch.tensor([start]) for ids in encoded]
        lengths = torch.tensor([len(ids) for ids in encoded])
        padded = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True).to(self.device)
        last = padded[torch.arange(len(encoded), device=self.device), (lengths - 1).to(self.device)]
        batch, prefix = len(encoded), int(lengths.max()) - 1
        initial = model.recurrent.initial_states(batch, device=self.device,
                                                 dtype=model.head.weight.dtype)
        if prefix == 0:
            return tuple(initial), last
        with torch.no_grad():
            # rows with a one-character prompt run one masked-out step, then take the initial state
            _, states = model.features(padded[:, :prefix], None, (lengths - 1).clamp(min=1))
        has_prefix = (lengths > 1).to(self.device)
        return tuple(where_state(has_prefix, s, s0) for s, s0 in zip(states, initial)), last

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


def dataset_text(data: dict) -> str:
    """The text of the dataset that the recipe's ``data`` section names, with its options."""
    dataset_cls = get_registry().get("dataset", data["dataset"])
    text = dataset_cls(**{k: data[k] for k in dataset_cls.options if k in data}).load()
    if not isinstance(text, str):
        raise SeqkitError(f"data.dataset: '{data['dataset']}' gives {type(text).__name__} data, not "
                          f"text; char_lm reads a text dataset such as python-docs, python-source or text")
    if not text:
        raise SeqkitError(f"data.dataset: '{data['dataset']}' returned no text")
    return text


def split_text(text: str, fraction: float, how: str, blocks: int = 100) -> tuple[str, str]:
    """(training text, validation text). ``blocks`` cuts the text into 100 equal blocks and
    holds out an evenly spaced ``fraction`` of them (every 10th for 0.1), so both splits cover
    every part of a text whose topics change along the way; ``tail`` holds out the end."""
    if how == "tail" or len(text) < blocks * 2:
        n_val = max(1, int(len(text) * fraction))
        return text[:-n_val], text[-n_val:]
    bounds = [len(text) * i // blocks for i in range(blocks + 1)]
    held_out = [int((i + 1) * fraction) > int(i * fraction) for i in range(blocks)]
    pieces = [text[bounds[i]:bounds[i + 1]] for i in range(blocks)]
    return ("".join(p for p, v in zip(pieces, held_out) if not v),
            "".join(p for p, v in zip(pieces, held_out) if v))


def char_metrics(nats: float) -> dict[str, float]:
    return {"loss": nats, "bits_per_char": nats / math.log(2), "perplexity": math.exp(min(nats, 700.0))}


def share_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """(first, end): ``rank``'s block of ``count`` rows split as evenly as can be over ``world_size``."""
    return rank * count // world_size, (rank + 1) * count // world_size


def _mean_over_ranks(total: float, n: int, device) -> float:
    """``total / n`` with both summed over every rank's share."""
    sums = all_reduce_sum(torch.tensor([total, n], dtype=torch.float64, device=device))
    return float(sums[0] / sums[1])


@torch.no_grad()
def stream_loss(model, tokens: torch.Tensor, window: int, streams: int, carry: bool,
                rank: int = 0, world_size: int = 1) -> float:
    """Mean loss in nats over every position of ``tokens``.

    With ``carry`` the text is cut into ``streams`` parallel streams read window after window
    with the state carried (each character sees all text before it in its stream); without,
    into independent windows that each start from the initial state, as in training. Under
    several processes ``rank`` scores its block of the streams (or windows) and the sums are
    added over the ranks.
    """
    if carry:
        streams = min(streams, len(tokens) - 1)  # a short text: fewer streams, none empty
        length = (len(tokens) - 1) // streams
        first, end = share_bounds(streams, rank, world_size)
        x = tokens[first * length:end * length].view(end - first, length)
        y = tokens[first * length + 1:end * length + 1].view(end - first, length)
        chunks = [(x[:, i:i + window], y[:, i:i + window]) for i in range(0, length, window)] if end > first else []
    else:
        count = (len(tokens) - 1) // window
        first, end = share_bounds(count, rank, world_size)
        x = tokens[first * window:end * window].view(end - first, window)
        y = tokens[first * window + 1:end * window + 1].view(end - first, window)
        rows = max(1, streams * 4)  # bound memory: a few training batches at a time
        chunks = [(x[i:i + rows], y[i:i + rows]) for i in range(0, end - first, rows)]
    total, n, states = 0.0, 0, None
    for xs, ys in chunks:
        logits, new_states = model(xs, states if carry else None)
        states = new_states
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), ys.flatten(), reduction="sum"))
        n += ys.numel()
    return _mean_over_ranks(total, n, tokens.device) if world_size > 1 else total / n


@torch.no_grad()
def next_char_loss(model, tokens: torch.Tensor, window: int, count: int, rank: int = 0,
                   world_size: int = 1) -> float:
    """Mean loss in nats of the character after each of ``count`` fixed random windows (the
    lecture's); under several processes ``rank`` scores its block of them."""
    generator = torch.Generator().manual_seed(_EVAL_SEED)
    starts = torch.randint(0, len(tokens) - window, (count,), generator=generator).to(tokens.device)
    first, end = share_bounds(count, rank, world_size)
    chunk = tokens[starts[first:end].unsqueeze(1) + torch.arange(window + 1, device=tokens.device)]
    total = 0.0
    if end > first:
        outputs, _ = model.features(chunk[:, :-1])
        total = float(F.cross_entropy(model.head(outputs[:, -1]).float(), chunk[:, -1], reduction="sum"))
    return _mean_over_ranks(total, end - first, tokens.device) if world_size > 1 else total / count


@seqkit.hookimpl
def register_tasks(register):
    register("char_lm", CharLM)
