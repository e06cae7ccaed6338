"""Decoding for the translation task: sources read as tokens, batched, decoded, and shown.

Sources are decoded in batches of similar length (the encoder reads each once; the decoder's
state carries the encoder memory by reference, ``step.py``), by any seqkit decoder. An
output is its tokens up to the end symbol; one the search stopped at ``decode.length`` without an
end symbol is *truncated*. With details (``seqkit decode --details``) the outputs found are
rescored by teacher forcing, a batch of sources at a time: each step's log-probability and, with
attention, its weights over the source.
"""
from __future__ import annotations

import numpy as np
import torch
from rich.text import Text

from seqkit.decoding import recipe_decoder
from seqkit.decoding.continuation import search_notes
from seqkit.plugins.tasks.common.flat_sequences import as_long
from seqkit.plugins.tasks.common.length_batches import plan_batches
from seqkit.state import select_state

from .corpus import MemoryWriter, write_sources
from .data import PairSplit
from .model import END_ID
from .step import TranslationStepModel, start_decoding

DECODE_BATCH = 256  # sources decoded together
SAMPLES = 5  # dev sources shown at the end of a run
INPUTS = "inputs"  # the name decode's inputs are held under
RESCORE_VALUES = 1 << 24  # about this many floats (vocabulary and attention) per rescoring chunk


def sources_of(task, inputs: list[str]) -> list[str]:
    """Each input as the source text the encoder reads: lowercased where training saw no capital
    letters; for whitespace-separated tokens, its tokens joined by single spaces."""
    texts = [text.lower() if task.lowercase else text for text in inputs]
    return list(texts) if task.source_tokens == "char" else [" ".join(text.split()) for text in texts]


def normalize(task, inputs: list[str]) -> tuple[list[str], str | None]:
    texts = sources_of(task, inputs)
    notes = []
    if task.lowercase and any(text != text.lower() for text in inputs):
        notes.append("lowercased (training saw no capital letters)")
    if task.by_level["source"]:  # the dataset's own tokens: characters or words
        known = task.source_tokenizer.index
        tokens = [t for text in texts for t in (text if task.source_tokens == "char" else text.split())]
        unseen = [t for t in tokens if t not in known]
        if unseen:
            what = "characters" if task.source_tokens == "char" else "tokens"
            examples = ", ".join(repr(t) for t in list(dict.fromkeys(unseen))[:3])
            notes.append(f"{len(unseen)} {what} never seen in training ({examples}"
                         f"{', ...' if len(set(unseen)) > 3 else ''}) read as the unknown token")
        read = texts
    else:
        read, note = task.source_tokenizer.read(texts)
        if note:
            notes.append(note)
    return read, "; ".join(notes) or None


def _ids(ids: list[int]) -> list[int]:
    """An output's ids without its end symbol."""
    return ids[:-1] if ids and ids[-1] == END_ID else ids


def output_text(task, ids: list[int]) -> str:
    """An output as text: its ids, without the end symbol, detokenized by the target's tokenizer."""
    return task.target_tokenizer.decode(_ids(ids))


def output_tokens(task, ids: list[int]) -> list[str]:
    """An output's tokens, without its end symbol: the target vocabulary's symbols where it has
    them (characters, words), else each id's text."""
    return [vocabulary_symbol(task.target_tokenizer, i) for i in _ids(ids)]


def vocabulary_symbol(tokenizer, i: int) -> str:
    symbols = getattr(tokenizer, "symbols", None)
    if symbols is not None:
        return symbols[i]
    return tokenizer.specials[i] if i < len(tokenizer.specials) else tokenizer.decode([i])


def scored(task, ids: list[int]):
    """An output as references are scored: its detokenized text, as characters (a ``char`` target)
    or split at whitespace into words (``space``), whatever the tokenizer."""
    text = output_text(task, ids)
    return text if task.target_tokens == "char" else text.split()


def decode_examples(task, model, split: PairSplit, examples: torch.Tensor, decoder,
                    length: int | None = None, progress=None) -> list:
    """One ``DecodeResult`` per example id in ``examples`` (in that order): sources batched by
    length, gathered from the split's arrays, at most ``length`` tokens each (None: the recipe's
    ``decode.length``)."""
    length = length or task.recipe["decode"]["length"]
    results: list = [None] * len(examples)
    step_model = TranslationStepModel(model)
    for batch, source, lengths in _source_batches(task, split, examples):
        state, first = start_decoding(model, source, lengths)
        for row, result in zip(batch, decoder.decode(step_model, state, first, length, progress=progress)):
            results[row] = result
    return results


def _source_batches(task, split: PairSplit, examples: torch.Tensor):
    """(positions in ``examples``, their sources padded (batch, time), lengths) on the task's
    device, a batch of sources of similar length at a time."""
    pairs = np.asarray(split.first_pairs)[examples.cpu().numpy()]
    host_lengths = np.asarray(split.source.lengths)[pairs].tolist()
    for batch in plan_batches(host_lengths, DECODE_BATCH):
        source, lengths = split.source.gather(pairs[batch], max(host_lengths[i] for i in batch))
        yield batch, as_long(source, task.device), as_long(lengths, task.device)


