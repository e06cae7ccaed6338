"""Tagging metrics against a plain per-sentence, per-token reference written from the definitions
(CoNLL chunks, seqeval's strict mode, scikit-learn's macro F1), on random padded batches."""
from __future__ import annotations

import random

import pytest
import torch

from seqkit import SeqkitError
from seqkit.plugins.tasks.tagging.metrics import TagCounts, detect_scheme, span_scheme_for

TYPES = ["PER", "LOC", "ORG"]
TAG_SETS = {
    "bio": ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"],
    "bioes": ["O"] + [f"{p}-{t}" for t in TYPES for p in "BIES"],
    "none": ["NOUN", "VERB", "ADJ", "DET", "PUNCT"],
}
# tags that no sentence uses: they count in no average (scikit-learn's and seqeval's convention)
UNUSED_TAGS = {"bio": ["B-MISC", "I-MISC"], "bioes": ["B-MISC", "I-MISC", "E-MISC", "S-MISC"], "none": ["X"]}


# -- the reference: one sentence at a time, one token at a time --------------------------------
def reference_spans(tags: list[str], scheme: str) -> set[tuple[int, int, str]]:
    """(start, end inclusive, type) of every strict span: B-X I-X* (then E-X for bioes), or S-X."""
    spans, i = set(), 0
    while i < len(tags):
        prefix, _, kind = tags[i].partition("-")
        if scheme == "bioes" and prefix == "S":
            spans.add((i, i, kind))
        if prefix != "B":
            i += 1
            continue
        j = i
        while j + 1 < len(tags) and tags[j + 1] == f"I-{kind}":
            j += 1
        if scheme == "bio":
            spans.add((i, j, kind))
        elif j + 1 < len(tags) and tags[j + 1] == f"E-{kind}":
            j += 1
            spans.add((i, j, kind))
        i = j + 1
    return spans


