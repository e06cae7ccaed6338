"""What a task may do beyond its life cycle: small protocols a task opts into by defining the methods.

seqkit asks ``isinstance(task, Protocol)`` before it uses one; a task without it gets a one-line
answer naming what it lacks (``seqkit eval --search-report`` on a tagger, say), never an
AttributeError.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn

from seqkit.contracts.decoder import StepModel

Tables = dict[str, dict[str, dict[str, float]]]


@runtime_checkable
class StepDecoding(Protocol):
    """Outputs written token by token by any registered decoder, over a ``StepModel``. A task
    whose outputs continue its inputs also says where decoding starts and how ids read as text
    (``start_decoding``, ``detokenize``: ``seqkit.decoding.Continuation``)."""

    def step_model(self, model: nn.Module) -> StepModel:
        """A ``StepModel`` over ``model`` that carries state token by token; a ``SeqkitError``
        where this model is not decoded step by step (a softmax tagger)."""


@runtime_checkable
class ShowsDecoded(Protocol):
    """``Task.decode``'s report shown to people (without it: one JSON line per input)."""

    def show_decoded(self, report: dict) -> list:
        """Rich renderables, printed in order."""


@runtime_checkable
class DecodeDetails(Protocol):
    """``seqkit decode --details`` (``Run.decode(..., details=True)``): what the model gives each
    token of each output, for a page that shades tokens by probability or shows attention."""

    def decode_details(self, model: nn.Module, inputs: list[str], decoder, length: int | None = None,
                       progress=None) -> dict:
        """``Task.decode``'s report, unchanged but for what it adds: to every output its
        ``token_log_probs`` (log p of each output token at its step, given the input and the
        tokens before it, found by rescoring the output with the model after the search, whatever
        the strategy; they sum to the output's ``log_prob``), and whatever else the task can say
        of a step (``translation``: its ``attention`` over the input's ``source_tokens``)."""


@runtime_checkable
class Breakdown(Protocol):
    """Per-class tables of the last evaluation, shown at the end of a run and by ``seqkit eval``."""

    def breakdown(self, split: str = "dev") -> Tables:
        """``{title: {row: {column: value}}}`` for the last ``evaluate`` of ``split`` (a tagger's
        per-tag precision, recall and F1); {} for none yet."""


@runtime_checkable
class SearchReport(Protocol):
    """``seqkit eval --search-report``: how far each search strategy is from the exact argmax."""

    def search_report(self, model: nn.Module, split: str, decoders: dict, limit: int = 0) -> dict:
        """``split`` (read by ``load_split``) decoded by each of ``decoders`` (name -> built
        ``seqkit.Decoder``; one is ``exact``), ``limit`` inputs evenly spaced (0: all), as
        ``{"inputs": n, "end_token": id, "strategies": {name: (list of DecodeResult, one per input
        in the same order, {metric: value})}}`` (``seqkit.analysis.search_report`` compares them)."""


@runtime_checkable
class GradientProbe(Protocol):
    """``seqkit probe gradients RUN``: the trained recurrence and real inputs to differentiate."""

    def gradient_probe(self, model: nn.Module, length: int, batch: int):
        """A ``seqkit.analysis.gradient_probe.ProbeInputs`` over ``batch`` real sequences of
        ``length`` steps from the dev split (read here, as ``load_split`` does), for a model in
        float64; a ``SeqkitError`` where the model has no single left-to-right recurrence."""


def breakdown_of(task, split: str = "dev") -> Tables:
    """The task's tables for ``split``, or {} for a task without them."""
    return task.breakdown(split) if isinstance(task, Breakdown) else {}
