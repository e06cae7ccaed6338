"""``translation``: an encoder–decoder from source sequences to target sequences (the lecture's
12.3.2), by default grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary.

The data is any dataset that returns a ``ParallelCorpus`` (``cmudict``: a word's spelling to its
phones or its stress pattern; ``pairs``: the user's ``source<TAB>target`` files). The model is
``Seq2SeqModel`` (model.py): the recipe's cell reads the source (``model.cell``, ``hidden_size``,
``layers``, ``dropout``, ``cell_options``, with ``model.encoder`` for what only the encoder has),
a bridge starts the decoder (``model.bridge``), and the decoder (its own cell and sizes under
``model.decoder``) emits the target with ``model.attention``.

Training: token cross-entropy with ``train.label_smoothing`` over batches of pairs of similar
length (data.py), a pure function of the step; with several processes each rank takes every N-th
pair of the step's batch, and validation gives each rank every N-th batch of the loss and every
N-th source to decode, then scores the outputs of all ranks together. Validation: the loss over
every dev pair, and the word and token error rates of the dev sources decoded greedily
(``train.eval_size`` of them, evenly spaced; 0: all), plus BLEU and chrF for text (metrics.py).
At the end of a run, and in ``seqkit eval``, the test split is decoded with the recipe's
``decode:`` strategy (output.py).
"""
from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import torch

from seqkit import Option, SeqkitError, Task
from seqkit.contracts.parallel_corpus import ParallelCorpus
from seqkit.decoding import recipe_decoder
from seqkit.distributed import all_reduce_sum, gather_to_all
from seqkit.options import check_options
from seqkit.plugins.tasks.common.dataset_splits import load_corpus, read_split
from seqkit.plugins.tasks.common.length_batches import plan_batches
from seqkit.plugins.tasks.common.vocabulary import PADDING, UNKNOWN, Vocabulary
from seqkit.recipe import cell_options_of
from seqkit.registry import get_registry

from . import output as translation_output
from .bridge import BRIDGES
from .data import EncodedPairs, PairPlan, encode_pairs
from .metrics import (
    RAPIDFUZZ,
    SACREBLEU,
    TranslationCounts,
    bleu_and_chrf,
    installed,
    not_installed,
)
from .model import ATTENTIONS, Seq2SeqModel
from .step import TranslationStepModel

START, END = "<s>", "</s>"
TARGET_SPECIALS = (PADDING, UNKNOWN, START, END)  # ids 0-3, as model.py numbers them
EVAL_BATCH_FACTOR = 4  # evaluation batches hold this many times the training batch (no gradients)
METRICS = ("loss", "word_error_rate", "token_error_rate", "bleu", "chrf")

ENCODER_OPTIONS = {
    "bidirectional": Option(True, help="read the source in both directions"),
    "embedding_size": Option(64, min=1, help="features of each source token's embedding"),
    "layers": Option(None, type=int, min=1, help="default: model.layers"),
    "dropout": Option(None, type=float, min=0.0, max=0.99,
                      help="on the embeddings and between layers; default: model.dropout"),
}
DECODER_OPTIONS = {
    "cell": Option(None, type=str, help="registered cell name; default: model.cell"),
    "hidden_size": Option(0, min=0, help="0: the encoder's output size (hidden_size x directions)"),
    "layers": Option(None, type=int, min=1, help="default: model.layers"),
    "dropout": Option(None, type=float, min=0.0, max=0.99,
                      help="on its inputs, between layers and before the output; default: model.dropout"),
    "embedding_size": Option(64, min=1, help="features of the previous target token's embedding"),
    "cell_options": Option(None, type=dict, help="keyword arguments of the decoder's cell; default: "
                                                 "model.cell_options when the cell is model.cell"),
}


