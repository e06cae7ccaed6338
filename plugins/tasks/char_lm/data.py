"""char_lm's data: its character vocabulary, the text split for validation, and training batches by
index arithmetic on one token array per split (memory maps of the prepared corpus, ``corpus.py``).

The character vocabulary (the ``char`` tokenizer's) follows ``common.vocabulary``: the unknown
symbol U+FFFD at 0 (``data.unknown: map``; none with ``drop``), then every character of the
training text in code point order.

* ``sampling: stream`` cuts the training text into ``batch_size`` parallel streams and reads
  consecutive ``window``-character slices of them, so that the hidden state can be carried from
  one window to the next (truncated back-propagation through time).
* ``sampling: random`` draws ``batch_size`` random windows per step, or, with ``pool: N``, cycles
  through N windows drawn once (the lecture: 10,000 windows, full batch).

With several processes each rank reads its own block of the streams (or windows), ``share_bounds``.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from seqkit.errors import SeqkitError
from seqkit.plugins.tasks.common.dataset_splits import recipe_dataset
from seqkit.plugins.tasks.common.flat_sequences import as_long
from seqkit.plugins.tasks.common.vocabulary import UNKNOWN_CHAR, Vocabulary


def build_vocabulary(text: str, lowercase: bool = False, alphabet: str = "", unknown: str = "map") -> Vocabulary:
    """Every distinct character of ``text`` (after lowercasing), or only those in ``alphabet``.
    With ``unknown="map"`` id 0 is the unknown symbol; with ``"drop"`` characters outside the
    vocabulary are removed from a text instead (the lecture's choice)."""
    if unknown not in ("map", "drop"):
        raise ValueError(f"unknown must be 'map' or 'drop', got {unknown!r}")
    if lowercase:
        text = text.lower()
    seen = set(text)
    if unknown == "drop" and any(c.isspace() for c in seen):
        seen.add(" ")  # other whitespace will be written as a space
    if alphabet:
        seen &= set(alphabet.lower() if lowercase else alphabet)
    if not seen:
        raise SeqkitError("data: no characters of the alphabet occur in the training text")
    specials = (UNKNOWN_CHAR,) if unknown == "map" else ()
    return Vocabulary.build(Counter(seen - {UNKNOWN_CHAR}), specials, specials[0] if specials else None, lowercase)


def vocabulary_state(vocab: Vocabulary) -> dict:
    """The vocabulary as char_lm's checkpoints hold it."""
    return {"symbols": list(vocab.symbols), "lowercase": vocab.lowercase,
            "unknown": "drop" if vocab.unknown is None else "map"}


def vocabulary_from_state(state: dict) -> Vocabulary:
    specials = (UNKNOWN_CHAR,) if state["unknown"] == "map" else ()
    return Vocabulary(state["symbols"], specials, specials[0] if specials else None, state["lowercase"])


def dataset_text(data: dict) -> str:
    """The text of the dataset that the recipe's ``data`` section names, with its options."""
    text = recipe_dataset(data).load()
    if not isinstance(text, str):
        raise SeqkitError(f"data.dataset: '{data['dataset']}' gives {type(text).__name__} data, not "
                          f"text; char_lm reads a text dataset such as python-docs, python-source or text")
    if not text:
        raise SeqkitError(f"data.dataset: '{data['dataset']}' returned no text")
    return text


def split_text(text: str, fraction: float, how: str, min_block: int = 1) -> tuple[str, str]:
    """(training text, validation text), cut as ``split_segments`` says."""
    segments = split_segments(len(text), fraction, how, min_block)
    return ("".join(text[a:b] for a, b, held in segments if not held),
            "".join(text[a:b] for a, b, held in segments if held))


def split_segments(n_chars: int, fraction: float, how: str, min_block: int = 1) -> list[tuple[int, int, bool]]:
    """(start, end, held out?) of consecutive pieces of a text of ``n_chars`` characters.

    ``blocks`` cuts the text into 100 equal blocks and holds out an evenly spaced ``fraction`` of
    them (every 10th for 0.1), so both splits cover every part of a text whose topics change along
    the way. A fraction below 1/100 takes finer blocks (up to ten held out, none shorter than
    ``min_block`` characters), so that the share asked for is held out at every size; ``tail``
    (and a text too short for blocks) holds out the end."""
    if how == "tail" or n_chars < 200:
        n_val = max(1, int(n_chars * fraction))
        return [(0, n_chars - n_val, False), (n_chars - n_val, n_chars, True)]
    blocks = 100
    held_out = [int((i + 1) * fraction) > int(i * fraction) for i in range(blocks)]
    if fraction * blocks < 1:
        # k evenly spaced blocks of the share (up to ten, each at least min_block characters)
        k = min(10, int(n_chars * fraction) // max(min_block, 1))
        if k == 0:  # the share is shorter than one block: one block at the end, a tenth at most
            n_val = max(1, min(min_block, n_chars // 10))
            return [(0, n_chars - n_val, False), (n_chars - n_val, n_chars, True)]
        blocks = round(k / fraction)
        held_out = [(i + 1) * k // blocks > i * k // blocks for i in range(blocks)]
    bounds = [n_chars * i // blocks for i in range(blocks + 1)]
    return [(bounds[i], bounds[i + 1], held_out[i]) for i in range(blocks)]


def share_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """(first, end): ``rank``'s block of ``count`` rows split as evenly as can be over ``world_size``."""
    return rank * count // world_size, (rank + 1) * count // world_size


def cut_streams(tokens: np.ndarray, streams: int, window: int) -> tuple[np.ndarray, int]:
    """The training tokens as ``streams`` parallel streams (streams, length), a view of the memory
    map, and the windows of ``window`` tokens an epoch reads of each (each window followed by its
    next token)."""
    length = len(tokens) // streams
    if length < window + 1:
        raise SeqkitError(f"train.batch_size: {streams} streams of the {len(tokens)}-token training "
                          f"split are shorter than train.window + 1; lower train.batch_size or train.window")
    return tokens[:streams * length].reshape(streams, length), (length - 1) // window


def stream_window(streams: np.ndarray, index: int, window: int,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Window ``index`` of every stream: inputs (streams, window) and the tokens that follow each."""
    start = index * window
    chunk = as_long(streams[:, start:start + window + 1], device)
    return chunk[:, :-1], chunk[:, 1:]


def random_starts(n_tokens: int, window: int, count: int, seed: int) -> torch.Tensor:
    """``count`` starts of windows that fit, with their next token, in ``n_tokens``, from
    ``seed`` alone (on the CPU)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, n_tokens - window, (count,), generator=generator)


def step_starts(step: int, n_tokens: int, window: int, batch: int, seed: int,
                pool: torch.Tensor | None) -> torch.Tensor:
    """The starts of the ``batch`` random windows of training step ``step``, from (seed, step) alone,
    so that a resumed run reads the same ones: fresh ones, or the step's batch of ``pool``, the
    windows drawn once, visited in an order drawn per epoch (all of them, when the batch holds them)."""
    if pool is None:
        return random_starts(n_tokens, window, batch, (seed * 1_000_003 + step) % 2**63)
    per_epoch = max(1, len(pool) // batch)
    epoch, index = divmod(step, per_epoch)
    if batch >= len(pool):
        return pool  # full batch, as the lecture
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed + epoch))
    return pool[order[index * batch:(index + 1) * batch]]


def windows(tokens: np.ndarray, starts: torch.Tensor, window: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (n, window) from each of ``starts``, and the tokens that follow each input position:
    only these windows are read from the memory map."""
    chunk = as_long(tokens[starts.numpy()[:, None] + np.arange(window + 1)], device)
    return chunk[:, :-1], chunk[:, 1:]
