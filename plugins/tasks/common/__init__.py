"""What the tasks share: the vocabulary convention (vocabulary.py), batches of similar length
(length_batches.py) and the recipe's dataset and its splits (dataset_splits.py)."""
