"""``seqkit decode`` for a tagger: inputs read as tokens, tagged, and shown.

Each input is one sentence: a line of text (character runs: every character a token) or its
whitespace-separated words (word runs). Tokens never seen in training read as the unknown token.
The result per input holds the tokens, the best tag sequence and its log-probability, every
output of the strategy, and the per-position marginals p(y_i = v | x) where they are known
(softmax rows, CRF forward-backward, or ``--strategy exact`` on an autoregressive tagger).

Character runs are shown highlighted on a terminal, each character in the style of its tag (the
dataset's styles: a syntax highlighter's for ``python-tokens``), with a legend. Off a terminal
(piped, redirected), where colours are dropped, each line is followed by a line of one tag letter
per character, and the legend gives each letter's tag (``tags: n=name k=keyword ...``), so the
tags survive ``seqkit decode ... > out.txt``. Word runs are ``word/TAG`` everywhere.
"""
from __future__ import annotations

import string

import torch
from rich.segment import Segment
from rich.text import Text

from .data import MAX_WORD_CHARS, Batch, BatchPlan, encode_split
from .step import TaggerStepModel, start_decoding

# Styles of tags a dataset gives none for, in tag order; "O" (outside any span) stays plain.
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta",
           "bright_green", "bright_yellow", "bright_blue", "bright_red")
DECODE_BATCH = 64  # sentences decoded together


def sentences_of(task, inputs: list[str]) -> list:
    """Each input as the tagger reads it: its characters, or its (lowercased) words."""
    if task.level == "char":
        return list(inputs)
    lowercase = bool(task.data.get("lowercase"))
    return [(text.lower() if lowercase else text).split() for text in inputs]


def normalize(task, inputs: list[str]) -> tuple[list[str], str | None]:
    sentences = sentences_of(task, inputs)
    known = task.words.index
    unseen = [t for sentence in sentences for t in sentence if t not in known]
    read = [s if task.level == "char" else " ".join(s) for s in sentences]
    if not unseen:
        return read, None
    what = "characters" if task.level == "char" else "words"
    examples = ", ".join(repr(t) for t in list(dict.fromkeys(unseen))[:3])
    return read, (f"{len(unseen)} {what} never seen in training ({examples}"
                  f"{', ...' if len(set(unseen)) > 3 else ''}) read as the unknown token")


def decode(task, model, inputs: list[str], decoder, progress=None) -> dict:
    """The report ``seqkit decode`` prints: ``{"results": [one entry per input]}``."""
    sentences = sentences_of(task, inputs)
    filled = [i for i, s in enumerate(sentences) if len(s)]  # an empty line has nothing to tag
    placeholder = task.tag_names[0]
    encoded = encode_split([(sentences[i], [placeholder] * len(sentences[i])) for i in filled],
                           task.level, task.words, {placeholder: 0}, task.chars, MAX_WORD_CHARS)
    outputs: dict[int, tuple[list, torch.Tensor | None]] = {}
    autoregressive = model.output == "autoregressive"
    plan = BatchPlan.of(encoded, DECODE_BATCH, same_length=autoregressive, device=task.device)
    with torch.no_grad():
        for index in range(len(plan)):
            batch = plan.batch(index)
            found = (_search(model, decoder, batch) if autoregressive else _exact(model, batch))
            for row, result in zip(batch.sentences.tolist(), found):
                outputs[filled[row]] = result
    read, _ = normalize(task, inputs)
    entries = []
    for i, (source, sentence) in enumerate(zip(inputs, sentences)):
        # an empty input gets no outputs, as in translation (and no best tags or score)
        hypotheses, marginals = outputs.get(i, ([([], None)], None))
        tokens = list(sentence)
        entry = {"input": source, "normalized_input": read[i], "tokens": tokens,
                 "unknown": [t not in task.words.index for t in tokens],
                 "tags": [task.tag_names[t] for t in hypotheses[0][0]], "log_prob": hypotheses[0][1],
                 "outputs": [{"tags": [task.tag_names[t] for t in tags], "log_prob": log_prob}
                             for tags, log_prob in hypotheses if i in outputs]}
        if marginals is not None:
            entry["marginals"] = {"tags": list(task.tag_names), "rows": "positions", "columns": "tags",
                                  "table": marginals.tolist()}
        entries.append(entry)
    return {"results": entries}


