"""The bridge: the translation decoder's initial states from the encoder's final states.

* ``zero``: the decoder starts from its cells' own initial states (zeros); the source reaches it
  through the context only (attention, or the fixed context C).
* ``last``: decoder layer l starts from encoder layer l's final state as it is, its two directions
  (if bidirectional) concatenated tensor by tensor: an LSTM's [h_fwd; h_bwd] and [c_fwd; c_bwd].
  It needs as many decoder layers as encoder layers and decoder states shaped like those
  concatenations: the same kind of state (a GRU's h cannot start an LSTM's (h, c)) and a decoder
  hidden size of the encoder's hidden size times its directions.
* ``linear`` (any sizes, cells and layer counts): every tensor s of decoder layer l's state is
  tanh(W_s x + b_s), where x concatenates every tensor of the final state of encoder layer
  l + E - D (E encoder and D decoder layers: the layers aligned at the top), clipped to
  [0, E - 1], forward direction first (an LSTM's [h_fwd; c_fwd; h_bwd; c_bwd]). A decoder
  shallower than its encoder starts from the encoder's top layers, which have read the most; a
  deeper one starts its extra bottom layers from the encoder's bottom layer.
"""
from __future__ import annotations

import torch
from torch import nn

from seqkit import Recurrent
from seqkit.state import State, map_state

BRIDGES = ("linear", "zero", "last")


class Bridge(nn.Module):
    """``forward(finals, decoder)``: the initial states of ``decoder`` (one per layer) from the
    encoder's final states (``Recurrent``'s list, one per layer and direction)."""

    def __init__(self, kind: str, encoder: Recurrent, decoder: Recurrent):
        super().__init__()
        if kind not in BRIDGES:
            raise ValueError(f"bridge must be one of {', '.join(BRIDGES)}; got {kind!r}")
        self.kind, self.directions = kind, encoder.directions
        # The layout of every state, read from the cells themselves on the meta device (no memory).
        encoder_states = [cell.initial_state(1, device="meta") for cell in encoder.cells]
        self.templates = [cell.initial_state(1, device="meta") for cell in decoder.cells]
        encoder_layers = [self._join(encoder_states, layer) for layer in range(encoder.layers)]
        if kind == "last":
            _check_last(encoder_layers, self.templates)
        if kind == "linear":
            # maps[l][k]: tensor k of decoder layer l from the whole final state of its encoder layer
            self.maps = nn.ModuleList(
                nn.ModuleList(nn.Linear(sum(leaf[0].numel() for leaf in _leaves(source)), leaf[0].numel())
                              for leaf in _leaves(template))
                for template, source in ((t, encoder_layers[_source_layer(l, encoder.layers, decoder.layers)])
                                         for l, t in enumerate(self.templates)))

    def forward(self, finals: list[State], decoder: Recurrent) -> list[State]:
        some = _leaves(finals[0])[0]
        batch = some.shape[0]
        if self.kind == "zero":
            return decoder.initial_states(batch, device=some.device, dtype=some.dtype)
        layers = len(finals) // self.directions
        if self.kind == "last":
            return [self._join(finals, layer) for layer in range(layers)]
        states = []
        for layer, (template, maps) in enumerate(zip(self.templates, self.maps)):
            source = _source_layer(layer, layers, len(self.templates)) * self.directions
            x = torch.cat([leaf.flatten(1) for state in finals[source:source + self.directions]
                           for leaf in _leaves(state)], 1)
            new = iter([torch.tanh(linear(x)).view(batch, *leaf.shape[1:])
                        for linear, leaf in zip(maps, _leaves(template))])
            states.append(map_state(lambda _: next(new), template))
        return states

    def _join(self, finals: list[State], layer: int) -> State:
        """A layer's final state with its directions concatenated tensor by tensor."""
        parts = finals[layer * self.directions:(layer + 1) * self.directions]
        return parts[0] if len(parts) == 1 else map_state(lambda *leaves: torch.cat(leaves, -1), *parts)


def _source_layer(layer: int, encoder_layers: int, decoder_layers: int) -> int:
    """The encoder layer whose final state starts decoder ``layer`` (linear): aligned at the top."""
    return min(max(layer + encoder_layers - decoder_layers, 0), encoder_layers - 1)


def _check_last(encoder_layers: list[State], templates: list[State]) -> None:
    if len(encoder_layers) != len(templates):
        raise ValueError(f"bridge='last' starts each decoder layer from the same encoder layer, so it "
                         f"needs as many decoder layers ({len(templates)}) as encoder layers "
                         f"({len(encoder_layers)}); use bridge='linear' or 'zero'")
    for layer, (source, target) in enumerate(zip(encoder_layers, templates)):
        if _layout(source) != _layout(target):
            raise ValueError(
                f"bridge='last' hands encoder layer {layer}'s final state to decoder layer {layer} as it "
                f"is, so their shapes must match: the encoder's is {_layout(source)} (directions "
                f"concatenated), the decoder's {_layout(target)}; use the same kind of cell with "
                f"decoder_hidden_size = hidden_size x directions, or bridge='linear'")


def _leaves(state: State) -> list[torch.Tensor]:
    """The state's tensors in order (``map_state``'s order)."""
    if isinstance(state, torch.Tensor):
        return [state]
    return [leaf for part in state for leaf in _leaves(part)]


def _layout(state: State):
    """The per-row shape of every tensor of a state, in its nesting: ((4,), (4,)) for an LSTM."""
    if isinstance(state, torch.Tensor):
        return tuple(state.shape[1:])
    return tuple(_layout(part) for part in state)
