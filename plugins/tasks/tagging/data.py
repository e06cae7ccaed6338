"""A tagging dataset's splits read flat, and their batches by index arithmetic.

A split is held flat (``common.flat_sequences``): every token id end to end, its tag beside it
(aligned: the same starts and lengths), and where each sentence starts and how long it is; with
character features, each token's characters as a second level of sequences, one per token. The
arrays are the memory maps of the prepared corpus (corpus.py) for the dataset's splits, or arrays
in memory for what is read whole (a file to score, the inputs to decode). A batch is a list of
sentence ids: padding it is one gather (``start + arange(time)``) and one mask on the host, and
only the batch is copied to the device (``as_long``: pinned and without waiting on CUDA).

Batches are planned once, on the host, from the sentence lengths alone: sentences sorted by
length and cut into runs of ``batch_size`` sentences (or of as many as fit ``batch_tokens`` padded
tokens), so that a batch pads little. Training visits the batches in an order drawn per epoch
from ``(seed, epoch)``: the batch of a step is a pure function of the step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seqkit import SeqkitError
from seqkit.plugins.tasks.common.flat_sequences import FlatSequences, as_long, flat_arrays, take
from seqkit.plugins.tasks.common.length_batches import epoch_order, plan_batches, share_rows
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, Vocabulary

MAX_WORD_CHARS = 30  # characters read per word by the character features: a URL is not a word
IN_MEMORY = "split"  # the arrays' name of a split held in memory


@dataclass
class Encoded:
    """Sentences as flat arrays (int64): token ``ids`` and ``tags`` end to end, each sentence's
    length; with characters, each token's characters end to end (``chars``) and their number
    (``char_lengths``, one per token)."""

    ids: np.ndarray
    tags: np.ndarray
    lengths: np.ndarray
    chars: np.ndarray | None = None
    char_lengths: np.ndarray | None = None


def encode_sentences(sentences, level: str, words: Vocabulary, tags: dict, chars: Vocabulary | None,
                     max_word_chars: int = 0) -> Encoded:
    """``sentences`` (``(tokens, tags)`` pairs) as ``Encoded``: tokens through ``words``
    (characters through it too at character level), tags through ``tags`` (a name -> id dict; a tag
    it lacks is an error), each word's characters through ``chars`` (cut to ``max_word_chars``;
    0: whole words)."""
    lengths = np.array([len(tokens) for tokens, _ in sentences], dtype=np.int64)
    if level == "char":
        ids = words.encode("".join(t for t, _ in sentences)).numpy()
    else:
        ids = np.array(words.ids(w for tokens, _ in sentences for w in tokens), dtype=np.int64)
    try:
        tag_ids = np.array([tags[t] for _, sentence_tags in sentences for t in sentence_tags], dtype=np.int64)
    except KeyError as exc:
        raise SeqkitError(f"data: the tag {exc.args[0]!r} was not among the tags this run trained on "
                          f"({', '.join(tags)}); a tagger predicts only the tags it has seen") from None
    encoded = Encoded(ids, tag_ids, lengths)
    if chars is not None:
        all_words = [w[:max_word_chars] if max_word_chars else w for tokens, _ in sentences for w in tokens]
        encoded.char_lengths = np.array([len(w) for w in all_words], dtype=np.int64)
        encoded.chars = chars.encode("".join(all_words)).numpy()
    return encoded


@dataclass
class Batch:
    """A padded batch: ``tokens``, ``tags`` (batch, time), ``lengths`` (batch,), ``chars``
    (batch, time, width) or None, and ``sentences`` (batch,), their ids in the split. ``counted``
    is false for a rank's empty share, which holds a sentence of the batch only to run the model."""

    tokens: torch.Tensor
    tags: torch.Tensor
    lengths: torch.Tensor
    chars: torch.Tensor | None
    sentences: torch.Tensor
    counted: bool = True

    def share(self, rank: int, world_size: int) -> Batch:
        """``rank``'s sentences among ``world_size`` processes: every ``world_size``-th from the
        ``rank``-th (``common.length_batches.share_rows``), cut to their longest."""
        if world_size == 1:
            return self
        rows, counted = share_rows(len(self.lengths), rank, world_size, self.lengths.device)
        lengths = self.lengths[rows]
        time = int(lengths.max())
        chars = None if self.chars is None else self.chars[rows, :time]
        return Batch(self.tokens[rows, :time], self.tags[rows, :time], lengths, chars,
                     self.sentences[rows], counted)


