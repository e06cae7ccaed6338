"""The encoder–decoder as a seqkit step model, so that every decoder (greedy, sample, beam, exact)
decodes it unchanged, batched over many sources.

``start_decoding`` runs the encoder once per source. The state is ``(Shared(encoded), rows,
decoder states[, previous attentional vector])``: the encoded sources (memory, keys, mask, context)
are kept once, as ``seqkit.state.Shared``, and each row (hypothesis) reads its own through ``rows``,
the source it belongs to. Beam search and exact enumeration, which reorder and repeat rows every
step, so move ``rows``, the decoder states and the fed-back vector, never the memory. (A step reads
its rows' memory as one gather, which lives for that step only. Where each source's rows are
consecutive and equally many, as greedy search, beam search and sampling keep them, the step reads
each source's memory once for all its rows, without the gather where every source is there.)

The step model's vocabulary is the target vocabulary; its end token is ``END_ID``. The padding and
start symbols get log-probability -inf (``model.NEVER_PREDICTED``): decoders never
emit them, and each row is still a normalised distribution.
"""
from __future__ import annotations

import torch

from seqkit.state import Shared

from .model import END_ID, START_ID, Seq2SeqModel


class _EncodedSources(Shared):
    """The encoded sources, and the ``rows`` tensor made beside them (row i reads source i)."""

    __slots__ = ("rows",)

    def __init__(self, encoded, rows: torch.Tensor):
        super().__init__(encoded)
        self.rows = rows

    def groups(self, rows: torch.Tensor) -> tuple[torch.Tensor | None, int]:
        """(sources, k): row r reads source ``sources[r // k]``, each source's k rows consecutive;
        sources None where they are every source in order. Greedy search keeps the very ``rows``
        made here; beam search and sampling keep k rows per source together (beam search drops the
        sources it has finished); rows in any other order come back one per group."""
        if rows is self.rows:
            return None, 1
        count = rows.shape[0]
        k = int((rows != rows[0]).to(torch.uint8).argmax()) or count  # the first source's rows
        if k > 1 and count % k == 0:
            grouped = rows.view(-1, k)
            if torch.equal(grouped, grouped[:, :1].expand(-1, k)):
                first = grouped[:, 0]
                every = first.shape[0] == self.rows.shape[0] and torch.equal(first, self.rows)
                return (None if every else first), k
        return rows, 1


class TranslationStepModel:
    """``seqkit.decoding.StepModel`` over a ``Seq2SeqModel``: one decoder step per target token."""

    end_token = END_ID

    def __init__(self, model: Seq2SeqModel):
        self.model = model
        self.vocab_size = model.target_vocab_size

    def step(self, tokens: torch.Tensor, state):
        shared, rows, states, *feed = state
        sources, per_source = shared.groups(rows)
        encoded = shared.value if sources is None else shared.value.select(sources)
        attentional, states = self.model.decode_step(self.model.target_embedding(tokens), list(states),
                                                     feed[0] if feed else None, encoded, per_source)
        state = (shared, rows, tuple(states)) + ((attentional,) if feed else ())
        return self.model.output_log_probs(attentional), state


@torch.no_grad()
def start_decoding(model: Seq2SeqModel, source: torch.Tensor, lengths) -> tuple[tuple, torch.Tensor]:
    """(state, first tokens) for a padded batch of sources (batch, time) with their ``lengths``:
    the encoder has read each source once, the decoder nothing yet; the first tokens are the start
    symbol."""
    encoded, states = model.encode(source, lengths)
    rows = torch.arange(source.shape[0], device=source.device)
    state = (_EncodedSources(encoded, rows), rows, tuple(states))
    if model.input_feeding:  # a_0 = 0
        state += (encoded.context.new_zeros(rows.shape[0], model.decoder.hidden_size),)
    return state, torch.full_like(rows, START_ID)
