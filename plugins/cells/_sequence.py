"""What the built-in cells share: the whole-sequence driver, kernel choice, init, kernel helpers.

A kernel runs the recurrence over a time-major projected input ``p`` (time, batch, gates) from
an initial state and returns the hidden sequence (time, batch, hidden) plus the state after
every step (a tensor or tuple of (time, batch, ...) tensors). Padding is handled here, not in
the kernels: sequences are padded at the end, so real outputs never see padding; the final
state is read at each sequence's last real step, and outputs past the end are zeroed.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from seqkit.nn import kernels
from seqkit.state import State, map_state

# cuDNN warns when an RNN's weights are not one flat buffer, as nn.LSTM keeps them: a cell owns
# its few small weight tensors, which cuDNN copies into one per call. A small cost, not a fault,
# and the warning would reach every GPU user of a built-in cell (the warning names the caller).
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous",
                        category=UserWarning, module=r"seqkit\.plugins\.cells\.")

Kernel = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]


def run_sequence(cell, inputs: torch.Tensor, state: State | None, lengths: torch.Tensor | None,
                 kernel: Kernel) -> tuple[torch.Tensor, State]:
    """``cell.forward`` for a cell with a whole-sequence ``kernel``: batch-first in and out."""
    batch, time = inputs.shape[:2]
    if state is None:
        state = cell.initial_state(batch, device=inputs.device, dtype=inputs.dtype)
    # Transposing the narrow input (not the wide projection) makes p time-major and contiguous.
    p = cell.project(inputs.transpose(0, 1))
    hidden, states = kernel(p, state)
    if lengths is None:
        return hidden.transpose(0, 1), map_state(lambda s: s[-1], states)
    lengths = lengths.to(inputs.device)
    last = (lengths - 1).clamp(min=0)
    started = (lengths > 0)

    def final(seq, initial):
        index = last.view(1, -1, *([1] * (seq.dim() - 2))).expand(1, *seq.shape[1:])
        picked = seq.gather(0, index).squeeze(0)
        return torch.where(started.view(-1, *([1] * (picked.dim() - 1))), picked, initial)

    valid = torch.arange(time, device=inputs.device).unsqueeze(1) < lengths.unsqueeze(0)
    hidden = torch.where(valid.unsqueeze(2), hidden, 0.0)
    return hidden.transpose(0, 1), map_state(final, states, state)


def add_torch_rnn_parameters(cell: nn.Module, gates: int) -> None:
    """weight_ih, weight_hh, bias_ih, bias_hh with ``gates`` blocks of hidden rows each: the
    names, shapes and initialisation of torch.nn.RNNCell (1), GRUCell (3) and LSTMCell (4)."""
    rows = gates * cell.hidden_size
    cell.weight_ih = nn.Parameter(torch.empty(rows, cell.input_size))
    cell.weight_hh = nn.Parameter(torch.empty(rows, cell.hidden_size))
    cell.bias_ih = nn.Parameter(torch.empty(rows))
    cell.bias_hh = nn.Parameter(torch.empty(rows))
    reset_uniform(cell, cell.hidden_size)


def reset_uniform(module: nn.Module, hidden_size: int) -> None:
    """torch.nn.RNN/LSTM/GRU initialisation: every parameter uniform in ±1/sqrt(hidden)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for parameter in module.parameters():
        nn.init.uniform_(parameter, -bound, bound)


