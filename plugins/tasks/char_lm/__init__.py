"""``char_lm``: next-character prediction. task.py holds the task (registered here, so the plugin keeps
its name); data.py the vocabulary, the text's splits and the training batches; model.py the model;
step.py the model as a step model, to continue prompts; metrics.py the losses and metrics."""
import seqkit

from .task import CharLM


@seqkit.hookimpl
def register_tasks(register):
    register("char_lm", CharLM)
