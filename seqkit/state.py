"""Recurrent state is a tensor or a (nested) tuple of tensors, batch first. Helpers to map over it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

State = torch.Tensor | tuple


class Shared:
    """A part of a state that every row shares and no step changes (an encoder's memory).

    The helpers below hand it on as it is, so beam search and exact enumeration, which reorder and
    repeat rows every step, never copy it per hypothesis. A row finds its part through an ordinary
    index tensor kept in the state beside it (that index is what they reorder).
    """

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"Shared({self.value!r})"


def map_state(fn: Callable[..., torch.Tensor], *states: State) -> State:
    """Apply ``fn`` leaf-wise to one or more states of the same structure (``Shared`` parts: the
    first state's, untouched)."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        return fn(*states)
    if isinstance(first, Shared):
        return first
    return tuple(map_state(fn, *parts) for parts in zip(*states))


def select_state(state: State, index: torch.Tensor) -> State:
    """Rows ``index`` of every tensor (reorders or repeats batch entries, as beam search needs)."""
    return map_state(lambda s: s.index_select(0, index), state)


def where_state(mask: torch.Tensor, new: State, old: State) -> State:
    """``new`` where ``mask`` (batch,) is true, ``old`` elsewhere: padding leaves a state unchanged."""
    def pick(n, o):
        return torch.where(mask.view(-1, *([1] * (n.dim() - 1))), n, o)
    return map_state(pick, new, old)
