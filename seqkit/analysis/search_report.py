"""``seqkit eval RUN --search-report``: are a model's errors search errors or model errors?

Greedy search and beam search return *a* probable output, not necessarily the most probable one.
The report decodes the inputs of a split with greedy, beam search of each size asked, and exact
search (the model's true argmax: branch and bound where enumeration does not fit), then compares,
per input, each strategy's output with the exact argmax:

* **search error**: an output other than the argmax, with a lower model log-probability (a search
  that found something *better* than an exact search cut short by ``max_prefixes`` counts as none);
* **mean gap**: the mean of log p(argmax) - log p(output), over all inputs;
* **empty**, **truncated**: outputs that are only the end symbol, or that stopped at
  ``decode.length`` without one (Stahlberg & Byrne, 2019, found the empty translation to be the
  argmax of a large translation model for more than half of the sentences);
* each strategy's own metrics (word error rate, ...), so a lower search error that does not lower
  the error rate shows that the model, not the search, is wrong.

The task decodes (``SearchReport.search_report``); this module compares; ``seqkit eval`` prints.
"""
from __future__ import annotations

import math

EXACT = "exact"
SAME_SCORE = 1e-4  # log-probabilities of one sequence from differently batched steps agree to this


def report_rows(found: dict) -> dict[str, dict[str, float]]:
    """``{strategy: {measure: value}}`` from ``Task.search_report``'s answer (its ``strategies``
    map names to (DecodeResults, metrics); one of them is ``exact``)."""
    strategies, end = found["strategies"], found["end_token"]
    exact = [result.hypotheses[0] for result in strategies[EXACT][0]]
    rows = {}
    for name, (results, metrics) in strategies.items():
        best = [result.hypotheses[0] for result in results]
        gaps = [e.log_prob - b.log_prob for e, b in zip(exact, best)]
        errors = [b.tokens != e.tokens and gap > SAME_SCORE for e, b, gap in zip(exact, best, gaps)]
        n = len(best)
        row = {"search_errors": sum(errors) / n,
               "mean_gap": sum(max(gap, 0.0) for gap in gaps) / n,
               "empty": sum(b.tokens == [end] for b in best) / n,
               "truncated": sum(not b.tokens or b.tokens[-1] != end for b in best) / n}
        if name == EXACT:
            proven = [result.extras.get("proven", True) for result in results]
            row["proven"] = sum(proven) / n
            row["median_prefixes"] = _median([result.extras.get("prefixes", math.nan) for result in results])
        rows[name] = {**row, **metrics}
    return rows


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
