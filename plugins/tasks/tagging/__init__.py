"""``tagging``: one tag per token. task.py holds the task (registered here, so the plugin keeps its
name); corpus.py the splits prepared on disk; data.py the splits read flat and their batches;
model.py the tagger (crf.py its CRF output); step.py the autoregressive tagger as a step model;
metrics.py the tag metrics; output.py what ``seqkit decode`` prints."""
import seqkit

from .task import Tagging


@seqkit.hookimpl
def register_tasks(register):
    register("tagging", Tagging)
