"""seqkit.Recurrent and the Cell contract: layers, directions, padding, one-step use, any cell."""
import pytest
import torch

import seqkit
from seqkit import Recurrent, SeqkitError
from seqkit.nn.recurrent import _reverse
from seqkit.state import Shared, map_state, select_state, where_state


class StepOnlyCell(seqkit.Cell):
    """A third-party style cell that writes nothing but step()."""

    def __init__(self, input_size, hidden_size, scale: float = 1.0):
        super().__init__(input_size, hidden_size)
        self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)
        self.scale = scale

    def step(self, x_t, state):
        h = torch.tanh(self.scale * self.linear(torch.cat([x_t, state], dim=1)))
        return h, h


def test_shapes_like_torch_lstm_batch_first():
    model = Recurrent("lstm", 5, 7, layers=3, bidirectional=True)
    outputs, states = model(torch.randn(2, 4, 5))
    assert outputs.shape == (2, 4, 14)
    assert len(states) == 6
    assert all(h.shape == (2, 7) and c.shape == (2, 7) for h, c in states)


def test_cell_by_name_or_class_and_unknown_name():
    assert type(Recurrent("gru", 2, 3).cells[0]).__name__ == "GRUCell"
    assert isinstance(Recurrent(StepOnlyCell, 2, 3, scale=0.5).cells[0], StepOnlyCell)
    with pytest.raises(SeqkitError, match="unknown cell 'lstn'.*did you mean 'lstm'"):
        Recurrent("lstn", 2, 3)


def test_cell_must_define_a_transition():
    with pytest.raises(TypeError, match="must define step"):
        type("Empty", (seqkit.Cell,), {})


def test_step_only_cell_uses_the_default_loop_with_padding():
    torch.manual_seed(0)
    model = Recurrent(StepOnlyCell, 3, 4, layers=2, bidirectional=True).eval()
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 2])
    outputs, finals = model(x, lengths=lengths)
    alone, alone_finals = model(x[1:, :2])
    torch.testing.assert_close(outputs[1:, :2], alone, rtol=0, atol=1e-6)
    assert (outputs[1, 2:] == 0).all()
    for final, final_alone in zip(finals, alone_finals):
        torch.testing.assert_close(final[1:], final_alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", StepOnlyCell])
@pytest.mark.parametrize("as_list", [list, tuple])
def test_lengths_as_a_python_sequence(cell, as_list):
    """torch.nn accepts lengths as a list (pack_padded_sequence); so does Recurrent."""
    torch.manual_seed(0)
    model = Recurrent(cell, 3, 4, layers=2, bidirectional=True).eval()
    x = torch.randn(3, 5, 3)
    outputs, finals = model(x, lengths=as_list([5, 2, 3]))
    expected, expected_finals = model(x, lengths=torch.tensor([5, 2, 3]))
    torch.testing.assert_close(outputs, expected, rtol=0, atol=0)
    for final, expected_final in zip(finals, expected_finals):
        torch.testing.assert_close(final, expected_final, rtol=0, atol=0)
    assert (outputs[1, 2:] == 0).all()


def test_dropout_only_between_layers_and_only_in_training():
    torch.manual_seed(1)
    model = Recurrent("tanh", 3, 4, layers=2, dropout=0.5)
    plain = Recurrent("tanh", 3, 4, layers=2)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 6, 3)
    assert torch.equal(model.eval()(x)[0], plain.eval()(x)[0])  # the same operations
    one_layer = Recurrent("tanh", 3, 4, dropout=0.5).train()
    reference = Recurrent("tanh", 3, 4)
    reference.load_state_dict(one_layer.state_dict())
    assert torch.equal(one_layer(x)[0], reference(x)[0])  # nothing to drop before layer 1
    model.train()
    assert (model(x)[0] - plain(x)[0]).abs().max() > 0.01


def test_step_matches_forward_through_layers_and_initial_states():
    torch.manual_seed(2)
    for name in ("lstm", "gated"):
        model = Recurrent(name, 3, 4, layers=3).eval()
        states = map_state(lambda s: torch.randn_like(s), model.initial_states(2))
        x = torch.randn(2, 5, 3)
        outputs, finals = model(x, states)
        stepped = []
        for x_t in x.unbind(1):
            h, states = model.step(x_t, states)
            stepped.append(h)
        torch.testing.assert_close(torch.stack(stepped, 1), outputs, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(states, finals, rtol=1e-5, atol=1e-6)


def test_bidirectional_cannot_step():
    with pytest.raises(ValueError, match="bidirectional"):
        Recurrent("tanh", 2, 3, bidirectional=True).step(torch.randn(1, 2), [None, None])


def test_reverse_within_lengths_keeps_padding_in_place():
    x = torch.arange(8.0).view(2, 4, 1)
    reversed_ = _reverse(x, torch.tensor([4, 2]))
    assert reversed_[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert _reverse(x, None)[:, :, 0].tolist() == [[3, 2, 1, 0], [7, 6, 5, 4]]


def test_zero_length_sequence_keeps_its_initial_state():
    model = Recurrent("gru", 2, 3)
    h0 = [torch.randn(2, 3)]
    outputs, finals = model(torch.randn(2, 4, 2), h0, lengths=torch.tensor([4, 0]))
    assert torch.equal(finals[0][1], h0[0][1])
    assert (outputs[1] == 0).all()


def test_state_helpers_on_nested_states():
    state = (torch.arange(3.0).view(3, 1), (torch.arange(3.0).view(3, 1) * 10,))
    picked = select_state(state, torch.tensor([2, 2, 0]))
    assert picked[0].flatten().tolist() == [2, 2, 0] and picked[1][0].flatten().tolist() == [20, 20, 0]
    mixed = where_state(torch.tensor([True, False, True]), state, map_state(torch.zeros_like, state))
    assert mixed[0].flatten().tolist() == [0, 0, 2] and mixed[1][0].flatten().tolist() == [0, 0, 20]


def test_shared_parts_of_a_state_are_handed_on_not_copied():
    memory = Shared(torch.randn(2, 5, 3))
    state = (memory, torch.tensor([0, 1]), (torch.tensor([[1.0], [2.0]]),))
    picked = select_state(state, torch.tensor([1, 1, 0]))
    assert picked[0] is memory and picked[1].tolist() == [1, 1, 0]
    assert picked[2][0].flatten().tolist() == [2, 2, 1]
    mixed = where_state(torch.tensor([True, False]), state, map_state(torch.zeros_like, state))
    assert mixed[0] is memory and mixed[1].tolist() == [0, 0] and mixed[2][0].flatten().tolist() == [1, 0]


@pytest.mark.parametrize("cell", ["lstm", "gru", "tanh"])
def test_initial_states_that_do_not_fit_the_input_are_refused(cell):
    rnn = Recurrent(cell, 5, 8, layers=2)
    states = rnn.initial_states(4)
    with pytest.raises(ValueError, match="initial state 0 has batch size 4, the input 3"):
        rnn(torch.randn(3, 6, 5), states)
    with pytest.raises(ValueError, match="expected 2 initial states"):
        rnn(torch.randn(4, 6, 5), states[:1])
    outputs, _ = rnn(torch.randn(4, 6, 5), states)  # the right ones still work
    assert outputs.shape == (4, 6, 8)
