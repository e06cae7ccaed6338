"""The training-step section of benchmarks/tagging.py: one optimizer step of the ``tagging`` task,
as a run takes it, beside the bi-LSTM tagger a careful user writes in plain torch.

seqkit's side is the real path: a ``Tagging`` task built from a resolved recipe, its batches
gathered from the memory maps of its prepared corpus by ``task.train_batch(step)`` (only the
batch is copied to the device), and ``Trainer._optimizer_step`` (the trainer's own step:
``task.loss``, backward, gradient clipping, Adam, the schedule, the running loss). The data comes
from a synthetic tagging dataset registered in-process (random words or characters and tags,
sentence lengths drawn from a range), so the sizes are exact; it is prepared once into a small
corpus in the cache folder before anything is timed.

The hand-written side is ``nn.Embedding -> bidirectional nn.LSTM -> nn.Linear`` with
cross-entropy over the real tokens (softmax), or a batched CRF (gold-path score and the forward
algorithm, ``hand_log_partition``) on top (crf), trained by Adam with the same gradient clipping.
It handles padding in one of two ways, and the faster is the baseline: ``pack_padded_sequence``
into one bidirectional ``nn.LSTM``, or two unidirectional ``nn.LSTM``s, the second reading each
sentence reversed within its length (one gather each way). Both read the very batches seqkit
trains on, in step: every contender is called once per round, and the k-th call of each trains
on the batch of the same step. Before timing, the hand-written models get seqkit's weights and
must give the same loss, the same gradients, and the same weights after one optimizer step.
"""
from __future__ import annotations

import random
import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import seqkit
from benchmarks._hand_crf import hand_log_partition
from benchmarks._report import paired_rounds
from seqkit import Dataset, Option
from seqkit.contracts.tagged_corpus import TaggedCorpus
from seqkit.plugins.tasks.tagging.task import Tagging
from seqkit.recipe import resolve
from seqkit.registry import get_registry
from seqkit.training.progress import Silent
from seqkit.training.trainer import Trainer

DATASET = "benchmark-synthetic-tags"
STEP_TARGET = 1 / 1.05  # issue 10: a seqkit step takes at most 1.05x the hand-written one's time
OUTPUTS = ("softmax", "crf")
# level -> sizes: sentences per batch, batches in the training split, sentence lengths (inclusive
# range), vocabulary (with padding and unknown), embedding, hidden units per direction, tags
LEVELS = {
    "word": dict(batch=32, batches=20, lengths=(10, 40), vocab=10_000, embedding=64, hidden=128, tags=17),
    "char": dict(batch=32, batches=4, lengths=(224, 256), vocab=200, embedding=64, hidden=128, tags=7),
}
QUICK_LEVELS = {
    "word": dict(batch=4, batches=3, lengths=(3, 8), vocab=40, embedding=6, hidden=8, tags=5),
    "char": dict(batch=4, batches=2, lengths=(10, 16), vocab=20, embedding=6, hidden=8, tags=3),
}
TRAIN = dict(optimizer="adam", lr=2e-3, clip_grad_norm=5.0)  # recipes/tagging_conll.yaml's
# Agreement asked of the hand-written side: loss, gradients and Adam's moments after one step
# (the clipped gradient and its square) relative to their largest entry; weights after the step
# within a quarter of the step size lr. Adam's first step moves an entry by lr * g / (|g| + eps),
# so an entry whose gradient is float32 noise near eps (1e-8) moves by up to ~0.1 lr either way;
# a different lr, or a missed step, still shows.
SAME = dict(loss=1e-5, gradient=1e-4, step=0.25)
STEP_DESCRIPTION = (
    f"One optimizer step (loss, backward, gradient clipping at {TRAIN['clip_grad_norm']:g}, Adam). "
    "seqkit: the `tagging` task from a resolved recipe (1-layer bi-LSTM, embedding 64, 128 units "
    "per direction; synthetic random sentences, batches of 32 planned by length), the batch of "
    "each step gathered by `task.train_batch` (in seqkit's time), stepped by the trainer's own "
    "`Trainer._optimizer_step`. Hand-written: `nn.Embedding` -> bidirectional `nn.LSTM` over "
    "`pack_padded_sequence` (packed), or two `nn.LSTM`s, the second reading each sentence "
    "reversed within its length (reversed) -> `nn.Linear` -> cross-entropy over the real tokens, "
    "or a batched CRF (gold score and the forward algorithm); Adam and the same clipping, handed "
    "the very batches seqkit gathered. Before timing, each hand-written model gets seqkit's "
    "weights and must give the same loss, gradients, Adam moments and weights after one step "
    "(same answer).")


