"""Stacked, optionally bidirectional recurrence over any cell, shaped like torch.nn.LSTM(batch_first=True)."""
from __future__ import annotations

import torch
from torch import nn

from seqkit.contracts.cell import Cell
from seqkit.nn import kernels
from seqkit.nn.dropout import Dropout
from seqkit.registry import get_registry
from seqkit.state import State


class Recurrent(nn.Module):
    """``layers`` of ``cell`` (a ``seqkit.Cell`` subclass or a registered cell name).

    ``forward(inputs, states=None, lengths=None)`` takes ``(batch, time, input_size)`` and returns
    ``(outputs, states)``: outputs ``(batch, time, hidden_size * directions)`` from the last layer,
    and a list with one final state per layer and direction (index ``layer * directions + d``).
    Dropout applies between layers, as in ``torch.nn.LSTM``. ``lengths`` (batch,) is a tensor
    or a list of ints, as torch.nn's ``pack_padded_sequence`` takes.
    """

    def __init__(self, cell: type[Cell] | str, input_size: int, hidden_size: int, layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False, **cell_options):
        super().__init__()
        if isinstance(cell, str):
            cell = get_registry().get("cell", cell)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.layers, self.bidirectional = layers, bidirectional
        self.directions = 2 if bidirectional else 1
        self.cells = nn.ModuleList(
            cell(input_size if layer == 0 else hidden_size * self.directions, hidden_size, **cell_options)
            for layer in range(layers)
            for _ in range(self.directions)
        )
        self.dropout = Dropout(dropout)
        self._fused_steps: dict[tuple, bool] = {}  # see _steps_fused

    def initial_states(self, batch_size: int, device=None, dtype=None) -> list[State]:
        return [c.initial_state(batch_size, device=device, dtype=dtype) for c in self.cells]

    def forward(self, inputs: torch.Tensor, states: list[State] | None = None,
                lengths: torch.Tensor | list[int] | tuple[int, ...] | None = None
                ) -> tuple[torch.Tensor, list[State]]:
        if lengths is not None and not torch.is_tensor(lengths):
            lengths = torch.as_tensor(lengths, dtype=torch.long)  # a list, as torch.nn's packing takes
        if states is None:
            states = [None] * len(self.cells)
        else:
            _check_states(states, len(self.cells), inputs.shape[0])
        finals, x = [], inputs
        for layer in range(self.layers):
            if layer:
                x = self.dropout(x)
            outputs = []
            for d in range(self.directions):
                k = layer * self.directions + d
                if d == 0:
                    out, final = self.cells[k](x, states[k], lengths)
                else:
                    out, final = self.cells[k](_reverse(x, lengths), states[k], lengths)
                    out = _reverse(out, lengths)
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if self.directions == 1 else torch.cat(outputs, dim=2)
        return x, finals

    def step(self, x_t: torch.Tensor, states: list[State]) -> tuple[torch.Tensor, list[State]]:
        """One time step through every layer (forward direction only: decoding is left to right).

        Cells whose class has a ``stack_step`` may take the step through all layers in one fused
        call instead, where that is faster on this machine for this shape (measured once,
        ``seqkit.nn.kernels``)."""
        if self.bidirectional:
            raise ValueError("a bidirectional Recurrent cannot be stepped one token at a time")
        if self._steps_fused(x_t):
            return type(self.cells[0]).stack_step(self.cells, x_t, states)
        return self._step_layers(x_t, states)

    def step_kernel(self, x_t: torch.Tensor) -> str:
        """Which kernel ``step`` takes for inputs like ``x_t`` (batch, input_size): "torch" (one fused
        call over every layer) or "own" (cell by cell); measured now if not yet."""
        return "torch" if self._steps_fused(x_t) else "own"

    def _step_layers(self, x_t: torch.Tensor, states: list[State]) -> tuple[torch.Tensor, list[State]]:
        new_states = []
        for layer, cell in enumerate(self.cells):
            if layer and self.training:  # identity in eval mode: decoding skips the call per token
                x_t = self.dropout(x_t)
            x_t, state = cell.step(x_t, states[layer])
            new_states.append(state)
        return x_t, new_states

    def _steps_fused(self, x_t: torch.Tensor) -> bool:
        # Decoding asks at every token: the answer is kept per batch size and setting (a few µs
        # that a batch-1 step would otherwise pay each time).
        setting = (x_t.shape[0], x_t.dtype, x_t.device, self.training, kernels.mode(), torch.get_num_threads())
        fused = self._fused_steps.get(setting)
        if fused is None:
            fused = self._fused_steps[setting] = self._choose_fused_step(x_t)
        return fused

    def _choose_fused_step(self, x_t: torch.Tensor) -> bool:
        cls = type(self.cells[0])
        if cls.stack_step is None or (self.training and self.dropout.p > 0) or x_t.dim() != 2:
            return False
        rows, batch = kernels.batch_span(x_t.shape[0])
        key = (f"{cls.__name__} step | {x_t.device.type} {str(x_t.dtype).removeprefix('torch.')} | layers "
               f"{self.layers} input {self.input_size} hidden {self.hidden_size} | {rows}")

        def stand_in(run):
            def once():
                x = torch.randn((batch, x_t.shape[1]), generator=torch.Generator(x_t.device).manual_seed(0),
                                device=x_t.device, dtype=x_t.dtype)
                with torch.no_grad():
                    return run(x, self.initial_states(batch, device=x_t.device, dtype=x_t.dtype))
            return once

        candidates = {"own": stand_in(self._step_layers),
                      "torch": stand_in(lambda x, s: cls.stack_step(self.cells, x, s))}
        return kernels.choose(key, candidates, x_t.device) == "torch"


def _check_states(states: list[State], count: int, batch: int) -> None:
    """Refuse initial states that do not fit the input, as torch.nn.LSTM does: a fused kernel may
    broadcast a state of another batch size silently."""
    if len(states) != count:
        raise ValueError(f"expected {count} initial states (one per layer and direction), got {len(states)}")
    for k, state in enumerate(states):
        for leaf in _leaves(state):
            if leaf.shape[0] != batch:
                raise ValueError(f"initial state {k} has batch size {leaf.shape[0]}, the input {batch}")


def _leaves(state):
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, tuple):
        for part in state:
            yield from _leaves(part)


def _reverse(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence in time within its own length (padding stays at the end)."""
    if lengths is None:
        return x.flip(1)
    batch, time = x.shape[:2]
    steps = torch.arange(time, device=x.device)
    lengths = lengths.to(x.device).unsqueeze(1)
    within = torch.where(steps < lengths, lengths - 1 - steps, steps)
    # Whole rows of features by one flat index: 3x faster than a gather, which reads an index per
    # element, forward and backward (benchmarks/translation.py's encoder reverses four times).
    rows = within + time * torch.arange(batch, device=x.device).unsqueeze(1)
    return x.reshape(batch * time, -1).index_select(0, rows.view(-1)).view(x.shape)
