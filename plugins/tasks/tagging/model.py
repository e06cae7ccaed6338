"""The tagger: embedding [+ characters of each word] -> seqkit.Recurrent -> one of three outputs.

One encoder, three ways to turn its outputs h_i into tags (``output``), so their accuracy can be
compared on the same data (the lecture's question, 12.3.1: is exact inference needed?):

* ``softmax``: p(y | x) = Π_i softmax(W h_i)[y_i]; the per-position argmax is the exact argmax, the
  softmax rows are the exact marginals.
* ``crf``: a linear-chain CRF over the emissions W h_i (``crf.LinearChainCRF``): Viterbi for the
  argmax, forward-backward for the marginals.
* ``autoregressive``: a unidirectional decoder RNN reads h_i and the previous tag and predicts y_i;
  trained by teacher forcing, decoded left to right through ``step.TaggerStepModel`` by
  any seqkit decoder. Only enumeration (the ``exact`` decoder) gives its argmax and marginals.

Every method takes a padded batch: ``tokens`` (batch, time) long, ``lengths`` (batch,) each in
[1, time], and with ``char_features`` ``chars`` (batch, time, width) long, each word's characters
left-aligned and padded with ``PADDING_ID``. Whatever padding positions hold never changes a result.
"""
from __future__ import annotations

import torch
from torch import nn

from seqkit import Dropout, Recurrent, SeqkitError
from seqkit.plugins.tasks.common.vocabulary import PADDING_ID

from .crf import PADDING_TAG, LinearChainCRF
from .step import TaggerStepModel, greedy_tags

OUTPUTS = ("softmax", "crf", "autoregressive")


