"""translation's prepared corpus: the dataset's splits as flat token ids on disk (``seqkit.corpus``),
read through memory maps, and the tokenizers of both sides trained once on the training split.

The corpus is keyed by the dataset's identity (its files, their sizes and modification times, its
options), the recipe's tokenizers and ``FORMAT``, so a second run with the same data reuses it and
a changed file or tokenizer is prepared again. The dataset is streamed when the corpus is prepared
(never when it is reused): ``Dataset.stream`` (``pairs`` reads its files again at each pass) gives
its splits a block of examples at a time, never whole: one pass measures every split, the training
split is read again for the tokenizers (once per side trained, once for the sides that count their
own tokens), and one pass encodes.

The tokenizers: ``data.source_tokenizer`` and ``data.target_tokenizer`` (any registered tokenizer,
each trained on its side of the training split), or ``data.tokenizer``, one joint tokenizer of both
sides (trained on the sources and the targets together, with the target's specials). A side without
one reads the dataset's own tokens (its level): ``char`` characters with the ``char`` tokenizer,
``space`` words with the ``whitespace`` tokenizer, with the ids translation has always given: the
specials, then the training tokens, most frequent first (``common.vocabulary.Vocabulary.build``;
a source counted once per example, a target once per reference). A tokenizer reads a side's raw
text: the string of a ``char`` side, the tokens of a ``space`` side joined by spaces; it is trained
on those texts one a line.

Arrays, per split (``train``, ``dev``, ``test`` where the dataset has it), one row per pair (a source
and one of its references; an example with several references is several pairs, consecutive):

- ``SPLIT_source_{ids,starts,lengths}``: the source's ids (repeated for each reference);
- ``SPLIT_target_{ids,starts,lengths}``: the reference's ids, then the end symbol;
- ``SPLIT_examples``: the example each pair belongs to; ``SPLIT_first``: each example's first pair;
- ``SPLIT_reference_{ids,starts,lengths}`` (dev and test): the reference's text as UTF-8 bytes, what
  outputs are scored against (whatever the tokenizer).
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from seqkit import Dataset, SeqkitError
from seqkit.contracts.parallel_corpus import SPLITS, ParallelCorpus
from seqkit.corpus import PreparedCorpus, open_prepared, prepared_folder, smallest_uint
from seqkit.corpus.prepared import MANIFEST
from seqkit.plugins.tasks.common.dataset_splits import blocks, recipe_dataset, stream_corpus
from seqkit.plugins.tasks.common.flat_sequences import SequenceWriter
from seqkit.plugins.tasks.common.vocabulary import PADDING, UNKNOWN, Vocabulary
from seqkit.tokenization import build_tokenizer, spec_identity, tokenizer_from_state, tokenizer_state

from .model import END_ID

FORMAT = 1  # bump when what is written changes, so that older prepared copies are not reused
KIND = "translation"
START, END = "<s>", "</s>"
SOURCE_SPECIALS = (PADDING, UNKNOWN)
TARGET_SPECIALS = (PADDING, UNKNOWN, START, END)  # ids 0-3, as model.py numbers them
SIDES = ("source", "target")
TOKENIZER_KEYS = ("tokenizer", "source_tokenizer", "target_tokenizer")
LEVEL_TOKENIZERS = {"char": "char", "space": "whitespace"}  # a side's tokenizer when none is given
BLOCK = 4096  # examples encoded at a time
CHUNK = 1 << 20  # characters of training text handed to a tokenizer at a time

Progress = Callable[[str, int, int], None]  # (stage, bytes done, bytes in all)


def specials_of(side: str) -> tuple[str, ...]:
    return SOURCE_SPECIALS if side == "source" else TARGET_SPECIALS


def text_of(sequence, level: str) -> str:
    """A dataset's sequence as the raw text a tokenizer reads: a ``char`` side's string, a ``space``
    side's tokens joined by spaces."""
    return sequence if level == "char" else " ".join(sequence)


