"""The encoder–decoder (the lecture's 12.3.2), with the attention seq2seq toolkits add on top of it.

An encoder ``seqkit.Recurrent`` reads the embedded source; a bridge (``bridge.py``) turns
its final states into the decoder's initial states; a decoder ``seqkit.Recurrent`` (its cell may
differ from the encoder's) emits the target one token at a time, each y_i from the decoder output
h_i, a context c_i and the previous token y_{i-1}:

    x_i = [embed(y_{i-1}); extra_i]          h_i = decoder(x_i, state)
    a_i = tanh(W_c [c_i; h_i])               p(y_i | y_<i, source) = softmax(W_o a_i + b_o)

* ``attention="none"``: c_i = C, the lecture's fixed context: the encoder's top layer's final
  outputs (both directions' if bidirectional), also fed at every step (extra_i = C).
* ``dot`` / ``general`` / ``additive`` (``attention.py``): c_i attends from h_i over the
  encoder outputs, padding masked out. With ``input_feeding`` (the default with attention) the
  previous attentional vector is fed: extra_i = a_{i-1}, a_0 = 0 (Luong et al., 2015); without
  it extra_i is empty and training runs the decoder over whole sequences.

Target ids (the tasks' convention, ``common.vocabulary``): ``PAD_ID`` 0, ``UNK_ID`` 1, ``START_ID`` 2
(the first decoder input), ``END_ID`` 3 (ends every target), real symbols from 4 on; source ids:
``PAD_ID`` 0, ``UNK_ID`` 1, symbols from 2. The model never predicts the padding or the start
symbol (log-probability -inf, in training as in decoding), so every distribution is over the end
symbol, the unknown symbol and the real ones: a target vocabulary capped by frequency keeps its
unknown symbol learnable.

Batches are padded: ``source`` (batch, source_time) and ``target`` (batch, target_time) long, with
their ``lengths`` each at least 1; a target holds its end symbol at position length - 1 (and
nowhere before). Whatever padding positions hold never changes a result.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from seqkit import Dropout, Recurrent
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID, UNKNOWN_ID
from seqkit.state import State

from .attention import SCORES, Attention
from .bridge import Bridge

PAD_ID, UNK_ID, START_ID, END_ID = PADDING_ID, UNKNOWN_ID, 2, 3  # the target's own specials follow
NEVER_PREDICTED = (PAD_ID, START_ID)
ATTENTIONS = ("none", *SCORES)


class EncodedSource(NamedTuple):
    """What the decoder reads of a batch of sources at every step: ``memory`` (batch, source,
    memory_size), zero at padding, its ``keys`` (additive attention only) and ``mask`` (batch,
    source) true at real positions, all None without attention; ``context`` C (batch, memory_size)."""

    memory: torch.Tensor | None
    keys: torch.Tensor | None
    mask: torch.Tensor | None
    context: torch.Tensor

    def select(self, rows: torch.Tensor) -> EncodedSource:
        """The sources of ``rows`` (the input each decoded row belongs to)."""
        return EncodedSource(*(None if part is None else part.index_select(0, rows) for part in self))


class Seq2SeqModel(nn.Module):
    """An encoder–decoder from ``source_vocab_size`` to ``target_vocab_size`` symbols.

    Encoder: ``encoder_cell`` (a registered name or a ``seqkit.Cell`` class), ``hidden_size`` per
    direction, ``encoder_layers``, ``bidirectional``, ``encoder_dropout`` (on the embeddings and
    between layers), ``encoder_cell_options``. Decoder: ``decoder_cell`` (default: the encoder's),
    ``decoder_hidden_size`` (default: the encoder's outputs' size, hidden_size x directions),
    ``decoder_layers``, ``decoder_dropout`` (on its inputs, between layers and before the output
    layer), ``decoder_cell_options``. ``bridge``: ``linear``, ``zero`` or ``last``; ``attention``:
    ``none``, ``dot``, ``general`` or ``additive`` (``attention_size`` features, default the
    decoder's hidden size); ``input_feeding``: default on with attention (it needs attention).
    Impossible combinations raise ValueError.
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, encoder_cell="lstm",
                 decoder_cell=None, hidden_size: int = 256, decoder_hidden_size: int | None = None,
                 source_embedding_size: int = 64, target_embedding_size: int = 64, encoder_layers: int = 1,
                 encoder_dropout: float = 0.0, bidirectional: bool = True, decoder_layers: int = 1,
                 decoder_dropout: float = 0.0, bridge: str = "linear", attention: str = "general",
                 input_feeding: bool | None = None, attention_size: int | None = None,
                 encoder_cell_options: dict | None = None, decoder_cell_options: dict | None = None):
        super().__init__()
        if source_vocab_size <= UNK_ID or target_vocab_size <= END_ID:
            raise ValueError(f"the source vocabulary needs its padding and unknown symbols (ids 0, 1) and the "
                             f"target one its padding, unknown, start and end symbols (ids 0-3); got "
                             f"source_vocab_size={source_vocab_size}, target_vocab_size={target_vocab_size}")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}; got {attention!r}")
        if input_feeding and attention == "none":
            raise ValueError("input_feeding feeds the previous attentional vector back, so it needs attention; "
                             "with attention='none' the fixed context C is fed at every step already")
        self.target_vocab_size = target_vocab_size
        self.input_feeding = attention != "none" if input_feeding is None else input_feeding
        self.source_embedding = nn.Embedding(source_vocab_size, source_embedding_size, padding_idx=PAD_ID)
        self.encoder = Recurrent(encoder_cell, source_embedding_size, hidden_size, layers=encoder_layers,
                                 dropout=encoder_dropout, bidirectional=bidirectional,
                                 **(encoder_cell_options or {}))
        memory_size = hidden_size * self.encoder.directions
        decoder_hidden_size = decoder_hidden_size or memory_size
        extra = memory_size if attention == "none" else decoder_hidden_size if self.input_feeding else 0
        self.target_embedding = nn.Embedding(target_vocab_size, target_embedding_size, padding_idx=PAD_ID)
        self.decoder = Recurrent(decoder_cell or encoder_cell, target_embedding_size + extra, decoder_hidden_size,
                                 layers=decoder_layers, dropout=decoder_dropout, **(decoder_cell_options or {}))
        self.bridge = Bridge(bridge, self.encoder, self.decoder)
        self.attention = (None if attention == "none"
                          else Attention(attention, decoder_hidden_size, memory_size, attention_size))
        self.combine = nn.Linear(memory_size + decoder_hidden_size, decoder_hidden_size, bias=False)  # W_c
        self.head = nn.Linear(decoder_hidden_size, target_vocab_size)  # W_o, b_o
        self.encoder_dropout, self.decoder_dropout = Dropout(encoder_dropout), Dropout(decoder_dropout)
        never = torch.zeros(target_vocab_size, dtype=torch.bool)
        never[list(NEVER_PREDICTED)] = True
        self.register_buffer("never_predicted", never, persistent=False)

    # -- training -----------------------------------------------------------------------------------

    def log_likelihood(self, source, source_lengths, target, target_lengths) -> torch.Tensor:
        """log p(target | source) per sentence (batch,), by teacher forcing."""
        return self.token_log_probs(source, source_lengths, target, target_lengths).sum(1)

    def token_log_probs(self, source, source_lengths, target, target_lengths) -> torch.Tensor:
        """log p(y_i | y_<i, source) of each target token (batch, target_time), 0 at padding."""
        log_probs, target, mask = self._teacher_forced(source, source_lengths, target, target_lengths)
        return log_probs.gather(2, target.unsqueeze(2)).squeeze(2).masked_fill(~mask, 0.0)

    def loss(self, source, source_lengths, target, target_lengths,
             label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed token cross-entropy over the batch, number of target tokens, end symbols included):
        a sum, so that a trainer can weight batches by their tokens. ``label_smoothing`` ε mixes the
        target with the uniform distribution over the symbols the model can predict:
        (1 - ε) (-log p(y_i)) + ε mean_v (-log p(v)), as torch's cross_entropy over those symbols."""
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1]; got {label_smoothing}")
        log_probs, target, mask = self._teacher_forced(source, source_lengths, target, target_lengths)
        loss = -log_probs.gather(2, target.unsqueeze(2)).squeeze(2)
        if label_smoothing:
            allowed = self.target_vocab_size - len(NEVER_PREDICTED)
            uniform = -log_probs.masked_fill(self.never_predicted, 0.0).sum(2) / allowed
            loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
        return loss.masked_fill(~mask, 0.0).sum(), mask.sum()

    def _teacher_forced(self, source, source_lengths, target, target_lengths):
        """(log-probabilities (batch, target_time, vocab) at every position given the gold prefix,
        the target with padding replaced by a valid id, the target's mask)."""
        lengths, mask = self.check_target(target, target_lengths, source.shape[0])
        encoded, states = self.encode(source, source_lengths)
        target = target.masked_fill(~mask, END_ID)
        return self.forced_log_probs(encoded, states, target, lengths), target, mask

    def forced_log_probs(self, encoded: EncodedSource, states: list[State], target: torch.Tensor,
                         lengths: torch.Tensor, weights: list | None = None) -> torch.Tensor:
        """log p(y_i | y_<i, source) over the vocabulary at every position (batch, target_time,
        vocab) of ``target`` (valid ids everywhere, padding included; ``lengths`` its real ones),
        decoded from ``encode``'s ``encoded`` and ``states`` by teacher forcing. With ``weights`` a
        list (and attention), the attention weights (batch, target_time, source) are added to it,
        one tensor per decoder step or one for all (``torch.cat(weights, 1)`` gives them)."""
        previous = torch.cat([torch.full_like(target[:, :1], START_ID), target[:, :-1]], 1)
        x = self.target_embedding(previous)  # one lookup (and one gradient) for all steps
        if self.input_feeding:  # a_{i-1} feeds step i: one decoder step at a time
            feed = encoded.context.new_zeros(target.shape[0], self.decoder.hidden_size)
            attentional = []
            for x_i in x.unbind(1):
                feed, states = self.decode_step(x_i, states, feed, encoded, weights=weights)
                attentional.append(feed)
            attentional = torch.stack(attentional, 1)
        else:  # the inputs are known in advance: the decoder runs over whole sequences
            if self.attention is None:
                x = torch.cat([x, encoded.context.unsqueeze(1).expand(-1, x.shape[1], -1)], 2)
            hidden, _ = self.decoder(self.decoder_dropout(x), states, lengths=lengths)
            attentional = self.attend(hidden, encoded, weights)
        return self.output_log_probs(attentional)

    # -- the pieces decoding shares with training -------------------------------------------------------

    def encode(self, source, source_lengths) -> tuple[EncodedSource, list[State]]:
        """Read a batch of sources: what the decoder reads of them, and its initial states (bridge)."""
        lengths, mask = _check_batch(source, source_lengths, "source")
        x = self.source_embedding(source.masked_fill(~mask, PAD_ID))  # padding may hold any id
        outputs, finals = self.encoder(self.encoder_dropout(x), lengths=lengths)
        # C: the top layer's final outputs, forward at each source's last position, backward at its first
        last = outputs.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])).squeeze(1)
        hidden = self.encoder.hidden_size
        context = last if self.encoder.directions == 1 else torch.cat([last[:, :hidden], outputs[:, 0, hidden:]], 1)
        if self.attention is None:
            encoded = EncodedSource(None, None, None, context)
        else:
            memory, keys = self.attention.prepare(outputs, mask)
            encoded = EncodedSource(memory, keys, mask, context)
        return encoded, self.bridge(finals, self.decoder)

    def decode_step(self, x: torch.Tensor, states: list[State], feed: torch.Tensor | None,
                    encoded: EncodedSource, rows_per_source: int = 1,
                    weights: list | None = None) -> tuple[torch.Tensor, list[State]]:
        """One decoder step for some rows: the previous tokens embedded (rows, target_embedding_size),
        the decoder states, the previous attentional vector (with input feeding) and ``encoded``:
        each row's own source, or with ``rows_per_source`` k > 1 each source once for k consecutive
        rows (row r reads source r // k: a beam's hypotheses read their source's memory as it is,
        all k in one product, never a copy per hypothesis) -> (the attentional vector a_i (rows,
        decoder_hidden_size), the new states). With ``weights`` a list (and attention), the step's
        attention weights (sources, k, source) are added to it; nothing else changes."""
        if self.attention is None:
            context = encoded.context
            x = torch.cat([x, context if rows_per_source == 1 else context.repeat_interleave(rows_per_source, 0)], 1)
        elif self.input_feeding:
            x = torch.cat([x, feed], 1)
        hidden, states = self.decoder.step(self.decoder_dropout(x), states)
        queries = hidden.view(-1, rows_per_source, hidden.shape[1])  # (sources, k, hidden): k query steps each
        return self.attend(queries, encoded, weights).view(hidden.shape[0], -1), states

    def attend(self, hidden: torch.Tensor, encoded: EncodedSource, weights: list | None = None) -> torch.Tensor:
        """The attentional vectors tanh(W_c [c_i; h_i]) of decoder outputs (batch, steps, hidden);
        with ``weights`` a list (and attention), the attention weights (batch, steps, source) are
        added to it."""
        if self.attention is None:
            context = encoded.context.unsqueeze(1).expand(-1, hidden.shape[1], -1)
        else:
            context, found = self.attention(hidden, encoded.memory, encoded.keys, encoded.mask)
            if weights is not None:
                weights.append(found)
        return torch.tanh(self.combine(torch.cat([context, hidden], -1)))

    def output_log_probs(self, attentional: torch.Tensor) -> torch.Tensor:
        """log p(y_i | ...) over the target vocabulary (..., vocab), in float32 or wider; -inf for
        the symbols never predicted."""
        logits = self.head(self.decoder_dropout(attentional)).masked_fill(self.never_predicted, float("-inf"))
        return logits.log_softmax(-1, dtype=torch.promote_types(logits.dtype, torch.float32))

    def check_target(self, target, target_lengths, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``target_lengths`` as long on the target's device and the target's mask, after checking
        that every real token is a symbol the model can predict and that each target ends with the
        end symbol (and holds it nowhere else)."""
        lengths, mask = _check_batch(target, target_lengths, "target")
        if target.shape[0] != batch:
            raise ValueError(f"target has {target.shape[0]} sentences, the source {batch}")
        real = target.masked_fill(~mask, UNK_ID)
        predictable = (real >= 0) & (real < self.target_vocab_size)
        predictable &= ~self.never_predicted[real.clamp(0, self.target_vocab_size - 1)]
        ends = (real == END_ID) & mask
        last = ends.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        valid_ids, ended = torch.stack([predictable.all(), (last & (ends.sum(1) == 1)).all()]).tolist()
        if not valid_ids:
            raise ValueError(f"target holds ids outside [0, {self.target_vocab_size}) or ones the model never "
                             f"predicts (padding {PAD_ID}, start {START_ID}) inside its lengths")
        if not ended:
            raise ValueError(f"each target must end with the end symbol ({END_ID}) at position length - 1, "
                             f"and hold it nowhere before")
        return lengths, mask


def _check_batch(tokens, lengths, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``lengths`` as long on the tokens' device, and the mask (batch, time) of real positions."""
    if tokens.dim() != 2 or tokens.is_floating_point():
        raise ValueError(f"{name} must be integer ids of shape (batch, time), got {tokens.dtype} "
                         f"of shape {tuple(tokens.shape)}")
    batch, time = tokens.shape
    lengths = torch.as_tensor(lengths).to(device=tokens.device, dtype=torch.long)
    if lengths.shape != (batch,) or not bool(((lengths >= 1) & (lengths <= time)).all()):
        raise ValueError(f"{name} lengths must be {batch} integers in [1, {time}], got {lengths.tolist()}")
    return lengths, torch.arange(time, device=tokens.device) < lengths.unsqueeze(1)
