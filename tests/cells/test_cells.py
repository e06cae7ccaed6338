"""The built-in cells: registered as plugins, the lecture's equations, and torch.nn equivalence."""
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit import Recurrent
from seqkit.registry import get_registry

CELLS = ["gated", "gru", "lstm", "residual", "tanh"]
TORCH_MODULES = {"tanh": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def cell_class(name):
    return get_registry().get("cell", name)


def test_every_lecture_cell_is_a_builtin_plugin():
    registry = get_registry()
    assert set(CELLS) <= set(registry.names("cell"))
    for name in CELLS:
        owner = registry.owner("cell", name)
        assert owner == f"seqkit.plugins.cells.{name}"
        assert registry.plugins[owner].source == "built-in"


def torch_parameters(recurrent: Recurrent, module: nn.RNNBase) -> list[nn.Parameter]:
    """``module``'s parameters in the order of ``recurrent.parameters()``: nn.LSTM's
    weight_ih_l1_reverse is cell 1*2+1's weight_ih (the names are torch's)."""
    matched = []
    for k, cell in enumerate(recurrent.cells):
        layer, direction = divmod(k, recurrent.directions)
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        matched += [getattr(module, name + suffix) for name, _ in cell.named_parameters()]
    return matched


def copy_torch_weights(recurrent: Recurrent, module: nn.RNNBase) -> None:
    with torch.no_grad():
        for parameter, reference in zip(recurrent.parameters(), torch_parameters(recurrent, module)):
            parameter.copy_(reference)


def torch_states(states, name, directions_layers):
    """seqkit's list of per-layer states -> torch's stacked (layers*directions, batch, hidden)."""
    if name == "lstm":
        return tuple(torch.stack([s[i] for s in states]) for i in range(2))
    return torch.stack(states)


def use_kernel(monkeypatch, torch_kernel: bool) -> None:
    """Force torch's fused kernel or seqkit's own, as SEQKIT_KERNEL does for users."""
    monkeypatch.setenv("SEQKIT_KERNEL", "torch" if torch_kernel else "own")


@pytest.mark.parametrize("torch_kernel", [False, True], ids=["seqkit-kernel", "torch-kernel"])
@pytest.mark.parametrize("name", sorted(TORCH_MODULES))
def test_matches_torch_nn_multilayer_bidirectional(name, torch_kernel, monkeypatch):
    torch.manual_seed(0)
    batch, time, inputs, hidden, layers = 4, 7, 5, 6, 2
    reference = TORCH_MODULES[name](inputs, hidden, num_layers=layers, bidirectional=True,
                                    batch_first=True).double()
    model = Recurrent(name, inputs, hidden, layers=layers, bidirectional=True).double()
    copy_torch_weights(model, reference)
    use_kernel(monkeypatch, torch_kernel)
    x = torch.randn(batch, time, inputs, dtype=torch.float64, requires_grad=True)
    states = [model.cells[0].initial_state(batch, dtype=torch.float64) for _ in range(2 * layers)]
    states = [tuple(torch.randn_like(s) for s in st) if isinstance(st, tuple) else torch.randn_like(st)
              for st in states]

    outputs, finals = model(x, states)
    expected, expected_finals = reference(x, torch_states(states, name, layers))
    torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch_states(finals, name, layers), expected_finals, rtol=0, atol=1e-12)

    weights = torch.randn_like(outputs)
    (seqkit_grad_x,) = torch.autograd.grad((outputs * weights).sum(), x)
    reference_grad_x, = torch.autograd.grad((expected * weights).sum(), x)
    torch.testing.assert_close(seqkit_grad_x, reference_grad_x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(TORCH_MODULES))
def test_weight_gradients_match_torch_nn(name, monkeypatch):
    torch.manual_seed(1)
    reference = TORCH_MODULES[name](3, 5, batch_first=True).double()
    model = Recurrent(name, 3, 5).double()
    copy_torch_weights(model, reference)
    use_kernel(monkeypatch, False)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    weights = torch.randn(2, 6, 5, dtype=torch.float64)
    (model(x)[0] * weights).sum().backward()
    (reference(x)[0] * weights).sum().backward()
    for name_, parameter in model.cells[0].named_parameters():
        torch.testing.assert_close(parameter.grad, getattr(reference, name_ + "_l0").grad,
                                   rtol=0, atol=1e-12, msg=lambda m: f"{name_}: {m}")