def given_tokenizers(data: dict) -> dict:
    """The recipe's tokenizer keys that are set: ``{"tokenizer": spec}`` or per side."""
    return {key: data[key] for key in TOKENIZER_KEYS if data.get(key) is not None}


def level_tokenizer(level: str, specials: tuple[str, ...], symbols: list[str]):
    """A side's own tokenizer (``char`` or ``whitespace``) with the vocabulary ``symbols``, the list
    translation's checkpoints have always held."""
    name = LEVEL_TOKENIZERS[level]
    tokenizer = build_tokenizer(name, f"{name} tokenizer", specials)
    tokenizer.load_state_dict({"symbols": list(symbols), "lowercase": False, "unknown": "map"}
                              if level == "char" else {"symbols": list(symbols)})
    return tokenizer


class DataSource:
    """The recipe's dataset, opened at most once: its identity, and its ``ParallelCorpus`` as
    ``Dataset.stream()`` gives it."""

    def __init__(self, data: dict):
        self.data = data
        self.dataset = recipe_dataset(data)
        self._corpus: ParallelCorpus | None = None

    def corpus(self) -> ParallelCorpus:
        if self._corpus is None:
            self._corpus = stream_corpus(self.data, ParallelCorpus, "parallel examples; translation reads a "
                                         "translation dataset such as cmudict or pairs", "examples")
        return self._corpus

    def identity(self) -> dict:
        """The dataset's own ``identity()`` (its files, sizes, times, options); for one that does not
        say (``Dataset.identity`` hashes text), a hash of everything it loads."""
        if type(self.dataset).identity is not Dataset.identity:
            return self.dataset.identity()
        corpus = self.corpus()
        splits = {split: list(examples) for split, examples in corpus.splits.items()}  # (lists: as they are)
        digest = hashlib.sha256(json.dumps([corpus.source_tokens, corpus.target_tokens, corpus.text,
                                            splits], ensure_ascii=False).encode("utf-8", "surrogatepass"))
        return {"dataset": f"{type(self.dataset).__module__}.{type(self.dataset).__qualname__}",
                "options": self.dataset.config, "sha256": digest.hexdigest()}


def corpus_identity(source: DataSource) -> dict:
    return {"format": FORMAT, "data": source.identity(),
            "tokenizers": {key: spec_identity(spec) for key, spec in given_tokenizers(source.data).items()}}


def translation_corpus(data: dict, progress: Progress | None = None) -> PreparedCorpus:
    """The prepared corpus of the recipe's ``data`` section, built if it is not on disk yet."""
    source = DataSource(data)
    return open_prepared(KIND, corpus_identity(source), lambda writer: _build(writer, source, progress or _quiet))


def prepared_if_there(data: dict) -> PreparedCorpus | None:
    """The prepared corpus of ``data`` where one is on disk already (opened and checked), else None:
    nothing is prepared (``seqkit eval`` of a run whose data is not prepared here reads the split)."""
    source = DataSource(data)
    identity = corpus_identity(source)
    if not (prepared_folder(KIND, identity) / MANIFEST).is_file():
        return None
    return open_prepared(KIND, identity, lambda writer: _build(writer, source, _quiet))


def corpus_tokenizers(meta: dict) -> tuple[dict, dict]:
    """({"source": tokenizer, "target": tokenizer}, {"source": by level?, ...}) of a prepared corpus;
    a joint tokenizer is one object on both sides."""
    states = meta["tokenizers"]
    if meta["joint"]:
        joint = tokenizer_from_state(states["target"])
        return {"source": joint, "target": joint}, {"source": False, "target": False}
    return ({side: tokenizer_from_state(states[side]) for side in SIDES}, dict(meta["by_level"]))