class TaggedSplit:
    """One split read flat from ``arrays`` (a prepared corpus's memory maps, or ``flat_arrays`` in
    memory): the sequences ``NAME`` of token ids with their ``tags`` aligned, and with ``chars``
    the sequences ``NAME_chars``, each token's characters."""

    def __init__(self, arrays, name: str, chars: bool):
        self.tokens = FlatSequences(arrays, name, aligned=("tags",))
        self.chars = FlatSequences(arrays, f"{name}_chars") if chars else None

    @classmethod
    def in_memory(cls, encoded: Encoded) -> TaggedSplit:
        """The split of sentences encoded in memory (``encode_sentences``)."""
        arrays = flat_arrays(IN_MEMORY, encoded.ids, encoded.lengths, tags=encoded.tags)
        if encoded.chars is not None:
            arrays.update(flat_arrays(f"{IN_MEMORY}_chars", encoded.chars, encoded.char_lengths))
        return cls(arrays, IN_MEMORY, encoded.chars is not None)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def lengths(self) -> np.ndarray:
        """(sentences,) int64: each sentence's length (a memory map, or an array)."""
        return self.tokens.lengths

    def gather(self, sentences: np.ndarray, time: int, device) -> Batch:
        """The padded batch of ``sentences`` (ids into the split), on ``device``: ``time`` must be
        at least their longest length. Padding holds ``PADDING_ID`` and tag 0; with characters,
        each word is padded to the batch's longest word."""
        sentences = np.asarray(sentences, dtype=np.int64)
        at, inside, lengths = self.tokens.positions(sentences, time)
        chars = None
        if self.chars is not None:
            word_lengths = np.asarray(self.chars.lengths[at])
            width = max(int(word_lengths[inside].max(initial=0)), 1)
            char_at, char_inside, _ = self.chars.positions(at, width, within=inside)
            chars = as_long(take(self.chars.ids, char_at, char_inside, PADDING_ID), device)
        return Batch(as_long(take(self.tokens.ids, at, inside, PADDING_ID), device),
                     as_long(take(self.tokens.aligned["tags"], at, inside, 0), device),
                     as_long(lengths, device), chars, as_long(sentences, device))


class BatchPlan:
    """The batches of one split, planned once: ``batch(i)`` gathers the i-th onto ``device``."""

    def __init__(self, split: TaggedSplit, batches: list[list[int]], device="cpu"):
        self.split, self.device = split, torch.device(device)
        self.ids = np.array([i for batch in batches for i in batch], dtype=np.int64)
        self.bounds = np.cumsum([0] + [len(b) for b in batches]).tolist()
        lengths = np.asarray(split.lengths)
        self.times = (np.maximum.reduceat(lengths[self.ids], self.bounds[:-1]).tolist()
                      if len(self.ids) else [])

    @classmethod
    def of(cls, split: TaggedSplit, batch_size: int, batch_tokens: int = 0, same_length: bool = False,
           device="cpu") -> BatchPlan:
        """The split's batches as ``common.length_batches.plan_batches`` cuts them, from the
        sentence lengths alone."""
        lengths = np.asarray(split.lengths).tolist()
        return cls(split, plan_batches(lengths, batch_size, batch_tokens, same_length), device)

    def __len__(self) -> int:
        return len(self.times)

    def batch(self, index: int) -> Batch:
        rows = self.ids[self.bounds[index]:self.bounds[index + 1]]
        return self.split.gather(rows, self.times[index], self.device)

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        """The order batches are visited in during ``epoch``: drawn from (seed, epoch) alone."""
        return epoch_order(len(self), seed, epoch)


def encode_split(sentences, level: str, words: Vocabulary, tags: dict, chars: Vocabulary | None,
                 max_word_chars: int = 0) -> TaggedSplit:
    """``sentences`` read whole and held in memory as a ``TaggedSplit`` (``encode_sentences``)."""
    return TaggedSplit.in_memory(encode_sentences(sentences, level, words, tags, chars, max_word_chars))
