"""The hooks a seqkit plugin can implement. Each receives a ``register(name, obj)`` callback."""
import pluggy

hookspec = pluggy.HookspecMarker("seqkit")
hookimpl = pluggy.HookimplMarker("seqkit")


@hookspec
def register_cells(register):
    """Register recurrent cells: ``register("name", CellClass)`` with a ``seqkit.Cell`` subclass."""


@hookspec
def register_decoders(register):
    """Register decoding strategies: ``register("name", DecoderClass)`` with a ``seqkit.Decoder`` subclass."""


@hookspec
def register_tasks(register):
    """Register tasks (data, model, loss, metrics): ``register("name", TaskClass)`` with a ``seqkit.Task`` subclass."""


@hookspec
def register_datasets(register):
    """Register data sources: ``register("name", DatasetClass)`` with a ``seqkit.Dataset`` subclass."""


@hookspec
def register_loggers(register):
    """Register metric loggers: ``register("name", LoggerClass)`` with a ``seqkit.MetricLogger`` subclass."""


@hookspec
def register_tokenizers(register):
    """Register tokenizers (text <-> ids): ``register("name", TokenizerClass)`` with a ``seqkit.Tokenizer`` subclass."""