def corpus_summary(corpus: PreparedCorpus) -> dict:
    """What ``seqkit prepare`` reports of a prepared corpus: per split, tokens and characters of each
    side; the tokenizers and their vocabularies."""
    meta = corpus.meta
    names = {side: meta["tokenizers"][side]["name"] for side in SIDES}
    splits = meta["splits"]
    return {"path": str(corpus.path), "reused": corpus.reused,
            "tokenizer": (f"{names['target']} (joint)" if meta["joint"] else
                          f"{names['source']} (source), {names['target']} (target)"),
            "tokenizers": names, "vocabulary": dict(meta["vocab_size"]),
            "examples": {split: s["examples"] for split, s in splits.items()},
            "pairs": {split: s["pairs"] for split, s in splits.items()},
            "tokens": {split: {side: s[f"{side}_tokens"] for side in SIDES} for split, s in splits.items()},
            "characters": {split: {side: s[f"{side}_characters"] for side in SIDES} for split, s in splits.items()},
            "files": meta["files"], "text_megabytes": meta["bytes"] / 1e6,
            "prepared_megabytes": corpus.nbytes / 1e6, "seconds": meta["prepare_seconds"]}


def _quiet(stage: str, done: int, total: int) -> None:
    """No one watches."""


# -- building --------------------------------------------------------------------------------------

def _build(writer, source: DataSource, progress: Progress) -> dict:
    start = time.perf_counter()
    data, name = source.data, source.data["dataset"]
    progress("reading", 0, 0)
    corpus = source.corpus()
    if not corpus.splits.get("dev"):
        raise SeqkitError(f"data.dataset: '{name}' gave no dev examples to validate on; give a dev split "
                          f"(pairs: data.dev)")
    levels = {"source": corpus.source_tokens, "target": corpus.target_tokens}
    splits = {split: corpus.splits[split] for split in SPLITS if corpus.splits.get(split)}
    source_tokens: set = set()  # every training source's tokens, for lowercase_sources
    sizes = {split: _sizes(examples, levels, source_tokens if split == "train" else None)
             for split, examples in splits.items()}
    total = sum(size["bytes"] for size in sizes.values())
    progress("reading", total, total)

    train = splits["train"]
    training = _stage(progress, "training tokenizer", sizes["train"]["bytes"])
    tokenizers, by_level = train_tokenizers(data, train, levels, training)
    encoding = _stage(progress, "encoding", total)
    written = {}
    for split, examples in splits.items():
        written[split] = write_split(writer, split, examples, tokenizers, levels, references=split != "train",
                                     progress=encoding)
        written[split].update({f"{side}_characters": sizes[split][side] for side in SIDES})
    files = source.identity().get("files")
    return {"levels": levels, "text": corpus.text, "lowercase": lowercase_sources(source_tokens),
            "joint": tokenizers["source"] is tokenizers["target"], "by_level": by_level,
            "tokenizers": {side: tokenizer_state(tokenizers[side]) for side in SIDES},
            "vocab_size": {side: tokenizers[side].vocab_size for side in SIDES},
            "splits": written, "bytes": total, "files": len(files) if files else 1,
            "prepare_seconds": time.perf_counter() - start}


def _sizes(examples: Iterable, levels: dict, source_tokens: set | None = None) -> dict:
    """Characters of each side (each example's source, every reference) and UTF-8 bytes of both, of
    ``examples``: the text that is encoded, read a block at a time; ``source_tokens`` (a set)
    gets every source's tokens on the way."""
    size = {"source": 0, "target": 0, "bytes": 0}
    for block in blocks(examples, BLOCK):
        sources = [text_of(source, levels["source"]) for source, _ in block]
        targets = [text_of(reference, levels["target"]) for _, references in block for reference in references]
        size["source"] += sum(map(len, sources))
        size["target"] += sum(map(len, targets))
        size["bytes"] += sum(len(t.encode("utf-8", "surrogatepass")) for t in (*sources, *targets))
        if source_tokens is not None:
            for source, _ in block:
                source_tokens.update(source)
    return size


