"""Metrics of a translation against one or more references per input.

* **Word error rate**: the share of outputs that are not exactly one of their references (in G2P,
  a word whose pronunciation is wrong; in translation, the sentence error rate).
* **Token error rate**: each output's edit distance (Levenshtein: insertions, deletions and
  substitutions of tokens) to its closest reference, summed over the split and divided by the
  summed lengths of those references (in G2P, the phone error rate). The closest reference is the
  one with the fewest edits; among equally close ones, the longest (its rate is the lowest).
* **BLEU and chrF** for word-level text, from ``sacrebleu`` (the field's standard implementation,
  optional: ``pip install -e ".[bleu]"``): :func:`bleu_and_chrf`.

Validation runs batch by batch and, under torch.distributed, on several processes, so the error
rates come from counts that add: :class:`TranslationCounts` keeps one flat int64 tensor on the
device; ``torch.distributed.all_reduce(counts.counts)`` on every rank gives the counts of the
whole split.

Edit distances come from ``rapidfuzz`` (MIT; ``pip install -e ".[translation]"``, which the
``g2p`` extra includes): on the 135,166 pronunciations of cmudict.dict against perturbed copies,
0.31 µs a pair, against 0.47 µs for ``editdistance``, 10.4 µs for a plain Python dynamic program
and 24 µs for a dynamic program batched in torch (one thread), whose rows must be computed one
after another. Its bit-parallel algorithm keeps long sequences fast where a dynamic program's cost
grows with the product of the lengths: on 150-character sentences, 0.4 µs a pair against 7.1 ms.
"""
from __future__ import annotations

import functools
import importlib.util
from collections.abc import Hashable, Sequence

import torch

from seqkit import SeqkitError

TOKENS = Sequence[Hashable]  # a str, or a list of tokens or token ids

# The packages the metrics import, each with what it gives and the extra that installs it.
RAPIDFUZZ = ("rapidfuzz", "rapidfuzz (edit distances)", "translation")
SACREBLEU = ("sacrebleu", "sacrebleu", "bleu")


def not_installed(package: tuple[str, str, str]) -> str:
    """'rapidfuzz (edit distances), which is not installed: pip install ...' for ``package``."""
    _, what, extra = package
    return (f'{what}, which is not installed: pip install -e ".[{extra}]" (or pip install '
            f'"seqkit[{extra}]")')


def installed(package: tuple[str, str, str]) -> bool:
    """Can ``package`` be imported? Found, not imported, so that validation stays quick."""
    try:
        return importlib.util.find_spec(package[0]) is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
        return False


@functools.cache
def _levenshtein():
    try:
        from rapidfuzz.distance import Levenshtein  # an optional extra: imported where it is used
    except ImportError:
        raise SeqkitError(f"the translation metrics need {not_installed(RAPIDFUZZ)}") from None
    return Levenshtein.distance


def edit_distance(a: TOKENS, b: TOKENS) -> int:
    """The fewest insertions, deletions and substitutions of tokens that turn ``a`` into ``b``."""
    return _levenshtein()(a, b)


def closest_reference(output: TOKENS, references: Sequence[TOKENS]) -> tuple[int, int]:
    """(edits, length) of the reference closest to ``output``: the fewest edits, then the longest.

    ``output`` and the references are sequences of the same kind (all ``str``, or all lists of
    tokens or of token ids); there must be at least one reference, none empty.
    """
    if not references:
        raise ValueError("an output needs at least one reference")
    distance = _levenshtein()
    best_edits, best_length = None, 0
    for reference in references:
        if not len(reference):
            raise ValueError("a reference is empty")
        edits = distance(output, reference)
        if best_edits is None or edits < best_edits or (edits == best_edits and len(reference) > best_length):
            best_edits, best_length = edits, len(reference)
    return best_edits, best_length


class TranslationCounts:
    """Streaming counts of a translator's outputs, from which the word and token error rates follow.

    ``counts`` is one flat int64 tensor on ``device``: the number of outputs, of outputs that are
    none of their references, the edits to the closest references, and those references' tokens.
    Adding the ``counts`` of two TranslationCounts (``+``, :meth:`merge`, or an all-reduce of the
    tensor) gives the counts of both batches together.

    Example::

        counts = TranslationCounts()
        for outputs, references in batches:   # lists of token sequences; lists of lists of them
            counts.update(outputs, references)
        counts.compute()["word_error_rate"]
    """

    FIELDS = ("outputs", "wrong_outputs", "edits", "reference_tokens")

    def __init__(self, device: torch.device | str | None = None):
        _levenshtein()  # no rapidfuzz: say so now, not after a whole training run
        self.counts = torch.zeros(len(self.FIELDS), dtype=torch.long, device=device)

    def update(self, outputs: Sequence[TOKENS], references: Sequence[Sequence[TOKENS]]) -> None:
        """Add one batch: ``outputs[i]`` is scored against the sequences of ``references[i]``."""
        if len(outputs) != len(references):
            raise ValueError(f"{len(outputs)} outputs but references for {len(references)}")
        wrong = edits = tokens = 0
        for output, candidates in zip(outputs, references):
            output_edits, length = closest_reference(output, candidates)
            wrong += output_edits > 0
            edits += output_edits
            tokens += length
        added = torch.tensor([len(outputs), wrong, edits, tokens], dtype=torch.long)
        self.counts += added.to(self.counts.device)

    def merge(self, other: TranslationCounts) -> TranslationCounts:
        """Add ``other``'s counts into these (in place) and return self."""
        self.counts += other.counts.to(self.counts.device)
        return self

    def __add__(self, other: TranslationCounts) -> TranslationCounts:
        total = TranslationCounts(self.counts.device)
        return total.merge(self).merge(other)

    def compute(self) -> dict[str, float]:
        """``word_error_rate`` and ``token_error_rate`` of all counted outputs (0 is perfect; the
        token error rate exceeds 1 when outputs are longer than their references).

        Raises ValueError when no output was counted.
        """
        outputs, wrong, edits, tokens = self.counts.tolist()
        if outputs == 0:
            raise ValueError("no outputs were counted")
        return {"word_error_rate": wrong / outputs, "token_error_rate": edits / tokens}


def bleu_and_chrf(outputs: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU and chrF (0 to 100) of detokenized ``outputs`` (for space-separated tokens,
    joined with spaces), each against its own one or more reference strings.

    sacrebleu's defaults: BLEU-4 with its ``13a`` tokenizer and exponential smoothing, and chrF
    (character 6-grams, beta 2); the numbers compare with any paper that reports sacrebleu's.
    """
    try:
        from sacrebleu.metrics import BLEU, CHRF  # an optional extra: imported where it is used
    except ImportError:
        raise SeqkitError(f"BLEU and chrF need {not_installed(SACREBLEU)}") from None
    if len(outputs) != len(references) or not outputs:
        raise ValueError(f"{len(outputs)} outputs but references for {len(references)}; need one "
                         f"or more of each")
    if not all(references):
        raise ValueError("every output needs at least one reference")
    # sacrebleu takes reference streams (the k-th reference of every output); None where an
    # output has fewer than k references
    most = max(len(candidates) for candidates in references)
    streams = [[candidates[k] if k < len(candidates) else None for candidates in references]
               for k in range(most)]
    return {"bleu": BLEU().corpus_score(list(outputs), streams).score,
            "chrf": CHRF().corpus_score(list(outputs), streams).score}
