import torch
from seqkit_mingru import MinGRUCell

from seqkit import Recurrent
from seqkit.testing import check_cell


def test_conformance():
    check_cell(MinGRUCell)


def test_usable_by_name_once_installed():
    outputs, states = Recurrent("mingru", 3, 4, layers=2)(torch.randn(2, 5, 3))
    assert outputs.shape == (2, 5, 4) and len(states) == 2