class SyntheticTags(Dataset):
    """Random sentences: every word of the vocabulary (or character of the alphabet) appears in
    training, the rest drawn from a Zipf distribution; tags uniform; lengths uniform in a range."""

    options = {
        "level": Option("word", choices=("word", "char")),
        "sentences": Option(64, min=1, help="training sentences"),
        "vocab": Option(100, min=3, help="distinct training tokens, padding and unknown included"),
        "tags": Option(5, min=2),
        "min_length": Option(5, min=1),
        "max_length": Option(10, min=1),
        "seed": Option(0, min=0),
    }

    def load(self) -> TaggedCorpus:
        c = self.config
        rng = random.Random(c["seed"])
        symbols = ([f"w{i}" for i in range(c["vocab"] - 2)] if c["level"] == "word"
                   else [chr(0x100 + i) for i in range(c["vocab"] - 2)])  # no clash with padding/unknown
        tags = [f"T{i}" for i in range(c["tags"])]
        lengths = [rng.randint(c["min_length"], c["max_length"]) for _ in range(c["sentences"] + 4)]
        if sum(lengths[:c["sentences"]]) < len(symbols):
            raise ValueError(f"{c['sentences']} sentences are too few to hold {len(symbols)} tokens")
        stream = rng.sample(symbols, len(symbols))  # each once, then Zipf
        stream += rng.choices(symbols, weights=[1 / (i + 1) for i in range(len(symbols))],
                              k=sum(lengths) - len(stream))
        sentences, at = [], 0
        for n in lengths:
            tokens = stream[at:at + n]
            at += n
            sentences.append(("".join(tokens) if c["level"] == "char" else tokens, rng.choices(tags, k=n)))
        return TaggedCorpus(c["level"], {"train": sentences[:c["sentences"]], "dev": sentences[c["sentences"]:]},
                            tuple(tags))


class _SyntheticTagsPlugin:
    @seqkit.hookimpl
    def register_datasets(self, register):
        register(DATASET, SyntheticTags)


def synthetic_task(output: str, level: str, size: dict, run_dir: Path) -> Tagging:
    """A prepared ``Tagging`` task over the synthetic dataset, from a resolved recipe."""
    registry = get_registry()
    if DATASET not in registry.plugins:
        registry.add(_SyntheticTagsPlugin(), DATASET, source="benchmarks")
    recipe = {"task": "tagging", "seed": 0, "device": "cpu", "output": str(run_dir),
              "data": {"dataset": DATASET, "level": level, "sentences": size["batch"] * size["batches"],
                       "vocab": size["vocab"], "tags": size["tags"], "min_length": size["lengths"][0],
                       "max_length": size["lengths"][1]},
              "model": {"cell": "lstm", "output": output, "hidden_size": size["hidden"], "layers": 1,
                        "embedding_size": size["embedding"], "dropout": 0.0, "bidirectional": True},
              "train": {"steps": 1_000_000, "batch_size": size["batch"], **TRAIN}}
    task = Tagging(resolve(recipe, registry))
    task.prepare()
    return task


