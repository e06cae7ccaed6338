"""Metrics of a tagger: token accuracy, accuracy on unseen tokens, per-tag and macro F1, span F1.

Validation runs batch by batch and, under torch.distributed, on several processes. So metrics are
computed in two stages: :class:`TagCounts` adds integer counts of each padded ``(batch, time)``
batch of tag ids into one flat tensor on the device (a few tensor ops per batch, no Python loop
over tokens, tags or sentences), and :meth:`TagCounts.compute` turns the counts into rates once
at the end. Counts add: ``torch.distributed.all_reduce(counts.counts)`` on every rank gives each
rank the counts of the whole split, and so the metrics of one process that saw it all.

Span metrics follow seqeval's strict mode (and the CoNLL definition of a chunk): a span counts as
found only if its type, start and end all match a gold span, and a malformed span is not repaired
but is no span at all — in gold tags as in predicted ones. The schemes:

* ``bio`` (IOB2): a span is ``B-X`` followed by any number of ``I-X``. An ``I-X`` after ``O``, after
  a span of another type, or at the start of a sentence belongs to no span.
* ``bioes`` (IOBES): a span is ``S-X``, or ``B-X``, any number of ``I-X``, then ``E-X``. A ``B-X``
  whose run of ``I-X`` is not closed by ``E-X`` (``B-X O``, ``B-X I-X`` at the sentence end,
  ``B-X I-X E-Y``), and an ``E-X`` or ``I-X`` without its ``B-X``, belong to no span.
* ``none``: the tags are plain classes (part-of-speech tags, Python token classes); no span metrics.

IOB1 (CoNLL-2003's original files, where ``I-X`` may open a span) and BILOU are not read: convert
such tags to IOB2/IOBES first, or use ``none``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from seqkit import SeqkitError

SCHEMES = ("auto", "none", "bio", "bioes")
_SPAN_TAG = re.compile(r"([BIES])-(.+)")
_PREFIXES = {"bio": "BI", "bioes": "BIES"}


def detect_scheme(tag_names: Sequence[str]) -> str:
    """``bio``, ``bioes`` or ``none``, from the tag names alone.

    A span scheme needs every tag to be ``O`` or ``P-TYPE`` with P in B, I, E, S, and at least one
    ``B-`` tag (tags with only ``I-`` are IOB1, which is not read); any ``E-`` or ``S-`` tag makes
    it ``bioes``.
    """
    prefixes = set()
    for name in tag_names:
        match = _SPAN_TAG.fullmatch(name)
        if match is None and name != "O":
            return "none"
        if match is not None:
            prefixes.add(match[1])
    if "B" not in prefixes:
        return "none"
    return "bioes" if prefixes & {"E", "S"} else "bio"


class SpanScheme:
    """Finds the strict spans of padded tag-id tensors through per-tag lookup tables.

    Each table has one entry per tag id plus one for padding (id ``len(tag_names)``), which acts as
    ``O``. ``types`` are the span types in order of first appearance in ``tag_names``.
    """

    def __init__(self, tag_names: Sequence[str], scheme: str):
        if scheme not in _PREFIXES:
            raise ValueError(f"scheme must be one of {', '.join(_PREFIXES)}, not {scheme!r}")
        self.scheme = scheme
        parsed = []
        for name in tag_names:
            match = _SPAN_TAG.fullmatch(name)
            if name != "O" and (match is None or match[1] not in _PREFIXES[scheme]):
                allowed = " or ".join(f"{p}-TYPE" for p in _PREFIXES[scheme])
                raise SeqkitError(f"data.scheme: {scheme} does not fit the tag {name!r} (expected O or "
                                  f"{allowed}); set data.scheme to the tags' scheme or to none")
            parsed.append((None, None) if match is None else (match[1], match[2]))
        self.types = list(dict.fromkeys(kind for _, kind in parsed if kind is not None))
        prefixes = [prefix for prefix, _ in parsed] + [None]  # the last entry is padding
        type_ids = [self.types.index(kind) if kind else len(self.types) for _, kind in parsed]

        def table(members: str) -> torch.Tensor:
            return torch.tensor([p is not None and p in members for p in prefixes])

        self.type_of = torch.tensor(type_ids + [len(self.types)])  # len(types): no span type
        self.begins = table("BS")      # may start a span
        self.continues = table("IE")   # may extend the span of the tag before it
        self.extendable = table("BI")  # may be extended by the tag after it
        self.closes = table("BI" if scheme == "bio" else "ES")  # may be a span's last tag

    def to(self, device: torch.device | str | None) -> SpanScheme:
        """Move the lookup tables to ``device`` (once, rather than at every batch); returns self."""
        for name in ("type_of", "begins", "continues", "extendable", "closes"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def spans(self, tags: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Strict spans of ``tags`` (batch, time) where ``mask`` is true.

        Returns ``(starts, end, kind)``, each (batch, time): ``starts[b, t]`` is true where a valid
        span begins, ``end[b, t]`` is that span's last position (inclusive) and ``kind[b, t]`` its
        type id. A span is a maximal chain of tags that each continue the one before; which chains
        are spans depends only on their first and last tag, so chains are found with one shift over
        time and their ends with a reversed running minimum.
        """
        device = tags.device
        padding = self.type_of.numel() - 1
        ids = torch.where(mask, tags, padding)
        kind = self.type_of.to(device)[ids]
        chained = (self.continues.to(device)[ids[:, 1:]] & self.extendable.to(device)[ids[:, :-1]]
                   & (kind[:, 1:] == kind[:, :-1]))
        # a chain ends at t unless t + 1 continues it; the last column always ends one
        last = torch.cat([~chained, torch.ones_like(mask[:, :1])], dim=1)
        steps = tags.shape[1]
        positions = torch.arange(steps, device=device).expand_as(tags)
        end_marks = torch.where(last, positions, steps).flip(1)
        end = end_marks.cummin(dim=1).values.flip(1)
        starts = self.begins.to(device)[ids] & self.closes.to(device)[ids.gather(1, end)]
        return starts, end, kind