def rescore(task, model, split: PairSplit, examples: torch.Tensor, results: list) -> list[list[dict]]:
    """Per example, per hypothesis of its ``results``: ``{"token_log_probs": [...]}`` and, with
    attention, ``"attention"`` (rows, source length), one row per decoder step (each output token,
    then the end symbol where the output has it): the model teacher-forced with the hypothesis'
    ids (``Seq2SeqModel.forced_log_probs``), the encoder run once per batch of sources and the
    decoder over all their hypotheses at once (in chunks of about ``RESCORE_VALUES`` values)."""
    found: list = [None] * len(examples)
    for batch, source, lengths in _source_batches(task, split, examples):
        owners = [b for b, row in enumerate(batch) for _ in results[row].hypotheses]
        ids = [h.tokens for row in batch for h in results[row].hypotheses]
        encoded, states = model.encode(source, lengths)
        source_lengths = lengths.tolist()
        steps = max(map(len, ids), default=1) or 1
        chunk = max(1, RESCORE_VALUES // (steps * (model.target_vocab_size + source.shape[1])))
        details = []
        for start in range(0, len(ids), chunk):
            part, rows = ids[start:start + chunk], owners[start:start + chunk]
            details += _rescored(model, encoded, states, part, rows, [source_lengths[r] for r in rows])
        details = iter(details)
        for row in batch:
            found[row] = [next(details) for _ in results[row].hypotheses]
    return found


def _rescored(model, encoded, states, ids: list[list[int]], owners: list[int], source_lengths: list[int]) -> list:
    """``rescore``'s details of the hypotheses ``ids`` of the sources ``owners`` (their positions in
    ``encoded``), whose lengths are ``source_lengths``."""
    device = encoded.context.device
    rows = torch.tensor(owners, device=device)
    encoded, states = encoded.select(rows), [select_state(state, rows) for state in states]
    steps = max(map(len, ids)) or 1
    target = torch.tensor([tokens + [END_ID] * (steps - len(tokens)) for tokens in ids], device=device)
    target_lengths = torch.tensor([max(1, len(tokens)) for tokens in ids], device=device)
    weights = [] if model.attention is not None else None
    log_probs = model.forced_log_probs(encoded, states, target, target_lengths, weights)
    picked = log_probs.gather(2, target.unsqueeze(2)).squeeze(2).tolist()
    attention = torch.cat(weights, 1).tolist() if weights is not None else None
    return [{"token_log_probs": picked[r][:len(tokens)],
             **({"attention": [step[:source_lengths[r]] for step in attention[r][:len(tokens)]]}
                if attention is not None else {})} for r, tokens in enumerate(ids)]


def source_tokens(task, inputs: list[str], ids: list) -> list[list[str]]:
    """Each input's source tokens as texts, one per id the encoder reads (attention's columns): the
    normalized input's characters or words where the source vocabulary is the dataset's own
    (an unknown one as typed), else each id's piece."""
    pieces = [[vocabulary_symbol(task.source_tokenizer, int(i)) for i in sequence] for sequence in ids]
    if not task.by_level["source"]:
        return pieces
    texts = sources_of(task, inputs)
    typed = [list(text) if task.source_tokens == "char" else text.split() for text in texts]
    return [own if len(own) == len(piece) else piece for own, piece in zip(typed, pieces)]


def decode(task, model, inputs: list[str], decoder, length=None, progress=None, details: bool = False) -> dict:
    """The report ``seqkit decode`` prints: ``{"length": ..., "results": [one entry per input]}``;
    an input that reads as no tokens (an empty one) gets no outputs. ``details``: each output's
    ``token_log_probs`` and (with attention) ``attention``, and each input's ``source_tokens``."""
    ids = task.source_tokenizer.encode_batch(sources_of(task, inputs))
    filled = [i for i, sequence in enumerate(ids) if len(sequence)]
    writer = MemoryWriter()
    write_sources(writer, INPUTS, [ids[i] for i in filled], task.source_tokenizer.vocab_size)
    split = PairSplit(writer.arrays(), INPUTS)
    length = length or task.recipe["decode"]["length"]
    with torch.no_grad():
        examples = torch.arange(len(filled))
        found = decode_examples(task, model, split, examples, decoder, length, progress) if filled else []
        rescored = dict(zip(filled, rescore(task, model, split, examples, found))) if details and filled else {}
    results = dict(zip(filled, found))
    tokens_read = source_tokens(task, inputs, ids) if details else None
    read, _ = normalize(task, inputs)
    entries = []
    for i, text in enumerate(inputs):
        entry = {"input": text, "normalized_input": read[i], "outputs": []}
        if i in results:
            result = results[i]
            entry["outputs"] = [{"text": output_text(task, h.tokens), "tokens": output_tokens(task, h.tokens),
                                 "log_prob": h.log_prob, "finished": bool(h.tokens) and h.tokens[-1] == END_ID,
                                 **({"score": h.score} if h.score is not None else {})}
                                for h in result.hypotheses]
            for output, more in zip(entry["outputs"], rescored.get(i, ())):
                output.update(more)
            entry.update({k: v for k, v in result.extras.items() if k != "marginals"})
            if "marginals" in result.extras:
                marginals = result.extras["marginals"]
                tokenizer = task.target_tokenizer
                entry["marginals"] = {"symbols": [vocabulary_symbol(tokenizer, i) for i in range(tokenizer.vocab_size)],
                                      "rows": "symbols", "columns": "positions", "table": marginals.tolist()}
        if details:
            entry["source_tokens"] = tokens_read[i]
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
    split = task.splits["dev"]
    total = split.example_count
    examples = torch.linspace(0, total - 1, min(SAMPLES, total)).round().long().unique()
    with torch.no_grad():
        results = decode_examples(task, model, split, examples, decoder)
    lines = []
    for example, result in zip(examples.tolist(), results):
        source = task.source_tokenizer.decode(split.source.sequence(int(split.first_pairs[example])))
        lines.append(f"{source} → {output_text(task, result.hypotheses[0].tokens)}")
    return "\n".join(lines)
