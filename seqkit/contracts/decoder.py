"""The step-model contract that every decoder drives, and what decoders return.

A task turns its trained model into a ``StepModel``; decoders only ever see that, so they
work for any cell and any task. State is carried from step to step: decoding T tokens costs
T model steps, never a re-run of the prefix. ``Decoder.decode`` wraps every strategy's
``search``: each step's log-probabilities are checked, progress is counted, and a length whose
output cannot fit in memory is refused before the first step.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

import torch

from seqkit.errors import SeqkitError
from seqkit.memory import available_bytes, format_bytes
from seqkit.options import Option, check_options
from seqkit.state import State

# What decoding holds per step, measured with the built-in decoders on CPU: a few small tensors per
# step with their Python objects (about 1.3 kB), and per output token its id and score, in tensors,
# then in lists, text and JSON (40-70 bytes).
BYTES_PER_STEP = 1536
BYTES_PER_TOKEN = 64

# progress(total) -> a context giving advance(rows): called with each model.step's batch size
Progress = Callable[[int], AbstractContextManager[Callable[[int], None]]]


class StepModel(Protocol):
    vocab_size: int
    end_token: int | None  # a symbol that ends a sequence, or None when sequences only stop at a length

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Feed ``tokens`` (batch,) to the model in ``state``.

        Returns the log-probabilities of the token that follows, ``(batch, vocab_size)``
        (each row a normalised distribution), and the state after ``tokens``.
        """
        ...


@dataclass
class Hypothesis:
    """One output sequence. ``tokens`` ends with the end token when the sequence ended early;
    ``log_prob`` is the model's log-probability of exactly these tokens (the sum over steps)."""

    tokens: list[int]
    log_prob: float
    score: float | None = None  # what the strategy ranked by, where that is not log_prob


@dataclass
class DecodeResult:
    """The output for one input: hypotheses best first (samples: in the order drawn), plus
    strategy-specific extras (``exact``: marginals and the probability mass enumerated)."""

    hypotheses: list[Hypothesis]
    extras: dict = field(default_factory=dict)


class Decoder(ABC):
    """A search strategy over a step model.

    ``options`` are the keys it accepts in the recipe's ``decode:`` section (and as flags of
    ``seqkit decode``); ``Decoder(**values)`` validates them and stores them in ``config``.
    """

    options: dict[str, Option] = {}

    def __init__(self, **values):
        self.config, problems = check_options(values, self.options, "decode")
        if problems:
            raise SeqkitError(*problems)

    def decode(self, model: StepModel, state: State, tokens: torch.Tensor, length: int,
               progress: Progress | None = None) -> list[DecodeResult]:
        """Decode up to ``length`` new tokens for each of the ``batch`` start points.

        ``state`` and ``tokens`` (batch,) are where decoding starts (``task.start_decoding``):
        the first ``model.step(tokens, state)`` gives the distribution of the first new token.
        Returns one ``DecodeResult`` per batch entry. Refuses, before any step, a ``length`` whose
        output would not fit in memory. ``progress(planned_rows(...))``, when given, is entered
        around the search and its ``advance(rows)`` called after every model step.
        """
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise SeqkitError(f"decode.length: must be a positive integer; got {length!r}")
        if tokens.dim() != 1 or tokens.numel() == 0:
            raise SeqkitError(f"decode: start tokens must have shape (batch,), got {tuple(tokens.shape)}")
        batch = tokens.shape[0]
        # on the host whatever the device: the output ends up in Python lists and text
        needed, free = self.memory_needed(model, batch, length), available_bytes(torch.device("cpu"))
        if free is not None and needed > free:
            rows = batch * self.rows_per_input(model, length)
            each = f" for each of {rows:,} sequences" if rows > 1 else ""
            raise SeqkitError(f"decode.length: {length:,} tokens{each} would need about "
                              f"{format_bytes(needed)} of memory to hold the output, and "
                              f"{format_bytes(free)} is free; decode fewer tokens")
        reporting = progress(self.planned_rows(model, batch, length)) if progress else nullcontext()
        observer = _OBSERVER.get()
        with torch.inference_mode(), reporting as advance:
            results = self.search(_CheckedSteps(model, advance, observer), state, tokens, length)
        if observer is not None and observer.on_done is not None:
            observer.on_done(results)
        for result in results:  # inference tensors refuse in-place updates later: hand out normal ones
            result.extras = {k: v.clone() if isinstance(v, torch.Tensor) else v
                             for k, v in result.extras.items()}
        return results

    def rows_per_input(self, model: StepModel, length: int) -> int:
        """Sequences the search extends side by side for each input (samples, beam width): each
        step feeds the model this many rows per input, and keeps this many tokens per input."""
        return 1

    def planned_rows(self, model: StepModel, batch: int, length: int) -> int:
        """Rows the search will step in all (the sum of ``model.step``'s batch sizes), the total a
        progress bar counts to; an upper bound where the search may stop early."""
        return batch * self.rows_per_input(model, length) * length

    def memory_needed(self, model: StepModel, batch: int, length: int) -> int:
        """Bytes the output (and the history behind it) takes by the end of a search."""
        return length * (BYTES_PER_STEP + batch * self.rows_per_input(model, length) * BYTES_PER_TOKEN)

    def ineffective_options(self, model: StepModel) -> dict[str, str]:
        """``{key: why}`` for options set to values that change nothing with this model (a length
        penalty where every output has the same length): worth a warning, not an error."""
        return {}

    @abstractmethod
    def search(self, model: StepModel, state: State, tokens: torch.Tensor,
               length: int) -> list[DecodeResult]:
        """The strategy itself; called by ``decode`` with checked arguments, without autograd."""