def span_scheme_for(tag_names: Sequence[str], scheme: str = "auto") -> SpanScheme | None:
    """The :class:`SpanScheme` of ``tag_names``; ``None`` for plain tags (``none``, or ``auto``
    when :func:`detect_scheme` finds no span scheme)."""
    if scheme not in SCHEMES:
        raise SeqkitError(f"data.scheme: {scheme!r} is not one of {', '.join(SCHEMES)}")
    resolved = detect_scheme(tag_names) if scheme == "auto" else scheme
    return None if resolved == "none" else SpanScheme(tag_names, resolved)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's and seqeval's rule)."""
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), 0.0)


def _scores(true_positives, predicted, gold) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Precision, recall and F1 from float64 count tensors; F1 = 2·tp / (predicted + gold)."""
    return (_ratio(true_positives, predicted), _ratio(true_positives, gold),
            _ratio(2 * true_positives, predicted + gold))


class TagCounts:
    """Streaming counts of a tagger's predictions, from which every tagging metric follows.

    ``counts`` is one flat int64 tensor on ``device``; it holds, in order, the K×K confusion matrix
    (row: gold tag, column: predicted tag), the number of unseen tokens and of those tagged
    correctly, and, for a span scheme, the true-positive, predicted and gold span counts of each
    span type. Adding the ``counts`` of two TagCounts (``+``, :meth:`merge`, or an all-reduce of
    the tensor) gives the counts of both batches together.

    Example::

        counts = TagCounts(["O", "B-PER", "I-PER"])
        for gold, predicted, lengths in batches:     # (batch, time), (batch, time), (batch,)
            counts.update(gold, predicted, lengths)
        counts.compute()["span_f1"]
    """

    def __init__(self, tag_names: Sequence[str], scheme: str = "auto", device: torch.device | str | None = None):
        self.tag_names = tuple(tag_names)
        if len(set(self.tag_names)) != len(self.tag_names):
            raise ValueError(f"tag names must be distinct: {self.tag_names}")
        self.span_scheme = span_scheme_for(self.tag_names, scheme)
        self.scheme = self.span_scheme.scheme if self.span_scheme else "none"
        self.span_types = tuple(self.span_scheme.types) if self.span_scheme else ()
        size = len(self.tag_names) ** 2 + 2 + 3 * len(self.span_types)
        self.counts = torch.zeros(size, dtype=torch.long, device=device)
        if self.span_scheme is not None:
            self.span_scheme.to(self.counts.device)

    # -- views into the flat counts ----------------------------------------------------------
    @property
    def confusion(self) -> torch.Tensor:
        """(K, K) counts: ``confusion[g, p]`` tokens with gold tag g tagged p."""
        k = len(self.tag_names)
        return self.counts[:k * k].view(k, k)

    @property
    def unseen(self) -> torch.Tensor:
        """(2,) counts: tokens marked unseen, and those of them tagged correctly."""
        k = len(self.tag_names)
        return self.counts[k * k:k * k + 2]

    @property
    def span_counts(self) -> torch.Tensor:
        """(3, number of span types) counts: rows are true-positive, predicted and gold spans."""
        k = len(self.tag_names)
        return self.counts[k * k + 2:].view(3, len(self.span_types))

    # -- accumulating ----------------------------------------------------------------------
    def update(self, gold: torch.Tensor, predicted: torch.Tensor, lengths: torch.Tensor,
               unseen: torch.Tensor | None = None) -> None:
        """Add one padded batch.

        ``gold`` and ``predicted`` are (batch, time) tag ids, ``lengths`` (batch,) the number of
        real tokens of each row; positions past a row's length are ignored, whatever they hold.
        Ids at real positions must lie in ``[0, K)``. ``unseen`` (batch, time, bool), where given,
        marks the tokens that never occurred in training.
        """
        if gold.shape != predicted.shape or gold.dim() != 2:
            raise ValueError(f"gold and predicted must be (batch, time) tensors of one shape, "
                             f"not {tuple(gold.shape)} and {tuple(predicted.shape)}")
        k = len(self.tag_names)
        device = self.counts.device
        gold, predicted = gold.to(device), predicted.to(device)
        mask = torch.arange(gold.shape[1], device=device) < lengths.to(device).unsqueeze(1)
        # one bincount: padding goes to the extra bin k*k, which is dropped
        pairs = torch.where(mask, gold * k + predicted, k * k)
        self.confusion.add_(torch.bincount(pairs.flatten(), minlength=k * k + 1)[:k * k].view(k, k))
        if unseen is not None:
            unseen = unseen.to(device) & mask
            self.unseen.add_(torch.stack([unseen.sum(), (unseen & (gold == predicted)).sum()]))
        if self.span_scheme is not None:
            self._update_spans(gold, predicted, mask)

    def _update_spans(self, gold: torch.Tensor, predicted: torch.Tensor, mask: torch.Tensor) -> None:
        types = len(self.span_types)
        gold_starts, gold_end, gold_kind = self.span_scheme.spans(gold, mask)
        pred_starts, pred_end, pred_kind = self.span_scheme.spans(predicted, mask)
        # spans are keyed by their start: two spans match if they start, end and are typed alike
        found = gold_starts & pred_starts & (gold_end == pred_end) & (gold_kind == pred_kind)
        bins = torch.stack([torch.where(found, gold_kind, types), torch.where(pred_starts, pred_kind, types),
                            torch.where(gold_starts, gold_kind, types)])
        bins = bins + (types + 1) * torch.arange(3, device=bins.device).view(3, 1, 1)
        counted = torch.bincount(bins.flatten(), minlength=3 * (types + 1)).view(3, types + 1)
        self.span_counts.add_(counted[:, :types])

    def merge(self, other: TagCounts) -> TagCounts:
        """Add ``other``'s counts into these (in place) and return self."""
        if (other.tag_names, other.scheme) != (self.tag_names, self.scheme):
            raise ValueError("cannot merge counts of different tag sets or schemes")
        self.counts += other.counts.to(self.counts.device)
        return self

    def __add__(self, other: TagCounts) -> TagCounts:
        total = TagCounts(self.tag_names, self.scheme, self.counts.device)
        return total.merge(self).merge(other)

    # -- metrics ---------------------------------------------------------------------------
    def _tag_scores(self):
        confusion = self.confusion.double().cpu()
        true_positives, predicted, gold = confusion.diagonal(), confusion.sum(0), confusion.sum(1)
        present = (predicted + gold) > 0
        return (*_scores(true_positives, predicted, gold), gold, present)

    def compute(self) -> dict[str, float]:
        """The metrics of all counted tokens.

        * ``accuracy``: share of tokens tagged correctly.
        * ``unseen_accuracy``: the same over tokens marked unseen; absent when none were (a NaN
          would not survive JSON, and a 0 would read as a result).
        * ``macro_f1``: the mean F1 over the tags present in the gold or the predicted tags
          (scikit-learn's ``f1_score(average="macro")``); a tag never predicted has F1 0.
        * ``span_precision``, ``span_recall``, ``span_f1``: micro-averaged over all span types,
          strict (seqeval's default report); only with a span scheme. With no predicted span the
          precision is 0, with no gold span the recall is 0.

        Raises ValueError when no token was counted.
        """
        confusion = self.confusion.double().cpu()
        tokens = confusion.sum()
        if tokens == 0:
            raise ValueError("no tokens were counted")
        _, _, f1, _, present = self._tag_scores()
        metrics = {"accuracy": (confusion.trace() / tokens).item(), "macro_f1": f1[present].mean().item()}
        unseen_tokens, unseen_correct = self.unseen.tolist()
        if unseen_tokens:
            metrics["unseen_accuracy"] = unseen_correct / unseen_tokens
        if self.span_scheme is not None:
            true_positives, predicted, gold = self.span_counts.double().cpu().sum(1)
            precision, recall, f1 = _scores(true_positives, predicted, gold)
            metrics.update(span_precision=precision.item(), span_recall=recall.item(), span_f1=f1.item())
        return metrics

    def per_tag(self) -> dict[str, dict[str, float]]:
        """Tag name -> precision, recall, F1 and support (gold count), for the tags in ``macro_f1``,
        in tag-id order."""
        precision, recall, f1, support, present = self._tag_scores()
        return {name: {"precision": precision[i].item(), "recall": recall[i].item(),
                       "f1": f1[i].item(), "support": int(support[i])}
                for i, name in enumerate(self.tag_names) if present[i]}

    def per_span_type(self) -> dict[str, dict[str, float]]:
        """Span type -> precision, recall, F1 and support (gold spans), for the types that occur in
        gold or predicted spans; empty without a span scheme."""
        true_positives, predicted, gold = self.span_counts.double().cpu()
        precision, recall, f1 = _scores(true_positives, predicted, gold)
        return {name: {"precision": precision[i].item(), "recall": recall[i].item(),
                       "f1": f1[i].item(), "support": int(gold[i])}
                for i, name in enumerate(self.span_types) if predicted[i] + gold[i] > 0}
