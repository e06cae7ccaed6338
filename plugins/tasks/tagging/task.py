"""``tagging``: one tag per token (the lecture's section 12.3.1), with three output structures.

The data is any dataset that returns a ``TaggedCorpus`` (``python-tokens``: every character of the
standard library's code labelled with its token class; ``conll``: the user's CoNLL / CoNLL-U
files). The model (``TaggerModel``, model.py) is an embedding [+ each word's characters] read by
a (bidirectional) ``seqkit.Recurrent`` of the recipe's cell, then ``model.output``:

* ``softmax``: independent per-position classifiers, decoded by the per-position argmax (exact);
* ``crf``: a linear-chain CRF, decoded by Viterbi (exact), marginals by forward-backward;
* ``autoregressive``: a decoder RNN over the previous tag, decoded by any seqkit strategy
  (greedy by default; ``exact`` enumerates, where that is feasible).

The splits are prepared once on disk (corpus.py: the vocabularies as they always were, token ids
and tags as flat arrays) and read through memory maps; batches are sentences of similar length
(data.py), gathered on the host by index arithmetic and copied to the device, a pure function of
the step; with several processes each rank takes every N-th sentence of the step's batch, and
validation gives each rank every N-th batch of the split and adds the counts over the ranks.
Metrics (``TagCounts``, metrics.py): loss (nats per token), accuracy, macro-F1, accuracy on tokens
never seen in training, and span P/R/F1 for BIO/BIOES tags; per-tag tables at the end of a run and
in ``seqkit eval``.
Decoding and its display: output.py. The best checkpoint is the one with the highest span F1 for span tags, else the
highest accuracy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seqkit import Option, SeqkitError, Task
from seqkit.distributed import all_reduce_sum
from seqkit.plugins.tasks.common.dataset_splits import read_split
from seqkit.plugins.tasks.common.vocabulary import UNKNOWN_ID, Vocabulary
from seqkit.registry import get_registry

from . import output as tagging_output
from .corpus import corpus_summary, tagging_corpus
from .data import MAX_WORD_CHARS, BatchPlan, TaggedSplit, encode_split
from .metrics import SCHEMES, TagCounts
from .model import OUTPUTS, TaggerModel
from .step import TaggerStepModel

EVAL_BATCH_FACTOR = 4  # evaluation batches hold this many times the training batch (no gradients)
# Strategies that decode a softmax or crf tagger: its exact argmax (per position, or Viterbi) is
# both the greedy and the exact answer, and its marginals are exact.
EXACT_OUTPUT_STRATEGIES = ("greedy", "exact")


class Tagging(Task):
    eval_splits = ("dev", "test")  # test where the dataset has one (load_split says when not)
    options = {
        "data": {
            "dataset": Option("python-tokens", help="a registered tagging dataset (python-tokens, conll, roles)"),
            "scheme": Option("auto", choices=SCHEMES,
                             help="span scheme of the tags for span F1: auto detects bio / bioes; none"),
        },
        "model": {
            "embedding_size": Option(64, min=1, help="features of each token's embedding"),
            "output": Option("softmax", choices=OUTPUTS,
                             help="softmax: independent per position; crf: linear-chain CRF; "
                                  "autoregressive: a decoder RNN over the previous tag"),
            "bidirectional": Option(True, help="read each sentence in both directions"),
            "char_features": Option(0, min=0, help="word level: features of a character RNN over "
                                                   "each word, per direction; 0: off"),
            "char_embedding_size": Option(32, min=1, help="with char_features: per character"),
            "tag_embedding_size": Option(16, min=1, help="autoregressive: the previous tag's features"),
            "decoder_size": Option(0, min=0, help="autoregressive: decoder units; 0: hidden_size"),
        },
        "train": {
            "batch_tokens": Option(0, min=0, help="also bound each batch to this many padded tokens; "
                                                  "0: batch_size sentences"),
            "word_dropout": Option(0.0, min=0.0, max=1.0,
                                   help="probability that a token seen once in training reads as "
                                        "the unknown token, so that its embedding is trained"),
        },
    }

    @classmethod
    def check(cls, recipe: dict) -> list[str]:
        model, strategy, problems = recipe["model"], recipe["decode"]["strategy"], []
        if model["output"] != "autoregressive":
            unused = [k for k, v in (("decoder_size", 0), ("tag_embedding_size", 16)) if model[k] != v]
            if unused:
                problems.append(f"model.{unused[0]}: only the autoregressive output has a decoder; "
                                f"remove it or set model.output=autoregressive")
        # seqkit decode decodes with decode.strategy by default: refused now, not after training
        problem = strategy_problem(model["output"], strategy)
        if problem:
            problems.append(f"decode.strategy: '{strategy}' does not apply to "
                            f"model.output={model['output']}: {problem}")
        return problems

    @classmethod
    def model_outline(cls, recipe: dict) -> TaggerModel:
        # The vocabularies are known once the data is read: 50,000 words (or 256 characters) and
        # 50 tags bound most corpora; next to the recurrent layers they barely count.
        words = 50_000 if recipe["model"]["char_features"] else 256
        return _model(recipe, words, 50, 128)

    def __init__(self, recipe: dict, device="cpu"):
        super().__init__(recipe, device)
        self.data, self.train_cfg, self.model_cfg = recipe["data"], recipe["train"], recipe["model"]
        self.seed = recipe.get("seed", 0)
        self.level: str | None = None
        self.words: Vocabulary | None = None
        self.chars: Vocabulary | None = None
        self.tag_names: tuple[str, ...] = ()
        self.tag_styles: dict[str, str] = {}
        self.scheme = "none"
        self.splits: dict[str, TaggedSplit] = {}
        self.counts: dict[str, TagCounts] = {}  # of the last evaluation of each split
        self._epoch_order: tuple[int, torch.Tensor] | None = None

    @property
    def best_metric(self) -> tuple[str, str]:
        return ("span_f1", "max") if self.scheme != "none" else ("accuracy", "max")


    # -- data ------------------------------------------------------------------------------
    def prepare_data(self) -> dict:
        """The corpus prepared on disk (or found there): its summary."""
        return corpus_summary(self._prepared())

    def prepare(self) -> None:
        corpus = self._prepared()
        meta = corpus.meta
        self.level, self.tag_names = meta["level"], tuple(meta["tags"])
        self.tag_styles = dict(meta["tag_styles"])
        self.words = Vocabulary.from_state_dict(meta["words"])
        self.chars = Vocabulary.from_state_dict(meta["chars"]) if meta["chars"] else None
        self.scheme = TagCounts(self.tag_names, self.data["scheme"]).scheme
        self.splits = {split: TaggedSplit(corpus, split, self.chars is not None) for split in meta["splits"]}
        self._training_plan()
        self.rare = torch.from_numpy(np.asarray(corpus["word_counts"]) == 1).to(self.device)  # by id: seen once

    def _prepared(self):
        return tagging_corpus(self.data, bool(self.model_cfg["char_features"]), self.data_progress)

    def _encode(self, sentences) -> TaggedSplit:
        """Sentences read whole (a file to score), held in memory with the run's vocabularies."""
        tag_ids = {name: i for i, name in enumerate(self.tag_names)}
        return encode_split(sentences, self.level, self.words, tag_ids, self.chars, MAX_WORD_CHARS)

    def _training_plan(self) -> None:
        train = self.train_cfg
        self.train_plan = BatchPlan.of(self.splits["train"], train["batch_size"], train["batch_tokens"],
                                       device=self.device)

    def _eval_plan(self, split: str, same_length: bool = False) -> BatchPlan:
        train = self.train_cfg
        return BatchPlan.of(self.splits[split], train["batch_size"] * EVAL_BATCH_FACTOR,
                            train["batch_tokens"] * EVAL_BATCH_FACTOR, same_length, self.device)

    def train_batch(self, step: int):
        plan = self.train_plan
        epoch, index = divmod(step, len(plan))
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            self._epoch_order = (epoch, plan.order(self.seed, epoch))
        batch = plan.batch(int(self._epoch_order[1][index]))
        dropout = self.train_cfg["word_dropout"]
        if dropout:  # the draw depends only on (seed, step), as the batch does
            generator = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + step)
            draw = torch.rand(batch.tokens.shape, generator=generator, device=self.device)
            batch.tokens = batch.tokens.masked_fill(self.rare[batch.tokens] & (draw < dropout), UNKNOWN_ID)
        return batch.share(self.rank, self.world_size)

    # -- model, loss, metrics --------------------------------------------------------------
    def build_model(self) -> TaggerModel:
        return _model(self.recipe, len(self.words), len(self.tag_names), len(self.chars) if self.chars else 0)

    def loss(self, model, batch):
        total, tokens = model.loss(batch.tokens, batch.lengths, batch.tags, batch.chars)
        if not batch.counted:  # an empty share: the model ran, nothing counts
            return total * 0.0, 0
        count = int(tokens)
        return total / count, count

    def load_split(self, split: str, path: str | Path | None = None) -> None:
        """``dev`` or ``test`` of the run's dataset, from its prepared corpus (prepared if it is not
        on disk; read again and encoded in memory where its vocabularies are no longer the run's,
        its data having changed), or with ``path`` one labelled file in the dataset's format, read
        whole with the run's options (``conll``: its columns; ``python-tokens``: any ``.py`` file)
        and held in memory."""
        if path is None:
            corpus = self._prepared()
            if split in corpus.meta["splits"] and self._same_vocabularies(corpus.meta):
                self.splits[split] = TaggedSplit(corpus, split, self.chars is not None)
                return
        sentences = read_split(self.data, split, path, "sentences", "conll: data.test names the test file")
        self.splits[split] = self._encode(sentences)

    def _same_vocabularies(self, meta: dict) -> bool:
        """Whether a prepared corpus has this run's ids: its level, words, characters and tags."""
        return (meta["level"] == self.level and meta["words"] == self.words.symbols
                and meta["chars"] == (self.chars.symbols if self.chars else None)
                and tuple(meta["tags"]) == self.tag_names)

    def evaluate(self, model, split: str = "dev", decoder=None) -> dict[str, float]:
        """Loss (nats per token under teacher forcing), accuracy, macro-F1, unseen-token accuracy
        and span metrics of the predicted tags of ``split``: the model's own argmax (softmax, crf)
        or greedy tags (autoregressive), or ``decoder``'s best output (autoregressive)."""
        use_decoder = decoder is not None and model.output == "autoregressive"
        # one length per batch: a decoder then never steps past a sentence's end (exact would
        # enumerate the zero-probability continuations of the shorter ones)
        plan = self._eval_plan(split, same_length=use_decoder)
        counts = TagCounts(self.tag_names, self.scheme, self.device)
        total, tokens = torch.zeros((), dtype=torch.float64, device=self.device), 0
        for index in range(self.rank, len(plan), self.world_size):  # this rank's batches
            batch = plan.batch(index)
            log_likelihood, predicted = model.score_and_predict(batch.tokens, batch.lengths, batch.tags,
                                                                batch.chars, predict=not use_decoder)
            if use_decoder:
                predicted = tagging_output.decoded_tags(model, decoder, batch)
            total -= log_likelihood.double().sum()
            tokens += int(batch.lengths.sum())
            counts.update(batch.tags, predicted, batch.lengths, batch.tokens == UNKNOWN_ID)
        if self.world_size > 1:  # every rank's sums: the split's
            all_reduce_sum(counts.counts)
            total, tokens = all_reduce_sum(torch.stack([total, total.new_tensor(tokens)])).unbind()
        self.counts[split] = counts
        return {"loss": float(total) / float(tokens), **counts.compute()}

    def final_splits(self) -> tuple[str, ...]:
        return ("test",) if "test" in self.splits else ()

    def eval_strategy_problem(self, strategy: str) -> str | None:
        return strategy_problem(self.model_cfg["output"], strategy)

    def decode_strategy_problem(self, strategy: str) -> str | None:
        return strategy_problem(self.model_cfg["output"], strategy)

    def breakdown(self, split: str = "dev") -> dict[str, dict[str, dict[str, float]]]:
        counts = self.counts.get(split)
        if counts is None:
            return {}
        tables = {"per tag": counts.per_tag()}
        if self.scheme != "none":
            tables["per span type"] = counts.per_span_type()
        return tables

    # -- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"level": self.level, "words": self.words.state_dict(), "tags": list(self.tag_names),
                "chars": self.chars.state_dict() if self.chars else None, "scheme": self.scheme,
                "tag_styles": dict(self.tag_styles)}

    def load_state_dict(self, state: dict) -> None:
        self.level, self.scheme = state["level"], state["scheme"]
        self.words = Vocabulary.from_state_dict(state["words"])
        self.tag_names = tuple(state["tags"])
        self.chars = Vocabulary.from_state_dict(state["chars"]) if state["chars"] else None
        self.tag_styles = dict(state.get("tag_styles") or {})

    def check_resume(self, stored: dict) -> list[str]:
        mine = self.state_dict()
        changed = [key for key in ("words", "tags", "chars", "level") if stored.get(key) != mine[key]]
        if changed:
            return [f"the data has changed since this run started (its {changed[0]} differ); start a "
                    f"new run instead of resuming"]
        return []

    # -- decoding --------------------------------------------------------------------------
    def step_model(self, model) -> TaggerStepModel:
        if model.output != "autoregressive":
            raise SeqkitError(f"a {model.output} tagger is not decoded step by step")
        return TaggerStepModel(model)

    def normalize_inputs(self, inputs: list[str]) -> tuple[list[str], str | None]:
        return tagging_output.normalize(self, inputs)

    def decode(self, model, inputs: list[str], decoder, length=None, progress=None) -> dict:
        if length is not None:
            raise SeqkitError("decode.length: a tagger gives one tag per token of each input; it "
                              "takes no length")
        return tagging_output.decode(self, model, inputs, decoder, progress)

    def show_decoded(self, report: dict):
        return tagging_output.show(self, report)


def strategy_problem(output: str, strategy: str) -> str | None:
    """Why the decoding ``strategy`` does not apply to a tagger with ``model.output`` ``output``
    (for evaluating, decoding, and the recipe's ``decode.strategy``), or None."""
    if output == "autoregressive" or strategy in EXACT_OUTPUT_STRATEGIES:
        return None
    how = "its per-position argmax" if output == "softmax" else "Viterbi"
    return (f"a {output} tagger is decoded exactly by {how}, which greedy and exact both give; "
            f"search strategies apply to model.output=autoregressive")


def _model(recipe: dict, vocab_size: int, num_tags: int, char_vocab_size: int) -> TaggerModel:
    model = recipe["model"]
    cell = get_registry().get("cell", model["cell"])
    return TaggerModel(vocab_size, num_tags, cell, model["hidden_size"], model["embedding_size"],
                       model["layers"], model["dropout"], model["bidirectional"], model["output"],
                       char_vocab_size, model["char_features"], model["char_embedding_size"],
                       model["tag_embedding_size"], model["decoder_size"] or None, **model["cell_options"])