class _stage:
    """``progress`` of one stage, in bytes of text, counted up as calls report them."""

    def __init__(self, progress: Progress, stage: str, total: int = 0):
        self.progress, self.stage, self.total, self.done = progress, stage, total, 0

    def __call__(self, added: int) -> None:
        self.done += added
        self.progress(self.stage, self.done, self.total and max(self.total, self.done))


def lowercase_sources(tokens: set) -> bool:
    """Does no training source hold a capital letter (though some hold letters)? Then inputs are
    lowercased before they are read. Judged on the sources' ``tokens``, each distinct one once."""
    letters = [t for t in tokens if t.isalpha()]
    return bool(letters) and all(t == t.lower() for t in letters)


def train_tokenizers(data: dict, train: Iterable, levels: dict, progress: Callable[[int], None]) -> tuple[dict, dict]:
    """({"source": tokenizer, "target": tokenizer}, {"source": read by its level?, ...}), each
    trained on its side of the training examples (a source once per example, every reference); a
    joint ``data.tokenizer`` on both sides together, one object for both. ``train`` (a list, or a
    ``Split`` read again from its files) is read an example at a time: once per side a tokenizer
    is trained on, once for the sides that count their own tokens."""
    def sequences(side: str) -> Iterator:
        for source, references in train:
            if side == "source":
                yield source
            else:
                yield from references

    if data.get("tokenizer") is not None:
        joint = build_tokenizer(data["tokenizer"], "data.tokenizer", TARGET_SPECIALS)
        texts = (text_of(sequence, levels[side]) for side in SIDES for sequence in sequences(side))
        joint.train(_lines(texts, progress))
        return {"source": joint, "target": joint}, {"source": False, "target": False}
    tokenizers, by_level = {}, {}
    counts = {side: Counter() for side in SIDES if data.get(f"{side}_tokenizer") is None}
    if counts:  # the sides read by their own tokens, counted in one pass
        for source, references in train:
            for side, counter in counts.items():
                for sequence in ([source] if side == "source" else references):
                    counter.update(sequence)
                    progress(len(text_of(sequence, levels[side])) + 1)
    for side in SIDES:
        spec, specials = data.get(f"{side}_tokenizer"), specials_of(side)
        by_level[side] = spec is None
        if spec is None:  # the side's own tokens, with translation's ids: most frequent first
            symbols = Vocabulary.build(counts[side], specials).symbols
            tokenizers[side] = level_tokenizer(levels[side], specials, symbols)
        else:
            tokenizers[side] = build_tokenizer(spec, f"data.{side}_tokenizer", specials)
            tokenizers[side].train(_lines((text_of(s, levels[side]) for s in sequences(side)), progress))
    return tokenizers, by_level


def _lines(texts: Iterable[str], progress: Callable[[int], None]) -> Iterator[str]:
    """``texts`` one a line, in chunks of about ``CHUNK`` characters, each ending at a line end;
    ``progress`` gets each chunk's bytes as it is handed over."""
    chunk, size = [], 0
    for text in texts:
        chunk.append(text)
        size += len(text) + 1
        if size >= CHUNK:
            piece = "\n".join(chunk) + "\n"
            progress(len(piece.encode("utf-8", "surrogatepass")))
            yield piece
            chunk, size = [], 0
    if chunk:
        piece = "\n".join(chunk) + "\n"
        progress(len(piece.encode("utf-8", "surrogatepass")))
        yield piece


