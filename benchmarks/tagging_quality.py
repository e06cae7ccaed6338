"""Tagging quality in a fixed wall-clock budget: seqkit's tagging recipes against hand-written
plain-torch taggers on the same data, scored by the same code (the figures of issue 10).

    python -m benchmarks.tagging_quality [--quick] [--budget SECONDS] [--repeats N] [--threads N]
        [--sections tagging-python tagging-treebank] [--device cpu] [--exact-prefixes N]
        [--json] [--no-write]

Every contender trains for the same wall-clock budget (default 300 s) and is scored on the test
split, which no contender trains or selects on, by seqkit's ``TagCounts`` (accuracy, macro-F1,
per-class F1, accuracy on tokens unseen in training).

* ``tagging-python``: ``python-tokens`` (the standard library's code, every character labelled with
  its token class). The most frequent class of each character in training (a time-invariant
  baseline); the hand-written character bi-LSTM of the issue (``nn.LSTM``, independent
  ``data.max_length``-character windows at random offsets of the training files); and
  ``recipes/tagging.yaml`` with ``model.output`` softmax, crf and autoregressive. The autoregressive
  tagger is scored greedily: exact enumeration is out of reach at hundreds of characters.
* ``tagging-treebank``: the Porttinari UD Portuguese treebank (gold UPOS), split by document
  (``benchmarks/_porttinari.py``; needs ``pip install --no-deps dante-corpora==2.0.5``, else the
  section is skipped). A careful hand-written word + character bi-LSTM (Plank et al.'s design) and
  ``recipes/tagging_conll.yaml`` with the three outputs; the autoregressive one greedy on the test
  split, and greedy against exact on the held-out (dev and test) sentences short enough to
  enumerate (at most ``--exact-prefixes`` prefixes each).

Both sides use the recipe's sizes, dropout, word dropout, batch size, Adam learning rate, warm-up
and clipping. seqkit trains through ``seqkit.training.run.start_run`` with ``train.time_limit`` = the budget
and the recipe's cosine schedule, ``train.steps`` set from measured step and validation times so
that the schedule ends near the budget; its budget includes its validations every
``train.eval_every`` steps, and its best checkpoint on dev is scored. The hand-written taggers decay
the learning rate by a cosine over the budget's time, never validate, and are scored at their last
step. ``--repeats N`` trains each contender with seeds 0 .. N-1 and reports means.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks._hand_char_tagger import most_frequent_class, score_char_tagger, train_char_tagger
from benchmarks._hand_word_tagger import score_word_tagger, train_word_tagger
from benchmarks._porttinari import INSTALL_HINT, treebank_file, write_splits
from benchmarks._report import argument_parser, machine, write_section
from benchmarks._seqkit_tagging import score, train_recipe
from seqkit.plugins.decoders._common import count_prefixes
from seqkit.recipe import load_recipe
from seqkit.registry import get_registry

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
SECTIONS = ("tagging-python", "tagging-treebank")
OUTPUTS = ("softmax", "crf", "autoregressive")
BUDGET, QUICK_BUDGET = 300.0, 3.0
PROBE_STEPS, QUICK_PROBE_STEPS = 20, 2
# --quick: a smoke run, not a measurement
QUICK = {"files": 20, "sentences": 200, "hidden_size": 16, "exact_sentences": 1}
WHOLE_FILES = 10**9  # python-tokens max_length that keeps every file one sequence
EXACT_PREFIXES = 1_200_000  # 16 UPOS tags: sentences of up to 5 words (1.1 M prefixes, seconds each)
PLANK_EWT_UPOS = 0.946  # Plank et al. (2016), bilty without pretrained embeddings, UD English-EWT


@dataclass
class Settings:
    budget: float
    seeds: range
    device: str
    quick: bool
    probe_steps: int
    exact_prefixes: int
    folder: Path

    def overrides(self) -> list[str]:
        """Recipe overrides every seqkit run of this benchmark gets; the hand-written taggers read
        the resolved recipe, so they change alike."""
        quick = [f"model.hidden_size={QUICK['hidden_size']}", "train.warmup_steps=0"] if self.quick else []
        return [f"device={self.device}", *quick]


def figures(counts, seconds: float | None, steps: int | None, tokens: int) -> dict:
    """One contender's scores on the test split, and what its training took."""
    return {**counts.compute(), "f1": {tag: row["f1"] for tag, row in counts.per_tag().items()},
            "seconds": seconds, "steps": steps, "tokens": tokens}


def mean_row(label: str, runs: list[dict]) -> dict:
    """The mean of each figure over seeds, each seed's figures under ``per_seed``."""
    def mean(values):
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None

    row = {"contender": label, "runs": len(runs)}
    for key in ("accuracy", "macro_f1", "unseen_accuracy", "seconds", "steps", "planned_steps", "tokens"):
        row[key] = mean([run.get(key) for run in runs])
    row["f1"] = {tag: mean([run["f1"].get(tag) for run in runs]) for tag in runs[0]["f1"]}
    row["per_seed"] = runs
    return row


