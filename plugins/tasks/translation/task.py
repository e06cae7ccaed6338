"""``translation``: an encoder–decoder from source sequences to target sequences (the lecture's
12.3.2), by default grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary.

The data is any dataset that returns a ``ParallelCorpus`` (``cmudict``: a word's spelling to its
phones or its stress pattern; ``pairs``: the user's ``source<TAB>target`` files), prepared once on
disk and read through memory maps (``corpus.py``): each side read by its tokenizer
(``data.source_tokenizer``, ``data.target_tokenizer``, or one joint ``data.tokenizer``; by default
the dataset's own characters or words, with the ids translation has always given). The model is
``Seq2SeqModel`` (model.py): the recipe's cell reads the source (``model.cell``, ``hidden_size``,
``layers``, ``dropout``, ``cell_options``, with ``model.encoder`` for what only the encoder has),
a bridge starts the decoder (``model.bridge``), and the decoder (its own cell and sizes under
``model.decoder``) emits the target with ``model.attention``.

Training: token cross-entropy with ``train.label_smoothing`` over batches of pairs of similar
length, gathered from the memory maps (data.py), a pure function of the step; with several
processes each rank takes every N-th pair of the step's batch, and validation gives each rank every
N-th batch of the loss and every N-th source to decode, then scores the outputs of all ranks
together. Validation: the loss over every dev pair, and the word and token error rates of the dev
sources decoded greedily (``train.eval_size`` of them, evenly spaced; 0: all), plus BLEU and chrF
for text (metrics.py), each output detokenized first, so that runs with different tokenizers
compare.
At the end of a run, and in ``seqkit eval``, the test split is decoded with the recipe's
``decode:`` strategy (output.py).
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch

from seqkit import Option, Task
from seqkit.decoding import recipe_decoder
from seqkit.distributed import all_reduce_sum, gather_to_all
from seqkit.options import check_options
from seqkit.plugins.tasks.common.dataset_splits import read_split
from seqkit.plugins.tasks.common.length_batches import plan_batches
from seqkit.recipe import cell_options_of
from seqkit.registry import get_registry
from seqkit.tokenization import tokenizer_from_state, tokenizer_problems, tokenizer_state

from . import output as translation_output
from .bridge import BRIDGES
from .corpus import (
    SIDES,
    TOKENIZER_KEYS,
    MemoryWriter,
    corpus_summary,
    corpus_tokenizers,
    level_tokenizer,
    prepared_if_there,
    specials_of,
    translation_corpus,
    write_split,
)
from .data import PairPlan, PairSplit
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

EVAL_BATCH_FACTOR = 4  # evaluation batches hold this many times the training batch (no gradients)
METRICS = ("loss", "word_error_rate", "token_error_rate", "bleu", "chrf")
OUTLINE_VOCABULARY = 300  # symbols assumed before the data is read, where no tokenizer says
# What a checkpoint holds of the tokenizers: a side read by its level as its symbols (as translation
# checkpoints always have), any other tokenizer as its state, a joint one once.
TOKENIZER_STATE = ("source_symbols", "target_symbols", "source_tokenizer", "target_tokenizer", "tokenizer")

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
            "source_tokenizer": Option(None, type=(str, dict),
                                       help="a registered tokenizer of the sources, e.g. {name: bpe, "
                                            "vocab_size: 8000}; default: the dataset's tokens (char: "
                                            "characters, space: words)"),
            "target_tokenizer": Option(None, type=(str, dict),
                                       help="a registered tokenizer of the targets; default: the "
                                            "dataset's tokens"),
            "tokenizer": Option(None, type=(str, dict),
                                help="one joint tokenizer of both sides, trained on sources and targets "
                                     "together (instead of source_tokenizer / target_tokenizer)"),
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
        model, problems = recipe["model"], _missing_packages(recipe) + _tokenizer_problems(recipe["data"])
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
        # character data, and next to the recurrent layers they barely count. A tokenizer's
        # vocab_size bounds its side.
        data = recipe["data"]
        joint = _outline_size(data["tokenizer"])
        return _model(recipe, joint or _outline_size(data["source_tokenizer"]) or OUTLINE_VOCABULARY,
                      joint or _outline_size(data["target_tokenizer"]) or OUTLINE_VOCABULARY)

    def __init__(self, recipe: dict, device="cpu"):
        super().__init__(recipe, device)
        self.data, self.train_cfg, self.model_cfg = recipe["data"], recipe["train"], recipe["model"]
        self.seed = recipe.get("seed", 0)
        self.source_tokens = self.target_tokens = "char"
        self.text = False
        self.lowercase = False  # the training sources hold no capital letters: inputs are lowercased
        # each side's tokenizer (one object for a joint one), trained with the data (prepare) or
        # read from a checkpoint; by_level: a side read by the dataset's own tokens (no tokenizer key)
        self.source_tokenizer = self.target_tokenizer = None
        self.by_level = {"source": True, "target": True}
        self.splits: dict[str, PairSplit] = {}
        self.references: dict[str, object] = {}  # per split, per example: its references as scored
        self.decoded: dict[str, tuple] = {}  # per split: (example ids, DecodeResults) of the last evaluate
        self._epoch_order: tuple[int, torch.Tensor] | None = None
        self._eval_plans: dict[str, PairPlan] = {}

    @property
    def best_metric(self) -> tuple[str, str]:
        metric = self.train_cfg["best_metric"]
        return metric, "max" if metric in ("bleu", "chrf") else "min"

    # -- data ------------------------------------------------------------------------------
    def prepare_data(self) -> dict:
        """The corpus prepared on disk (or found there): its summary."""
        return corpus_summary(translation_corpus(self.data, self.data_progress))

    def prepare(self) -> None:
        corpus = translation_corpus(self.data, self.data_progress)
        meta = corpus.meta
        self.source_tokens, self.target_tokens = meta["levels"]["source"], meta["levels"]["target"]
        self.text, self.lowercase = meta["text"], meta["lowercase"]
        if self.text:  # every validation scores BLEU and chrF: no sacrebleu, say so now
            bleu_and_chrf(["a"], [["a"]])
        tokenizers, self.by_level = corpus_tokenizers(meta)
        self.source_tokenizer, self.target_tokenizer = tokenizers["source"], tokenizers["target"]
        for split in meta["splits"]:
            self._hold(split, PairSplit(corpus, split, self.target_tokens))
        train, encoded = self.train_cfg, self.splits["train"]
        self.train_plan = PairPlan(encoded, plan_batches(encoded.longer_lengths(), train["batch_size"],
                                                         train["batch_tokens"]), self.device)

    def _hold(self, split: str, pairs: PairSplit) -> None:
        """Hold ``pairs`` as ``split``, and their references for scoring."""
        self.splits[split] = pairs
        self._eval_plans.pop(split, None)
        if pairs.references is not None:
            self.references[split] = pairs.references

    def train_batch(self, step: int):
        plan = self.train_plan
        epoch, index = divmod(step, len(plan))
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            self._epoch_order = (epoch, plan.order(self.seed, epoch))
        return plan.batch(int(self._epoch_order[1][index])).share(self.rank, self.world_size)

    def load_split(self, split: str, path: str | Path | None = None) -> None:
        """``dev`` or ``test`` of the run's dataset: from its prepared corpus where that is on disk and
        was prepared with the run's tokenizers, else the split read again and encoded with them; with
        ``path``, one file in the dataset's format read whole with the run's options (``cmudict``: a
        dictionary file; ``pairs``: source<TAB>target lines)."""
        if path is None:
            corpus = prepared_if_there(self.data)
            if corpus is not None and split in corpus.meta["splits"]:
                tokenizers, by_level = corpus_tokenizers(corpus.meta)
                if self._tokenizer_state(tokenizers["source"], tokenizers["target"], by_level) == \
                        self._tokenizer_state():
                    self._hold(split, PairSplit(corpus, split, self.target_tokens))
                    return
        examples = read_split(self.data, split, path, "examples", "pairs: data.test names the test file")
        writer = MemoryWriter()
        write_split(writer, split, examples, {"source": self.source_tokenizer, "target": self.target_tokenizer},
                    {"source": self.source_tokens, "target": self.target_tokens}, references=True)
        self._hold(split, PairSplit(writer.arrays(), split, self.target_tokens))

    # -- model, loss, metrics --------------------------------------------------------------
    def build_model(self) -> Seq2SeqModel:
        return _model(self.recipe, self.source_tokenizer.vocab_size, self.target_tokenizer.vocab_size)

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
        plan = self._eval_plan(split)
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

    def _eval_plan(self, split: str) -> PairPlan:
        """The batches of ``split``'s loss, planned once per split held."""
        if split not in self._eval_plans:
            train, pairs = self.train_cfg, self.splits[split]
            self._eval_plans[split] = PairPlan(pairs, plan_batches(pairs.longer_lengths(),
                                                                   train["batch_size"] * EVAL_BATCH_FACTOR,
                                                                   train["batch_tokens"] * EVAL_BATCH_FACTOR),
                                               self.device)
        return self._eval_plans[split]

    def _decoded_examples(self, split: str, limit: int = 0) -> torch.Tensor:
        """The examples of ``split`` decoded to score it: all of them, or ``limit`` (dev: the
        recipe's ``eval_size``) evenly spaced over the split."""
        total = self.splits[split].example_count
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
                "text": self.text, "lowercase": self.lowercase, **self._tokenizer_state()}

    def _tokenizer_state(self, source=None, target=None, by_level: dict | None = None) -> dict:
        """The tokenizers (the run's, or those given) as checkpoints hold them: a side read by its
        level as its list of symbols (``source_symbols``, ``target_symbols``: translation's format
        from before tokenizers), any other as ``source_tokenizer`` / ``target_tokenizer`` (its
        registered name, options and state), a joint one once as ``tokenizer``."""
        if source is None:
            source, target, by_level = self.source_tokenizer, self.target_tokenizer, self.by_level
        if source is target:
            return {"tokenizer": tokenizer_state(source)}
        return {(f"{side}_symbols" if by_level[side] else f"{side}_tokenizer"):
                (list(tok.symbols) if by_level[side] else tokenizer_state(tok))
                for side, tok in (("source", source), ("target", target))}

    def load_state_dict(self, state: dict) -> None:
        self.source_tokens, self.target_tokens = state["source_tokens"], state["target_tokens"]
        self.text, self.lowercase = state["text"], state["lowercase"]
        if "tokenizer" in state:
            self.source_tokenizer = self.target_tokenizer = tokenizer_from_state(state["tokenizer"])
            self.by_level = {"source": False, "target": False}
            return
        levels = {"source": self.source_tokens, "target": self.target_tokens}
        self.by_level = {side: f"{side}_tokenizer" not in state for side in SIDES}
        for side in SIDES:
            tok = (level_tokenizer(levels[side], specials_of(side), state[f"{side}_symbols"]) if self.by_level[side]
                   else tokenizer_from_state(state[f"{side}_tokenizer"]))
            setattr(self, f"{side}_tokenizer", tok)

    def check_resume(self, stored: dict) -> list[str]:
        mine = self.state_dict()
        changed = [key for key in ("source_tokens", "target_tokens", *TOKENIZER_STATE)
                   if stored.get(key) != mine.get(key)]
        if changed:
            what = changed[0].replace("_", " ")
            verb = "differ" if what.endswith(("symbols", "tokens")) else "differs"
            return [f"the data has changed since this run started (its {what} {verb}); start a new "
                    f"run instead of resuming"]
        return []

    # -- decoding --------------------------------------------------------------------------
    def step_model(self, model) -> TranslationStepModel:
        return TranslationStepModel(model)

    def normalize_inputs(self, inputs: list[str]) -> tuple[list[str], str | None]:
        return translation_output.normalize(self, inputs)

    def decode(self, model, inputs: list[str], decoder, length=None, progress=None) -> dict:
        return translation_output.decode(self, model, inputs, decoder, length, progress)

    def decode_details(self, model, inputs: list[str], decoder, length=None, progress=None) -> dict:
        """``decode``'s report with each input's ``source_tokens`` and each output's
        ``token_log_probs`` and (with attention) ``attention``, one per decoder step: the output's
        tokens, then its end symbol where it has one (``finished``)."""
        return translation_output.decode(self, model, inputs, decoder, length, progress, details=True)

    def detokenize(self, ids: list[int]) -> str:
        """Target ids as text, without the end symbol (``seqkit serve`` streams each token's text)."""
        return translation_output.output_text(self, ids)

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


def _tokenizer_problems(data: dict) -> list[str]:
    """One joint tokenizer or one per side, not both; and each tokenizer key as
    ``seqkit.tokenization.tokenizer_problems`` checks it."""
    problems = []
    sides = [key for key in ("source_tokenizer", "target_tokenizer") if data[key] is not None]
    if data["tokenizer"] is not None and sides:
        problems.append(f"data.tokenizer: one joint tokenizer reads both sides; remove it or data.{sides[0]} "
                        f"(data.source_tokenizer and data.target_tokenizer give each side its own)")
    for key in TOKENIZER_KEYS:
        if data[key] is not None:
            problems += tokenizer_problems(data[key], f"data.{key}")
    return problems


def _outline_size(spec) -> int | None:
    """The vocabulary a tokenizer spec asks for, where it says (``vocab_size``)."""
    return (spec.get("vocab_size") or None) if isinstance(spec, dict) else None


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