class HandTagger(nn.Module):
    """The bi-LSTM tagger a careful user writes in torch; ``packed`` picks how it skips padding."""

    def __init__(self, vocab: int, tags: int, embedding: int, hidden: int, crf: bool, packed: bool):
        super().__init__()
        self.packed = packed
        self.embedding = nn.Embedding(vocab, embedding, padding_idx=0)
        if packed:
            self.lstm = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        else:
            self.forward_lstm = nn.LSTM(embedding, hidden, batch_first=True)
            self.backward_lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.head = nn.Linear(2 * hidden, tags)
        self.crf = crf
        if crf:
            self.transitions = nn.Parameter(torch.zeros(tags, tags))
            self.start = nn.Parameter(torch.zeros(tags))
            self.end = nn.Parameter(torch.zeros(tags))

    def seqkit_names(self) -> dict[str, str]:
        """This model's parameter names -> the seqkit ``TaggerModel``'s, for the same weights."""
        lstm = ({"lstm.{}_l0": 0, "lstm.{}_l0_reverse": 1} if self.packed
                else {"forward_lstm.{}_l0": 0, "backward_lstm.{}_l0": 1})
        names = {"embedding.weight": "embedding.weight", "head.weight": "head.weight", "head.bias": "head.bias"}
        for pattern, cell in lstm.items():
            for weight in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                names[pattern.format(weight)] = f"encoder.cells.{cell}.{weight}"
        if self.crf:
            names.update(transitions="crf.transitions", start="crf.start_transitions", end="crf.end_transitions")
        return names

    def loss(self, tokens, tags, lengths) -> torch.Tensor:
        """Negative log-likelihood per real token."""
        mask = torch.arange(tokens.shape[1], device=tokens.device) < lengths.unsqueeze(1)
        emissions = self.head(self.encode(self.embedding(tokens), lengths))
        if self.crf:
            return (hand_log_partition(emissions, lengths, self.transitions, self.start, self.end)
                    - self.gold_score(emissions, tags, lengths, mask)).sum() / mask.sum()
        return F.cross_entropy(emissions.flatten(0, 1), tags.masked_fill(~mask, -100).flatten())

    def encode(self, x, lengths):
        if self.packed:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        inside = steps < lengths.unsqueeze(1)
        reverse = torch.where(inside, lengths.unsqueeze(1) - 1 - steps, steps).unsqueeze(2)
        forward, _ = self.forward_lstm(x)  # its outputs at padding are never read
        backward, _ = self.backward_lstm(x.gather(1, reverse.expand_as(x)))
        return torch.cat([forward, backward.gather(1, reverse.expand_as(backward))], dim=2)

    def gold_score(self, emissions, tags, lengths, mask):
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2).masked_fill(~mask, 0.0).sum(1)
        moves = self.transitions[tags[:, :-1], tags[:, 1:]].masked_fill(~mask[:, 1:], 0.0).sum(1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return self.start[tags[:, 0]] + emitted + moves + self.end[last]


class HandTraining:
    """A hand-written tagger with its Adam and clipping, stepping through given batches in order."""

    def __init__(self, model: HandTagger, batches: list):
        self.model, self.batches, self.step = model, batches, 0
        self.optimizer = torch.optim.Adam(model.parameters(), lr=TRAIN["lr"])

    def __call__(self) -> None:
        batch = self.batches[self.step]
        loss = self.model.loss(batch.tokens, batch.tags, batch.lengths)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), TRAIN["clip_grad_norm"])
        self.optimizer.step()
        self.step += 1


def _close(a: torch.Tensor, b: torch.Tensor, relative: float) -> bool:
    return bool((a - b).abs().max() <= relative * max(float(b.abs().max()), 1e-6))


def _same_step(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a - b).abs().max() <= SAME["step"] * TRAIN["lr"])