def progress(section: str, label: str, seed: int | None, run: dict) -> None:
    timing = f" after {run['seconds']:.0f} s, {run['steps']} steps" if run["seconds"] is not None else ""
    which = f" (seed {seed})" if seed is not None else ""
    print(f"{section}: {label}{which}: accuracy {run['accuracy']:.4f}, macro-F1 {run['macro_f1']:.4f}"
          f"{timing}", file=sys.stderr, flush=True)


def seqkit_rows(section: str, recipe: Path, overrides: list[str], settings: Settings) -> tuple[list, dict]:
    """One row per output of ``recipe``, and the run folders of each output by seed."""
    rows, folders = [], {}
    for output in OUTPUTS:
        label = f"seqkit {recipe.name}, {output}" + (" (greedy)" if output == "autoregressive" else "")
        runs = []
        for seed in settings.seeds:
            folder = settings.folder / f"{section}-{output}-{seed}"
            run = train_recipe(recipe, [*overrides, f"model.output={output}", f"seed={seed}"],
                               settings.budget, folder, settings.probe_steps)
            _, counts = score(folder, "test", settings.device)
            runs.append({**figures(counts, run.seconds, run.steps, run.tokens),
                         "planned_steps": run.planned, "stopped": run.stopped})
            folders.setdefault(output, []).append(folder)
            progress(section, label, seed, runs[-1])
        rows.append(mean_row(label, runs))
    return rows, folders


# -- sections -------------------------------------------------------------------------------------
def python_section(settings: Settings) -> dict:
    recipe_path = RECIPES / "tagging.yaml"
    overrides = settings.overrides() + ([f"data.max_files={QUICK['files']}"] if settings.quick else [])
    recipe = load_recipe(recipe_path, overrides)
    dataset = get_registry().get("dataset", "python-tokens")
    files = {"max_files": recipe["data"]["max_files"]}
    # the recipe's own data options (single lines, test files, ...): both contenders read the same
    corpus = dataset(**{k: v for k, v in recipe["data"].items() if k in dataset.options}).load()
    whole_files = dataset(max_length=WHOLE_FILES, **files).load().splits["train"]
    tags, train, test = corpus.tag_set, corpus.splits["train"], corpus.splits["test"]
    section = "tagging-python"

    baseline = figures(most_frequent_class(train, test, tags), None, None, sum(len(t) for t, _ in train))
    progress(section, "most frequent class", None, baseline)
    rows = [mean_row("most frequent class of the character (counted on train)", [baseline])]
    sizes = f"{recipe['model']['layers']}x{recipe['model']['hidden_size']}"
    label = f"hand-written {sizes} bi-LSTM, {recipe['data']['max_length']}-char windows"
    runs = []
    for seed in settings.seeds:
        model, vocabulary, trained = train_char_tagger(whole_files, tags, recipe, settings.budget,
                                                       settings.device, seed)
        counts = score_char_tagger(model, vocabulary, test, tags, settings.device)
        runs.append(figures(counts, trained.seconds, trained.steps, trained.tokens))
        progress(section, label, seed, runs[-1])
    rows.append(mean_row(label, runs))
    rows += seqkit_rows(section, recipe_path, overrides, settings)[0]
    longest = max(len(t) for t, _ in test)
    return {"rows": rows, "tags": list(tags), "train_files": len(whole_files),
            "test": {"sequences": len(test), "characters": sum(len(t) for t, _ in test)},
            "autoregressive_exact": f"infeasible: {len(tags)} tags over sequences of up to {longest} "
                                    f"characters (about {len(tags)}^{longest} prefixes each)"}


def treebank_section(settings: Settings) -> dict:
    if treebank_file() is None:
        print(f"tagging-treebank: skipped: the Porttinari treebank comes with dante-corpora: "
              f"{INSTALL_HINT}", file=sys.stderr)
        return {"skipped": INSTALL_HINT}
    recipe_path, section = RECIPES / "tagging_conll.yaml", "tagging-treebank"
    paths = write_splits(settings.folder / "porttinari", QUICK["sentences"] if settings.quick else 0)
    files = {"path": paths["train"], "dev": paths["dev"], "test": paths["test"]}
    overrides = settings.overrides() + [f"data.{key}={path}" for key, path in files.items()]
    recipe = load_recipe(recipe_path, overrides)
    dataset = get_registry().get("dataset", "conll")(**{key: recipe["data"][key] for key in files})
    corpus = dataset.load()
    tags, train, test = corpus.tag_set, corpus.splits["train"], corpus.splits["test"]

    label = "hand-written word + char bi-LSTM (plain torch)"
    runs = []
    for seed in settings.seeds:
        model, data, trained = train_word_tagger(train, tags, recipe, settings.budget, settings.device,
                                                 seed)
        counts = score_word_tagger(model, data, test, tags, settings.device)
        runs.append(figures(counts, trained.seconds, trained.steps, trained.tokens))
        progress(section, label, seed, runs[-1])
    rows, folders = seqkit_rows(section, recipe_path, overrides, settings)
    return {"rows": [mean_row(label, runs), *rows], "tags": list(tags),
            "sentences": {split: len(s) for split, s in corpus.splits.items()},
            "words": {split: sum(len(w) for w, _ in s) for split, s in corpus.splits.items()},
            "exact": greedy_against_exact(dataset.read_file(paths["held-out"], "held-out"), len(tags),
                                          folders["autoregressive"], settings)}


