"""The tagging task's parts beside what a user writes by hand in torch, same process, as ratios.

    python -m benchmarks.tagging [--quick] [--repeats N] [--threads N] [--json] [--no-write]

Section "crf": ``LinearChainCRF.viterbi`` and ``log_partition`` (forward, and forward+backward)
on a batch of 256 sentences of 30 tokens with 20 tags, against a straightforward batched Viterbi
and forward algorithm in torch, each in two versions: one that handles padding (a ``torch.where``
on the length mask every step) and one that assumes every sentence is full length. A ratio is
the faster hand-written version's time over seqkit's, the median of per-round ratios (the
contenders run back to back, their order rotating between rounds), so a busy shared CPU skews
both sides alike. Both answers are checked to agree before anything is timed.

Section "step" (``_tagging_step``): one training step of the ``tagging`` task as a run takes it
(the batch gathered, loss, backward, gradient clipping, Adam) beside a hand-written torch bi-LSTM
tagger trained on the same batches, with a softmax and with a CRF output, on word batches
(32 sentences, vocabulary 10,000) and character batches (32 x 224-256 characters).
"""
from __future__ import annotations

import json
import statistics

import torch

from benchmarks._hand_crf import hand_log_partition, hand_viterbi
from benchmarks._report import argument_parser, machine, paired_rounds, write_section
from benchmarks._tagging_step import STEP_DESCRIPTION, STEP_TARGET, render_steps, step_section
from seqkit.plugins.tasks.tagging.crf import LinearChainCRF

CRF_SIZE = dict(batch=256, time=30, tags=20)
QUICK_CRF_SIZE = dict(batch=8, time=6, tags=5)
VITERBI_TARGET = 1.0  # issue 10: seqkit's Viterbi at least as fast as the hand-written one


def crf_contenders(crf, emissions, lengths):
    """name -> {contender -> zero-argument call}, and whether seqkit and the hand-written
    versions agree on this input."""
    parameters = (crf.transitions, crf.start_transitions, crf.end_transitions)

    def backward(log_partition):
        def run():
            leaf = emissions.detach().requires_grad_()
            log_partition(leaf).sum().backward()
        return run

    seqkit_lp = lambda e: crf.log_partition(e, lengths)  # noqa: E731
    hand_lp = {padded: (lambda e, padded=padded: hand_log_partition(e, lengths, *parameters, padded))
               for padded in (True, False)}
    contenders = {
        "viterbi": {"seqkit": lambda: crf.viterbi(emissions, lengths),
                    "hand padded": lambda: hand_viterbi(emissions, lengths, *parameters),
                    "hand full-length": lambda: hand_viterbi(emissions, lengths, *parameters, padded=False)},
        "log_partition": {"seqkit": lambda: seqkit_lp(emissions),
                          "hand padded": lambda: hand_lp[True](emissions),
                          "hand full-length": lambda: hand_lp[False](emissions)},
        "log_partition + backward": {"seqkit": backward(seqkit_lp), "hand padded": backward(hand_lp[True]),
                                     "hand full-length": backward(hand_lp[False])},
    }
    with torch.no_grad():
        tags, scores = crf.viterbi(emissions, lengths)
        log_z = crf.log_partition(emissions, lengths)
        agree = {"viterbi": all(torch.equal(tags, hand[0]) and torch.allclose(scores, hand[1])
                                for hand in (hand_viterbi(emissions, lengths, *parameters, padded)
                                             for padded in (True, False))),
                 "log_partition": all(torch.allclose(log_z, hand_lp[padded](emissions))
                                      for padded in (True, False))}
    gradients = [torch.autograd.grad(log_partition(leaf).sum(), leaf)[0]
                 for log_partition in (seqkit_lp, hand_lp[True], hand_lp[False])
                 for leaf in [emissions.detach().requires_grad_()]]
    # The gradients are marginals; float32 rounding of log-sums in the hundreds moves them by ~3e-5.
    agree["log_partition + backward"] = all(torch.allclose(gradients[0], g, atol=1e-4) for g in gradients[1:])
    return contenders, agree


