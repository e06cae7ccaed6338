"""tagging's prepared corpus: the dataset's splits as flat arrays on disk (``seqkit.corpus``), read
through memory maps.

The dataset is streamed (``Dataset.stream``: ``conll`` reads its files again at each pass, a block
of sentences at a time), never held whole. A first pass builds the vocabularies from the training
split as they always were (``Vocabulary.build``: the specials, then the tokens most frequent first),
so that the ids, and the checkpoints that hold them, stay what they were: words (or characters), and
with character features each word's characters; it also measures every split. A second pass writes
every split a block of sentences at a time: token ids in the smallest
unsigned dtype that holds the vocabulary, each token's tag beside it, where each sentence starts
and how long it is (``common.flat_sequences``), and with character features each token's first
``MAX_WORD_CHARS`` characters as a sequence of their own. The meta holds the vocabularies, the tags
and their styles and the counts; ``word_counts`` how often each word occurs in training (word
dropout hides the words seen once).

The key of the prepared copy is the dataset's identity (its files with their sizes and modification
times, its options: ``Dataset.identity``), what the vocabularies are built from, and ``FORMAT``; a
dataset without an identity of its own is read and its sentences hashed. Training, validation and
evaluation read the memory maps.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from seqkit import Dataset, SeqkitError
from seqkit.contracts.tagged_corpus import TaggedCorpus
from seqkit.corpus import PreparedCorpus, open_prepared, smallest_uint
from seqkit.plugins.tasks.common.dataset_splits import blocks, recipe_dataset, stream_corpus
from seqkit.plugins.tasks.common.flat_sequences import SequenceWriter
from seqkit.plugins.tasks.common.vocabulary import Vocabulary

from .data import MAX_WORD_CHARS, encode_sentences

FORMAT = 1  # bump when what is written changes, so that older prepared copies are not reused
SPLITS = ("train", "dev", "test")
BLOCK = 4096  # sentences encoded and written at a time

Progress = Callable[[str, int, int], None]  # (stage, bytes done, bytes in all)


def tagging_corpus(data: dict, char_features: bool, progress: Progress | None = None) -> PreparedCorpus:
    """The prepared corpus of the recipe's ``data`` section (with each word's characters where
    ``char_features``), built if it is not on disk yet. Arrays per split ``S`` (``train``, ``dev``,
    ``test`` where the dataset has it): ``S_ids``, ``S_tags``, ``S_starts``, ``S_lengths``, with
    characters ``S_chars_ids``, ``S_chars_starts``, ``S_chars_lengths``; and ``word_counts``."""
    dataset, loaded = recipe_dataset(data), None
    if type(dataset).identity is Dataset.identity:  # (it would hash a text): hash the sentences
        loaded = read_corpus(data)
        source = {"dataset": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
                  "options": dataset.config, "sha256": corpus_digest(loaded)}
    else:
        source = dataset.identity()
    identity = {"format": FORMAT, "data": source,
                "vocabulary": {"order": "frequency", "chars": bool(char_features),
                               "max_word_chars": MAX_WORD_CHARS if char_features else 0}}
    files = len(source.get("files", [])) if isinstance(source, dict) else 0
    return open_prepared("tagging", identity, lambda writer: _build(writer, data, loaded, bool(char_features),
                                                                    files, progress or _quiet))


def read_corpus(data: dict) -> TaggedCorpus:
    """The recipe's dataset streamed (``Dataset.stream``), checked to hold training and dev sentences."""
    corpus = stream_corpus(data, TaggedCorpus, "tagged sentences; tagging reads a tagging dataset "
                           "such as python-tokens or conll", "sentences")
    if not corpus.splits.get("dev"):
        raise SeqkitError(f"data.dataset: '{data['dataset']}' gave no dev sentences to "
                          f"validate on; give a dev split (conll: data.dev)")
    return corpus


