"""seqkit: recurrent sequence models in PyTorch, assembled from plugins and YAML recipes."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seqkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

from seqkit.cell import Cell
from seqkit.errors import SeqkitError
from seqkit.hookspecs import hookimpl
from seqkit.metric_logger import MetricLogger
from seqkit.options import Option
from seqkit.decoding import Decoder
from seqkit.dropout import Dropout
from seqkit.plugin_types import Dataset, Task
from seqkit.recurrent import Recurrent
from seqkit.api import Run, load_run, train  # after the base classes: it loads the registry's modules

__all__ = ["Cell", "Dataset", "Decoder", "Dropout", "MetricLogger", "Option", "Recurrent", "Run",
           "SeqkitError", "Task", "hookimpl", "load_run", "train", "__version__"]