class TaggerModel(nn.Module):
    """A tagger for ``num_tags`` tags over a vocabulary of ``vocab_size`` words or characters.

    ``cell`` (a registered cell name or a ``seqkit.Cell`` class) and ``cell_options`` serve the
    encoder, the character encoder and the decoder RNN alike. ``dropout`` applies to the encoder's
    input and output and between its layers. ``char_features`` > 0 adds, per word, the outputs of a
    bidirectional character RNN (``CharWordEncoder``, ``2 * char_features`` features) to its
    embedding; it needs ``char_vocab_size``. The autoregressive decoder has ``decoder_size`` hidden
    units (default ``hidden_size``) and reads tags embedded in ``tag_embedding_size`` features.
    """

    def __init__(self, vocab_size: int, num_tags: int, cell, hidden_size: int, embedding_size: int = 64,
                 layers: int = 1, dropout: float = 0.0, bidirectional: bool = True, output: str = "softmax",
                 char_vocab_size: int = 0, char_features: int = 0, char_embedding_size: int = 32,
                 tag_embedding_size: int = 16, decoder_size: int | None = None, **cell_options):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
        if char_features and char_vocab_size < 1:
            raise ValueError("char_features needs the size of the character vocabulary, char_vocab_size")
        self.num_tags, self.output = num_tags, output
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PADDING_ID)
        self.chars = (CharWordEncoder(char_vocab_size, char_embedding_size, char_features, cell, **cell_options)
                      if char_features else None)
        word_size = embedding_size + (self.chars.output_size if self.chars else 0)
        self.encoder = Recurrent(cell, word_size, hidden_size, layers=layers, dropout=dropout,
                                 bidirectional=bidirectional, **cell_options)
        self.dropout = Dropout(dropout)
        memory_size = hidden_size * self.encoder.directions
        if output == "autoregressive":
            # Tag id num_tags is the step model's end symbol; as the previous tag it marks the start.
            self.tag_embedding = nn.Embedding(num_tags + 1, tag_embedding_size)
            decoder_size = decoder_size or hidden_size
            self.decoder = Recurrent(cell, memory_size + tag_embedding_size, decoder_size, **cell_options)
            self.head = nn.Linear(decoder_size, num_tags)
        else:
            self.head = nn.Linear(memory_size, num_tags)
            self.crf = LinearChainCRF(num_tags) if output == "crf" else None

    def encode(self, tokens, lengths, chars=None) -> torch.Tensor:
        """The encoder's outputs h_i (batch, time, hidden * directions), zero at padding."""
        return self._encode(tokens, *self.check_batch(tokens, lengths, chars), chars)

    def emissions(self, tokens, lengths, chars=None) -> torch.Tensor:
        """Scores of each tag at each position (batch, time, num_tags): the softmax and crf outputs'."""
        if self.output == "autoregressive":
            raise ValueError("an autoregressive tagger has no emissions: its scores depend on the previous tag")
        return self.head(self.encode(tokens, lengths, chars))

    def log_likelihood(self, tokens, lengths, tags, chars=None) -> torch.Tensor:
        """log p(tags | tokens) per sentence (batch,); tags at padding positions are ignored."""
        return self._log_likelihood(tokens, *self.check_batch(tokens, lengths, chars), tags, chars)

    def loss(self, tokens, lengths, tags, chars=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed negative log-likelihood over the batch, number of real tokens): a sum, so that a
        trainer can weight batches by their tokens."""
        lengths, mask = self.check_batch(tokens, lengths, chars)
        return -self._log_likelihood(tokens, lengths, mask, tags, chars).sum(), lengths.sum()

    def score_and_predict(self, tokens, lengths, tags, chars=None, predict: bool = True):
        """(log p(tags | tokens) per sentence, ``predict``'s tags or None), reading the sentences
        once where the output allows (softmax, crf): what an evaluation needs."""
        lengths, mask = self.check_batch(tokens, lengths, chars)
        if self.output == "autoregressive":
            log_likelihood = self._log_likelihood(tokens, lengths, mask, tags, chars)
            return log_likelihood, self.predict(tokens, lengths, chars) if predict else None
        emissions = self.head(self._encode(tokens, lengths, mask, chars))
        tags = tags.to(tokens.device).masked_fill(~mask, 0)
        if self.output == "crf":
            log_likelihood = self.crf.log_likelihood(emissions, tags, lengths)
            return log_likelihood, self.crf.viterbi(emissions, lengths)[0] if predict else None
        log_probs = emissions.log_softmax(2)
        log_likelihood = log_probs.gather(2, tags.unsqueeze(2)).squeeze(2).masked_fill(~mask, 0.0).sum(1)
        return log_likelihood, log_probs.argmax(2).masked_fill(~mask, PADDING_TAG) if predict else None

    @torch.no_grad()
    def predict(self, tokens, lengths, chars=None) -> torch.Tensor:
        """Tags (batch, time) long, ``PADDING_TAG`` (-1) at padding: the exact argmax for softmax
        (per position) and crf (Viterbi); greedy left to right for autoregressive."""
        lengths, mask = self.check_batch(tokens, lengths, chars)
        if self.output == "autoregressive":
            return greedy_tags(TaggerStepModel(self), tokens, lengths, chars).masked_fill(~mask, PADDING_TAG)
        emissions = self.head(self._encode(tokens, lengths, mask, chars))
        if self.output == "crf":
            return self.crf.viterbi(emissions, lengths)[0]
        return emissions.argmax(2).masked_fill(~mask, PADDING_TAG)

    @torch.no_grad()
    def marginals(self, tokens, lengths, chars=None) -> torch.Tensor:
        """p(y_i = v | tokens), (batch, time, num_tags), zero rows at padding."""
        if self.output == "autoregressive":
            raise SeqkitError("an autoregressive tagger has no closed-form marginals: decode with "
                              "--strategy exact, which enumerates every tag sequence and reports them")
        lengths, mask = self.check_batch(tokens, lengths, chars)
        emissions = self.head(self._encode(tokens, lengths, mask, chars))
        if self.output == "crf":
            return self.crf.marginals(emissions, lengths)
        return emissions.softmax(2).masked_fill(~mask.unsqueeze(2), 0.0)

    def decoder_input(self, memory: torch.Tensor, previous_tags: torch.Tensor) -> torch.Tensor:
        """What the autoregressive decoder reads at a position: h_i and the previous tag, embedded.
        Whole sequences (batch, time, .) in training, one position (rows, .) in decoding."""
        return torch.cat([memory, self.tag_embedding(previous_tags)], dim=-1)

    def _encode(self, tokens, lengths, mask, chars) -> torch.Tensor:
        x = self.embedding(tokens.masked_fill(~mask, PADDING_ID))  # padding may hold any id
        if self.chars is not None:
            x = torch.cat([x, self.chars(chars, mask)], dim=2)
        memory, _ = self.encoder(self.dropout(x), lengths=lengths)
        return self.dropout(memory)

    def _log_likelihood(self, tokens, lengths, mask, tags, chars) -> torch.Tensor:
        tags = tags.to(tokens.device).masked_fill(~mask, 0)
        memory = self._encode(tokens, lengths, mask, chars)
        if self.output == "crf":
            return self.crf.log_likelihood(self.head(memory), tags, lengths)
        if self.output == "softmax":
            log_probs = self.head(memory).log_softmax(2)
        else:  # teacher forcing: the decoder reads the gold previous tag
            start = torch.full_like(tags[:, :1], self.num_tags)
            hidden, _ = self.decoder(self.decoder_input(memory, torch.cat([start, tags[:, :-1]], 1)),
                                     lengths=lengths)
            log_probs = self.head(hidden).log_softmax(2)
        return log_probs.gather(2, tags.unsqueeze(2)).squeeze(2).masked_fill(~mask, 0.0).sum(1)

    def check_batch(self, tokens, lengths, chars) -> tuple[torch.Tensor, torch.Tensor]:
        """``lengths`` as long on the tokens' device, and the mask (batch, time) of real positions."""
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"tokens must be integer ids of shape (batch, time), got {tokens.dtype} "
                             f"of shape {tuple(tokens.shape)}")
        batch, time = tokens.shape
        lengths = torch.as_tensor(lengths).to(device=tokens.device, dtype=torch.long)
        if lengths.shape != (batch,) or not bool(((lengths >= 1) & (lengths <= time)).all()):
            raise ValueError(f"lengths must be {batch} integers in [1, {time}], got {lengths.tolist()}")
        if (chars is None) != (self.chars is None):
            raise ValueError("chars must be given exactly when the model has char_features")
        if chars is not None and (chars.dim() != 3 or chars.shape[:2] != tokens.shape):
            raise ValueError(f"chars must be (batch, time, width) = {tuple(tokens.shape)} + (width,), "
                             f"got {tuple(chars.shape)}")
        return lengths, torch.arange(time, device=tokens.device) < lengths.unsqueeze(1)


