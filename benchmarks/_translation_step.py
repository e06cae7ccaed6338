"""The training-step section of benchmarks/translation.py: one optimizer step of the
``translation`` task as a run takes it, beside the same attention seq2seq written in plain torch.

seqkit's side is the real path: the task of recipes/g2p.yaml (``_g2p_task``: the CMU dictionary,
stress stripped, words of about one length per batch), its batch of each step gathered on the
device by ``task.train_batch(step)``, and ``Trainer._optimizer_step`` (the trainer's own step:
``task.loss``, backward, gradient clipping, Adam, the schedule, the running loss). The
hand-written side (``_hand_seq2seq``) trains on the very batches seqkit gathered, in step: every
contender is called once per round, and the k-th call of each trains on the batch of step k,
with Adam and the same clipping. Before timing, the hand-written model gets seqkit's weights and
must give the same loss and gradients (dropout off for that check only).
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from benchmarks._g2p_task import g2p_task
from benchmarks._hand_seq2seq import HandSeq2Seq
from benchmarks._report import paired_rounds
from seqkit.training.progress import Silent
from seqkit.training.trainer import Trainer

STEP_TARGET = 1.05  # issue 11: a seqkit step takes at most 1.05x the hand-written one's time
# name -> sizes: hidden units per encoder direction, encoder layers, decoder hidden units,
# embeddings (source and target), words per batch
SIZES = {
    "issue": dict(hidden=256, layers=2, decoder_hidden=512, embedding=64, batch=256),  # the hand model
    "g2p recipe": dict(hidden=256, layers=1, decoder_hidden=256, embedding=64, batch=128),  # recipes/g2p.yaml
}
QUICK_SIZES = {"tiny": dict(hidden=8, layers=2, decoder_hidden=12, embedding=6, batch=8)}
SAME = dict(loss=1e-5, gradient=1e-4)  # relative to the largest entry: float32 summation order
STEP_DESCRIPTION = (
    "One optimizer step of the `translation` task with recipes/g2p.yaml's settings (CMU dictionary, "
    "stress stripped, batches of words of about one length; dropout 0.2, gradient clipping at 1, Adam; "
    "label smoothing off), the batch of each step gathered by `task.train_batch` (in seqkit's time), "
    "stepped by the trainer's own `Trainer._optimizer_step`. seqkit: `Seq2SeqModel` (LSTM cells, "
    "bidirectional encoder, linear bridge, general attention, input feeding). Hand-written: "
    "`nn.Embedding` -> bidirectional `nn.LSTM` over `pack_padded_sequence` -> linear bridge -> an "
    "`nn.LSTMCell` loop with Luong general attention, masked softmax and input feeding -> "
    "`F.cross_entropy(ignore_index=padding)`, Adam and the same clipping, handed the very batches "
    "seqkit gathered. Before timing the hand-written model gets seqkit's weights and must give the "
    "same loss and gradients (same answer).")


def hand_model(task, dropout: float) -> HandSeq2Seq:
    """A hand-written model of the task's sizes (its own weights)."""
    model, decoder = task.model_cfg, task.model_cfg["decoder"]
    return HandSeq2Seq(task.source_tokenizer.vocab_size, task.target_tokenizer.vocab_size,
                       model["encoder"]["embedding_size"], decoder["embedding_size"], model["hidden_size"],
                       model["encoder"]["layers"], decoder["hidden_size"], dropout)


def hand_loss(model: HandSeq2Seq, batch) -> torch.Tensor:
    return model.loss(batch.source, batch.source_lengths, batch.target)


class HandTraining:
    """A hand-written model with Adam and clipping, stepping through given batches in order."""

    def __init__(self, model: HandSeq2Seq, batches: list, lr: float, clip_grad_norm: float):
        self.model, self.batches, self.clip, self.step = model, batches, clip_grad_norm, 0
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def __call__(self) -> float:
        loss = hand_loss(self.model, self.batches[self.step])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.step += 1
        return loss.item()


def _close(a: torch.Tensor, b: torch.Tensor, relative: float) -> bool:
    return bool((a - b).abs().max() <= relative * max(float(b.abs().max()), 1e-6))


def agreement(task, seqkit, hand: HandSeq2Seq, batch) -> bool:
    """With seqkit's weights, the hand-written model gives the task's loss and seqkit's gradients."""
    hand.load_seqkit(seqkit)
    seqkit.eval(), hand.eval()
    seqkit.zero_grad(set_to_none=True), hand.zero_grad(set_to_none=True)
    losses = [task.loss(seqkit, batch)[0], hand_loss(hand, batch)]
    for loss in losses:
        loss.backward()
    seqkit.train(), hand.train()
    theirs = dict(seqkit.named_parameters())
    gradients = all(_close(hand.get_parameter(mine).grad, torch.cat([theirs[n].grad for n in names]),
                           SAME["gradient"])
                    for mine, names in hand.seqkit_parts(seqkit).items())
    return _close(losses[1].detach(), losses[0].detach(), SAME["loss"]) and gradients


def step_row(name: str, size: dict, repeats: int) -> dict:
    """One configuration: median ms per step of each contender and the paired ratio."""
    with tempfile.TemporaryDirectory(prefix="seqkit-translation-step-") as folder:
        task = g2p_task(size, Path(folder) / "run")
        torch.manual_seed(0)
        model = task.build_model()
        train = task.train_cfg
        trainer = Trainer(task.recipe, task, model, folder, Silent(1), torch.device("cpu"))
        batches = [task.train_batch(step) for step in range(repeats + 1)]  # warm-up, rounds
        hand = HandTraining(hand_model(task, task.model_cfg["dropout"]), batches, train["lr"],
                            train["clip_grad_norm"])
        agree = agreement(task, model, hand.model, batches[0])
        params = [p for p in model.parameters() if p.requires_grad]
        times = paired_rounds({"seqkit": lambda: trainer._optimizer_step(params), "hand": hand}, repeats)
        in_step = trainer.counters.step == hand.step == len(batches)
    ratio = statistics.median(s / h for s, h in zip(times["seqkit"], times["hand"]))
    return dict(name=name, size=size, agree=agree and in_step, ratio=ratio, target=STEP_TARGET,
                ms={c: 1e3 * statistics.median(t) for c, t in times.items()},
                target_tokens=statistics.median(int(b.target_lengths.sum()) for b in batches),
                status="ok" if ratio <= STEP_TARGET else "MISSED")


def step_section(quick: bool, repeats: int) -> list[dict]:
    sizes = QUICK_SIZES if quick else SIZES
    return [step_row(name, size, repeats) for name, size in sizes.items()]


def render_steps(rows: list[dict], repeats: int) -> str:
    from rich.console import Console
    from rich.table import Table

    header = ["sizes", "encoder", "decoder", "words x target tokens", "seqkit ms", "hand ms", "ratio",
              "target", "same answer"]
    table = Table(title=f"translation training step (loss, backward, clipping, Adam), median of {repeats} rounds")
    for column in header:
        table.add_column(column)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        s = r["size"]
        cells = [r["name"], f"bi-LSTM {s['layers']}x{s['hidden']}", f"LSTM {s['decoder_hidden']}",
                 f"{s['batch']} x {r['target_tokens']:.0f}", f"{r['ms']['seqkit']:.1f}", f"{r['ms']['hand']:.1f}",
                 f"{r['ratio']:.3f}x", f"≤{r['target']:.2f}x {r['status']}", "yes" if r["agree"] else "NO"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=160).print(table)
    return "\n".join(lines)