class Translation(Task):
    eval_splits = ("dev", "test")  # test where the dataset has one (load_split says when not)
    options = {
        "data": {
            "dataset": Option("cmudict", help="a registered translation dataset (cmudict, pairs)"),
        },
        "model": {
            "encoder": Option({}, type=dict, help="the encoder's own keys: bidirectional, "
                                                  "embedding_size, layers, dropout"),
            "decoder": Option({}, type=dict, help="the decoder's own keys: cell, hidden_size, layers, "
                                                  "dropout, embedding_size, cell_options"),
            "bridge": Option("linear", choices=BRIDGES,
                             help="the decoder's initial state from the encoder's final states"),
            "attention": Option("general", choices=ATTENTIONS,
                                help="none: the fixed context C; dot, general (Luong), additive (Bahdanau)"),
            "input_feeding": Option(None, type=bool, help="feed the previous attentional vector; "
                                                          "default: on with attention"),
            "attention_size": Option(0, min=0, help="additive attention's features; 0: the decoder's size"),
        },
        "train": {
            "batch_tokens": Option(0, min=0, help="also bound each batch to this many padded tokens "
                                                  "of its longer side; 0: batch_size pairs"),
            "label_smoothing": Option(0.0, min=0.0, max=1.0, help="mix each target with the uniform "
                                                                  "distribution over the symbols"),
            "eval_size": Option(2000, min=0, help="dev sources decoded at each validation, evenly "
                                                  "spaced; 0: all"),
            "best_metric": Option("word_error_rate", choices=METRICS,
                                  help="the validation metric checkpoints/best.pt keeps the best of"),
        },
    }

    @classmethod
    def check(cls, recipe: dict) -> list[str]:
        """Validates ``model.encoder`` and ``model.decoder`` (and the decoder's cell and its
        options) and fills in their defaults, so the resolved recipe says every size; and that
        the packages its metrics import are installed."""
        model, problems = recipe["model"], _missing_packages(recipe)
        encoder, found = check_options(model["encoder"], ENCODER_OPTIONS, "model.encoder")
        problems += found
        decoder, found = check_options(model["decoder"], DECODER_OPTIONS, "model.decoder")
        problems += found
        if problems:
            return problems
        for side in (encoder, decoder):
            side["layers"] = model["layers"] if side["layers"] is None else side["layers"]
            side["dropout"] = model["dropout"] if side["dropout"] is None else side["dropout"]
        same_cell = decoder["cell"] in (None, model["cell"])
        decoder["cell"] = decoder["cell"] or model["cell"]
        registry = get_registry()
        if decoder["cell"] not in registry.names("cell"):
            known = registry.names("cell")
            return [f"model.decoder.cell: unknown cell '{decoder['cell']}'; registered: {', '.join(known)}"]
        if decoder["cell_options"] is None:
            decoder["cell_options"] = dict(model["cell_options"]) if same_cell else {}
        decoder["cell_options"], found = check_options(
            decoder["cell_options"], cell_options_of(registry.get("cell", decoder["cell"])),
            "model.decoder.cell_options")
        problems += found
        model["encoder"], model["decoder"] = encoder, decoder
        if model["attention"] == "none" and model["input_feeding"]:
            problems.append("model.input_feeding: feeds the previous attentional vector back, so it "
                            "needs attention; set model.attention (dot, general, additive) or drop it")
        if model["attention"] != "additive" and model["attention_size"]:
            problems.append("model.attention_size: only additive attention has its own size; remove "
                            "it or set model.attention=additive")
        if not problems:
            try:  # the bridge's size rules (last) and the rest, from the model itself
                _model(recipe, 8, 8, device="meta")
            except ValueError as exc:
                problems.append(f"model.bridge: {exc}" if "bridge=" in str(exc) else f"model: {exc}")
        return problems

    @classmethod
    def model_outline(cls, recipe: dict) -> Seq2SeqModel:
        # Vocabularies are known once the data is read; a few hundred symbols bound most G2P and
        # character data, and next to the recurrent layers they barely count.
        return _model(recipe, 300, 300)

    def __init__(self, recipe: dict, device="cpu"):
        super().__init__(recipe, device)
        self.data, self.train_cfg, self.model_cfg = recipe["data"], recipe["train"], recipe["model"]
        self.seed = recipe.get("seed", 0)
        self.source_tokens = self.target_tokens = "char"
        self.text = False
        self.lowercase = False  # the training sources hold no capital letters: inputs are lowercased
        self.source_symbols: Vocabulary | None = None
        self.target_symbols: Vocabulary | None = None
        self.splits: dict[str, EncodedPairs] = {}
        self.references: dict[str, list] = {}  # per split, per example: its references as scored
        self.decoded: dict[str, tuple] = {}  # per split: (example ids, DecodeResults) of the last evaluate
        self._epoch_order: tuple[int, torch.Tensor] | None = None

    @property
    def best_metric(self) -> tuple[str, str]:
        metric = self.train_cfg["best_metric"]
        return metric, "max" if metric in ("bleu", "chrf") else "min"

    # -- data ------------------------------------------------------------------------------
    def prepare(self) -> None:
        corpus = self._corpus()
        train = corpus.splits["train"]
        if not corpus.splits.get("dev"):
            raise SeqkitError(f"data.dataset: '{self.data['dataset']}' gave no dev examples to "
                              f"validate on; give a dev split (pairs: data.dev)")
        self.source_tokens, self.target_tokens, self.text = corpus.source_tokens, corpus.target_tokens, corpus.text
        if self.text:  # every validation scores BLEU and chrF: no sacrebleu, say so now
            bleu_and_chrf(["a"], [["a"]])
        sources = [source for source, _ in train]
        self.source_symbols = Vocabulary.build(Counter(t for source in sources for t in source))
        self.target_symbols = Vocabulary.build(
            Counter(t for _, references in train for reference in references for t in reference),
            TARGET_SPECIALS)
        letters = [t for t in self.source_symbols.symbols[len(self.source_symbols.specials):] if t.isalpha()]
        self.lowercase = bool(letters) and all(t == t.lower() for t in letters)
        for split in ("train", "dev", "test"):
            if corpus.splits.get(split):
                self._hold(split, corpus.splits[split])
        train = self.train_cfg
        encoded = self.splits["train"]
        longer = [max(s, t) for s, t in zip(encoded.host_source_lengths, encoded.host_target_lengths)]
        self.train_plan = PairPlan(encoded, plan_batches(longer, train["batch_size"], train["batch_tokens"]))

    def _corpus(self) -> ParallelCorpus:
        return load_corpus(self.data, ParallelCorpus, "parallel examples; translation reads a translation "
                           "dataset such as cmudict or pairs", "examples")

    def _hold(self, split: str, examples: list) -> None:
        """Encode ``examples`` as ``split``, and keep their references for scoring."""
        self.splits[split] = encode_pairs(examples, self.source_symbols, self.target_symbols,
                                          self.source_tokens, self.target_tokens, self.device)
        if split != "train":
            self.references[split] = [references for _, references in examples]

    def train_batch(self, step: int):
        plan = self.train_plan
        epoch, index = divmod(step, len(plan))
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            self._epoch_order = (epoch, plan.order(self.seed, epoch))
        return plan.batch(int(self._epoch_order[1][index])).share(self.rank, self.world_size)

    def load_split(self, split: str, path: str | Path | None = None) -> None:
        """``dev`` or ``test`` of the run's dataset (read again), or with ``path`` one file in the
        dataset's format read whole with the run's options (``cmudict``: a dictionary file;
        ``pairs``: source<TAB>target lines)."""
        examples = read_split(self.data, split, path, "examples", "pairs: data.test names the test file")
        self._hold(split, examples)

    # -- model, loss, metrics --------------------------------------------------------------
    def build_model(self) -> Seq2SeqModel:
        return _model(self.recipe, len(self.source_symbols), len(self.target_symbols))

    def loss(self, model, batch):
        total, tokens = model.loss(batch.source, batch.source_lengths, batch.target, batch.target_lengths,
                                   self.train_cfg["label_smoothing"])
        if not batch.counted:  # an empty share: the model ran, nothing counts
            return total * 0.0, 0
        count = int(tokens)
        return total / count, count

    def evaluate(self, model, split: str = "dev", decoder=None) -> dict[str, float]:
        """Loss (nats per target token, end symbols included, over every pair of ``split``), and
        the word and token error rates (BLEU and chrF for text) of its sources decoded by
        ``decoder`` (None: greedy on dev, the recipe's ``decode:`` strategy elsewhere; dev:
        ``train.eval_size`` sources, evenly spaced)."""
        encoded = self.splits[split]
        total, tokens = torch.zeros((), dtype=torch.float64, device=self.device), 0
        plan = self._eval_plan(encoded)
        for index in range(self.rank, len(plan), self.world_size):  # this rank's batches
            batch = plan.batch(index)
            log_likelihood = model.log_likelihood(batch.source, batch.source_lengths, batch.target,
                                                  batch.target_lengths)
            total -= log_likelihood.double().sum()
            tokens += int(batch.target_lengths.sum())
        if self.world_size > 1:  # every rank's sums: the split's
            total, tokens = all_reduce_sum(torch.stack([total, total.new_tensor(tokens)])).unbind()
        examples = self._decoded_examples(split)[self.rank::self.world_size]  # this rank's sources
        if decoder is None:  # validation decodes greedily; a held-out split as the recipe says
            decoder = get_registry().get("decoder", "greedy")() if split == "dev" else recipe_decoder(self.recipe)
        results = translation_output.decode_examples(self, model, encoded, examples, decoder)
        self.decoded[split] = (examples, results)
        return {"loss": float(total) / float(tokens), **self.score(split, examples, results)}

    def score(self, split: str, examples: torch.Tensor, results: list) -> dict[str, float]:
        """The error rates (and BLEU, chrF for text) of each example's best output in ``results``;
        with several processes, of every rank's examples and outputs together (BLEU is not a sum
        over examples, so the outputs themselves are gathered)."""
        outputs = [translation_output.scored(self, result.hypotheses[0].tokens) for result in results]
        if self.world_size > 1:
            ranks = gather_to_all((examples.tolist(), outputs))
            merged = sorted(((i, o) for ids, outs in ranks for i, o in zip(ids, outs)), key=lambda pair: pair[0])
            examples, outputs = torch.tensor([i for i, _ in merged]), [o for _, o in merged]
        references = [self.references[split][i] for i in examples.tolist()]
        counts = TranslationCounts()
        counts.update(outputs, references)
        metrics = counts.compute()
        if self.text:
            join = " ".join if self.target_tokens == "space" else "".join
            metrics.update(bleu_and_chrf([join(o) for o in outputs],
                                         [[join(r) for r in candidates] for candidates in references]))
        return metrics

    def _eval_plan(self, encoded: EncodedPairs) -> PairPlan:
        train = self.train_cfg
        longer = [max(s, t) for s, t in zip(encoded.host_source_lengths, encoded.host_target_lengths)]
        return PairPlan(encoded, plan_batches(longer, train["batch_size"] * EVAL_BATCH_FACTOR,
                                              train["batch_tokens"] * EVAL_BATCH_FACTOR))

    def _decoded_examples(self, split: str, limit: int = 0) -> torch.Tensor:
        """The examples of ``split`` decoded to score it: all of them, or ``limit`` (dev: the
        recipe's ``eval_size``) evenly spaced over the split."""
        total = len(self.references[split])
        limit = limit or (self.train_cfg["eval_size"] if split == "dev" else 0)
        if not limit or limit >= total:
            return torch.arange(total)
        return torch.linspace(0, total - 1, limit).round().long().unique()

    def eval_strategy_problem(self, strategy: str) -> str | None:
        return None

    def final_splits(self) -> tuple[str, ...]:
        return ("test",) if "test" in self.splits else ()

    def search_report(self, model, split: str, decoders: dict, limit: int = 0) -> dict:
        """Each decoder's outputs for ``split`` (``limit`` examples evenly spaced; 0: all), with
        their scores: what ``seqkit eval --search-report`` compares."""
        examples = self._decoded_examples(split, limit)
        encoded = self.splits[split]
        report = {}
        for name, decoder in decoders.items():
            results = translation_output.decode_examples(self, model, encoded, examples, decoder)
            report[name] = (results, self.score(split, examples, results))
        return {"inputs": len(examples), "end_token": TranslationStepModel.end_token, "strategies": report}

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"source_tokens": self.source_tokens, "target_tokens": self.target_tokens,
                "text": self.text, "lowercase": self.lowercase,
                "source_symbols": self.source_symbols.state_dict(),
                "target_symbols": self.target_symbols.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.source_tokens, self.target_tokens = state["source_tokens"], state["target_tokens"]
        self.text, self.lowercase = state["text"], state["lowercase"]
        self.source_symbols = Vocabulary.from_state_dict(state["source_symbols"])
        self.target_symbols = Vocabulary.from_state_dict(state["target_symbols"], TARGET_SPECIALS)

    def check_resume(self, stored: dict) -> list[str]:
        mine = self.state_dict()
        changed = [key for key in ("source_symbols", "target_symbols", "source_tokens", "target_tokens")
                   if stored.get(key) != mine[key]]
        if changed:
            return [f"the data has changed since this run started (its {changed[0].replace('_', ' ')} "
                    f"differ); start a new run instead of resuming"]
        return []

    # -- decoding --------------------------------------------------------------------------
    def step_model(self, model) -> TranslationStepModel:
        return TranslationStepModel(model)

    def normalize_inputs(self, inputs: list[str]) -> tuple[list[str], str | None]:
        return translation_output.normalize(self, inputs)

    def decode(self, model, inputs: list[str], decoder, length=None, progress=None) -> dict:
        return translation_output.decode(self, model, inputs, decoder, length, progress)

    def show_decoded(self, report: dict):
        return translation_output.show(report)

    def sample(self, model) -> str | None:
        """A few dev sources and their outputs by the recipe's decode strategy."""
        return translation_output.sample(self, model)