def agreement(task, model, trainer, hands: list[HandTraining]) -> bool:
    """Loss, gradients, and Adam's state and the weights after one optimizer step (step 0: it
    also warms up) equal between seqkit and each hand-written model, which start from seqkit's
    weights."""
    batch = task.train_batch(0)
    seqkit_params = dict(model.named_parameters())
    agree = True
    for hand in hands:
        names = hand.model.seqkit_names()
        agree &= sorted(names.values()) == sorted(seqkit_params)
        with torch.no_grad():
            for mine, theirs in names.items():
                hand.model.get_parameter(mine).copy_(seqkit_params[theirs])
    model.zero_grad(set_to_none=True)
    loss, _ = task.loss(model, batch)
    loss.backward()
    for hand in hands:
        hand.model.zero_grad(set_to_none=True)
        hand_loss = hand.model.loss(batch.tokens, batch.tags, batch.lengths)
        hand_loss.backward()
        agree &= _close(hand_loss.detach(), loss.detach(), SAME["loss"])
        agree &= all(_close(hand.model.get_parameter(mine).grad, seqkit_params[theirs].grad, SAME["gradient"])
                     for mine, theirs in hand.model.seqkit_names().items())
    trainer._optimizer_step([p for p in model.parameters() if p.requires_grad])
    for hand in hands:
        hand()
        for mine, theirs in hand.model.seqkit_names().items():
            ours, yours = hand.model.get_parameter(mine), seqkit_params[theirs]
            moments = hand.optimizer.state[ours], trainer.optimizer.state[yours]
            agree &= all(_close(moments[0][m], moments[1][m], SAME["gradient"]) for m in ("exp_avg", "exp_avg_sq"))
            agree &= _same_step(ours.detach(), yours.detach())
    return bool(agree)


def step_row(output: str, level: str, size: dict, repeats: int) -> dict:
    """One configuration: median ms per step of each contender and the paired ratio."""
    with tempfile.TemporaryDirectory(prefix="seqkit-tagging-step-") as folder:
        task = synthetic_task(output, level, size, Path(folder) / "run")
        torch.manual_seed(0)
        model = task.build_model()
        if model.crf is not None:
            with torch.no_grad():  # trained-looking transitions; zeros would hide a mismatch
                for parameter in model.crf.parameters():
                    parameter.normal_()
        trainer = Trainer(task.recipe, task, model, folder, Silent(1), torch.device("cpu"))
        batches = [task.train_batch(step) for step in range(repeats + 2)]  # check, warm-up, rounds
        hands = {name: HandTraining(HandTagger(len(task.words), len(task.tag_names), size["embedding"],
                                               size["hidden"], output == "crf", packed), batches)
                 for name, packed in (("hand packed", True), ("hand reversed", False))}
        agree = agreement(task, model, trainer, list(hands.values()))
        params = [p for p in model.parameters() if p.requires_grad]
        times = paired_rounds({"seqkit": lambda: trainer._optimizer_step(params), **hands}, repeats)
        in_step = trainer.counters.step == len(batches) and all(h.step == len(batches) for h in hands.values())
    baseline = min(hands, key=lambda name: statistics.median(times[name]))
    ratio = statistics.median(b / s for b, s in zip(times[baseline], times["seqkit"]))
    return dict(name=f"{output}, {level}", output=output, level=level, size=size, agree=agree and in_step,
                baseline=baseline, ratio=ratio, target=STEP_TARGET,
                ms={c: 1e3 * statistics.median(t) for c, t in times.items()},
                tokens_per_step=statistics.median(int(b.lengths.sum()) for b in batches[2:]),
                status="ok" if ratio >= STEP_TARGET else "MISSED")


def step_section(quick: bool, repeats: int) -> list[dict]:
    levels = QUICK_LEVELS if quick else LEVELS
    return [step_row(output, level, size, repeats) for level, size in levels.items() for output in OUTPUTS]


def render_steps(rows: list[dict], repeats: int) -> str:
    from rich.console import Console
    from rich.table import Table

    header = ["output, level", "sentences x lengths", "seqkit ms", "hand packed ms", "hand reversed ms", "ratio",
              "target", "same answer"]
    table = Table(title=f"tagging training step (loss, backward, clipping, Adam), median of {repeats} rounds")
    for column in header:
        table.add_column(column)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        s = r["size"]
        cells = [r["name"], f"{s['batch']} x {s['lengths'][0]}-{s['lengths'][1]}",
                 *(f"{r['ms'][c]:.2f}" for c in ("seqkit", "hand packed", "hand reversed")),
                 f"{r['ratio']:.3f}x", f"≥{r['target']:.3f}x {r['status']}", "yes" if r["agree"] else "NO"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=160).print(table)
    return "\n".join(lines)
