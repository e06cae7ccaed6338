"""The translation task's training and decoding beside what a user writes by hand in torch, as ratios.

    python -m benchmarks.translation [--sections step,greedy,beam,exact] [--run DIR]
        [--train-seconds S] [--exact-words N] [--max-prefixes N] [--quick] [--repeats N]
        [--threads N] [--json] [--no-write]

Data: recipes/g2p.yaml's, the CMU Pronouncing Dictionary with stress stripped (pip install -e ".[g2p]").

Section "step" (``_translation_step``): one training step of the ``translation`` task as a run
takes it beside the same attention seq2seq in plain torch (``_hand_seq2seq``) on the same batches,
at the issue's sizes and the recipe's; target: at most 1.05x the hand-written time. The sections
below decode the test split with a trained model: the run directory ``--run`` names (its best
checkpoint; any translation run whose model the hand-written one can copy: LSTM cells,
bidirectional, general attention, input feeding, linear bridge, one decoder layer), or else the
recipe's model trained here for ``--train-seconds`` (the report says which).

Section "greedy": seqkit's batched greedy decoding, as ``seqkit eval`` runs it, against a
hand-written batched greedy loop with the same weights, identical outputs; target: at least 0.9x
its words/s. Section "beam": beam 5 against greedy on the same words; target: at most 3x greedy's
time. Section "exact": branch and bound on ``--exact-words`` test words, one at a time: the share
proven exact within ``--max-prefixes``, and the median time per word.

Every ratio is the median of per-round ratios, the contenders running back to back in an order
that rotates between rounds, so a busy shared CPU skews both sides alike.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from benchmarks._g2p_task import g2p_task
from benchmarks._hand_seq2seq import HandSeq2Seq
from benchmarks._report import argument_parser, machine, write_section
from benchmarks._translation_decoding import (
    DECODE_BATCH,
    Trained,
    beam_section,
    exact_section,
    greedy_section,
    train_here,
)
from benchmarks._translation_step import QUICK_SIZES, SIZES, STEP_DESCRIPTION, render_steps, step_section

SECTIONS = ("step", "greedy", "beam", "exact")
DECODING_SIZE = "g2p recipe"  # the model trained here when no --run is given
TRAIN_SECONDS, QUICK_TRAIN_SECONDS = 120, 2
QUICK_WORDS = 24  # test words the greedy and beam sections decode with --quick (else all)
EXACT = dict(words=200, max_prefixes=100_000)
QUICK_EXACT = dict(words=6, max_prefixes=1_000)


def load_trained(run_dir: str) -> Trained:
    """A translation run's best checkpoint on the CPU, with its dataset's test split."""
    from seqkit.training.run import load_run

    run = load_run(run_dir, device="cpu")
    run.task.load_split("test")
    return Trained(run.task, run.model, f"run {run_dir} (best checkpoint)")


def trained_here(quick: bool, seconds: float) -> Trained:
    with tempfile.TemporaryDirectory(prefix="seqkit-translation-") as folder:
        task = g2p_task(QUICK_SIZES["tiny"] if quick else SIZES[DECODING_SIZE], Path(folder) / "run")
        return train_here(task, seconds)


def render_decoding(report: dict) -> str:
    lines = [f"Model: {report['model']}."]
    if "greedy" in report:
        g = report["greedy"]
        lines.append(f"- greedy, {g['words']:,} words in batches of {g['batch']}: seqkit "
                     f"{g['words_per_s']['seqkit']:,.0f} words/s, hand-written loop "
                     f"{g['words_per_s']['hand']:,.0f} words/s: {g['ratio']:.3f}x (target ≥{g['target']:.1f}x: "
                     f"{g['status']}); identical outputs: {'yes' if g['identical'] else 'NO'}; WER {g['wer']:.1%}")
    if "beam" in report:
        b = report["beam"]
        lines.append(f"- beam {b['beam_size']} against greedy on the same {b['words']:,} words: "
                     f"{b['ms']['beam']:,.0f} ms against {b['ms']['greedy']:,.0f} ms: {b['ratio']:.2f}x "
                     f"(target ≤{b['target']:.0f}x: {b['status']}); WER {b['wer']['beam']:.1%} against "
                     f"{b['wer']['greedy']:.1%}")
    if "exact" in report:
        e = report["exact"]
        lines.append(f"- exact, branch and bound, {e['words']} test words one at a time, max_prefixes "
                     f"{e['max_prefixes']:,}: {e['proven']:.1%} proven exact; median {e['median_ms']:.1f} ms per "
                     f"word (90th percentile {e['p90_ms']:.1f} ms), median {e['median_prefixes']:,.0f} prefixes "
                     f"(most {e['most_prefixes']:,}); WER {e['wer']:.1%}")
    text = "\n".join(lines)
    print(text)
    return text


def main(argv=None):
    parser = argument_parser(__doc__, "tiny sizes, a few words, three rounds (smoke run)", "rounds per measurement",
                             "these loops are")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON, no table")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--run", help="a translation run directory to decode with (its test split); "
                                      "default: train recipes/g2p.yaml's model here first")
    parser.add_argument("--train-seconds", type=float, default=None,
                        help=f"without --run: seconds to train the decoding sections' model (default "
                             f"{TRAIN_SECONDS}; --quick {QUICK_TRAIN_SECONDS})")
    parser.add_argument("--exact-words", type=int, default=None,
                        help=f"test words branch and bound decodes (default {EXACT['words']}; --quick "
                             f"{QUICK_EXACT['words']})")
    parser.add_argument("--max-prefixes", type=int, default=None,
                        help=f"prefixes branch and bound may expand per word, exact's max_prefixes (default "
                             f"{EXACT['max_prefixes']:,}; --quick {QUICK_EXACT['max_prefixes']:,})")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        parser.error(f"--sections: unknown {', '.join(unknown) or 'nothing given'}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 11)
    report = {"machine": machine(), "threads": args.threads, "repeats": repeats, "sections": sections}
    if "step" in sections:
        report["step"] = step_section(args.quick, repeats)
    decoding = [s for s in sections if s != "step"]
    if decoding:
        seconds = args.train_seconds or (QUICK_TRAIN_SECONDS if args.quick else TRAIN_SECONDS)
        trained = load_trained(args.run) if args.run else trained_here(args.quick, seconds)
        report["model"] = trained.how
        if "greedy" in sections:
            try:
                HandSeq2Seq.like(trained.model)
            except ValueError as exc:  # a run of another architecture
                parser.error(f"--run {args.run}: {exc}; leave the greedy section out (--sections beam,exact)")
    words = QUICK_WORDS if args.quick else None
    if "greedy" in sections:
        report["greedy"] = greedy_section(trained, repeats, words)
    if "beam" in sections:
        report["beam"] = beam_section(trained, repeats, words)
    if "exact" in sections:
        exact = QUICK_EXACT if args.quick else EXACT
        report["exact"] = exact_section(trained, args.exact_words or exact["words"],
                                        args.max_prefixes or exact["max_prefixes"])
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if "step" in report:
        markdown = render_steps(report["step"], repeats)
        if not (args.no_write or args.quick):
            write_section("translation-step", f"## Translation: training step (`python -m benchmarks.translation`)"
                                              f"\n\nMachine: {machine()}\n\n{STEP_DESCRIPTION}\n\nMedian ms per "
                                              f"step of {repeats} rounds; ratio = seqkit's time / the hand-written "
                                              f"one's (median of per-round ratios).\n\n{markdown}")
    if decoding:
        markdown = render_decoding(report)
        if not (args.no_write or args.quick):
            write_section("translation-decoding", f"## Translation: decoding (`python -m benchmarks.translation`)"
                                                  f"\n\nMachine: {machine()}\n\nMedian of {repeats} rounds; test "
                                                  f"words in batches of {DECODE_BATCH}.\n\n{markdown}")


if __name__ == "__main__":
    main()
