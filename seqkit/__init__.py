"""seqkit: recurrent sequence models in PyTorch, assembled from plugins and YAML recipes."""
from seqkit.api import Run, load_run, prepare, train
from seqkit.contracts import Cell, Dataset, Decoder, MetricLogger, ParallelCorpus, TaggedCorpus, Task, Tokenizer
from seqkit.errors import SeqkitError
from seqkit.hookspecs import hookimpl
from seqkit.nn import Dropout, Recurrent
from seqkit.options import Option
from seqkit.version import __version__

__all__ = ["Cell", "Dataset", "Decoder", "Dropout", "MetricLogger", "Option", "ParallelCorpus",
           "Recurrent", "Run", "SeqkitError", "TaggedCorpus", "Task", "Tokenizer", "hookimpl", "load_run",
           "prepare", "train", "__version__"]
