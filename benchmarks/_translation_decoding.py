"""The decoding sections of benchmarks/translation.py: a trained G2P model on the test words.

seqkit decodes as ``seqkit eval`` does (``translation.output.decode_examples``: sources gathered
in batches of about one length, the encoder once per batch, then the decoder plugin).

* greedy: seqkit's ``greedy`` decoder beside the batched greedy loop a user writes
  (``HandSeq2Seq.greedy``) with the same weights, on the very batches seqkit decodes (gathered
  beforehand, outside its time). Their outputs must be identical; the ratio is words/s, seqkit's
  over the hand-written loop's.
* beam: seqkit's ``beam`` (beam size 5) beside its ``greedy`` on the same words, as a time ratio.
* exact: ``exact`` with ``search: branch_and_bound`` on test words one at a time: the share it
  proves exact within ``max_prefixes``, its time per word and the prefixes it expands.

Each strategy's word error rate says how trained the model is; the ratios are what is measured.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks._hand_seq2seq import HandSeq2Seq
from benchmarks._hand_training import train_for
from benchmarks._report import paired_rounds
from seqkit.decoding import build_decoder
from seqkit.plugins.tasks.common.flat_sequences import as_long
from seqkit.plugins.tasks.common.length_batches import plan_batches
from seqkit.plugins.tasks.translation.output import DECODE_BATCH, decode_examples

GREEDY_TARGET = 0.9  # issue 11: seqkit's batched greedy decoding at least 0.9x the hand-written loop's words/s
BEAM_TARGET = 3.0  # issue 11: beam 5 at most 3x greedy's time on the same inputs
BEAM_SIZE = 5


@dataclass
class Trained:
    task: object  # a translation task holding its test split
    model: torch.nn.Module
    how: str  # where the weights come from, for the report


def train_here(task, seconds: float) -> Trained:
    """The task's model trained for ``seconds`` on its batches (recipes/g2p.yaml's learning rate,
    warm-up and clipping, a cosine decay over the time budget)."""
    torch.manual_seed(0)
    model = task.build_model()
    train = task.train_cfg
    done = train_for(model, lambda step: task.loss(model, task.train_batch(step)), seconds, train["lr"],
                     train["warmup_steps"], train["clip_grad_norm"])
    epochs = done.steps / len(task.train_plan)
    size = task.model_cfg
    return Trained(task, model, f"trained here for {done.seconds:.0f} s: {done.steps} steps of "
                                f"{train['batch_size']} words ({epochs:.2f} epochs), bi-LSTM "
                                f"{size['encoder']['layers']}x{size['hidden_size']}, LSTM "
                                f"{size['decoder']['hidden_size']}")


def chosen_examples(trained: Trained, limit: int | None) -> torch.Tensor:
    """Ids of the test examples decoded: all of them, or ``limit`` evenly spaced."""
    total = len(trained.task.references["test"])
    if limit is None or limit >= total:
        return torch.arange(total)
    return torch.linspace(0, total - 1, limit).round().long().unique()


def seqkit_decoding(trained: Trained, examples: torch.Tensor, strategy: str, options: dict):
    """A call that decodes ``examples`` as ``seqkit eval`` does: their ``DecodeResult``s."""
    decoder, encoded = build_decoder(strategy, options), trained.task.splits["test"]
    return lambda: decode_examples(trained.task, trained.model, encoded, examples, decoder)


def hand_greedy(trained: Trained, examples: torch.Tensor):
    """A call that decodes ``examples`` with the hand-written loop and seqkit's weights, in the
    batches ``decode_examples`` makes (gathered here, once): each example's output ids."""
    hand, split = HandSeq2Seq.like(trained.model), trained.task.splits["test"]
    pairs = np.asarray(split.first_pairs)[examples.numpy()]
    host_lengths = np.asarray(split.source.lengths)[pairs].tolist()
    batches = []
    for rows in plan_batches(host_lengths, DECODE_BATCH):
        source, lengths = split.source.gather(pairs[rows], max(host_lengths[i] for i in rows))
        device = trained.task.device
        batches.append((rows, as_long(source, device), as_long(lengths, device)))
    length = trained.task.recipe["decode"]["length"]

    def decode() -> list[list[int]]:
        outputs = [None] * len(host_lengths)
        for rows, source, lengths in batches:
            for row, output in zip(rows, hand.greedy(source, lengths, length)):
                outputs[row] = output
        return outputs
    return decode


def word_error_rate(trained: Trained, examples: torch.Tensor, results: list) -> float:
    return trained.task.score("test", examples, results)["word_error_rate"]


def greedy_section(trained: Trained, repeats: int, limit: int | None) -> dict:
    examples = chosen_examples(trained, limit)
    contenders = {"seqkit": seqkit_decoding(trained, examples, "greedy", {}), "hand": hand_greedy(trained, examples)}
    results, hand_outputs = contenders["seqkit"](), contenders["hand"]()
    times = paired_rounds(contenders, repeats)
    ratio = statistics.median(h / s for s, h in zip(times["seqkit"], times["hand"]))
    words = len(examples)
    return dict(words=words, batch=DECODE_BATCH, ratio=ratio, target=GREEDY_TARGET,
                identical=[r.hypotheses[0].tokens for r in results] == hand_outputs,
                words_per_s={c: words / statistics.median(t) for c, t in times.items()},
                status="ok" if ratio >= GREEDY_TARGET else "MISSED",
                wer=word_error_rate(trained, examples, results))


def beam_section(trained: Trained, repeats: int, limit: int | None) -> dict:
    examples = chosen_examples(trained, limit)
    contenders = {"greedy": seqkit_decoding(trained, examples, "greedy", {}),
                  "beam": seqkit_decoding(trained, examples, "beam", {"beam_size": BEAM_SIZE})}
    wer = {name: word_error_rate(trained, examples, call()) for name, call in contenders.items()}
    times = paired_rounds(contenders, repeats)
    ratio = statistics.median(b / g for g, b in zip(times["greedy"], times["beam"]))
    return dict(words=len(examples), beam_size=BEAM_SIZE, ratio=ratio, target=BEAM_TARGET, wer=wer,
                ms={c: 1e3 * statistics.median(t) for c, t in times.items()},
                status="ok" if ratio <= BEAM_TARGET else "MISSED")


def exact_section(trained: Trained, words: int, max_prefixes: int) -> dict:
    """Branch and bound on ``words`` test words (evenly spaced), each decoded alone and timed
    from gathering its source to its answer."""
    examples = chosen_examples(trained, words)
    decoder = build_decoder("exact", {"search": "branch_and_bound", "max_prefixes": max_prefixes})
    seconds, results = [], []
    for example in examples.split(1):
        start = time.perf_counter()
        [result] = decode_examples(trained.task, trained.model, trained.task.splits["test"], example, decoder)
        seconds.append(time.perf_counter() - start)
        results.append(result)
    prefixes = [r.extras["prefixes"] for r in results]
    return dict(words=len(examples), max_prefixes=max_prefixes,
                proven=sum(r.extras["proven"] for r in results) / len(results),
                median_ms=1e3 * statistics.median(seconds), p90_ms=1e3 * statistics.quantiles(seconds, n=10)[-1],
                median_prefixes=statistics.median(prefixes), most_prefixes=max(prefixes),
                wer=word_error_rate(trained, examples, results))