class CharWordEncoder(nn.Module):
    """Each word's characters -> ``2 * features`` features: a bidirectional ``seqkit.Recurrent``
    over the characters, read at the word's last character (forward) and its first (backward), as in
    Plank et al.'s bi-LSTM taggers. Every word of a batch is one row of a single run, so a word's
    features depend on its characters only (never on the other words, the padding, or its id: an
    unknown word gets them too)."""

    def __init__(self, char_vocab_size: int, embedding_size: int, features: int, cell, **cell_options):
        super().__init__()
        self.features, self.output_size = features, 2 * features
        self.embedding = nn.Embedding(char_vocab_size, embedding_size, padding_idx=PADDING_ID)
        self.recurrent = Recurrent(cell, embedding_size, features, bidirectional=True, **cell_options)

    def forward(self, chars: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``chars`` (batch, time, width), ``mask`` (batch, time) of real words ->
        (batch, time, 2 * features), zero at padding."""
        words = chars[mask]  # (words, width): the real words only, padding words cost nothing
        lengths = (words != PADDING_ID).sum(1).clamp(min=1)
        outputs, _ = self.recurrent(self.embedding(words), lengths=lengths)
        last = outputs.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])).squeeze(1)
        encoded = torch.cat([last[:, :self.features], outputs[:, 0, self.features:]], dim=1)
        return encoded.new_zeros(*mask.shape, self.output_size).index_put((mask,), encoded)
