"""A tagging dataset as tensors on the device, and its batches by index arithmetic.

Every split is held flat: all its tokens end to end (``tokens``, ``tags``, one id per token) plus
where each sentence starts and how long it is. A batch is a list of sentence ids; padding it is
one gather (``start + arange(time)``) and one mask, whatever the batch. With character features,
every token occurrence also points into one flat tensor of characters, gathered the same way.

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
from seqkit.plugins.tasks.common.length_batches import epoch_order, share_rows
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, Vocabulary

MAX_WORD_CHARS = 30  # characters read per word by the character features: a URL is not a word


@dataclass
class EncodedSplit:
    """One split on the device. ``tokens``, ``tags``: (all tokens,) long; ``starts``, ``lengths``:
    (sentences,) long, on the device, and ``host_lengths`` the same as a list for planning.
    With characters: ``chars`` (all characters,) long, and per token ``char_starts`` and
    ``char_lengths`` into it, and per sentence ``host_widths``, its longest word in characters."""

    tokens: torch.Tensor
    tags: torch.Tensor
    starts: torch.Tensor
    lengths: torch.Tensor
    host_lengths: list[int]
    chars: torch.Tensor | None = None
    char_starts: torch.Tensor | None = None
    char_lengths: torch.Tensor | None = None
    host_widths: list[int] | None = None

    def __len__(self) -> int:
        return len(self.host_lengths)


def encode_split(sentences, level: str, words: Vocabulary, tags: dict, chars: Vocabulary | None,
                 device, max_word_chars: int = 0) -> EncodedSplit:
    """``sentences`` as an ``EncodedSplit``: tokens through ``words`` (characters through it too
    at character level), tags through ``tags`` (a name -> id dict; a tag it lacks is an error),
    each word's characters through ``chars`` (cut to ``max_word_chars``; 0: whole words)."""
    lengths = [len(tokens) for tokens, _ in sentences]
    if level == "char":
        token_ids = words.encode("".join(t for t, _ in sentences))
    else:
        token_ids = torch.tensor(words.ids(w for tokens, _ in sentences for w in tokens), dtype=torch.long)
    try:
        tag_ids = torch.tensor([tags[t] for _, sentence_tags in sentences for t in sentence_tags],
                               dtype=torch.long)
    except KeyError as exc:
        raise SeqkitError(f"data: the tag {exc.args[0]!r} was not among the tags this run trained on "
                          f"({', '.join(tags)}); a tagger predicts only the tags it has seen") from None
    host_lengths = torch.tensor(lengths, dtype=torch.long)
    starts = torch.cumsum(host_lengths, 0) - host_lengths
    split = EncodedSplit(token_ids.to(device), tag_ids.to(device), starts.to(device),
                         host_lengths.to(device), lengths)
    if chars is not None:
        all_words = [w[:max_word_chars] if max_word_chars else w for tokens, _ in sentences for w in tokens]
        char_lengths = torch.tensor([len(w) for w in all_words], dtype=torch.long)
        split.chars = chars.encode("".join(all_words)).to(device)
        split.char_starts = (torch.cumsum(char_lengths, 0) - char_lengths).to(device)
        split.char_lengths = char_lengths.to(device)
        split.host_widths = (np.maximum.reduceat(char_lengths.numpy(), starts.numpy()).tolist()
                             if lengths else [])
    return split


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


def gather_batch(split: EncodedSplit, sentences: torch.Tensor, time: int, width: int = 0) -> Batch:
    """The padded batch of ``sentences`` (ids on the split's device): ``time`` must be at least
    their longest length, ``width`` their longest word (with characters). Padding holds
    ``PADDING_ID`` and tag 0."""
    device = split.tokens.device
    lengths = split.lengths[sentences]
    steps = torch.arange(time, device=device)
    mask = steps < lengths.unsqueeze(1)
    at = (split.starts[sentences].unsqueeze(1) + steps).masked_fill(~mask, 0)
    tokens = split.tokens[at].masked_fill(~mask, PADDING_ID)
    tags = split.tags[at].masked_fill(~mask, 0)
    chars = None
    if split.chars is not None:
        offsets = torch.arange(max(width, 1), device=device)
        inside = (offsets < split.char_lengths[at].unsqueeze(2)) & mask.unsqueeze(2)
        where = (split.char_starts[at].unsqueeze(2) + offsets).masked_fill(~inside, 0)
        chars = split.chars[where].masked_fill(~inside, PADDING_ID) if len(split.chars) else \
            torch.zeros_like(where)
    return Batch(tokens, tags, lengths, chars, sentences)


class BatchPlan:
    """The batches of one split, planned once: ``batch(i)`` gathers the i-th."""

    def __init__(self, split: EncodedSplit, batches: list[list[int]]):
        self.split = split
        flat = [i for batch in batches for i in batch]
        self.ids = torch.tensor(flat, dtype=torch.long, device=split.tokens.device)
        self.bounds = np.cumsum([0] + [len(b) for b in batches]).tolist()
        self.times = [max(split.host_lengths[i] for i in batch) for batch in batches]
        self.widths = ([max(split.host_widths[i] for i in batch) for batch in batches]
                       if split.host_widths is not None else [0] * len(batches))

    def __len__(self) -> int:
        return len(self.times)

    def batch(self, index: int) -> Batch:
        ids = self.ids[self.bounds[index]:self.bounds[index + 1]]
        return gather_batch(self.split, ids, self.times[index], self.widths[index])

    def order(self, seed: int, epoch: int) -> torch.Tensor:
        """The order batches are visited in during ``epoch``: drawn from (seed, epoch) alone."""
        return epoch_order(len(self), seed, epoch)
