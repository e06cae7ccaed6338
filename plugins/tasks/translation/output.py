"""Decoding for the translation task: sources read as tokens, batched, decoded, and shown.

Sources are decoded in batches of similar length (the encoder reads each once; the decoder's
state carries the encoder memory by reference, ``step.py``), by any seqkit decoder. An
output is its tokens up to the end symbol; one the search stopped at ``decode.length`` without an
end symbol is *truncated*.
"""
from __future__ import annotations

import torch
from rich.text import Text

from seqkit.decoding import recipe_decoder
from seqkit.decoding.continuation import search_notes
from seqkit.plugins.tasks.common.length_batches import plan_batches
from seqkit.plugins.tasks.common.vocabulary import UNKNOWN_ID

from .data import EncodedPairs, encode_pairs, gather_padded
from .model import END_ID
from .step import TranslationStepModel, start_decoding

DECODE_BATCH = 256  # sources decoded together
SAMPLES = 5  # dev sources shown at the end of a run


def sources_of(task, inputs: list[str]) -> list:
    """Each input as the encoder reads it: its characters, or its whitespace-separated tokens;
    lowercased where training saw no capital letters."""
    texts = [text.lower() if task.lowercase else text for text in inputs]
    return list(texts) if task.source_tokens == "char" else [text.split() for text in texts]


def normalize(task, inputs: list[str]) -> tuple[list[str], str | None]:
    sources = sources_of(task, inputs)
    read = [s if task.source_tokens == "char" else " ".join(s) for s in sources]
    known = task.source_symbols.index
    unseen = [t for source in sources for t in source if t not in known]
    notes = []
    if task.lowercase and any(text != text.lower() for text in inputs):
        notes.append("lowercased (training saw no capital letters)")
    if unseen:
        what = "characters" if task.source_tokens == "char" else "tokens"
        examples = ", ".join(repr(t) for t in list(dict.fromkeys(unseen))[:3])
        notes.append(f"{len(unseen)} {what} never seen in training ({examples}"
                     f"{', ...' if len(set(unseen)) > 3 else ''}) read as the unknown token")
    return read, "; ".join(notes) or None


def output_tokens(task, ids: list[int]) -> list[str]:
    """An output's target symbols, without its end symbol."""
    ids = ids[:-1] if ids and ids[-1] == END_ID else ids
    return [task.target_symbols.symbols[i] for i in ids]


def scored(task, ids: list[int]):
    """An output as references are scored: a str of characters, or a list of tokens."""
    tokens = output_tokens(task, ids)
    return "".join(tokens) if task.target_tokens == "char" else tokens


def text_of(task, ids: list[int]) -> str:
    return ("" if task.target_tokens == "char" else " ").join(output_tokens(task, ids))


def decode_examples(task, model, encoded: EncodedPairs, examples: torch.Tensor, decoder,
                    length: int | None = None, progress=None) -> list:
    """One ``DecodeResult`` per example id in ``examples`` (in that order): sources batched by
    length, at most ``length`` tokens each (None: the recipe's ``decode.length``)."""
    length = length or task.recipe["decode"]["length"]
    pairs = encoded.first_pairs[examples.to(encoded.first_pairs.device)]
    host_lengths = encoded.source_lengths[pairs].tolist()
    results: list = [None] * len(host_lengths)
    step_model = TranslationStepModel(model)
    for batch in plan_batches(host_lengths, DECODE_BATCH):
        rows = torch.tensor(batch, dtype=torch.long, device=pairs.device)
        lengths = encoded.source_lengths[pairs[rows]]
        source = gather_padded(encoded.source, encoded.source_starts[pairs[rows]], lengths,
                               max(host_lengths[i] for i in batch))
        state, first = start_decoding(model, source, lengths)
        for row, result in zip(batch, decoder.decode(step_model, state, first, length, progress=progress)):
            results[row] = result
    return results


def decode(task, model, inputs: list[str], decoder, length=None, progress=None) -> dict:
    """The report ``seqkit decode`` prints: ``{"length": ..., "results": [one entry per input]}``;
    an empty input gets no outputs."""
    sources = sources_of(task, inputs)
    filled = [i for i, s in enumerate(sources) if len(s)]
    placeholder = task.target_symbols.symbols[UNKNOWN_ID]
    encoded = encode_pairs([(sources[i], [[placeholder]]) for i in filled], task.source_symbols,
                           task.target_symbols, task.source_tokens, "space", task.device)
    length = length or task.recipe["decode"]["length"]
    with torch.no_grad():
        found = decode_examples(task, model, encoded, torch.arange(len(filled)), decoder, length,
                                progress) if filled else []
    results = dict(zip(filled, found))
    read, _ = normalize(task, inputs)
    entries = []
    for i, text in enumerate(inputs):
        entry = {"input": text, "normalized_input": read[i], "outputs": []}
        if i in results:
            result = results[i]
            entry["outputs"] = [{"text": text_of(task, h.tokens), "tokens": output_tokens(task, h.tokens),
                                 "log_prob": h.log_prob, "finished": bool(h.tokens) and h.tokens[-1] == END_ID,
                                 **({"score": h.score} if h.score is not None else {})}
                                for h in result.hypotheses]
            entry.update({k: v for k, v in result.extras.items() if k != "marginals"})
            if "marginals" in result.extras:
                marginals = result.extras["marginals"]
                entry["marginals"] = {"symbols": list(task.target_symbols.symbols), "rows": "symbols",
                                      "columns": "positions", "table": marginals.tolist()}
        entries.append(entry)
    return {"length": length, "results": entries}


def show(report: dict) -> list:
    """Rich renderables: each input, then its outputs best first with their log-probabilities."""
    shown = []
    for entry in report["results"]:
        outputs = entry["outputs"]
        for rank, output in enumerate(outputs, 1):
            line = Text()
            if len(outputs) > 1:
                line.append(f"{rank}. ", style="dim")
            line.append(entry["normalized_input"], style="cyan")
            line.append(" → ")
            line.append(output["text"] or "(empty)", style="" if output["text"] else "dim")
            line.append(f"   log p = {output['log_prob']:.3f}", style="dim")
            if not output["finished"]:
                line.append("   (truncated at decode.length)", style="yellow")
            shown.append(line)
        if not outputs:
            shown.append(Text(f"{entry['normalized_input']!r}: empty input, nothing to decode", style="dim"))
        shown += search_notes(entry)
    return shown


def sample(task, model) -> str | None:
    """A few dev sources (evenly spaced) and their outputs by the recipe's decode strategy."""
    decoder = recipe_decoder(task.recipe)
    encoded = task.splits["dev"]
    total = len(task.references["dev"])
    examples = torch.linspace(0, total - 1, min(SAMPLES, total)).round().long().unique()
    with torch.no_grad():
        results = decode_examples(task, model, encoded, examples, decoder)
    lines = []
    for example, result in zip(examples.tolist(), results):
        pair = int(encoded.first_pairs[example])
        start, n = int(encoded.source_starts[pair]), int(encoded.source_lengths[pair])
        symbols = [task.source_symbols.symbols[i] for i in encoded.source[start:start + n].tolist()]
        source = ("" if task.source_tokens == "char" else " ").join(symbols)
        lines.append(f"{source} → {text_of(task, result.hypotheses[0].tokens)}")
    return "\n".join(lines)
