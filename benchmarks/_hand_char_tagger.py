"""A character tagger as issue 10 describes the hand-written one, in plain torch: an embedding, a
bidirectional ``nn.LSTM``, a softmax per position, trained on independent fixed-size windows cut
at random offsets from the training files (whatever lines or tokens a window cuts through).

Also the time-invariant baseline: the most frequent class of each character in training.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from seqkit.plugins.tasks.tagging.metrics import TagCounts

from ._hand_training import Trained, length_batches, padded, train_for

PAD, UNK = 0, 1
EVAL_TOKENS = 32_768  # characters per evaluation batch


class CharVocabulary:
    """Characters of the training text, most frequent first, after padding (0) and unknown (1)."""

    def __init__(self, texts: list[str]):
        counts = Counter(c for text in texts for c in text)
        self.index = {c: i for i, c in enumerate(sorted(counts, key=lambda c: (-counts[c], c)), 2)}

    def __len__(self) -> int:
        return len(self.index) + 2

    def ids(self, text: str) -> list[int]:
        return [self.index.get(c, UNK) for c in text]


class CharTagger(nn.Module):
    def __init__(self, chars: int, tags: int, embedding_size: int, hidden_size: int, layers: int,
                 dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(chars, embedding_size, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding_size, hidden_size, layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden_size, tags)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time) ids -> (batch, time, tags) logits; ``lengths`` for padded batches."""
        x = self.embedding(chars)
        if lengths is None:
            return self.head(self.lstm(x)[0])
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                  total_length=chars.shape[1])
        return self.head(out)


def train_char_tagger(files: list[tuple[str, list[str]]], tag_names: tuple[str, ...], recipe: dict,
                      seconds: float, device, seed: int) -> tuple[CharTagger, CharVocabulary, Trained]:
    """Train on windows of ``data.max_length`` characters of ``files`` (whole training files), with
    the recipe's sizes, learning rate, warm-up and clipping, as many windows per batch as the
    recipe's ``train.batch_tokens`` hold (else ``batch_size``)."""
    torch.manual_seed(seed)
    model_cfg, train = recipe["model"], recipe["train"]
    window = recipe["data"]["max_length"]
    batch = train["batch_tokens"] // window if train["batch_tokens"] else train["batch_size"]
    vocabulary = CharVocabulary([text for text, _ in files])
    tag_ids = {name: i for i, name in enumerate(tag_names)}
    chars = torch.tensor([i for text, _ in files for i in vocabulary.ids(text)], dtype=torch.long)
    tags = torch.tensor([tag_ids[t] for _, labels in files for t in labels], dtype=torch.long)
    # every offset where a whole window fits inside one file
    starts, offset = [], 0
    for text, _ in files:
        if len(text) >= window:
            starts.append(torch.arange(offset, offset + len(text) - window + 1))
        offset += len(text)
    starts = torch.cat(starts)
    chars, tags = chars.to(device), tags.to(device)
    steps = torch.arange(window, device=device)
    model = CharTagger(len(vocabulary), len(tag_names), model_cfg["embedding_size"], model_cfg["hidden_size"],
                       model_cfg["layers"], model_cfg["dropout"]).to(device)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)

    def loss_of_step(_step: int):
        at = (starts[torch.randint(len(starts), (batch,), generator=generator)].to(device)
              .unsqueeze(1) + steps)
        logits = model(chars[at])
        return loss_fn(logits.flatten(0, 1), tags[at].flatten()), batch * window

    trained = train_for(model, loss_of_step, seconds, train["lr"], train["warmup_steps"],
                        train["clip_grad_norm"])
    return model, vocabulary, trained


@torch.no_grad()
def score_char_tagger(model: CharTagger, vocabulary: CharVocabulary, sentences, tag_names,
                      device) -> TagCounts:
    """TagCounts of the model's per-position argmax on ``sentences`` ((text, tag names) pairs)."""
    tag_ids = {name: i for i, name in enumerate(tag_names)}
    counts = TagCounts(tag_names, "none")
    for batch in length_batches([len(t) for t, _ in sentences], EVAL_TOKENS, EVAL_TOKENS):
        ids = [vocabulary.ids(sentences[i][0]) for i in batch]
        chars, lengths = padded(ids, device), torch.tensor([len(row) for row in ids])
        gold = padded([[tag_ids[t] for t in sentences[i][1]] for i in batch], device)
        counts.update(gold, model(chars, lengths).argmax(2), lengths, chars == UNK)
    return counts


def most_frequent_class(train, sentences, tag_names) -> TagCounts:
    """The baseline: each character of ``sentences`` tagged with the class it has most often in
    ``train`` (ties: the class first in ``tag_names``); a character never seen in training gets
    the most frequent class overall."""
    tag_ids = {name: i for i, name in enumerate(tag_names)}
    pairs, overall = Counter(), Counter()
    for text, tags in train:
        pairs.update(zip(text, (tag_ids[t] for t in tags)))
    best = {}
    # ascending by (count, -tag): the last write per character is its most frequent class
    for (c, tag), n in sorted(pairs.items(), key=lambda item: (item[1], -item[0][1])):
        best[c] = tag
        overall[tag] += n
    fallback = min(overall, key=lambda tag: (-overall[tag], tag))
    counts = TagCounts(tag_names, "none")
    gold = [tag_ids[t] for _, tags in sentences for t in tags]
    predicted = [best.get(c, fallback) for text, _ in sentences for c in text]
    unseen = torch.tensor([[c not in best for text, _ in sentences for c in text]])
    counts.update(torch.tensor([gold]), torch.tensor([predicted]), torch.tensor([len(gold)]), unseen)
    return counts
