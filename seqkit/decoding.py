"""The step-model contract that every decoder drives, and what decoders return.

A task turns its trained model into a ``StepModel``; decoders only ever see that, so they
work for any cell and any task. State is carried from step to step: decoding T tokens costs
T model steps, never a re-run of the prefix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from seqkit.options import Option
from seqkit.state import State


class StepModel(Protocol):
    vocab_size: int
    end_token: int | None  # a symbol that ends a sequence, or None when sequences only stop at a length

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """``tokens`` (batch,) last tokens -> (log-probabilities (batch, vocab_size), next state)."""
        ...


@dataclass
class Hypothesis:
    tokens: list[int]
    log_prob: float


@dataclass
class DecodeResult:
    """The output for one input: hypotheses best first, plus strategy-specific extras."""

    hypotheses: list[Hypothesis]
    extras: dict = field(default_factory=dict)


class Decoder:
    """A search strategy over a step model, built with its own ``options`` from ``decode``."""

    options: dict[str, Option] = {}
