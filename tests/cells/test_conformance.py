"""seqkit.testing.check_cell: every built-in passes, and each broken cell fails on its property."""
import pytest
import torch

import seqkit
from seqkit.contracts.cell import Cell
from seqkit.plugins.cells.gru import GRUCell
from seqkit.plugins.cells.lstm import LSTMCell
from seqkit.registry import get_registry
from seqkit.testing import check_cell


@pytest.mark.parametrize("name", get_registry().names("cell"))
def test_registered_cell_passes_the_conformance_kit(name):
    check_cell(get_registry().get("cell", name))


class Minimal(seqkit.Cell):
    """Only step(): the smallest cell a plugin author can write."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.input = torch.nn.Linear(input_size, hidden_size)
        self.recurrent = torch.nn.Linear(hidden_size, hidden_size, bias=False)

    def step(self, x_t, state):
        h = torch.tanh(self.input(x_t) + self.recurrent(state))
        return h, h


def test_step_only_cell_passes():
    check_cell(Minimal)


class NotBatchFirst(Minimal):
    def initial_state(self, batch_size, device=None, dtype=None):
        return torch.zeros(self.hidden_size, batch_size, device=device, dtype=dtype)


class MixesBatch(Minimal):
    def step(self, x_t, state):
        h, _ = super().step(x_t, state)
        h = h + h.mean(0, keepdim=True)
        return h, h


class MutatesState(Minimal):
    def step(self, x_t, state):
        h, _ = super().step(x_t, state)
        state.mul_(0.5)
        return h, h


class FastPathDisagrees(Minimal):
    def forward(self, inputs, state=None, lengths=None):
        outputs, final = super().forward(inputs, state, lengths)
        return outputs * 1.001, final


class UnusedParameter(Minimal):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.forgotten = torch.nn.Parameter(torch.ones(hidden_size))


class _DoubledGradTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return 2 * grad * (1 - y * y)


class WrongBackward(Minimal):
    def step(self, x_t, state):
        h = _DoubledGradTanh.apply(self.input(x_t) + self.recurrent(state))
        return h, h


class IgnoresPadding(Minimal):
    def forward(self, inputs, state=None, lengths=None):
        return super().forward(inputs, state)


class SplitDisagrees(GRUCell):
    """step and forward are the built-in GRU's fast paths; only the split is wrong (b_hn not scaled by r)."""

    def recur(self, p_t, h):
        p_r, p_z, p_n = p_t.chunk(3, dim=1)
        g_r, g_z, g_n = torch.mm(h, self.weight_hh.t()).chunk(3, dim=1)
        r, z = torch.sigmoid(p_r + g_r), torch.sigmoid(p_z + g_z)
        n = torch.tanh(p_n + r * g_n + self.bias_hh[2 * self.hidden_size:])
        h_t = n + z * (h - n)
        return h_t, h_t


@pytest.mark.parametrize("cell, prop", [
    (NotBatchFirst, "shapes and dtypes"),
    (MixesBatch, "batch independence"),
    (MutatesState, "state round trip"),
    (FastPathDisagrees, "step vs sequence"),
    (UnusedParameter, "gradients: parameter 'forgotten' got no gradient"),
    (WrongBackward, "gradients: gradients of forward\\(\\) disagree with finite differences"),
    (IgnoresPadding, "recurrent: padded row 1"),
    (SplitDisagrees, "project \\+ recur vs step: output of recur\\(project\\(x\\)\\[:, 0\\]\\)"),
])
def test_broken_cell_fails_naming_the_property(cell, prop):
    with pytest.raises(AssertionError, match=f"^{cell.__name__}: {prop}"):
        check_cell(cell)


class RecurIsAStub(LSTMCell):
    def recur(self, p_t, state):
        raise NotImplementedError("recur")


def test_a_cell_with_fast_paths_still_has_its_recur_run():
    with pytest.raises(NotImplementedError, match="recur"):
        check_cell(RecurIsAStub)


def test_rejects_what_is_not_a_cell():
    with pytest.raises(AssertionError, match="not a subclass of seqkit.Cell"):
        check_cell(torch.nn.GRUCell)


def test_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_cell(Minimal)
    assert torch.equal(torch.rand(3), expected)
    assert issubclass(Minimal, Cell)
