"""Prepared corpora: flat numpy arrays (token ids in the smallest unsigned dtype that holds the
vocabulary, int64 offsets of sequences, tags, ...) and a ``manifest.json``, written once under the
cache folder and memory-mapped by every process that reads them (one copy in the page cache).

    corpus = open_prepared("char_lm", identity, build)   # build(writer) -> meta, run only if needed
    tokens = corpus["tokens"]                             # a read-only np.memmap

docs/prepared-data.md describes the folder, the format and the guarantees.
"""
from seqkit.corpus.arrays import ArrayWriter, CorpusWriter, smallest_uint
from seqkit.corpus.prepared import PreparedCorpus
from seqkit.corpus.store import cache_dir, open_prepared, prepared_folder

__all__ = ["ArrayWriter", "CorpusWriter", "PreparedCorpus", "cache_dir", "open_prepared", "prepared_folder",
           "smallest_uint"]