def crf_section(quick: bool, repeats: int) -> list[dict]:
    """One row per operation: median milliseconds of each contender and the paired ratio."""
    size = QUICK_CRF_SIZE if quick else CRF_SIZE
    torch.manual_seed(0)
    crf = LinearChainCRF(size["tags"])
    with torch.no_grad():  # trained-looking parameters: the zero initialisation makes ties
        for parameter in crf.parameters():
            parameter.normal_()
    emissions = 3 * torch.randn(size["batch"], size["time"], size["tags"])
    lengths = torch.full((size["batch"],), size["time"])  # every sentence full length, as the issue sets
    contenders, agree = crf_contenders(crf, emissions, lengths)
    rows = []
    for name, calls in contenders.items():
        needs_grad = name.endswith("backward")
        with torch.inference_mode(not needs_grad):
            times = paired_rounds(calls, repeats)
        baseline = min(("hand padded", "hand full-length"), key=lambda c: statistics.median(times[c]))
        ratio = statistics.median(b / s for b, s in zip(times[baseline], times["seqkit"]))
        target = VITERBI_TARGET if name == "viterbi" else None
        rows.append(dict(name=name, size=size, agree=agree[name], baseline=baseline, ratio=ratio,
                         target=target, ms={c: 1e3 * statistics.median(t) for c, t in times.items()},
                         status=None if target is None else "ok" if ratio >= target else "MISSED"))
    return rows


def render_crf(rows: list[dict], repeats: int) -> str:
    from rich.console import Console
    from rich.table import Table

    size = rows[0]["size"]
    header = ["operation", "seqkit ms", "hand padded ms", "hand full-length ms", "ratio", "target", "same answer"]
    table = Table(title=f"LinearChainCRF, batch {size['batch']}, length {size['time']}, {size['tags']} tags, "
                        f"median of {repeats} rounds")
    for column in header:
        table.add_column(column)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["name"], *(f"{r['ms'][c]:.2f}" for c in ("seqkit", "hand padded", "hand full-length")),
                 f"{r['ratio']:.2f}x", "" if r["target"] is None else f"≥{r['target']:.2f}x {r['status']}",
                 "yes" if r["agree"] else "NO"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=160).print(table)
    return "\n".join(lines)


def main(argv=None):
    parser = argument_parser(__doc__, "tiny sizes, three rounds (smoke run)", "rounds per measurement",
                             "these loops are")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON, no table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 21)
    crf_rows = crf_section(args.quick, repeats)
    step_rows = step_section(args.quick, repeats)
    if args.json:
        print(json.dumps({"machine": machine(), "threads": args.threads, "repeats": repeats,
                          "crf": crf_rows, "step": step_rows}, indent=2))
        return
    markdown = render_crf(crf_rows, repeats)
    steps_markdown = render_steps(step_rows, repeats)
    if args.no_write or args.quick:
        return
    size = crf_rows[0]["size"]
    write_section("tagging-crf", f"## Tagging: CRF (`python -m benchmarks.tagging`)\n\nMachine: {machine()}\n\n"
                                 f"Batch {size['batch']}, length {size['time']}, {size['tags']} tags, "
                                 f"median ms of {repeats} rounds; ratio = the faster hand-written "
                                 f"version's time / seqkit's (median of per-round ratios).\n\n{markdown}")
    write_section("tagging-step", f"## Tagging: training step (`python -m benchmarks.tagging`)\n\n"
                                  f"Machine: {machine()}\n\n{STEP_DESCRIPTION}\n\n"
                                  f"Median ms per step of {repeats} rounds; ratio = the faster hand-written "
                                  f"version's time / seqkit's (median of per-round ratios), so the target "
                                  f"≥{STEP_TARGET:.3f}x is seqkit taking at most 1.05x the hand-written "
                                  f"time.\n\n{steps_markdown}")


if __name__ == "__main__":
    main()