def corpus_digest(corpus: TaggedCorpus) -> str:
    """A hash of everything a ``TaggedCorpus`` holds."""
    digest = hashlib.sha256(json.dumps([corpus.level, list(corpus.tag_set), corpus.tag_styles]).encode())
    for split in SPLITS:
        for tokens, tags in corpus.splits.get(split) or ():
            digest.update(json.dumps([split, tokens, tags], ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def corpus_summary(corpus: PreparedCorpus) -> dict:
    """What ``seqkit prepare`` reports of a prepared corpus (the shape of char_lm's, plus sentences
    and tags per split)."""
    meta = corpus.meta
    splits = meta["splits"]
    unit = "characters" if meta["level"] == "char" else "words"
    summary = {"path": str(corpus.path), "reused": corpus.reused, "tokenizer": f"{unit}, most frequent first",
               "vocabulary": len(meta["words"]), "tags": len(meta["tags"]),
               "sentences": {s: v["sentences"] for s, v in splits.items()},
               "tokens": {s: v["tokens"] for s, v in splits.items()},
               "characters": {s: v["characters"] for s, v in splits.items()},
               "files": meta["files"], "text_megabytes": meta["bytes"] / 1e6,
               "prepared_megabytes": corpus.nbytes / 1e6, "seconds": meta["prepare_seconds"]}
    if meta["chars"] is not None:
        summary["char_vocabulary"] = len(meta["chars"])
    return summary


def _quiet(stage: str, done: int, total: int) -> None:
    """No one watches."""


def _build(writer, data: dict, loaded: TaggedCorpus | None, char_features: bool, files: int,
           progress: Progress) -> dict:
    start = time.perf_counter()
    progress("reading", 0, 0)
    corpus = loaded if loaded is not None else read_corpus(data)
    if char_features and corpus.level != "word":
        raise SeqkitError(f"model.char_features: '{data['dataset']}' is tagged per "
                          f"character already; set model.char_features=0")
    present = [split for split in SPLITS if corpus.splits.get(split)]
    # the first pass: the vocabularies from the training sentences, the size of every split
    counts: Counter = Counter()
    char_counts: Counter | None = Counter() if char_features else None
    sizes = dict.fromkeys(present, 0)
    for split in present:
        for block in blocks(corpus.splits[split], BLOCK):
            sizes[split] += _utf8_bytes(block, corpus.level)
            if split != "train":
                continue
            for tokens, _ in block:
                counts.update(tokens)
                if char_counts is not None:
                    for word in tokens:
                        char_counts.update(word)
    words = Vocabulary.build(counts)
    chars = Vocabulary.build(char_counts) if char_features else None
    tag_ids = {name: i for i, name in enumerate(corpus.tag_set)}
    total = sum(sizes.values())
    word_dtype, tag_dtype = smallest_uint(len(words)), smallest_uint(len(tag_ids))
    char_dtype = smallest_uint(len(chars)) if chars else None
    done, splits = 0, {}
    for split in present:  # the second pass: every split encoded and written a block at a time
        tokens = SequenceWriter(writer, split, word_dtype, aligned={"tags": tag_dtype})
        characters = SequenceWriter(writer, f"{split}_chars", char_dtype) if chars else None
        n_sentences = n_chars = 0
        for block in blocks(corpus.splits[split], BLOCK):
            encoded = encode_sentences(block, corpus.level, words, tag_ids, chars, MAX_WORD_CHARS)
            tokens.extend(encoded.ids, encoded.lengths, tags=encoded.tags)
            if characters is not None:
                characters.extend(encoded.chars, encoded.char_lengths)
            n_sentences += len(block)
            n_chars += _characters(block)
            done += _utf8_bytes(block, corpus.level)
            progress("encoding", done, total)
        tokens.flush()
        if characters is not None:
            characters.flush()
        splits[split] = {"sentences": n_sentences, "tokens": tokens.ids.count, "characters": n_chars}
    writer.array("word_counts", np.int64).append(np.array([counts.get(s, 0) for s in words.symbols],
                                                          dtype=np.int64))
    return {"level": corpus.level, "words": words.symbols, "chars": chars.symbols if chars else None,
            "tags": list(corpus.tag_set), "tag_styles": dict(getattr(corpus, "tag_styles", {}) or {}),
            "splits": splits, "bytes": total, "files": files,
            "prepare_seconds": time.perf_counter() - start}


def _utf8_bytes(sentences, level: str) -> int:
    """Bytes of the sentences' text in UTF-8: each sentence's (character level) or each word's."""
    texts = (tokens for tokens, _ in sentences) if level == "char" else \
        (word for tokens, _ in sentences for word in tokens)
    return sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)


def _characters(sentences) -> int:
    """Characters of the sentences' tokens (a word level sentence: its words' characters)."""
    return sum(len(tokens) if isinstance(tokens, str) else sum(map(len, tokens)) for tokens, _ in sentences)
