"""``tagging``: one tag per token. task.py holds the task and registers it; data.py the encoded
splits and their batches; model.py the tagger (crf.py its CRF output); step.py the autoregressive
tagger as a step model; metrics.py the tag metrics; output.py what ``seqkit decode`` prints."""
