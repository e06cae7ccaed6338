"""Built-in tokenizers, one module each: ``char``, ``whitespace``, and the byte-level subword
tokenizers ``bpe`` and ``unigram`` of Hugging Face ``tokenizers`` (``_hf.py``, the extra
``seqkit[subword]``)."""
