"""The cell contract: one recurrent transition ``h_t, state = step(x_t, state)``."""
from __future__ import annotations

import torch
from torch import nn

from seqkit.state import State, where_state


class Cell(nn.Module):
    """Base class of every recurrent cell.

    A cell writes ``step(x_t, state) -> (h_t, new_state)`` with ``x_t`` of shape
    ``(batch, input_size)`` and ``h_t`` of shape ``(batch, hidden_size)``. A faster cell may
    instead split that into ``project`` (the input term, applied to every time step in one
    matrix product) and ``recur`` (the part that needs the previous state), and may override
    ``forward`` with a whole-sequence kernel or ``step`` with a fused one; ``forward``, ``step``
    and ``recur(project(x_t), state)`` must then all agree (``seqkit.testing.check_cell``).
    """

    # Optionally, a cell class runs one step through a stack of its own cells in one fused call:
    # ``stack_step(cells, x_t, states) -> (h_t of the last cell, new states)``, for inference (no
    # dropout between the cells). ``seqkit.Recurrent.step`` then measures it against stepping cell
    # by cell and takes the faster (seqkit.nn.kernels). None: cell by cell only.
    stack_step = None

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.step is Cell.step and cls.recur is Cell.recur:
            raise TypeError(f"{cls.__name__} must define step(x_t, state) or recur(p_t, state)")

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros of shape (batch, hidden). Cells with more state (LSTM) return a tuple."""
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the step that depends on the input only; hoisted over all time steps."""
        return x

    def recur(self, p_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step from the projected input ``project(x_t)``."""
        return self.step(p_t, state)

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step: ``(batch, input_size)`` and a state -> ``(batch, hidden_size)``, new state."""
        return self.recur(self.project(x_t), state)

    def forward(self, inputs: torch.Tensor, state: State | None = None,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """Run a whole batch-first sequence ``(batch, time, input_size)``.

        With ``lengths`` (batch,), steps past a sequence's end leave its state unchanged and
        its outputs zero, so padding never changes real outputs or the final state.
        """
        batch, time = inputs.shape[:2]
        if state is None:
            state = self.initial_state(batch, device=inputs.device, dtype=inputs.dtype)
        outputs = []
        valid = None if lengths is None else _valid_mask(lengths, time, inputs.device)
        for t, p_t in enumerate(self.project(inputs).unbind(1)):
            h_t, new_state = self.recur(p_t, state)
            if valid is not None:
                new_state = where_state(valid[t], new_state, state)
                h_t = torch.where(valid[t].unsqueeze(1), h_t, 0.0)
            outputs.append(h_t)
            state = new_state
        return torch.stack(outputs, 1), state


def _valid_mask(lengths: torch.Tensor, time: int, device) -> torch.Tensor:
    """(time, batch) booleans: is step t inside sequence b?"""
    steps = torch.arange(time, device=device).unsqueeze(1)
    return steps < lengths.to(device).unsqueeze(0)