def greedy_against_exact(held_out, tags: int, folders: list[Path], settings: Settings) -> dict:
    """The autoregressive runs' greedy and exact accuracy on the held-out sentences whose
    enumeration takes at most ``exact_prefixes`` prefixes."""
    short = [(words, labels) for words, labels in held_out
             if count_prefixes(tags + 1, len(words) + 1, tags) <= settings.exact_prefixes]
    if settings.quick:
        short = short[:QUICK["exact_sentences"]]
    found = {"sentences": len(short), "words": sum(len(w) for w, _ in short),
             "longest": max((len(w) for w, _ in short), default=0),
             "max_prefixes": settings.exact_prefixes}
    if not short:
        return found
    path = settings.folder / "short.conllu"
    path.write_text("".join("".join(f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_\n"
                                    for i, (w, t) in enumerate(zip(words, labels), 1)) + "\n"
                            for words, labels in short), encoding="utf-8")
    total = sum(count_prefixes(tags + 1, len(w) + 1, tags) for w, _ in short)
    for strategy, options in (("greedy", {}), ("exact", {"max_prefixes": total})):
        started = time.perf_counter()
        found[strategy] = statistics.fmean(score(folder, "short", settings.device, strategy, options, path)[0]
                                           ["accuracy"] for folder in folders)
        found[f"{strategy}_seconds"] = (time.perf_counter() - started) / len(folders)
    print(f"tagging-treebank: autoregressive on {len(short)} short held-out sentences: greedy "
          f"{found['greedy']:.4f}, exact {found['exact']:.4f}", file=sys.stderr, flush=True)
    return found


# -- reports --------------------------------------------------------------------------------------
def percent(value) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def steps(row: dict) -> str:
    """Optimizer steps taken, and for seqkit the train.steps its schedule was planned for."""
    if row["steps"] is None:
        return ""
    return f"{row['steps']:.0f}" + (f" / {row['planned_steps']:.0f}" if row["planned_steps"] else "")


def python_table(result: dict) -> tuple[list[str], list[list[str]]]:
    header = ["contender", "accuracy %", "macro-F1", *(f"F1 {tag}" for tag in result["tags"]),
              "train s", "steps", "chars read (M)"]
    body = [[row["contender"], percent(row["accuracy"]), f"{row['macro_f1']:.4f}",
             *(f"{row['f1'][tag]:.3f}" if row["f1"].get(tag) is not None else "" for tag in result["tags"]),
             f"{row['seconds']:.0f}" if row["seconds"] is not None else "",
             steps(row), f"{row['tokens'] / 1e6:.1f}"]
            for row in result["rows"]]
    return header, body


def treebank_table(result: dict) -> tuple[list[str], list[list[str]]]:
    header = ["contender", "UPOS accuracy %", "unseen-word accuracy %", "macro-F1", "train s", "steps",
              "words read (M)"]
    body = [[row["contender"], percent(row["accuracy"]), percent(row["unseen_accuracy"]),
             f"{row['macro_f1']:.4f}", f"{row['seconds']:.0f}", steps(row), f"{row['tokens'] / 1e6:.2f}"]
            for row in result["rows"]]
    return header, body


def exact_line(exact: dict) -> str:
    if not exact["sentences"]:
        return (f"Autoregressive exact: no held-out sentence is short enough to enumerate within "
                f"{exact['max_prefixes']:,} prefixes.")
    return (f"Autoregressive, greedy against exact on the {exact['sentences']} held-out (dev + test) "
            f"sentences of at most {exact['longest']} words ({exact['words']} words; enumeration within "
            f"{exact['max_prefixes']:,} prefixes each): greedy {percent(exact['greedy'])} % "
            f"({exact['greedy_seconds']:.1f} s), exact {percent(exact['exact'])} % ({exact['exact_seconds']:.1f} s).")


