"""Exact inference: the most probable sequences, exactly, and where they fit, the marginals.

Two searches over the tree of prefixes (``_tree_search``), chosen by ``search``:

* ``enumeration`` steps every prefix (about V^T; each once, its state carried from its parent, so
  the cost is the number of prefixes, not T * V^T). It gives the n best, the marginals p(y_s = v)
  and the probability mass, and refuses up front when there are more than ``max_prefixes`` prefixes.
* ``branch_and_bound`` drops every prefix whose log-probability is already below the n-th best
  complete sequence found (log-probabilities only fall as a prefix grows), as Stahlberg & Byrne
  (2019) did to find exact translations: depth first, ``width`` prefixes of an input at a time,
  so that its first descent is a beam search of that width which seeds the bound. Same n best,
  far fewer prefixes where the model is confident; no marginals. An input that would expand more than
  ``max_prefixes`` prefixes stops
  there with the best sequences found so far, flagged as not proven (``proven`` False), so that
  one hard input does not cost the answers of a whole batch. (One stopped before any of its
  sequences was complete first finishes its deepest prefix greedily, at most ``length`` steps
  more: every input gets an output.)

``auto`` (the default) enumerates where that fits in ``max_prefixes``, and prunes elsewhere.
"""
from __future__ import annotations

import math

import seqkit
from seqkit import Option, SeqkitError
from seqkit.contracts.decoder import BYTES_PER_TOKEN, Decoder, DecodeResult, Hypothesis

from ._common import count_prefixes, count_sequences
from ._tree_search import TreeSearch

_COUNTED = 10**18  # prefix counts up to here are computed exactly, for the refusal to quote
SEARCHES = ("auto", "enumeration", "branch_and_bound")


class Exact(Decoder):
    """The n most probable sequences of up to ``length`` tokens (a sequence ends early at the end
    token, where the model has one), exactly; ties in log-probability go to the lower token ids.

    Extras per input: ``search`` (``enumeration`` or ``branch_and_bound``), ``prefixes`` (model
    steps it took: prefixes expanded), ``proven`` (False only where branch and bound ran out of
    ``max_prefixes``). Enumeration adds ``marginals`` (V, T) with ``p(y_s = v)`` (a sequence that
    has ended counts as the end token at every later position, so each column sums to one),
    ``mass`` (the probability of the sequences enumerated: 1 up to rounding, a check) and
    ``sequences`` (how many were scored).
    """

    options = {
        "n_best": Option(1, min=1, help="most probable sequences returned per input"),
        "search": Option("auto", choices=SEARCHES,
                         help="enumeration (with marginals), branch_and_bound (argmax and n-best "
                              "only, prunes), or auto: enumeration where it fits in max_prefixes"),
        "max_prefixes": Option(10_000_000, min=1,
                               help="prefixes one input may expand: enumeration beyond it is refused, "
                                    "branch and bound stops there (best found, not proven)"),
        "width": Option(4, min=1, help="branch and bound: prefixes of one input stepped at a time, "
                                         "the width of its first descent (a beam search); 1: depth-first"),
        "chunk_size": Option(1024, min=1, help="prefixes stepped together; bounds memory"),
    }

    def chosen_search(self, model, length: int) -> str:
        """``enumeration`` or ``branch_and_bound``, as ``search`` asks for this model and length."""
        search, limit = self.config["search"], self.config["max_prefixes"]
        if search != "auto":
            return search
        fits = count_prefixes(model.vocab_size, length, model.end_token, cap=limit) <= limit
        return "enumeration" if fits else "branch_and_bound"

    def search(self, model, state, tokens, length):
        vocab, end, limit = model.vocab_size, model.end_token, self.config["max_prefixes"]
        inputs = tokens.shape[0]
        mode = self.chosen_search(model, length)
        enumerate_all = mode == "enumeration"
        if enumerate_all:
            self._refuse_beyond_the_limit(vocab, length, end)
        tree = TreeSearch(model, inputs, length, self.config["n_best"], self.config["chunk_size"],
                          tokens.device, prune=not enumerate_all, width=self.config["width"],
                          budget=None if enumerate_all else limit, marginals=enumerate_all)
        tree.run(state, tokens)
        log_probs, rows = tree.best.log_prob.tolist(), tree.best.tokens.tolist()
        expanded, proven = tree.expanded.tolist(), tree.proven.tolist()
        if enumerate_all:
            marginals, mass = tree.marginals.cpu(), tree.mass.tolist()
            sequences = count_sequences(vocab, length, end)
        results = []
        for b in range(inputs):
            hypotheses = [Hypothesis([t for t in row if t >= 0], lp)
                          for row, lp in zip(rows[b], log_probs[b]) if lp > -math.inf]
            extras = {"search": mode, "prefixes": expanded[b], "proven": proven[b]}
            if enumerate_all:
                extras.update(marginals=marginals[b], mass=mass[b], sequences=sequences)
            results.append(DecodeResult(hypotheses, extras))
        return results

    def _refuse_beyond_the_limit(self, vocab: int, length: int, end) -> None:
        limit = self.config["max_prefixes"]
        counted = max(limit, _COUNTED)
        prefixes = count_prefixes(vocab, length, end, cap=counted)
        if prefixes > limit:
            amount = f"{prefixes:,}" if prefixes <= counted else f"more than {counted:,}"
            raise SeqkitError(
                f"decode.max_prefixes: enumerating every sequence of {length} tokens over {vocab} "
                f"symbols expands {amount} prefixes per input, more than max_prefixes={limit:,}; use "
                f"--search branch_and_bound (the n best without marginals), --strategy beam or a "
                f"smaller --length, or raise --max-prefixes")

    def rows_per_input(self, model, length):
        return self.config["n_best"]

    def planned_rows(self, model, batch, length):
        """Enumeration: every prefix. Branch and bound: an upper bound it usually stops far below,
        each prefix at most once and per input at most ``max_prefixes`` (plus the greedy finish of
        an input stopped before any of its sequences was complete: fewer than ``length``)."""
        limit = self.config["max_prefixes"]
        prefixes = count_prefixes(model.vocab_size, length, model.end_token, cap=limit + length)
        return batch * (prefixes if self.chosen_search(model, length) == "enumeration"
                        else min(prefixes, limit + length))

    def ineffective_options(self, model):
        if self.config["search"] == "enumeration" and self.config["width"] != self.options["width"].default:
            return {"width": "has no effect with search enumeration, which steps every prefix"}
        return {}

    def memory_needed(self, model, batch, length):
        """The n best, and the marginals where enumeration gives them (V x T per input, held as
        the tokens are: tensors, lists, JSON). The search's own working set is not output; it is
        bounded by ``chunk_size`` and ``width`` (see ``_tree_search``)."""
        needed = super().memory_needed(model, batch, length)
        if self.chosen_search(model, length) == "enumeration":
            needed += batch * model.vocab_size * length * BYTES_PER_TOKEN
        return needed


@seqkit.hookimpl
def register_decoders(register):
    register("exact", Exact)
