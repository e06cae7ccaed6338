"""Conformance checks for cell authors: one call in your own test suite.

    from seqkit.testing import check_cell

    def test_my_cell():
        check_cell(MyCell)                      # or check_cell(MyCell, some_option=3)

``check_cell(cell_cls, input_size=3, hidden_size=4, **cell_options)`` builds small instances of
the cell (in float64, so tolerances can be tight) and checks, in this order:

- ``shapes``: ``initial_state`` is batch first; ``step`` and ``forward`` return (batch, hidden)
  and (batch, time, hidden) outputs and states shaped like ``initial_state``, in the input dtype.
- ``state round trip``: the given state is not modified; running two halves, passing the state
  on, equals running the whole; an explicit ``initial_state`` equals passing ``None``.
- ``batch independence``: each batch row's result is the one it gets alone.
- ``step vs sequence``: stepping with ``step`` equals ``forward`` (outputs and final state).
- ``project + recur vs step``: ``recur`` on the hoisted ``project(x)`` equals ``step`` at every
  step, so a cell whose ``step`` or ``forward`` is a separate fast path keeps its split right
  (a cell that defines only ``step`` passes trivially: its ``recur`` is ``step``).
- ``gradients``: every parameter and the first time step of the input get a finite, nonzero
  gradient, and gradients of ``forward`` (with and without padding) match finite differences.
- ``recurrent``: inside ``seqkit.Recurrent`` with 2 layers, dropout and both directions, a padded
  batch gives each sequence exactly what it gets alone (outputs and final states, both
  directions), padding outputs are zero, and ``Recurrent.step`` matches ``forward``.
- ``save/load``: a ``torch.save``/``torch.load`` round trip of the state dict reproduces outputs.
- ``cuda`` (only when CUDA is available): the same outputs on the GPU as on the CPU (float32,
  TF32 off), final states and gradients on the GPU.

A failed check raises ``AssertionError`` whose message starts with the cell and the property.
The global random state is left as it was.
"""
from __future__ import annotations

import io

import torch

from seqkit.contracts.cell import Cell
from seqkit.nn.recurrent import Recurrent
from seqkit.state import State, map_state

_TOLERANCE = 1e-8  # float64 throughout


