"""``char_lm``: next-character prediction. task.py holds the task and registers it; data.py the
vocabulary, text and batches; model.py the model; metrics.py its losses and metrics."""