def write_split(writer, split: str, examples: Iterable, tokenizers: dict, levels: dict, references: bool,
                progress: Callable[[int], None] | None = None) -> dict:
    """Encode ``examples`` (source, references; a list, or a ``Split`` read once) into ``writer``'s
    arrays of ``split`` (the module's docstring lists them), ``BLOCK`` examples at a time;
    ``references``: keep each reference's text too. Counts of what was written."""
    source_tokenizer, target_tokenizer = tokenizers["source"], tokenizers["target"]
    sources = SequenceWriter(writer, f"{split}_source", smallest_uint(source_tokenizer.vocab_size))
    targets = SequenceWriter(writer, f"{split}_target", smallest_uint(target_tokenizer.vocab_size))
    texts = SequenceWriter(writer, f"{split}_reference", np.uint8) if references else None
    owners, firsts = writer.array(f"{split}_examples", np.int64), writer.array(f"{split}_first", np.int64)
    end, pairs, begin = np.array([END_ID], dtype=np.int64), 0, 0
    for block in blocks(examples, BLOCK):
        counts = np.array([len(references) for _, references in block], dtype=np.int64)
        source_texts = [text_of(source, levels["source"]) for source, _ in block]
        target_texts = [text_of(r, levels["target"]) for _, references in block for r in references]
        source_ids = source_tokenizer.encode_batch(source_texts)
        empty = next((i for i, ids in enumerate(source_ids) if not len(ids)), None)
        if empty is not None:
            raise SeqkitError(f"data: the source of {split} example {begin + empty + 1} ({source_texts[empty]!r}) "
                              f"reads as no tokens; its tokenizer drops every character of it")
        _extend(sources, [ids for ids, count in zip(source_ids, counts.tolist()) for _ in range(count)])
        _extend(targets, [np.concatenate([ids, end]) for ids in target_tokenizer.encode_batch(target_texts)])
        if texts is not None:
            _extend(texts, [np.frombuffer(t.encode("utf-8", "surrogatepass"), dtype=np.uint8)
                            for t in target_texts])
        owners.append(np.repeat(np.arange(begin, begin + len(block), dtype=np.int64), counts))
        firsts.append(pairs + np.cumsum(counts) - counts)
        pairs += int(counts.sum())
        begin += len(block)
        if progress is not None:
            progress(sum(len(t.encode("utf-8", "surrogatepass")) for t in (*source_texts, *target_texts)))
    for sequences in (sources, targets, texts):
        if sequences is not None:
            sequences.flush()
    return {"examples": begin, "pairs": pairs, "source_tokens": sources.ids.count,
            "target_tokens": targets.ids.count}


def write_sources(writer, name: str, ids: list[np.ndarray], vocab_size: int) -> None:
    """Sources alone (``seqkit decode``'s inputs, already encoded) as ``name``'s arrays: one pair
    per example, no targets."""
    sources = SequenceWriter(writer, f"{name}_source", smallest_uint(vocab_size))
    _extend(sources, ids)
    sources.flush()
    writer.array(f"{name}_examples", np.int64).append(np.arange(len(ids), dtype=np.int64))
    writer.array(f"{name}_first", np.int64).append(np.arange(len(ids), dtype=np.int64))


def _extend(writer: SequenceWriter, sequences: list) -> None:
    """Write a block of ``sequences`` through ``writer`` in one piece."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    writer.extend(np.concatenate(sequences) if sequences else np.empty(0, dtype=np.int64), lengths)


class MemoryWriter:
    """What ``write_split`` writes, held in memory instead of on disk (a split that ``seqkit eval``
    reads from a file, ``seqkit decode``'s inputs): ``arrays()`` reads back as a prepared corpus's."""

    def __init__(self):
        self._arrays: dict[str, _MemoryArray] = {}

    def array(self, name: str, dtype) -> _MemoryArray:
        self._arrays[name] = _MemoryArray(name, np.dtype(dtype))
        return self._arrays[name]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: array.value() for name, array in self._arrays.items()}


class _MemoryArray:
    def __init__(self, name: str, dtype: np.dtype):
        self.name, self.dtype, self.count = name, dtype, 0
        self._parts: list[np.ndarray] = []

    def append(self, values) -> None:
        values = np.asarray(values).reshape(-1).astype(self.dtype)
        self._parts.append(values)
        self.count += values.size

    def value(self) -> np.ndarray:
        return np.concatenate(self._parts) if self._parts else np.empty(0, dtype=self.dtype)