def check_cell(cell_cls: type[Cell], input_size: int = 3, hidden_size: int = 4, **cell_options) -> None:
    """Run every conformance check on ``cell_cls``; raise AssertionError naming the first failure."""
    if not (isinstance(cell_cls, type) and issubclass(cell_cls, Cell)):
        raise AssertionError(f"{cell_cls!r} is not a subclass of seqkit.Cell")
    name = cell_cls.__name__
    make = _Factory(cell_cls, input_size, hidden_size, cell_options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for check in (_shapes, _state_round_trip, _batch_independence, _step_vs_sequence,
                      _split_vs_step, _gradients, _recurrent, _save_load, _cuda):
            try:
                check(make)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {check.__doc__.strip()}: {exc}") from None


class _Factory:
    """Fresh float64 instances of the cell under test, and inputs for it."""

    def __init__(self, cls, input_size, hidden_size, options):
        self.cls, self.input_size, self.hidden_size, self.options = cls, input_size, hidden_size, options

    def cell(self) -> Cell:
        return self.cls(self.input_size, self.hidden_size, **self.options).double()

    def recurrent(self, **kwargs) -> Recurrent:
        return Recurrent(self.cls, self.input_size, self.hidden_size, **kwargs, **self.options).double()

    def inputs(self, batch=3, time=5, requires_grad=False) -> torch.Tensor:
        return torch.randn(batch, time, self.input_size, dtype=torch.float64, requires_grad=requires_grad)

    def state(self, cell: Cell, batch=3) -> State:
        """A random state shaped like the cell's initial state (zeros would hide bugs)."""
        return map_state(lambda s: torch.randn_like(s) * 0.5, cell.initial_state(batch, dtype=torch.float64))


def _leaves(state: State) -> list[torch.Tensor]:
    return [state] if isinstance(state, torch.Tensor) else [t for part in state for t in _leaves(part)]


def _same_structure(a: State, b: State) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
    return len(a) == len(b) and all(_same_structure(x, y) for x, y in zip(a, b))


def _assert_close(actual, expected, what: str, tolerance: float = _TOLERANCE) -> None:
    actual, expected = _leaves(actual), _leaves(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} tensors, expected {len(expected)}"
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, f"{what}: shape {tuple(a.shape)}, expected {tuple(e.shape)}"
        error = (a.detach().cpu() - e.detach().cpu()).abs().max().item() if a.numel() else 0.0
        assert error <= tolerance, f"{what}: differs by {error:.2e} (tolerance {tolerance:.0e})"


def _run_steps(cell: Cell, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
    outputs = []
    for x_t in x.unbind(1):
        h_t, state = cell.step(x_t, state)
        outputs.append(h_t)
    return torch.stack(outputs, 1), state


def _shapes(make: _Factory) -> None:
    """shapes and dtypes"""
    cell, batch, time = make.cell(), 3, 5
    state = cell.initial_state(batch, dtype=torch.float64)
    for leaf in _leaves(state):
        assert leaf.shape[0] == batch, f"initial_state leaf of shape {tuple(leaf.shape)} is not batch first"
        assert leaf.dtype == torch.float64, f"initial_state ignored dtype=float64 (got {leaf.dtype})"
    h_t, new_state = cell.step(make.inputs(batch, 1)[:, 0], state)
    assert h_t.shape == (batch, make.hidden_size), f"step output shape {tuple(h_t.shape)}"
    assert h_t.dtype == torch.float64, f"step output dtype {h_t.dtype} for float64 input"
    assert _same_structure(new_state, state), "step returned a state shaped unlike initial_state"
    outputs, final = cell(make.inputs(batch, time))
    assert outputs.shape == (batch, time, make.hidden_size), f"forward output shape {tuple(outputs.shape)}"
    assert outputs.dtype == torch.float64, f"forward output dtype {outputs.dtype} for float64 input"
    assert _same_structure(final, state), "forward returned a final state shaped unlike initial_state"
    single = make.cls(make.input_size, make.hidden_size, **make.options)  # default float32
    assert single(make.inputs(batch, time).float())[0].dtype == torch.float32, "float32 input gave another dtype"


def _batch_independence(make: _Factory) -> None:
    """batch independence"""
    cell = make.cell()
    x, state = make.inputs(4, 5), make.state(cell, 4)
    outputs, final = cell(x, state)
    for b in range(4):
        row_state = map_state(lambda s: s[b:b + 1], state)
        alone, alone_final = cell(x[b:b + 1], row_state)
        _assert_close(alone, outputs[b:b + 1], f"row {b} output alone vs in a batch of 4")
        _assert_close(alone_final, map_state(lambda s: s[b:b + 1], final), f"row {b} final state")


def _state_round_trip(make: _Factory) -> None:
    """state round trip"""
    cell = make.cell()
    x, state = make.inputs(3, 6), make.state(cell)
    kept = map_state(torch.clone, state)
    whole, whole_final = cell(x, state)
    _assert_close(state, kept, "forward modified the state it was given")
    first, middle = cell(x[:, :2], state)
    second, final = cell(x[:, 2:], middle)
    _assert_close(torch.cat([first, second], 1), whole, "outputs of two halves vs the whole sequence")
    _assert_close(final, whole_final, "final state of two halves vs the whole sequence")
    default, _ = cell(x)
    explicit, _ = cell(x, cell.initial_state(3, dtype=torch.float64))
    _assert_close(explicit, default, "explicit initial_state vs state=None")


def _step_vs_sequence(make: _Factory) -> None:
    """step vs sequence"""
    cell = make.cell()
    x, state = make.inputs(3, 6), make.state(cell)
    outputs, final = cell(x, state)
    stepped, stepped_final = _run_steps(cell, x, state)
    _assert_close(stepped, outputs, "outputs of step() one at a time vs forward()")
    _assert_close(stepped_final, final, "final state of step() vs forward()")


def _split_vs_step(make: _Factory) -> None:
    """project + recur vs step"""
    cell = make.cell()
    x, state = make.inputs(3, 6), make.state(cell)
    projected = cell.project(x).unbind(1)  # hoisted over the whole sequence, as forward does
    split_state, step_state = state, state
    for t, x_t in enumerate(x.unbind(1)):
        h_split, split_state = cell.recur(projected[t], split_state)
        h_step, step_state = cell.step(x_t, step_state)
        _assert_close(h_split, h_step, f"output of recur(project(x)[:, {t}]) vs step(x[:, {t}])")
        _assert_close(split_state, step_state, f"state after recur vs step at time {t}")


def _gradients(make: _Factory) -> None:
    """gradients"""
    cell = make.cell()
    x = make.inputs(3, 5, requires_grad=True)
    outputs, final = cell(x)
    loss = (outputs * torch.randn_like(outputs)).sum() + sum(leaf.sum() for leaf in _leaves(final))
    loss.backward()
    for name, parameter in cell.named_parameters():
        grad = parameter.grad
        assert grad is not None, f"parameter '{name}' got no gradient"
        assert torch.isfinite(grad).all(), f"parameter '{name}' has a non-finite gradient"
        assert grad.abs().sum() > 0, f"parameter '{name}' has an all-zero gradient"
    assert x.grad[:, 0].abs().sum() > 0, "the first time step of the input gets no gradient"

    small_x = make.inputs(2, 3, requires_grad=True)
    state = map_state(lambda s: s.requires_grad_(), make.state(cell, 2))
    names = [n for n, _ in cell.named_parameters()]
    parameters = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    for lengths in (None, torch.tensor([3, 1])):
        def run(x_, *rest):
            values = dict(zip(names, rest[:len(names)]))
            start = _rebuild(state, list(rest[len(names):]))
            out, end = torch.func.functional_call(cell, values, (x_, start, lengths))
            return (out, *_leaves(end))
        ok = torch.autograd.gradcheck(run, (small_x, *parameters, *_leaves(state)), raise_exception=False)
        padded = "" if lengths is None else " with padding"
        assert ok, f"gradients of forward(){padded} disagree with finite differences"


def _rebuild(like: State, leaves: list[torch.Tensor]) -> State:
    """A state shaped like ``like`` from a flat list of tensors (consumed in order)."""
    if isinstance(like, torch.Tensor):
        return leaves.pop(0)
    return tuple(_rebuild(part, leaves) for part in like)


def _recurrent(make: _Factory) -> None:
    """recurrent"""
    model = make.recurrent(layers=2, dropout=0.3, bidirectional=True)
    x, lengths = make.inputs(3, 6), torch.tensor([6, 3, 1])
    model.train()
    outputs, _ = model(x, lengths=lengths)
    assert outputs.shape == (3, 6, 2 * make.hidden_size), f"bidirectional output shape {tuple(outputs.shape)}"
    model.eval()
    x_padded = x.clone()
    for b, length in enumerate(lengths.tolist()):
        x_padded[b, length:] = 1e3  # padding content must not matter
    outputs, finals = model(x_padded, lengths=lengths)
    assert len(finals) == 4, f"{len(finals)} final states for 2 layers x 2 directions"
    for b, length in enumerate(lengths.tolist()):
        alone, alone_finals = model(x[b:b + 1, :length])
        _assert_close(outputs[b:b + 1, :length], alone, f"padded row {b} (length {length}) outputs")
        for k, (final, final_alone) in enumerate(zip(finals, alone_finals)):
            _assert_close(map_state(lambda s: s[b:b + 1], final), final_alone,
                          f"padded row {b} final state of layer {k // 2} direction {k % 2}")
        assert (outputs[b, length:] == 0).all(), f"padded row {b}: outputs past its length are not zero"

    forward_only = make.recurrent(layers=2)
    x = make.inputs(3, 5)
    states = forward_only.initial_states(3, dtype=torch.float64)
    outputs, finals = forward_only(x, states)
    stepped = []
    for x_t in x.unbind(1):
        h_t, states = forward_only.step(x_t, states)
        stepped.append(h_t)
    _assert_close(torch.stack(stepped, 1), outputs, "Recurrent.step one at a time vs Recurrent.forward")
    _assert_close(states, finals, "final states of Recurrent.step vs Recurrent.forward")


def _save_load(make: _Factory) -> None:
    """save/load"""
    model = make.recurrent(layers=2).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = make.recurrent(layers=2).eval()
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    x = make.inputs()
    _assert_close(loaded(x)[0], model(x)[0], "outputs after a torch.save/torch.load round trip")


def _cuda(make: _Factory) -> None:
    """cuda"""
    if not torch.cuda.is_available():
        return
    cpu = make.recurrent(layers=2, bidirectional=True).float()
    gpu = make.recurrent(layers=2, bidirectional=True).float()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()
    x, lengths = make.inputs(3, 6).float(), torch.tensor([6, 2, 4])
    expected, _ = cpu(x, lengths=lengths)
    # TF32 (on by default for cuDNN's RNNs) rounds inputs to 10 bits: a precision users choose,
    # compared here with it off.
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            actual, finals = gpu(x.cuda(), lengths=lengths.cuda())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    _assert_close(actual, expected, "float32 outputs on CUDA vs CPU", tolerance=1e-4)
    assert all(leaf.is_cuda for f in finals for leaf in _leaves(f)), "final states left the GPU"
    actual.sum().backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in gpu.parameters()), "no gradients on CUDA"