@pytest.mark.parametrize("torch_kernel", [False, True], ids=["seqkit-kernel", "torch-kernel"])
@pytest.mark.parametrize("name", sorted(TORCH_MODULES))
def test_padded_batch_matches_torch_packed_sequence(name, torch_kernel, monkeypatch):
    torch.manual_seed(2)
    reference = TORCH_MODULES[name](4, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    model = Recurrent(name, 4, 5, layers=2, bidirectional=True).double()
    copy_torch_weights(model, reference)
    use_kernel(monkeypatch, torch_kernel)
    x, lengths = torch.randn(3, 6, 4, dtype=torch.float64), torch.tensor([6, 2, 4])
    outputs, finals = model(x, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected_packed, expected_finals = reference(packed)
    expected, _ = pad_packed_sequence(expected_packed, batch_first=True, total_length=6)
    torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch_states(finals, name, 2), expected_finals, rtol=0, atol=1e-12)


@pytest.mark.parametrize("torch_kernel", [False, True], ids=["seqkit-kernel", "torch-kernel"])
@pytest.mark.parametrize("name", sorted(TORCH_MODULES))
def test_padded_batch_gradients_match_torch_packed_sequence(name, torch_kernel, monkeypatch):
    """Gradients through padded outputs AND final states (for lstm, the cell state too) reach
    the input, the initial states and every weight exactly as through torch's packed path."""
    torch.manual_seed(6)
    reference = TORCH_MODULES[name](4, 5, num_layers=2, bidirectional=True, batch_first=True).double()
    model = Recurrent(name, 4, 5, layers=2, bidirectional=True).double()
    copy_torch_weights(model, reference)
    use_kernel(monkeypatch, torch_kernel)
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    h0 = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    initial = [(h0[k], c0[k]) if name == "lstm" else h0[k] for k in range(4)]
    outputs, finals = model(x, initial, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected_packed, expected_finals = reference(packed, (h0, c0) if name == "lstm" else h0)
    expected, _ = pad_packed_sequence(expected_packed, batch_first=True, total_length=6)

    def loss(outputs, finals):
        weights = torch.arange(outputs.numel(), dtype=torch.float64).view_as(outputs).cos()
        finals = finals if isinstance(finals, tuple) else (finals,)
        return (outputs * weights).sum() + sum((f.sin() * (i + 2)).sum() for i, f in enumerate(finals))

    inputs = [x, h0, c0] if name == "lstm" else [x, h0]
    got = torch.autograd.grad(loss(outputs, torch_states(finals, name, 2)), inputs + list(model.parameters()))
    want = torch.autograd.grad(loss(expected, expected_finals),
                               inputs + torch_parameters(model, reference))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kernel", ["torch", "own"])
def test_padded_lstm_batches_run_the_kernel_chosen(monkeypatch, kernel):
    """A tagger's padded batches can take torch's fused LSTM on CPU, as unpadded ones can (seqkit's
    kernel took 1.5-2x its time at a tagger's 32 sentences x 128 units on one machine)."""
    calls = []
    fused = torch.lstm
    monkeypatch.setattr(torch, "lstm", lambda *args: calls.append(args[0].shape) or fused(*args))
    use_kernel(monkeypatch, kernel == "torch")
    Recurrent("lstm", 3, 4, bidirectional=True)(torch.randn(2, 5, 3), lengths=torch.tensor([5, 2]))
    assert len(calls) == (2 if kernel == "torch" else 0)  # one per direction


@pytest.mark.parametrize("torch_kernel", [False, True], ids=["seqkit-kernel", "torch-kernel"])
@pytest.mark.parametrize("name", CELLS)
def test_whatever_padding_holds_never_reaches_outputs_or_final_states(name, torch_kernel, monkeypatch):
    """NaN or inf at padding positions leave outputs and final states exactly as zeros there do,
    and a sequence of length 0 keeps its initial state (torch's kernel holds an LSTM's cell state
    still over the padding: a NaN there must not reach it)."""
    torch.manual_seed(3)
    model = Recurrent(name, 3, 4, bidirectional=True).double()
    use_kernel(monkeypatch, torch_kernel)
    lengths = torch.tensor([5, 2, 0, 3])
    padding = (torch.arange(5) >= lengths.unsqueeze(1)).unsqueeze(2)
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    initial = [tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)
               for state in model.initial_states(4, dtype=torch.float64)]
    clean, clean_finals = model(x.masked_fill(padding, 0.0), initial, lengths=lengths)
    for fill in (float("nan"), float("inf")):
        outputs, finals = model(x.masked_fill(padding, fill), initial, lengths=lengths)
        assert torch.equal(outputs, clean)
        for final, expected, start in zip(finals, clean_finals, initial):
            for got, want, first in zip(*(s if isinstance(s, tuple) else (s,) for s in (final, expected, start))):
                assert torch.equal(got, want)
                assert torch.equal(got[2], first[2])  # length 0: the initial state


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("name", sorted(TORCH_MODULES))
def test_float32_seqkit_kernel_matches_torch_nn(name, padded, monkeypatch):
    """seqkit's own kernels (forced on: on CPU an LSTM would run torch's) in float32, at
    training size, against nn.LSTM/GRU/RNN: outputs and final states within 1e-6 (they are about
    1e-7 apart), gradients within 1e-5 of the largest gradient entry (about 1e-6 apart: each sums
    over 240 steps and rows)."""
    torch.manual_seed(7)
    reference = TORCH_MODULES[name](16, 64, num_layers=2, bidirectional=True, batch_first=True)
    model = Recurrent(name, 16, 64, layers=2, bidirectional=True)
    copy_torch_weights(model, reference)
    use_kernel(monkeypatch, False)
    x = torch.randn(8, 30, 16, requires_grad=True)
    if padded:
        lengths = torch.tensor([30, 7, 19, 1, 30, 12, 25, 3])
        outputs, finals = model(x, lengths=lengths)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        expected_packed, expected_finals = reference(packed)
        expected, _ = pad_packed_sequence(expected_packed, batch_first=True, total_length=30)
    else:
        outputs, finals = model(x)
        expected, expected_finals = reference(x)
    finals = torch_states(finals, name, 2)
    torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(finals, expected_finals, rtol=0, atol=1e-6)

    weights = torch.randn_like(outputs)

    def loss(outputs, finals):
        finals = finals if isinstance(finals, tuple) else (finals,)
        return (outputs * weights).sum() + sum(f.sum() for f in finals)

    got = torch.autograd.grad(loss(outputs, finals), [x, *model.parameters()])
    want = torch.autograd.grad(loss(expected, expected_finals), [x, *torch_parameters(model, reference)])
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-5 * w.abs().max().item())


