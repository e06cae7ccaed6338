"""A careful word-level bi-LSTM tagger in plain torch, as Plank et al. (2016) build theirs: each
word is its embedding plus the final states of a character bi-LSTM over its spelling; a bi-LSTM
reads the sentence; a softmax per word. Words seen once in training read as the unknown word with
probability ``train.word_dropout``, so that the unknown embedding is trained. Sentences are
bucketed by length into batches built once; each epoch visits them in a new random order.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from seqkit.plugins.tasks.tagging.metrics import TagCounts

from ._hand_training import Trained, length_batches, padded, train_for

PAD, UNK = 0, 1
EVAL_SENTENCES = 256


def vocabulary(counts: Counter) -> dict[str, int]:
    """symbol -> id, most frequent first, after padding (0) and unknown (1)."""
    return {s: i for i, s in enumerate(sorted(counts, key=lambda s: (-counts[s], s)), 2)}


@dataclass
class WordBatch:
    words: torch.Tensor          # (batch, time) word ids
    lengths: torch.Tensor        # (batch,) on the host, for packing
    chars: torch.Tensor          # (real words, width) character ids, sentence by sentence
    char_lengths: torch.Tensor   # (real words,) on the host
    tags: torch.Tensor           # (batch, time) tag ids, 0 at padding
    unseen: torch.Tensor         # (batch, time) bool: words never seen in training


class WordTagger(nn.Module):
    def __init__(self, words: int, chars: int, tags: int, embedding_size: int, char_embedding_size: int,
                 char_features: int, hidden_size: int, layers: int, dropout: float):
        super().__init__()
        self.words = nn.Embedding(words, embedding_size, padding_idx=PAD)
        self.chars = nn.Embedding(chars, char_embedding_size, padding_idx=PAD)
        self.char_lstm = nn.LSTM(char_embedding_size, char_features, batch_first=True, bidirectional=True)
        self.lstm = nn.LSTM(embedding_size + 2 * char_features, hidden_size, layers, batch_first=True,
                            bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, tags)

    def forward(self, batch: WordBatch, words: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time, tags) logits; ``words`` replaces the batch's word ids (word dropout)."""
        words = batch.words if words is None else words
        spelled = nn.utils.rnn.pack_padded_sequence(self.chars(batch.chars), batch.char_lengths,
                                                    batch_first=True, enforce_sorted=False)
        _, (final, _) = self.char_lstm(spelled)  # (2 directions, real words, char_features)
        mask = torch.arange(words.shape[1], device=words.device) < batch.lengths.to(words.device).unsqueeze(1)
        char_part = final.new_zeros(*words.shape, 2 * final.shape[2])
        char_part[mask] = torch.cat([final[0], final[1]], dim=1)
        x = self.dropout(torch.cat([self.words(words), char_part], dim=2))
        packed = nn.utils.rnn.pack_padded_sequence(x, batch.lengths, batch_first=True, enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                  total_length=words.shape[1])
        return self.head(self.dropout(out))


class WordData:
    """Vocabularies from the training sentences, and padded batches of any split."""

    def __init__(self, train, tag_names: tuple[str, ...]):
        counts = Counter(w for words, _ in train for w in words)
        self.words = vocabulary(counts)
        self.chars = vocabulary(Counter(c for w in counts for c in w))
        self.tag_ids = {name: i for i, name in enumerate(tag_names)}
        self.singletons = torch.tensor([False, False] + [counts[w] == 1 for w in self.words])

    def batches(self, sentences, batch_size: int, batch_tokens: int, device) -> list[WordBatch]:
        found = []
        for batch in length_batches([len(words) for words, _ in sentences], batch_tokens, batch_size):
            rows = [sentences[i] for i in batch]
            word_ids = [[self.words.get(w, UNK) for w in words] for words, _ in rows]
            spellings = [[self.chars.get(c, UNK) for c in w] for words, _ in rows for w in words]
            found.append(WordBatch(padded(word_ids, device), torch.tensor([len(r) for r in word_ids]),
                                   padded(spellings, device), torch.tensor([len(s) for s in spellings]),
                                   padded([[self.tag_ids[t] for t in tags] for _, tags in rows], device),
                                   padded(word_ids, device) == UNK))
        return found


def train_word_tagger(train, tag_names: tuple[str, ...], recipe: dict, seconds: float, device,
                      seed: int) -> tuple[WordTagger, WordData, Trained]:
    """Train on ``train`` ((words, tags) pairs) with the recipe's sizes, dropout, word dropout,
    batch size, learning rate, warm-up and clipping."""
    torch.manual_seed(seed)
    model_cfg, train_cfg = recipe["model"], recipe["train"]
    data = WordData(train, tag_names)
    batches = data.batches(train, train_cfg["batch_size"], train_cfg["batch_tokens"], device)
    singletons = data.singletons.to(device)
    model = WordTagger(len(data.words) + 2, len(data.chars) + 2, len(tag_names), model_cfg["embedding_size"],
                       model_cfg["char_embedding_size"], model_cfg["char_features"], model_cfg["hidden_size"],
                       model_cfg["layers"], model_cfg["dropout"]).to(device)
    loss_fn = nn.CrossEntropyLoss()
    shuffle, order = random.Random(seed), []

    def loss_of_step(_step: int):
        if not order:  # a new epoch: the batches in a new order
            order.extend(shuffle.sample(range(len(batches)), len(batches)))
        batch = batches[order.pop()]
        words = batch.words
        if train_cfg["word_dropout"]:
            drop = singletons[words] & (torch.rand(words.shape, device=device) < train_cfg["word_dropout"])
            words = words.masked_fill(drop, UNK)
        mask = batch.words != PAD
        return loss_fn(model(batch, words)[mask], batch.tags[mask]), int(batch.lengths.sum())

    trained = train_for(model, loss_of_step, seconds, train_cfg["lr"], train_cfg["warmup_steps"],
                        train_cfg["clip_grad_norm"])
    return model, data, trained


@torch.no_grad()
def score_word_tagger(model: WordTagger, data: WordData, sentences, tag_names, device) -> TagCounts:
    """TagCounts of the model's argmax on ``sentences``; unseen = not a training word."""
    counts = TagCounts(tag_names, "none")
    for batch in data.batches(sentences, EVAL_SENTENCES, 0, device):
        counts.update(batch.tags, model(batch).argmax(2), batch.lengths, batch.unseen)
    return counts