@dataclass(frozen=True)
class _Observer:
    on_step: Callable[[torch.Tensor], None]
    on_done: Callable[[list[DecodeResult]], None] | None


_OBSERVER: ContextVar[_Observer | None] = ContextVar("seqkit_decode_observer", default=None)


@contextmanager
def observe_steps(on_step: Callable[[torch.Tensor], None],
                  on_done: Callable[[list[DecodeResult]], None] | None = None) -> Iterator[None]:
    """Watch every ``Decoder.decode`` run inside the block (in this thread's context), whatever
    the task and strategy, without either knowing: ``on_step(tokens)`` is called with the tokens
    (batch,) fed into each model step, before the step (after the first step, those are the tokens
    the search chose at the step before, for a search that keeps one row per input: greedy, or
    sampling one sample), and ``on_done(results)`` with what ``decode`` returns. Either may raise
    to stop the search (a server whose client left): the exception leaves ``decode`` unchanged.
    ``seqkit serve`` streams the tokens of greedy and sampling this way."""
    reset = _OBSERVER.set(_Observer(on_step, on_done))
    try:
        yield
    finally:
        _OBSERVER.reset(reset)


class NonFiniteLogProbs(SeqkitError):
    """The model gave nan or +inf log-probabilities: its weights diverged in training."""


class _CheckedSteps:
    """The step model as ``Decoder.search`` sees it: the task's own, each step checked once here,
    for every decoder. A diverged model's nan would otherwise become a wrong score (nan, or 0 after
    a top-k) or a crash inside torch's sampler.

    The check waits for the device every step: deferring it would let a CUDA sampler meet the nan
    first, and torch.multinomial then fails with a device-side assert that leaves CUDA unusable.
    Its cost, measured with a 2x256 LSTM char LM at batch 1: about 20 us per step on an H200
    (99 -> 121 us in one run, 155 -> 175 in another), about 1 us on CPU.
    """

    def __init__(self, model: StepModel, advance: Callable[[int], None] | None = None,
                 observer: _Observer | None = None):
        self.model, self.advance = model, advance
        self.observe = observer.on_step if observer is not None else None

    def __getattr__(self, name):  # vocab_size, end_token and whatever else the task's model offers
        return getattr(self.model, name)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self.observe is not None:  # seqkit.decoding.observe_steps
            self.observe(tokens)
        log_probs, state = self.model.step(tokens, state)
        # One reduction per step: the sum is nan or +inf exactly when an entry is (-inf entries, a
        # token ruled out, keep it below +inf); log-probabilities never add up past +inf.
        if not log_probs.sum().item() < math.inf:
            found = "nan" if bool(log_probs.isnan().any()) else "inf"
            raise NonFiniteLogProbs(f"the model's log-probabilities are not finite ({found}); the run "
                                    f"diverged: retrain it with a lower train.lr")
        if self.advance is not None:
            self.advance(tokens.shape[0])
        return log_probs, state
