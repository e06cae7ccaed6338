"""Modules a task builds its model from: ``Recurrent`` (any registered cell, stacked, in both
directions) and ``Dropout``."""
from seqkit.nn.dropout import Dropout
from seqkit.nn.recurrent import Recurrent

__all__ = ["Dropout", "Recurrent"]
