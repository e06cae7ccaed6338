"""The attention seq2seq a careful user writes in plain torch, with ``Seq2SeqModel``'s architecture
(LSTM cells, bidirectional encoder, ``general`` attention, input feeding, ``linear`` bridge), so
that benchmarks/translation.py times the same computation on both sides:

    encoder   nn.Embedding -> bidirectional nn.LSTM over pack_padded_sequence
    bridge    (h0, c0) = tanh(W [h_fwd; c_fwd; h_bwd; c_bwd] + b) of the encoder's top layer
              (where Seq2SeqModel's linear bridge takes a one-layer decoder's state from)
    decoder   nn.LSTMCell over [embed(y_{i-1}); a_{i-1}] (input feeding, a_0 = 0), one step at a time
    attention scores (W h_i) . m_j over the real positions (masked softmax), c_i = sum_j w_j m_j
    output    a_i = tanh(W_c [c_i; h_i]),  logits W_o a_i + b_o,  cross-entropy ignoring padding
    dropout   where Seq2SeqModel has it: on the source embeddings and between encoder layers, on
              the decoder's inputs and before the output layer

The padding and start symbols are never predicted (their logits are -inf), as in seqkit, so both
models compute the same distribution. ``load_seqkit`` copies a ``Seq2SeqModel``'s weights in, and
``greedy`` is the batched greedy loop a user writes: the encoder once, argmax each step, stop
when every word has ended.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit.plugins.tasks.translation.model import END_ID, NEVER_PREDICTED, PAD_ID, START_ID

COPYABLE = ("the hand-written seq2seq copies a model of LSTM cells with a bidirectional encoder, general "
            "attention, input feeding, a linear bridge and one decoder layer; this one differs")


class HandSeq2Seq(nn.Module):
    def __init__(self, source_vocab_size: int, target_vocab_size: int, source_embedding_size: int,
                 target_embedding_size: int, hidden_size: int, layers: int, decoder_hidden_size: int,
                 dropout: float = 0.0):
        super().__init__()
        memory_size = 2 * hidden_size
        self.dropout = nn.Dropout(dropout)
        self.source_embedding = nn.Embedding(source_vocab_size, source_embedding_size, padding_idx=PAD_ID)
        self.encoder = nn.LSTM(source_embedding_size, hidden_size, layers, batch_first=True, bidirectional=True,
                               dropout=dropout if layers > 1 else 0.0)  # between layers only
        self.bridge = nn.Linear(4 * hidden_size, 2 * decoder_hidden_size)  # -> [h0; c0]
        self.target_embedding = nn.Embedding(target_vocab_size, target_embedding_size, padding_idx=PAD_ID)
        self.decoder = nn.LSTMCell(target_embedding_size + decoder_hidden_size, decoder_hidden_size)
        self.query = nn.Linear(decoder_hidden_size, memory_size, bias=False)
        self.combine = nn.Linear(memory_size + decoder_hidden_size, decoder_hidden_size, bias=False)
        self.head = nn.Linear(decoder_hidden_size, target_vocab_size)
        never = torch.zeros(target_vocab_size, dtype=torch.bool)
        never[list(NEVER_PREDICTED)] = True
        self.register_buffer("never", never)

    def encode(self, source, lengths):
        """(memory (batch, time, 2 hidden), zero at padding; its mask; the decoder's (h0, c0))."""
        packed = pack_padded_sequence(self.dropout(self.source_embedding(source)), lengths.cpu(),
                                      batch_first=True, enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=source.shape[1])
        mask = torch.arange(source.shape[1], device=source.device) < lengths.to(source.device).unsqueeze(1)
        top_layer = torch.cat([h[-2], c[-2], h[-1], c[-1]], 1)
        h0, c0 = torch.tanh(self.bridge(top_layer)).chunk(2, 1)
        return memory, mask, (h0, c0)

    def step(self, embedded, feed, state, memory, mask):
        """One decoder step -> (attentional vector a_i, the new (h, c))."""
        h, c = self.decoder(self.dropout(torch.cat([embedded, feed], 1)), state)
        # (W h) m^T with the query on the left: the faster of the two orientations on CPU
        scores = torch.bmm(self.query(h).unsqueeze(1), memory.transpose(1, 2)).squeeze(1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return torch.tanh(self.combine(torch.cat([context, h], 1))), (h, c)

    def logits(self, attentional):
        return self.head(self.dropout(attentional)).masked_fill(self.never, float("-inf"))

    def loss(self, source, source_lengths, target):
        """Mean cross-entropy per target token; ``target`` ends with END_ID, then PAD_ID."""
        memory, mask, state = self.encode(source, source_lengths)
        previous = torch.cat([torch.full_like(target[:, :1], START_ID), target[:, :-1]], 1)
        feed = memory.new_zeros(target.shape[0], self.decoder.hidden_size)
        outputs = []
        for embedded in self.target_embedding(previous).unbind(1):
            feed, state = self.step(embedded, feed, state, memory, mask)
            outputs.append(feed)
        logits = self.logits(torch.stack(outputs, 1))
        return F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD_ID)

    @torch.no_grad()
    def greedy(self, source, source_lengths, max_length: int) -> list[list[int]]:
        """The argmax symbol at each step for a batch of sources: each output up to and including
        its end symbol (or ``max_length`` symbols)."""
        memory, mask, state = self.encode(source, source_lengths)
        batch = source.shape[0]
        token = torch.full((batch,), START_ID, dtype=torch.long, device=source.device)
        feed = memory.new_zeros(batch, self.decoder.hidden_size)
        ended = torch.zeros(batch, dtype=torch.bool, device=source.device)
        chosen = []
        for _ in range(max_length):
            feed, state = self.step(self.target_embedding(token), feed, state, memory, mask)
            token = self.logits(feed).argmax(1).masked_fill(ended, END_ID)
            chosen.append(token)
            ended |= token == END_ID
            if bool(ended.all()):
                break
        rows = torch.stack(chosen, 1).tolist()
        return [row[:row.index(END_ID) + 1] if END_ID in row else row for row in rows]

    @classmethod
    def like(cls, model) -> HandSeq2Seq:
        """A model of the sizes of a ``Seq2SeqModel``, with its weights, in eval mode."""
        hand = cls(model.source_embedding.num_embeddings, model.target_vocab_size,
                   model.source_embedding.embedding_dim, model.target_embedding.embedding_dim,
                   model.encoder.hidden_size, model.encoder.layers, model.decoder.hidden_size)
        hand.load_seqkit(model)
        return hand.to(model.head.weight.device).eval()

    def seqkit_parts(self, model) -> dict[str, list[str]]:
        """This model's parameter names -> the parameters of a ``Seq2SeqModel`` of the same sizes
        (LSTM cells, bidirectional, general attention, input feeding, linear bridge, one decoder
        layer) that make it, concatenated along the first dimension."""
        parts = {"source_embedding.weight": ["source_embedding.weight"],
                 "target_embedding.weight": ["target_embedding.weight"],
                 "query.weight": ["attention.query_map.weight"], "combine.weight": ["combine.weight"],
                 "head.weight": ["head.weight"], "head.bias": ["head.bias"],
                 # maps.0.0 makes h0 and maps.0.1 c0
                 **{f"bridge.{p}": [f"bridge.maps.0.0.{p}", f"bridge.maps.0.1.{p}"] for p in ("weight", "bias")}}
        for weight in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            parts[f"decoder.{weight}"] = [f"decoder.cells.0.{weight}"]
            for layer in range(self.encoder.num_layers):
                parts[f"encoder.{weight}_l{layer}"] = [f"encoder.cells.{2 * layer}.{weight}"]
                parts[f"encoder.{weight}_l{layer}_reverse"] = [f"encoder.cells.{2 * layer + 1}.{weight}"]
        theirs = {name for name, _ in model.named_parameters()}
        if theirs != {name for names in parts.values() for name in names}:
            raise ValueError(COPYABLE)
        return parts

    @torch.no_grad()
    def load_seqkit(self, model) -> None:
        """Copy the weights of a ``Seq2SeqModel`` of the same sizes (``seqkit_parts``)."""
        theirs = dict(model.named_parameters())
        for mine, names in self.seqkit_parts(model).items():
            weights, parameter = torch.cat([theirs[name] for name in names]), self.get_parameter(mine)
            if weights.shape != parameter.shape:  # another cell (a GRU's 3 gates), no input feeding
                raise ValueError(COPYABLE)
            parameter.copy_(weights)