@pytest.mark.parametrize("name", ["lstm", "gru", "tanh"])
def test_torch_cell_state_dict_loads_directly(name):
    torch_cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "tanh": nn.RNNCell}[name](3, 4).double()
    cell = cell_class(name)(3, 4).double()
    cell.load_state_dict(torch_cell.state_dict())
    x = torch.randn(2, 3, dtype=torch.float64)
    state = cell.initial_state(2, dtype=torch.float64)
    h, _ = cell.step(x, state)
    expected = torch_cell(x, state)
    expected = expected[0] if name == "lstm" else expected
    torch.testing.assert_close(h, expected, rtol=0, atol=1e-12)


def lecture_step(name, cell, x, h):
    """The lecture's equations (12.2.1, 12.2.4) written out with W1..W4 and b, b'."""
    hidden = cell.hidden_size
    if name in ("tanh", "residual"):
        w1, w2, b = cell.weight_ih, cell.weight_hh, cell.bias_ih + cell.bias_hh
        new = torch.tanh(x @ w1.T + h @ w2.T + b)
        return h + new if name == "residual" else new
    w1, w3 = cell.weight_ih[:hidden], cell.weight_ih[hidden:]
    w2, w4 = cell.weight_hh[:hidden], cell.weight_hh[hidden:]
    b, b_gate = cell.bias[:hidden], cell.bias[hidden:]
    lam = torch.sigmoid(h @ w4.T + x @ w3.T + b_gate)
    return lam * h + (1 - lam) * torch.tanh(x @ w1.T + h @ w2.T + b)


@pytest.mark.parametrize("name", ["tanh", "residual", "gated"])
def test_lecture_equations(name):
    torch.manual_seed(3)
    cell = cell_class(name)(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h = torch.randn(2, 4, dtype=torch.float64)
    outputs, final = cell(x, h)
    for t in range(5):
        h = lecture_step(name, cell, x[:, t], h)
        torch.testing.assert_close(outputs[:, t], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(final, h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_float32_kernel_agrees_with_step_at_training_size(name):
    """The fast whole-sequence path in float32, at a size where it matters, against step()."""
    torch.manual_seed(4)
    model = Recurrent(name, 16, 64)
    cell = model.cells[0]
    x = torch.randn(8, 30, 16)
    outputs, final = model(x)
    state = cell.initial_state(8)
    for t in range(30):
        h, state = cell.step(x[:, t], state)
        torch.testing.assert_close(outputs[:, t], h, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(final[0], state, rtol=1e-4, atol=1e-5)


def test_residual_cell_keeps_gradient_alive_over_long_sequences():
    """The point of 12.2.4: the identity path carries gradient to early steps where tanh loses it."""
    torch.manual_seed(5)
    norms = {}
    for name in ("tanh", "residual"):
        cell = cell_class(name)(4, 16)
        with torch.no_grad():
            cell.weight_hh.mul_(0.3)
        x = torch.randn(1, 60, 4, requires_grad=True)
        outputs, _ = cell(x)
        outputs[:, -1].sum().backward()
        norms[name] = x.grad[0, 0].norm().item()
    assert norms["residual"] > 100 * norms["tanh"]


def test_cudnns_weight_layout_warning_is_silenced_for_built_in_cells_only():
    # cuDNN warns on every call of torch's RNN kernels with weights that are not one flat buffer
    # (a GPU-only path): the warning names the calling frame's module, which decides who sees it.
    # A fresh interpreter: pytest restores the warning filters after each test.
    script = """if True:
        import warnings
        from seqkit.registry import get_registry
        get_registry()  # the built-in cells install their filter when they load
        message = ("RNN module weights are not part of single contiguous chunk of memory. This "
                   "means they need to be compacted at every call")
        for module in ("seqkit.plugins.cells.lstm", "seqkit.plugins.cells.gru", "user_code"):
            warnings.warn_explicit(message, UserWarning, module + ".py", 1, module=module)
    """
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    shown = [line for line in result.stderr.splitlines() if "UserWarning" in line]
    assert len(shown) == 1 and shown[0].startswith("user_code.py:1: UserWarning: RNN module weights")
