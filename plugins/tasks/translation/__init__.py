"""``translation``: an encoder–decoder from source to target sequences. task.py holds the task and
registers it; data.py the encoded pairs and their batches; model.py the encoder–decoder
(attention.py, bridge.py its parts); step.py the model as a step model; metrics.py the error rates,
BLEU and chrF; output.py decoding and what ``seqkit decode`` prints."""
import seqkit

from .task import Translation


@seqkit.hookimpl
def register_tasks(register):
    register("translation", Translation)
