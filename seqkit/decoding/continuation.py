"""Decoding as continuation: each input text is read, and a decoder writes the tokens that follow.

A task whose outputs continue its inputs (a language model) mixes in ``Continuation`` for its
``decode`` and ``show_decoded``: ``task.start_decoding`` reads the inputs, the decoder steps
``task.step_model`` for ``length`` tokens, and ``task.detokenize`` turns them back into text (the
task's ``seqkit.contracts.capabilities.StepDecoding``). A tagger labels its input instead, and
decodes its own way. ``decode_details`` (``seqkit decode --details``) adds each output token's
log-probability, found by stepping the model over the output again after the search.
"""
from __future__ import annotations

import torch
from rich.table import Table
from rich.text import Text

from seqkit.state import select_state

END_TEXT = "</s>"  # the end symbol's entry in token_texts


class Continuation:
    """``Task.decode``, ``show_decoded`` and ``decode_details`` (the ``DecodeDetails`` capability)
    for a task whose outputs continue its inputs: list it before ``Task`` (``class MyLM(Continuation,
    Task)``). The task gives ``step_model(model)``, ``start_decoding(model, inputs) -> (state,
    tokens (batch,))``, from which the first step predicts the first new token, and
    ``detokenize(ids) -> str``."""

    def decode(self, model, inputs: list[str], decoder, length: int | None = None, progress=None) -> dict:
        length = self.recipe["decode"]["length"] if length is None else length
        return decode_continuations(self, model, inputs, decoder, length, progress)

    def decode_details(self, model, inputs: list[str], decoder, length: int | None = None,
                       progress=None) -> dict:
        """``decode``'s report with each output's ``token_log_probs``: one per entry of its
        ``tokens`` (the end symbol's included, where the model has one and the output ends with
        it), summing to its ``log_prob``; and its ``token_texts``, each token's own text."""
        length = self.recipe["decode"]["length"] if length is None else length
        return decode_continuations(self, model, inputs, decoder, length, progress, details=True)

    def show_decoded(self, report: dict) -> list:
        return show_continuations(report)


def decode_continuations(task, model, inputs: list[str], decoder, length: int, progress=None,
                         details: bool = False) -> dict:
    """``{"length": ..., "results": [...]}``: per input, its outputs (text, tokens, log-probability,
    score; with ``details`` each token's log-probability) and the strategy's extras (``exact``:
    marginals over symbols)."""
    step_model = task.step_model(model)
    results = decoder.decode(step_model, *task.start_decoding(model, inputs), length, progress=progress)
    normalized, _ = task.normalize_inputs(inputs)
    end = step_model.end_token

    def text(tokens):
        return task.detokenize(tokens[:-1] if end is not None and tokens and tokens[-1] == end else tokens)

    entries = []
    for source, read, result in zip(inputs, normalized, results):
        entry = {"input": source, "normalized_input": read, "outputs": [
            {"text": text(h.tokens), "tokens": h.tokens, "log_prob": h.log_prob,
             **({"score": h.score} if h.score is not None else {})} for h in result.hypotheses]}
        if "marginals" in result.extras:
            entry["marginals"] = {
                "symbols": [task.detokenize([v]) for v in range(step_model.vocab_size)],
                "rows": "symbols", "columns": "positions",
                "table": result.extras["marginals"].tolist()}
        entry.update({k: v for k, v in result.extras.items() if k != "marginals"})
        entries.append(entry)
    if details:
        rescored = iter(token_log_probs(task, model, inputs, [[h.tokens for h in result.hypotheses]
                                                               for result in results]))
        for entry in entries:
            for output in entry["outputs"]:
                output["token_log_probs"] = next(rescored)
                # Each token's own text, so a page can label subword tokens (a character's is itself).
                output["token_texts"] = [END_TEXT if token == end else task.detokenize([token])
                                         for token in output["tokens"]]
    return {"length": length, "results": entries}


def token_log_probs(task, model, inputs: list[str], outputs: list[list[list[int]]]) -> list[list[float]]:
    """log p(y_t | input, y_<t) of every token of ``outputs`` (per input, its outputs' token ids),
    flat in the same order: the step model stepped over all outputs at once from each input's start
    (``task.start_decoding``), one batched step per position, teacher-forced with the output's own
    tokens, so the values are the model's whatever strategy chose the tokens."""
    owners = [i for i, found in enumerate(outputs) for _ in found]
    rows = [tokens for found in outputs for tokens in found]
    steps = max(map(len, rows), default=0)
    if not steps:
        return [[] for _ in rows]
    step_model = task.step_model(model)
    with torch.inference_mode():
        state, first = task.start_decoding(model, inputs)
        index = torch.tensor(owners, device=first.device)
        state, tokens = select_state(state, index), first.index_select(0, index)
        # the rows padded with token 0 (any valid id: what follows a row's end is never read)
        target = torch.tensor([row + [0] * (steps - len(row)) for row in rows], device=first.device)
        picked = []
        for t in range(steps):
            log_probs, state = step_model.step(tokens, state)
            picked.append(log_probs.gather(1, target[:, t:t + 1]))
            tokens = target[:, t]
        values = torch.cat(picked, 1).tolist()
    return [row_values[:len(row)] for row_values, row in zip(values, rows)]


def show_continuations(report: dict) -> list:
    """Rich renderables: each input followed by its output, and the marginals ``exact`` found."""
    shown = []
    for entry in report["results"]:
        for rank, output in enumerate(entry["outputs"], 1):
            line = Text()
            if len(entry["outputs"]) > 1:
                line.append(f"{rank}. ", style="dim")
            line.append(entry["normalized_input"], style="cyan")
            line.append(output["text"])
            line.append(f"   log p = {output['log_prob']:.3f}", style="dim")
            shown.append(line)
        if "marginals" in entry:
            shown.append(_marginals_table(entry))
            shown.append(Text(f"{entry['sequences']:,} sequences enumerated from {entry['prefixes']:,} "
                              f"prefixes; probability mass {entry['mass']:.6f}", style="dim"))
        else:
            shown += search_notes(entry)
    return shown


def search_notes(entry: dict) -> list:
    """What exact search says of one input's answer: proven, or stopped at ``max_prefixes``."""
    if entry.get("proven") is True:
        return [Text(f"proven exact after {entry['prefixes']:,} prefixes", style="dim")]
    if entry.get("proven") is False:
        return [Text(f"not proven exact: the search stopped at {entry['prefixes']:,} prefixes "
                     f"(raise --max-prefixes)", style="yellow")]
    return []


def _marginals_table(entry: dict, shown: float = 0.01):
    """Symbols that reach ``shown`` probability somewhere; the rest summed in one row."""
    marginals = entry["marginals"]
    table = Table(title=f"p(y_s = v) after {entry['normalized_input']!r}", title_justify="left")
    table.add_column("symbol")
    positions = len(marginals["table"][0]) if marginals["table"] else 0
    for s in range(positions):
        table.add_column(str(s + 1), justify="right")
    rest = [0.0] * positions
    for symbol, row in zip(marginals["symbols"], marginals["table"]):
        if max(row) >= shown:
            table.add_row(repr(symbol), *(f"{p:.3f}" for p in row))
        else:
            rest = [a + b for a, b in zip(rest, row)]
    if any(rest):
        table.add_row("(others)", *(f"{p:.3f}" for p in rest), style="dim")
    return table