def _missing_packages(recipe: dict) -> list[str]:
    """The metrics' packages the run will import, looked for now: without one a run would
    train until its first validation and fail there. Each names the key that needs it."""
    problems = []
    if not installed(RAPIDFUZZ):  # every validation counts edits
        problems.append(f"task: translation scores its outputs with {not_installed(RAPIDFUZZ)}")
    if installed(SACREBLEU):
        return problems
    metric, dataset = recipe["train"]["best_metric"], recipe["data"]["dataset"]
    text_targets = getattr(get_registry().get("dataset", dataset), "text_targets", None)
    if metric in ("bleu", "chrf"):
        problems.append(f"train.best_metric: {metric} needs {not_installed(SACREBLEU)}")
    elif text_targets is not None and text_targets(recipe["data"]):
        problems.append(f"data.dataset: BLEU and chrF score {dataset}'s word-level targets and need "
                        f"{not_installed(SACREBLEU)}")
    return problems


def _model(recipe: dict, source_vocab_size: int, target_vocab_size: int, device=None) -> Seq2SeqModel:
    model, registry = recipe["model"], get_registry()
    encoder, decoder = model["encoder"], model["decoder"]
    with torch.device(device) if device else nullcontext():
        return Seq2SeqModel(
            source_vocab_size, target_vocab_size, registry.get("cell", model["cell"]),
            registry.get("cell", decoder["cell"]), model["hidden_size"], decoder["hidden_size"] or None,
            encoder["embedding_size"], decoder["embedding_size"], encoder["layers"], encoder["dropout"],
            encoder["bidirectional"], decoder["layers"], decoder["dropout"], model["bridge"],
            model["attention"], model["input_feeding"], model["attention_size"] or None,
            model["cell_options"], decoder["cell_options"])
