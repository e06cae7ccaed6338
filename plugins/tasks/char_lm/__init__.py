"""``char_lm``: next-character prediction. task.py holds the task and registers it; data.py the
vocabulary, the text's splits and the training batches; model.py the model; step.py the model as a
step model, to continue prompts; metrics.py the losses and metrics."""
