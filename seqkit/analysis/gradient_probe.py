"""How far back a cell's gradient reaches: ‖∂h_T/∂s_t‖ for every distance T − t, at initialisation.

The lecture's claim (12.2.3-12.2.4): through a tanh recurrence the derivative of a late output
with respect to an early state is a product of one Jacobian per step and shrinks geometrically
with distance; a residual connection or a gate keeps it. This module measures that for any cell
through its ``step`` (the one contract every cell keeps, third-party ones included): it runs
``length`` steps on random inputs, then takes the Jacobian of the last output h_T with respect
to the state s_t after each step t (the whole state: LSTM's (h, c) together), one row of it per
backward pass, and reports its Frobenius norm per distance, averaged over the batch and seeds.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from seqkit.state import State, map_state


@dataclass
class GradientCurve:
    cell: str
    norms: list[float]  # norms[d - 1]: mean ‖∂h_T/∂s_{T-d}‖_F over the batch and seeds, d = 1..T

    def at(self, distance: int) -> float | None:
        return self.norms[distance - 1] if 1 <= distance <= len(self.norms) else None

    def vanishing_distance(self, ratio: float = 1e-3) -> int | None:
        """The first distance where the norm is below ``ratio`` times its value at distance 1."""
        first = self.norms[0]
        return next((d for d, n in enumerate(self.norms, 1) if n < ratio * first), None)


class ProbeInputs(NamedTuple):
    """What ``seqkit probe gradients RUN`` differentiates, from ``Task.gradient_probe``: a
    recurrence ``step(x_t, state) -> (h_t, state)`` (a ``seqkit.Recurrent``'s, every layer), its
    starting ``state``, real ``inputs`` to it (batch, time, features), and ``last_loss(h_T)``, the
    loss of each row's last prediction (batch,)."""
    step: Callable
    state: State
    inputs: torch.Tensor
    last_loss: Callable[[torch.Tensor], torch.Tensor]


def _tensors(state: State) -> list[torch.Tensor]:
    return [state] if isinstance(state, torch.Tensor) else [t for s in state for t in _tensors(s)]


def jacobian_norms(step: Callable, state: State, inputs: torch.Tensor,
                   last_loss: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(time, batch) Frobenius norms of ∂h_T/∂s_{T-d} for d = 1..time (row d − 1: distance d),
    and with ``last_loss`` the norms of ∂L_T/∂s_{T-d}, L_T = last_loss(h_T).

    ``inputs`` is (batch, time, features); ``state`` is s_0, h_T the output of the last step.
    Each of the hidden-size backward passes gives one row of every Jacobian.
    """
    batch, time = inputs.shape[:2]
    state = map_state(lambda t: t.detach().requires_grad_(), state)
    states = [state]  # s_0 .. s_{T-1}: the states h_T is differentiated against
    for t, x_t in enumerate(inputs.unbind(1)):
        h_t, state = step(x_t, state)
        if t < time - 1:
            states.append(state)
    leaves = [_tensors(s) for s in states]
    flat = [t for group in leaves for t in group]

    def squared_norms(output: torch.Tensor) -> torch.Tensor:
        """(time, batch): for each state, the squared norm of each row's gradient of ``output``."""
        grads = iter(torch.autograd.grad(output, flat, retain_graph=True, allow_unused=True))
        squares = torch.zeros(time, batch, dtype=inputs.dtype, device=inputs.device)
        for t, group in enumerate(leaves):
            for _ in group:
                g = next(grads)
                if g is not None:  # a part of the state h_T does not depend on
                    squares[t] += g.reshape(batch, -1).pow(2).sum(1)
        return squares

    total = sum(squared_norms(h_t[:, unit].sum()) for unit in range(h_t.shape[1]))
    # states[t] is s_t, at distance T - t from h_T: distance 1 first
    loss = None if last_loss is None else squared_norms(last_loss(h_t).sum()).flip(0).sqrt()
    return total.flip(0).sqrt(), loss


def probe_cell(name: str, cell_cls, length: int, hidden_size: int, input_size: int, batch: int,
               seeds: int, cell_options: dict | None = None) -> GradientCurve:
    """The mean curve over ``seeds`` fresh cells (each seed: its own weights and inputs), in float64
    so that norms far below float32's range stay exact."""
    total = torch.zeros(length, dtype=torch.float64)
    for seed in range(seeds):
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # the cell's own initialisation
        cell = cell_cls(input_size, hidden_size, **(cell_options or {})).double()
        inputs = torch.randn(batch, length, input_size, generator=generator, dtype=torch.float64)
        state = cell.initial_state(batch, dtype=torch.float64)
        total += jacobian_norms(cell.step, state, inputs)[0].mean(1)
    norms = (total / seeds).tolist()
    return GradientCurve(name, [n if math.isfinite(n) else float("inf") for n in norms])


def probe_run(name: str, probe: ProbeInputs) -> tuple[GradientCurve, GradientCurve]:
    """A trained model's curves on its task's real inputs: ‖∂h_T/∂s_t‖ and ‖∂L_T/∂s_t‖."""
    state_norms, loss_norms = jacobian_norms(probe.step, probe.state, probe.inputs, probe.last_loss)
    return (GradientCurve(f"{name} h_T", state_norms.mean(1).tolist()),
            GradientCurve(f"{name} L_T", loss_norms.mean(1).tolist()))