def _exact(model, batch: Batch) -> list:
    """Softmax and crf: the exact argmax, its log-probability, and the exact marginals."""
    emissions = model.emissions(batch.tokens, batch.lengths, batch.chars)
    lengths = batch.lengths
    if model.output == "crf":
        tags, scores = model.crf.viterbi(emissions, lengths)
        log_probs = scores - model.crf.log_partition(emissions, lengths)
        marginals = model.crf.marginals(emissions, lengths)
    else:
        log_softmax = emissions.log_softmax(2)
        best, tags = log_softmax.max(2)
        mask = torch.arange(tags.shape[1], device=tags.device) < lengths.unsqueeze(1)
        log_probs = best.masked_fill(~mask, 0.0).sum(1)
        marginals = log_softmax.exp()
    return [([(tags[b, :n].tolist(), float(log_probs[b]))], marginals[b, :n].cpu())
            for b, n in enumerate(lengths.tolist())]


def _search(model, decoder, batch: Batch) -> list:
    """Autoregressive: the decoder's outputs over the step model (one length per batch)."""
    length = int(batch.lengths.max())
    state, first = start_decoding(model, batch.tokens, batch.lengths, batch.chars)
    results = decoder.decode(TaggerStepModel(model), state, first, length + 1)
    found = []
    for result in results:
        hypotheses = [(h.tokens[:length], h.log_prob) for h in result.hypotheses]
        marginals = result.extras.get("marginals")
        found.append((hypotheses, None if marginals is None
                      else marginals[:model.num_tags, :length].T.float()))
    return found


def decoded_tags(model, decoder, batch: Batch) -> torch.Tensor:
    """The decoder's best tags for a batch of sentences of one length, (batch, time)."""
    found = _search(model, decoder, batch)
    return torch.tensor([hypotheses[0][0] for hypotheses, _ in found], dtype=torch.long,
                        device=batch.tokens.device)


def tag_style(task, tag: str) -> str:
    if tag in task.tag_styles:
        return task.tag_styles[tag]
    if tag == "O":
        return ""
    return PALETTE[task.tag_names.index(tag) % len(PALETTE)]


def tag_letters(tag_names) -> dict[str, str] | None:
    """One distinct character per tag for the plain form: the first of the tag's own letters or
    digits not taken yet (``name`` n, ``number`` u), else any; None if there are too few."""
    pool = string.ascii_letters + string.digits + string.punctuation.replace("=", "")
    if len(tag_names) > len(pool):
        return None
    letters: dict[str, str] = {}
    for tag in tag_names:
        own = [c for c in tag if c.isascii() and c.isalnum()]
        letters[tag] = next(c for c in own + [c.swapcase() for c in own] + list(pool)
                            if c not in letters.values())
    return letters


class ByTerminal:
    """``rich`` on a terminal (colours), ``plain`` lines elsewhere: the console decides when it
    prints (``seqkit.cli._common.stdout_console``: a tty, or ``FORCE_COLOR`` / ``TTY_COMPATIBLE``)."""

    def __init__(self, rich, plain: list[str]):
        self.rich, self.plain = rich, plain

    def __rich_console__(self, console, options):
        if options.is_terminal:
            yield self.rich
        else:  # raw segments: no tab expansion, so the letters stay under their characters
            yield Segment("".join(line + "\n" for line in self.plain))


def show(task, report: dict) -> list:
    """Rich renderables: each input tagged (highlighted characters or word/TAG), then a legend;
    character runs off a terminal: each line with its tag letters under it (``ByTerminal``)."""
    shown = []
    used: dict[str, None] = {}
    letters = tag_letters(task.tag_names) if task.level == "char" else None
    for entry in report["results"]:
        for rank, output in enumerate(entry["outputs"], 1):
            line = Text()
            if len(entry["outputs"]) > 1:
                line.append(f"{rank}. ", style="dim")
            indent = len(line)
            pairs = list(zip(entry["tokens"], output["tags"]))
            for i, (token, tag) in enumerate(pairs):
                used[tag] = None
                if task.level == "char":
                    line.append(token, style=tag_style(task, tag))
                else:
                    line.append(("" if i == 0 else " ") + token)
                    line.append("/" + tag, style=tag_style(task, tag) or "bold")
            line.append(f"   log p = {output['log_prob']:.3f}", style="dim")
            if task.level == "char":
                tags = ("".join(letters[t] for t in output["tags"]) if letters
                        else " ".join(output["tags"]))  # more tags than letters: the names
                line = ByTerminal(line, [line.plain, " " * indent + tags])
            shown.append(line)
        if not entry["outputs"]:
            shown.append(Text(f"{entry['normalized_input']!r}: empty input, nothing to decode", style="dim"))
    if task.level == "char" and used:
        legend = Text("tags: ", style="dim")
        for i, tag in enumerate(t for t in task.tag_names if t in used):
            legend.append(("  " if i else "") + tag, style=tag_style(task, tag) or "underline")
        key = " ".join(f"{letters[t]}={t}" for t in task.tag_names) if letters else ""
        shown.append(ByTerminal(legend, ["tags: " + key] if letters else []))
    return shown