def prf(true_positives: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def reference_metrics(gold: list[list[str]], predicted: list[list[str]], unseen: list[list[bool]],
                      scheme: str):
    pairs = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
    metrics = {"accuracy": sum(g == p for g, p in pairs) / len(pairs)}
    unseen_pairs = [(g, p) for gs, ps, us in zip(gold, predicted, unseen)
                    for g, p, u in zip(gs, ps, us) if u]
    if unseen_pairs:
        metrics["unseen_accuracy"] = sum(g == p for g, p in unseen_pairs) / len(unseen_pairs)
    per_tag = {}
    for tag in sorted({t for pair in pairs for t in pair}):
        precision, recall, f1 = prf(sum(g == p == tag for g, p in pairs), sum(p == tag for _, p in pairs),
                                    sum(g == tag for g, _ in pairs))
        per_tag[tag] = {"precision": precision, "recall": recall, "f1": f1,
                        "support": sum(g == tag for g, _ in pairs)}
    metrics["macro_f1"] = sum(row["f1"] for row in per_tag.values()) / len(per_tag)
    per_type = {}
    if scheme != "none":
        gold_spans = [reference_spans(s, scheme) for s in gold]
        pred_spans = [reference_spans(s, scheme) for s in predicted]
        totals = [0, 0, 0]
        for kind in TYPES:
            counts = [sum(len({s for s in g & p if s[2] == kind}) for g, p in zip(gold_spans, pred_spans)),
                      sum(len({s for s in p if s[2] == kind}) for p in pred_spans),
                      sum(len({s for s in g if s[2] == kind}) for g in gold_spans)]
            totals = [a + b for a, b in zip(totals, counts)]
            if counts[1] + counts[2]:
                precision, recall, f1 = prf(*counts)
                per_type[kind] = {"precision": precision, "recall": recall, "f1": f1, "support": counts[2]}
        precision, recall, f1 = prf(*totals)
        metrics.update(span_precision=precision, span_recall=recall, span_f1=f1)
    return metrics, per_tag, per_type


# -- random padded batches ---------------------------------------------------------------------
def well_formed(length: int, scheme: str, rng: random.Random) -> list[str]:
    """A sentence of whole spans and O, so that predictions derived from it find some spans."""
    tags = []
    while len(tags) < length:
        if rng.random() < 0.4:
            tags.append("O")
            continue
        kind, size = rng.choice(TYPES), rng.randint(1, 4)
        if scheme == "bioes":
            tags += [f"S-{kind}"] if size == 1 else [f"B-{kind}"] + [f"I-{kind}"] * (size - 2) + [f"E-{kind}"]
        else:
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (size - 1)
    return tags[:length]  # a cut-off last span is malformed in bioes: also a case to count


def random_sentences(scheme: str, rng: random.Random, count: int):
    """Gold and predicted sentences: well-formed gold with predictions that corrupt some tags, and
    pairs of uniformly random tags (malformed spans of every kind)."""
    names = TAG_SETS[scheme]
    gold, predicted = [], []
    for _ in range(count):
        length = rng.randint(0, 12)
        if scheme != "none" and rng.random() < 0.6:
            g = well_formed(length, scheme, rng)
            p = [rng.choice(names) if rng.random() < 0.15 else t for t in g]
        else:
            g = [rng.choice(names) for _ in range(length)]
            p = [t if rng.random() < 0.5 else rng.choice(names) for t in g]
        gold.append(g)
        predicted.append(p)
    if all(not s for s in gold):
        gold[0], predicted[0] = [names[0]], [names[0]]
    unseen = [[rng.random() < 0.2 for _ in s] for s in gold]
    return gold, predicted, unseen


PADDING_COLUMNS = 2  # past the longest sentence, so that every row has padding


def to_batch(sentences: list[list[str]], names: list[str], rng: random.Random,
             padding: int | None = None) -> torch.Tensor:
    """(batch, time) ids; padding positions hold random ids (or ``padding``) that must not count."""
    index = {name: i for i, name in enumerate(names)}
    time = max(len(s) for s in sentences) + PADDING_COLUMNS
    batch = torch.tensor([[rng.randrange(len(names)) if padding is None else padding for _ in range(time)]
                          for _ in sentences])
    for row, sentence in enumerate(sentences):
        batch[row, :len(sentence)] = torch.tensor([index[t] for t in sentence], dtype=torch.long)
    return batch


def unseen_mask(unseen: list[list[bool]]) -> torch.Tensor:
    """(batch, time) bool, true in the padding too: it must be ignored there."""
    mask = torch.ones(len(unseen), max(len(s) for s in unseen) + PADDING_COLUMNS, dtype=torch.bool)
    for row, flags in enumerate(unseen):
        mask[row, :len(flags)] = torch.tensor(flags, dtype=torch.bool)
    return mask


def counted(names, gold, predicted, unseen, rng, padding=None) -> TagCounts:
    counts = TagCounts(names)
    counts.update(to_batch(gold, names, rng, padding=padding), to_batch(predicted, names, rng, padding=padding),
                  torch.tensor([len(s) for s in gold]), unseen_mask(unseen))
    return counts


def assert_close(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_close(actual[key], value)
        else:
            assert actual[key] == pytest.approx(value, rel=1e-12, abs=0), key


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scheme", ["bio", "bioes", "none"])
def test_metrics_equal_the_reference_on_random_padded_batches(scheme, seed):
    rng = random.Random(seed)
    names = TAG_SETS[scheme] + UNUSED_TAGS[scheme]
    names = rng.sample(names, len(names))  # "O" need not be id 0
    gold, predicted, unseen = random_sentences(scheme, rng, 40)
    counts = counted(names, gold, predicted, unseen, rng)
    assert counts.scheme == scheme
    metrics, per_tag, per_type = reference_metrics(gold, predicted, unseen, scheme)
    assert_close(counts.compute(), metrics)
    assert_close(counts.per_tag(), per_tag)
    assert list(counts.per_tag()) == [name for name in names if name in per_tag]  # tag-id order
    assert_close(counts.per_span_type(), per_type)


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
def test_what_padding_holds_changes_nothing(scheme):
    rng = random.Random(7)
    gold, predicted, unseen = random_sentences(scheme, rng, 30)
    names = TAG_SETS[scheme]
    random_padding = counted(names, gold, predicted, unseen, rng)
    ignore_index = counted(names, gold, predicted, unseen, rng, padding=-100)
    assert torch.equal(random_padding.counts, ignore_index.counts)


@pytest.mark.parametrize("scheme", ["bio", "bioes", "none"])
def test_counts_of_two_halves_of_a_batch_add_up_to_the_whole(scheme):
    """What an all-reduce of ``counts`` across ranks relies on."""
    rng = random.Random(3)
    names = TAG_SETS[scheme]
    gold, predicted, unseen = random_sentences(scheme, rng, 30)
    whole = counted(names, gold, predicted, unseen, rng)
    halves = [counted(names, gold[part], predicted[part], unseen[part], rng)
              for part in (slice(0, 13), slice(13, None))]
    assert whole.counts.sum() > 0 and halves[0].counts.sum() > 0 and halves[1].counts.sum() > 0
    assert torch.equal(halves[0].counts + halves[1].counts, whole.counts)
    assert torch.equal((halves[0] + halves[1]).counts, whole.counts)
    streamed = TagCounts(names)
    for half_gold, half_pred, half_unseen in ((gold[:13], predicted[:13], unseen[:13]),
                                              (gold[13:], predicted[13:], unseen[13:])):
        streamed.update(to_batch(half_gold, names, rng), to_batch(half_pred, names, rng),
                        torch.tensor([len(s) for s in half_gold]), unseen_mask(half_unseen))
    assert torch.equal(streamed.counts, whole.counts)
    assert torch.equal(halves[0].merge(halves[1]).counts, whole.counts)


# the documented cases of strict mode: (scheme, tags, spans as (start, end inclusive, type))
EDGE_CASES = [
    ("bio", ["B-PER", "I-PER", "O", "B-LOC"], {(0, 1, "PER"), (3, 3, "LOC")}),  # span at the end
    ("bio", ["O", "I-PER", "I-PER"], set()),                                  # I- after O
    ("bio", ["I-PER", "O"], set()),                                           # I- at the start
    ("bio", ["B-PER", "I-LOC", "I-LOC"], {(0, 0, "PER")}),                    # type switch
    ("bio", ["B-PER", "B-PER", "I-PER"], {(0, 0, "PER"), (1, 2, "PER")}),    # B- after B- of a type
    ("bio", ["O", "O"], set()),                                               # empty
    ("bioes", ["S-PER", "B-LOC", "E-LOC"], {(0, 0, "PER"), (1, 2, "LOC")}),
    ("bioes", ["B-PER", "I-PER", "I-PER", "E-PER", "E-PER"], {(0, 3, "PER")}),  # E- after E-
    ("bioes", ["O", "E-PER"], set()),                                         # E- without B-
    ("bioes", ["I-PER", "E-PER"], set()),                                     # no B-
    ("bioes", ["B-PER", "O"], set()),                                         # B- not closed
    ("bioes", ["B-PER", "I-PER"], set()),                                     # cut at the end
    ("bioes", ["B-PER", "I-PER", "E-LOC"], set()),                            # type switch
    ("bioes", ["B-PER", "S-PER", "B-PER", "E-PER"], {(1, 1, "PER"), (2, 3, "PER")}),
    ("bioes", ["S-PER", "I-PER", "E-PER"], {(0, 0, "PER")}),                  # S- is never extended
]


@pytest.mark.parametrize("scheme, tags, expected", EDGE_CASES)
def test_strict_spans_of_the_documented_cases(scheme, tags, expected):
    assert reference_spans(tags, scheme) == expected
    names = TAG_SETS[scheme]
    spans = span_scheme_for(names, scheme)
    # the sentence among a longer padded one, whose padding holds tags that would make spans
    batch = torch.tensor([[names.index(t) for t in tags] + [names.index(f"I-{TYPES[0]}")] * 3,
                          [names.index(f"B-{TYPES[0]}")] * (len(tags) + 3)])
    mask = torch.arange(batch.shape[1]) < torch.tensor([[len(tags)], [len(tags) + 3]])
    starts, end, kind = spans.spans(batch, mask)
    found = {(t, end[0, t].item(), spans.types[kind[0, t]]) for t in range(batch.shape[1]) if starts[0, t]}
    assert found == expected


def test_an_empty_prediction_scores_zero_spans():
    names = TAG_SETS["bio"]
    gold = torch.tensor([[names.index(t) for t in ["B-PER", "I-PER", "O"]]])
    counts = TagCounts(names)
    counts.update(gold, torch.full_like(gold, names.index("O")), torch.tensor([3]))
    metrics = counts.compute()
    assert (metrics["span_precision"], metrics["span_recall"], metrics["span_f1"]) == (0.0, 0.0, 0.0)
    assert counts.span_counts.sum(1).tolist() == [0, 0, 1]
    assert counts.per_span_type() == {"PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}}


def test_unseen_accuracy_is_absent_without_unseen_tokens():
    names = TAG_SETS["none"]
    tags = torch.tensor([[0, 1, 2], [3, 4, 0]])
    lengths = torch.tensor([3, 1])
    without = TagCounts(names)
    without.update(tags, tags, lengths)
    assert "unseen_accuracy" not in without.compute()
    only_padding = TagCounts(names)
    only_padding.update(tags, tags, lengths, unseen=torch.tensor([[False] * 3, [False, True, True]]))
    assert "unseen_accuracy" not in only_padding.compute()
    one = TagCounts(names)
    one.update(tags, tags.flip(1), lengths, unseen=torch.tensor([[True, True, False], [False, True, True]]))
    assert one.compute()["unseen_accuracy"] == 0.5  # (0 vs 2) wrong, (1 vs 1) right


@pytest.mark.parametrize("names, scheme", [
    (TAG_SETS["bio"], "bio"), (TAG_SETS["bioes"], "bioes"), (["O", "B-X", "S-X"], "bioes"),
    (TAG_SETS["none"], "none"), (["O", "I-PER", "I-LOC"], "none"),   # IOB1 without B-: not read
    (["O", "B-PER", "I-PER", "NOUN"], "none"), (["O", "B-", "I-"], "none"),
    (["O", "L-PER", "U-PER", "B-PER"], "none"),                      # BILOU
])
def test_scheme_is_detected_from_the_tag_names(names, scheme):
    assert detect_scheme(names) == scheme
    assert TagCounts(names).scheme == scheme


def test_a_given_scheme_overrides_detection():
    bio = TAG_SETS["bio"]
    plain = TagCounts(bio, scheme="none")
    tags = torch.tensor([[bio.index("B-PER"), bio.index("I-PER")]])
    plain.update(tags, tags, torch.tensor([2]))
    assert "span_f1" not in plain.compute() and plain.per_span_type() == {}
    # B-X I-X is a span in bio but not in bioes, which needs an E-X
    as_bioes = TagCounts(bio, scheme="bioes")
    as_bioes.update(tags, tags, torch.tensor([2]))
    assert as_bioes.span_counts.sum().item() == 0


def test_a_scheme_that_does_not_fit_the_tags_is_a_one_line_error():
    with pytest.raises(SeqkitError, match=r"^data\.scheme: bio does not fit the tag 'E-PER' .*none$"):
        TagCounts(TAG_SETS["bioes"], scheme="bio")
    with pytest.raises(SeqkitError, match=r"^data\.scheme: 'iob1' is not one of auto, none, bio, bioes$"):
        TagCounts(TAG_SETS["bio"], scheme="iob1")


def test_misuse_is_refused():
    counts = TagCounts(TAG_SETS["bio"])
    with pytest.raises(ValueError, match="no tokens"):
        counts.compute()
    with pytest.raises(ValueError, match="different tag sets"):
        counts.merge(TagCounts(TAG_SETS["bioes"]))
    with pytest.raises(ValueError, match="one shape"):
        counts.update(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="distinct"):
        TagCounts(["O", "O"])


@pytest.mark.parametrize("scheme", ["bio", "bioes"])
def test_span_metrics_equal_seqeval_strict_mode(scheme):
    """seqeval (MIT) as a second, independent reference, where it is installed."""
    metrics = pytest.importorskip("seqeval.metrics")
    seqeval_scheme = pytest.importorskip("seqeval.scheme")
    mode = {"mode": "strict", "scheme": {"bio": seqeval_scheme.IOB2, "bioes": seqeval_scheme.IOBES}[scheme]}
    rng = random.Random(11)
    gold, predicted, unseen = random_sentences(scheme, rng, 60)
    counts = counted(TAG_SETS[scheme], gold, predicted, unseen, rng).compute()
    assert counts["span_precision"] == pytest.approx(metrics.precision_score(gold, predicted, **mode), rel=1e-12)
    assert counts["span_recall"] == pytest.approx(metrics.recall_score(gold, predicted, **mode), rel=1e-12)
    assert counts["span_f1"] == pytest.approx(metrics.f1_score(gold, predicted, **mode), rel=1e-12)
    assert counts["accuracy"] == pytest.approx(metrics.accuracy_score(gold, predicted), rel=1e-12)


def test_tag_metrics_equal_scikit_learn():
    """scikit-learn's macro F1 and per-class scores, where it is installed."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(5)
    names = TAG_SETS["bioes"]
    gold, predicted, unseen = random_sentences("bioes", rng, 40)
    counts = counted(names, gold, predicted, unseen, rng)
    flat_gold, flat_pred = sum(gold, []), sum(predicted, [])
    macro = sklearn_metrics.f1_score(flat_gold, flat_pred, average="macro", zero_division=0)
    assert counts.compute()["macro_f1"] == pytest.approx(macro, rel=1e-12)
    labels = list(counts.per_tag())
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        flat_gold, flat_pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        row = counts.per_tag()[label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (precision[i], recall[i], f1[i]), rel=1e-12)
        assert row["support"] == support[i]


def test_counts_and_span_tables_live_on_the_requested_device():
    counts = TagCounts(TAG_SETS["bioes"], device="meta")
    assert counts.counts.device.type == "meta"
    assert counts.span_scheme.type_of.device.type == "meta" and counts.span_scheme.closes.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_counts_on_cuda_equal_counts_on_cpu():
    rng = random.Random(2)
    names = TAG_SETS["bioes"]
    gold, predicted, unseen = random_sentences("bioes", rng, 50)
    batch = (to_batch(gold, names, rng), to_batch(predicted, names, rng),
             torch.tensor([len(s) for s in gold]), unseen_mask(unseen))
    cpu, cuda = TagCounts(names), TagCounts(names, device="cuda")
    cpu.update(*batch)
    cuda.update(*(t.cuda() for t in batch))
    assert torch.equal(cuda.counts.cpu(), cpu.counts)