def print_table(title: str, header: list[str], body: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in header:
        table.add_column(column)
    for row in body:
        table.add_row(*row)
    Console(width=200).print(table)


def markdown(header: list[str], body: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(row) + " |" for row in body)])


def schedule_note(budget: float, seeds: range) -> str:
    means = f" Means over seeds 0 to {len(seeds) - 1}." if len(seeds) > 1 else ""
    return (f"{budget:.0f} s of training per contender. seqkit: `seqkit.training.run.start_run` with "
            f"`train.time_limit` = the budget (its periodic validations count against it), the recipe's "
            f"cosine schedule over `train.steps` set from measured step and validation times (steps: "
            f"taken / planned), best checkpoint on dev. Hand-written: the recipe's sizes and optimizer "
            f"settings, cosine over the budget's time, last step. All scored on the test split by "
            f"seqkit's `TagCounts`.{means}")


def rendered(name: str, result: dict) -> tuple[str, list[str], list[list[str]], list[str]]:
    """(title, table header, table rows, notes) of one section's result."""
    if name == "tagging-python":
        header, body = python_table(result)
        title = (f"Python token classes per character, test split ({result['test']['characters']:,} "
                 f"characters of {result['test']['sequences']:,} sequences)")
        return title, header, body, [
            f"Autoregressive exact: {result['autoregressive_exact']}; greedy only.",
            "For scale, issue 10 quotes on its machine: a hand-written 2x128 character bi-LSTM on "
            "256-character windows of 400 library files, 97.98 % and macro-F1 0.962 in 5 minutes; the "
            "most frequent class per character, 60.2 %."]
    header, body = treebank_table(result)
    title = (f"Porttinari UPOS, test split ({result['words']['test']:,} words, "
             f"{result['sentences']['test']:,} sentences)")
    sentences, words = result["sentences"], result["words"]
    return title, header, body, [
        f"Porttinari (CC BY 4.0, from dante-corpora) split by document, CRC-32 of its id: "
        f"{sentences['train']:,} / {sentences['dev']:,} / {sentences['test']:,} sentences, "
        f"{words['train']:,} / {words['dev']:,} / {words['test']:,} words (train / dev / test); "
        f"{len(result['tags'])} UPOS tags.",
        exact_line(result["exact"]),
        f"Reference point (another language and treebank): Plank et al.'s bilty, without pretrained "
        f"embeddings, reaches about {percent(PLANK_EWT_UPOS)} % UPOS on UD English-EWT."]


def main(argv=None) -> None:
    parser = argument_parser(__doc__, f"tiny models and data, {QUICK_BUDGET:g} s per contender (smoke run)",
                             "training runs per contender, seeds 0 .. N-1 (default 1)",
                             "small recurrent models are")
    parser.add_argument("--budget", type=float, help=f"training seconds per contender (default {BUDGET:g}; "
                                                     f"--quick: {QUICK_BUDGET:g})")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="the sections to run (default: all)")
    parser.add_argument("--device", default="cpu", help="where every contender trains (default cpu)")
    parser.add_argument("--exact-prefixes", type=int, default=EXACT_PREFIXES,
                        help="tagging-treebank: enumerate held-out sentences of at most this many "
                             "prefixes with the exact decoder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="seqkit-tagging-quality-") as folder:
        settings = Settings(budget=args.budget or (QUICK_BUDGET if args.quick else BUDGET),
                            seeds=range(args.repeats or 1), device=args.device, quick=args.quick,
                            probe_steps=QUICK_PROBE_STEPS if args.quick else PROBE_STEPS,
                            exact_prefixes=args.exact_prefixes, folder=Path(folder))
        sections = {"tagging-python": python_section, "tagging-treebank": treebank_section}
        results = {}
        for name in (name for name in SECTIONS if name in args.sections):
            results[name] = sections[name](settings)
            report(name, results[name], settings, args)  # each as it ends: a later failure keeps it
    if args.json:
        print(json.dumps({"machine": machine(), "threads": args.threads, "budget_s": settings.budget,
                          "seeds": len(settings.seeds), "sections": results}, indent=2))


def report(name: str, result: dict, settings: Settings, args) -> None:
    """Print a section's table (unless --json) and write it into docs/benchmarks/tagging.md (unless --quick or
    --no-write); a skipped section has neither."""
    if "skipped" in result:
        return
    title, header, body, notes = rendered(name, result)
    command = f"python -m benchmarks.tagging_quality --sections {name}"
    section = "\n".join([f"## {title} (`{command}`)", "", f"Machine: {machine()}.", "",
                         schedule_note(settings.budget, settings.seeds), "", markdown(header, body), "",
                         *notes])
    if not args.json:
        print_table(title, header, body)
        print("\n".join(notes))
    if not (args.no_write or args.quick):
        write_section(name, section)


if __name__ == "__main__":
    main()