def use_torch_kernel(cell, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> bool:
    """Whether to run torch's own fused kernel (nn.LSTM/GRU/RNN's) instead of seqkit's.

    ``cell.torch_kernel_devices`` names the device types where torch has a kernel for the cell;
    there the faster of the two for this shape is measured once per process
    (``seqkit.nn.kernels``). Padded batches take torch's too, through ``padded_for_torch_kernel``
    and ``read_at_lengths``.
    """
    if inputs.device.type not in cell.torch_kernel_devices:
        return False
    if _autocast_on(inputs.device.type):  # torch's kernel casts under autocast; seqkit's does not
        return True
    training = torch.is_grad_enabled() and cell.weight_hh.requires_grad
    batch, time, size = inputs.shape
    # Both kernels cost about the same per step beyond a few steps, and per row beyond some rows,
    # so a few steps of at most so many rows are measured: well under a second, shared by the
    # longer sequences and larger batches.
    steps = min(time, kernels.SEQUENCE_STEPS)
    span = f"time {steps}" if steps < kernels.SEQUENCE_STEPS else f"time >={steps}"
    rows, measured = kernels.batch_span(batch)
    key = (f"{type(cell).__name__} sequence | {inputs.device.type} {str(inputs.dtype).removeprefix('torch.')} | "
           f"input {size} hidden {cell.hidden_size} | {rows} {span}"
           f" | {'training' if training else 'inference'}{' padded' if lengths is not None else ''}")
    shape = (measured, steps, size)
    short = None if lengths is None else lengths[:measured].clamp(max=steps)
    candidates = {name: _stand_in_run(cell, shape, inputs, short, name, training) for name in ("own", "torch")}
    return kernels.choose(key, candidates, inputs.device) == "torch"


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _stand_in_run(cell, shape: tuple, like: torch.Tensor, lengths: torch.Tensor | None, kernel: str,
                  training: bool):
    """Run ``cell`` once with ``kernel`` on random inputs of ``shape`` (device and dtype ``like``'s),
    with the backward when it trains; the gradients are returned, not accumulated, so the cell is
    left as it was."""
    def run():
        generator = torch.Generator(device=like.device).manual_seed(0)
        x = torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
        with kernels.forced(kernel):
            if not training:
                return cell(x, None, lengths)
            x.requires_grad_(True)
            out, _ = cell(x, None, lengths)
            return torch.autograd.grad(out.sum(), [x, *cell.parameters()], allow_unused=True)
    return run


def stacked_weights(cells) -> list[torch.Tensor]:
    """Every cell's (weight_ih, weight_hh, bias_ih, bias_hh), layer after layer: the flat weight
    list torch's multi-layer fused kernels (torch.lstm, torch.gru, torch.rnn_tanh) take."""
    return [w for cell in cells for w in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]


# Added to a gate's pre-activation at padding steps: its sigmoid is then exactly 0 or 1 in every
# float dtype (exp(1e4) overflows even float64's range; 1e4 still fits float16), as long as the
# rest of the pre-activation stays far below 1e4 in size.
SATURATED = 1e4


def saturating_column(hidden_size: int, gates: int, saturated_gates: dict[int, float]) -> torch.Tensor:
    """(gates * hidden_size, 1): ``sign * SATURATED`` in the rows of each gate block of
    ``saturated_gates`` (block index -> -1 or +1), zero elsewhere; see ``padded_for_torch_kernel``."""
    column = torch.zeros(gates * hidden_size, 1)
    for gate, sign in saturated_gates.items():
        column[gate * hidden_size:(gate + 1) * hidden_size] = sign * SATURATED
    return column


def padded_for_torch_kernel(cell, inputs: torch.Tensor, lengths: torch.Tensor,
                            column: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, weight_ih) for running torch's fused kernel over a padded batch.

    Padding comes after each sequence's real steps, so torch's kernel gets every real output
    right; what it gets wrong is the final state, which it returns after the batch's last step
    only. The hidden state after a sequence's own last step is its output there
    (``read_at_lengths``). A state that is not an output (an LSTM's cell state) is held still over
    the padding instead: an extra input feature, 1 at padding and 0 elsewhere, is weighted by
    ``column`` (``saturating_column``), which sets some gates to exactly 0 or 1 there. An LSTM
    shuts its input gate and opens its forget gate, so the cell state after the last step is each
    sequence's own final one, bit for bit, and shuts its output gate, so its outputs at padding
    are exactly zero already. No gradient crosses a saturated gate.

    Padding inputs are zeroed, so that whatever they hold (a NaN) reaches no result. With
    ``column`` that happens outside autograd, in the new concatenated tensor: the kernel's
    gradient at padding positions is exactly zero anyway (every gate there is saturated, or
    multiplied by the shut input gate), so recording the zeroing would only cost a copy.
    """
    padding = (torch.arange(inputs.shape[1], device=inputs.device)
               >= lengths.to(inputs.device).unsqueeze(1)).unsqueeze(2)
    if column is None:
        return inputs.masked_fill(padding, 0.0), cell.weight_ih
    x = torch.cat([inputs, padding.to(inputs.dtype)], dim=2)
    x.detach()[..., :-1].masked_fill_(padding, 0.0)
    return x, torch.cat([cell.weight_ih, column.to(cell.weight_ih.dtype)], dim=1)


def read_at_lengths(outputs: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor,
                    zero_padding: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch's kernel's padded (batch, time, hidden) outputs -> (the outputs, zeroed at padding
    unless they are zero there already, and the hidden state after each sequence's last step:
    ``h0`` for a sequence of length 0)."""
    lengths = lengths.to(outputs.device)
    last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
    final = torch.where((lengths > 0).unsqueeze(1), outputs.gather(1, last).squeeze(1), h0)
    if zero_padding:
        valid = torch.arange(outputs.shape[1], device=outputs.device) < lengths.unsqueeze(1)
        outputs = torch.where(valid.unsqueeze(2), outputs, 0.0)
    return outputs, final


def outer_sum(d_pre: torch.Tensor, out: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """dW_hh = sum_t d_pre_t^T h_{t-1}, as ONE (gates, time*batch) x (time*batch, hidden) product.

    ``d_pre`` (time, batch, gates) holds the gradients of every step's recurrent product,
    ``out`` (time, batch, hidden) the hidden states, so h_{t-1} is ``out[t-1]`` or ``h0``.
    """
    first = d_pre[0].t().mm(h0)
    if d_pre.shape[0] == 1:
        return first
    return first.addmm_(d_pre[1:].flatten(0, 1).t(), out[:-1].flatten(0, 1))


# torch's own derivative kernels: grad (1 − y²) and grad y (1 − y) in one pass each.
tanh_backward = torch.ops.aten.tanh_backward.grad_input
sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input


def blocks(x: torch.Tensor, size: int) -> list[tuple[torch.Tensor, ...]]:
    """Per time step, the last dimension of ``x`` (time, ...) cut into blocks of ``size``: the
    views are made in a few calls up front rather than one slice per block per step."""
    return list(zip(*(block.unbind(0) for block in x.split(size, dim=-1))))
