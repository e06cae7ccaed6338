"""The encoder–decoder against the documented equations computed one sentence at a time, torch's
own LSTM, brute force over every target sequence, and its own step model, in float64.

Pairs are built once as lists and padded with garbage (invalid ids included) in every padding
position, among longer ones, so that every comparison also checks that padding changes nothing.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from seqkit.decoding import build_decoder
from seqkit.plugins.tasks.translation.model import (
    END_ID,
    NEVER_PREDICTED,
    PAD_ID,
    START_ID,
    UNK_ID,
    EncodedSource,
    Seq2SeqModel,
)
from seqkit.plugins.tasks.translation.step import TranslationStepModel, start_decoding
from seqkit.state import Shared

SOURCE_VOCAB, TARGET_VOCAB = 9, 7
TARGET_SYMBOLS = [UNK_ID, 4, 5, 6]  # what a target may hold before its end symbol
HIDDEN = 3

# (attention, input_feeding): every attention, with and without input feeding where it applies
ATTENTIONS = [("none", None), ("dot", None), ("general", None), ("additive", None),
              ("dot", False), ("general", False), ("additive", False)]
CELL_PAIRS = [("lstm", "lstm"), ("gru", "gru"), ("tanh", "tanh"), ("gru", "lstm")]
COMBINATIONS = [(cells, attention, bridge) for cells in CELL_PAIRS for attention in ATTENTIONS
                for bridge in ("linear", "zero", "last")
                if not (bridge == "last" and cells[0] != cells[1])]  # a GRU's h cannot start an LSTM


def make_model(attention="general", bridge="linear", cells=("lstm", "lstm"), input_feeding=None, seed=0,
               **options) -> Seq2SeqModel:
    torch.manual_seed(seed)
    settings = dict(hidden_size=HIDDEN, source_embedding_size=4, target_embedding_size=4, encoder_layers=2,
                    decoder_layers=2, encoder_dropout=0.3, decoder_dropout=0.3, attention_size=5)
    settings.update(options)
    model = Seq2SeqModel(SOURCE_VOCAB, TARGET_VOCAB, cells[0], cells[1], bridge=bridge, attention=attention,
                         input_feeding=input_feeding, **settings).double()
    with torch.no_grad():  # peakier outputs than the default init, so that decoders can disagree
        model.head.weight.mul_(4.0)
    return model.eval()  # dropout set, and off: the comparisons are exact


def make_pairs(source_lengths, target_lengths, seed=0) -> list[tuple[list[int], list[int]]]:
    """Random (source, target) pairs; each target ends with the end symbol (counted in its length)."""
    g = torch.Generator().manual_seed(seed)
    symbols = torch.tensor(TARGET_SYMBOLS)
    return [(torch.randint(UNK_ID, SOURCE_VOCAB, (s,), generator=g).tolist(),
             symbols[torch.randint(len(TARGET_SYMBOLS), (t - 1,), generator=g)].tolist() + [END_ID])
            for s, t in zip(source_lengths, target_lengths)]


def pad(pairs, extra=2, seed=1):
    """(source, source_lengths, target, target_lengths): garbage in every padding position, and
    ``extra`` columns of padding past the longest."""
    g = torch.Generator().manual_seed(seed)
    source_lengths = [len(s) for s, _ in pairs]
    target_lengths = [len(t) for _, t in pairs]
    source = torch.randint(-5, 100, (len(pairs), max(source_lengths) + extra), generator=g)
    target = torch.randint(-5, 100, (len(pairs), max(target_lengths) + extra), generator=g)
    for b, (s, t) in enumerate(pairs):
        source[b, :len(s)] = torch.tensor(s)
        target[b, :len(t)] = torch.tensor(t)
    return source, torch.tensor(source_lengths), target, torch.tensor(target_lengths)


def close(actual, expected, tol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol)


# -- the documented equations, one unpadded sentence at a time ------------------------------------------

def _steps(cell, inputs, state):
    outputs = []
    for x in inputs:
        h, state = cell.step(x, state)
        outputs.append(h)
    return outputs, state


def _leaves(state):
    return [state] if isinstance(state, torch.Tensor) else [leaf for part in state for leaf in _leaves(part)]


def _cat_directions(states):
    if isinstance(states[0], torch.Tensor):
        return torch.cat(states, 1)
    return tuple(_cat_directions(parts) for parts in zip(*states))


def reference_encoder(model, source):
    """(outputs of the top layer, one (1, memory) per position; final states per layer and direction)."""
    encoder, xs = model.encoder, [model.source_embedding.weight[t].unsqueeze(0) for t in source]
    finals = []
    for layer in range(encoder.layers):
        directions = []
        for d in range(encoder.directions):
            cell = encoder.cells[layer * encoder.directions + d]
            outputs, final = _steps(cell, xs if d == 0 else xs[::-1], cell.initial_state(1, dtype=torch.float64))
            directions.append(outputs if d == 0 else outputs[::-1])
            finals.append(final)
        xs = [torch.cat(parts, 1) for parts in zip(*directions)]
    return xs, finals


def reference_bridge(model, finals):
    """The bridge as translation_bridge documents it."""
    directions, decoder = model.encoder.directions, model.decoder
    layers = [finals[layer * directions:(layer + 1) * directions] for layer in range(model.encoder.layers)]
    if model.bridge.kind == "zero":
        return [cell.initial_state(1, dtype=torch.float64) for cell in decoder.cells]
    if model.bridge.kind == "last":
        return [_cat_directions(states) for states in layers]
    initial = []
    for layer, cell in enumerate(decoder.cells):
        top_aligned = min(max(layer + len(layers) - len(decoder.cells), 0), len(layers) - 1)
        x = torch.cat([leaf for state in layers[top_aligned] for leaf in _leaves(state)], 1)
        new = [torch.tanh(x @ linear.weight.T + linear.bias) for linear in model.bridge.maps[layer]]
        template = cell.initial_state(1, dtype=torch.float64)
        initial.append(new[0] if isinstance(template, torch.Tensor) else tuple(new))
    return initial


def reference_context(model, h, memory):
    """c_i for decoder output h (1, hidden) over the memory (a list of (1, memory)), score by score."""
    attention = model.attention
    scores = []
    for m in memory:
        if attention.score == "dot":
            scores.append((h * m).sum())
        elif attention.score == "general":
            scores.append((h @ attention.query_map.weight.T @ m.T).sum())
        else:
            hidden = torch.tanh(h @ attention.query_map.weight.T + m @ attention.key_map.weight.T
                                + attention.key_map.bias)
            scores.append((hidden @ attention.vector.weight.T).sum())
    weights = torch.stack(scores).softmax(0)
    return sum(w * m for w, m in zip(weights, memory))


def reference_token_log_probs(model, source, target) -> torch.Tensor:
    memory, finals = reference_encoder(model, source)
    half = model.encoder.hidden_size
    context = memory[-1] if model.encoder.directions == 1 else torch.cat([memory[-1][:, :half], memory[0][:, half:]], 1)
    states = reference_bridge(model, finals)
    feed = torch.zeros(1, model.decoder.hidden_size, dtype=torch.float64)
    log_probs = []
    for previous, token in zip([START_ID] + target[:-1], target):
        x = model.target_embedding.weight[previous].unsqueeze(0)
        if model.attention is None:
            x = torch.cat([x, context], 1)
        elif model.input_feeding:
            x = torch.cat([x, feed], 1)
        for layer, cell in enumerate(model.decoder.cells):
            x, states[layer] = cell.step(x, states[layer])
        c = context if model.attention is None else reference_context(model, x, memory)
        feed = torch.tanh(torch.cat([c, x], 1) @ model.combine.weight.T)
        logits = (feed @ model.head.weight.T + model.head.bias)[0]
        logits[list(NEVER_PREDICTED)] = -math.inf
        log_probs.append(logits.log_softmax(0)[token])
    return torch.stack(log_probs)


# -- training and decoding agree -------------------------------------------------------------------------

def step_along(model, source, source_lengths, target, target_lengths):
    """Per-sentence sums of the step model's log-probabilities of the target tokens, after checking
    every row it gives on the way."""
    step_model = TranslationStepModel(model)
    state, tokens = start_decoding(model, source, source_lengths)
    total = torch.zeros(source.shape[0], dtype=torch.float64)
    for position in range(int(target_lengths.max())):
        log_probs, state = step_model.step(tokens, state)
        close(log_probs.logsumexp(1), torch.zeros(source.shape[0], dtype=torch.float64))  # distributions
        assert (log_probs[:, list(NEVER_PREDICTED)] == -math.inf).all()
        assert torch.isfinite(log_probs[:, [UNK_ID, END_ID, 4, 5, 6]]).all()
        inside = position < target_lengths
        tokens = torch.where(inside, target[:, position], END_ID)
        total += torch.where(inside, log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1), 0.0)
    return total


@pytest.mark.parametrize("cells,attention,bridge", COMBINATIONS,
                         ids=[f"{e}-{d}-{a}{'' if f is None else '-nofeed'}-{b}"
                              for (e, d), (a, f), b in COMBINATIONS])
def test_teacher_forcing_is_the_documented_computation_and_the_step_models_sum(cells, attention, bridge):
    model = make_model(attention[0], bridge, cells, input_feeding=attention[1], seed=3)
    pairs = make_pairs([4, 1, 3], [2, 4, 1], seed=4)
    source, source_lengths, target, target_lengths = pad(pairs)
    token_log_probs = model.token_log_probs(source, source_lengths, target, target_lengths)
    for b, (s, t) in enumerate(pairs):
        close(token_log_probs[b, :len(t)], reference_token_log_probs(model, s, t))
        assert (token_log_probs[b, len(t):] == 0).all()
    log_likelihood = model.log_likelihood(source, source_lengths, target, target_lengths)
    close(log_likelihood, token_log_probs.sum(1))
    close(step_along(model, source, source_lengths, target, target_lengths), log_likelihood)


@pytest.mark.parametrize("attention", ["dot", "general", "additive"])
def test_attention_never_reads_padding_whatever_the_encoder_leaves_there(attention, monkeypatch):
    model = make_model(attention, seed=5)
    source, source_lengths, target, target_lengths = pad(make_pairs([2, 5, 3], [3, 2, 4], seed=6), extra=3)
    expected = model.log_likelihood(source, source_lengths, target, target_lengths)
    encoded, _ = model.encode(source, source_lengths)
    _, weights = model.attention(torch.randn(3, 2, model.decoder.hidden_size, dtype=torch.float64),
                                 encoded.memory, encoded.keys, encoded.mask)
    assert (weights.masked_select(~encoded.mask.unsqueeze(1)) == 0).all()
    close(weights.sum(2), torch.ones(3, 2, dtype=torch.float64))

    run_encoder = model.encoder.forward

    def nan_at_padding(inputs, states=None, lengths=None):  # an encoder that leaves NaN past the ends
        outputs, finals = run_encoder(inputs, states, lengths)
        padding = torch.arange(outputs.shape[1]) >= lengths.unsqueeze(1)
        return outputs.masked_fill(padding.unsqueeze(2), math.nan), finals

    monkeypatch.setattr(model.encoder, "forward", nan_at_padding)
    close(model.log_likelihood(source, source_lengths, target, target_lengths), expected)
    close(step_along(model, source, source_lengths, target, target_lengths), expected)


def test_a_pair_alone_and_among_others_gets_the_same_log_probabilities():
    model = make_model("additive", "linear", ("gru", "lstm"), seed=7)
    pairs = make_pairs([1, 6, 3, 2], [5, 1, 3, 2], seed=8)
    together = model.token_log_probs(*pad(pairs, extra=1))
    for b, pair in enumerate(pairs):
        alone = model.token_log_probs(*pad([pair], extra=0))[0]
        close(together[b, :len(pair[1])], alone)


# -- the bridge and the fixed context, against torch.nn.LSTM -------------------------------------------------

def torch_lstm(model) -> torch.nn.LSTM:
    """torch's own LSTM holding the encoder's weights (seqkit's cells use torch's names and layout)."""
    encoder = model.encoder
    lstm = torch.nn.LSTM(model.source_embedding.embedding_dim, HIDDEN, num_layers=encoder.layers,
                         bidirectional=encoder.bidirectional, batch_first=True).double()
    with torch.no_grad():
        for k, cell in enumerate(encoder.cells):
            suffix = f"l{k // encoder.directions}" + ("_reverse" if k % encoder.directions else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{name}_{suffix}").copy_(getattr(cell, name))
    return lstm


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("bridge, decoder_layers", [("linear", 1), ("linear", 2), ("linear", 3), ("zero", 2),
                                                    ("last", 2)])
def test_the_bridge_and_the_context_are_what_the_documentation_says(bridge, decoder_layers, bidirectional):
    # the encoder has 2 layers: a 1-layer decoder starts from the top one, a 3-layer decoder's
    # bottom two layers from the bottom one
    model = make_model("none", bridge, bidirectional=bidirectional, decoder_layers=decoder_layers, seed=9)
    pairs = make_pairs([3, 1, 5], [1, 1, 1], seed=10)
    source, source_lengths, _, _ = pad(pairs)
    encoded, initial = model.encode(source, source_lengths)
    lstm, directions = torch_lstm(model), 2 if bidirectional else 1
    for b, (s, _) in enumerate(pairs):
        outputs, (h_n, c_n) = lstm(model.source_embedding(torch.tensor([s])))
        # C: the top layer's final outputs, forward at the last position, backward at the first
        expected_context = outputs[0, -1] if not bidirectional else torch.cat([outputs[0, -1, :HIDDEN],
                                                                               outputs[0, 0, HIDDEN:]])
        close(encoded.context[b], expected_context)
        for layer, (h, c) in enumerate(initial):
            encoder_layer = {1: [1], 2: [0, 1], 3: [0, 0, 1]}[decoder_layers][layer] if bridge == "linear" else layer
            hs = [h_n[encoder_layer * directions + d, 0] for d in range(directions)]
            cs = [c_n[encoder_layer * directions + d, 0] for d in range(directions)]
            if bridge == "zero":
                expected = (torch.zeros_like(h[b]), torch.zeros_like(c[b]))
            elif bridge == "last":
                expected = (torch.cat(hs), torch.cat(cs))
            else:
                x = torch.cat([part for d in range(directions) for part in (hs[d], cs[d])])
                expected = tuple(torch.tanh(linear(x)) for linear in model.bridge.maps[layer])
            close(h[b], expected[0])
            close(c[b], expected[1])
    assert len(initial) == decoder_layers


# -- decoders drive it unchanged ------------------------------------------------------------------------------

def decode(strategy, model, source, source_lengths, length, options=None):
    return build_decoder(strategy, options or {}).decode(TranslationStepModel(model),
                                                       *start_decoding(model, source, source_lengths), length)


def brute_force(model, source: list[int], length: int) -> tuple[list[list[int]], torch.Tensor]:
    """Every output of at most ``length`` tokens (the end symbol after 0 .. length-1 symbols, or
    ``length`` symbols cut there) and its log-probability, from teacher forcing."""
    ended = [list(symbols) + [END_ID] for n in range(length) for symbols in itertools.product(TARGET_SYMBOLS, repeat=n)]
    cut = [list(symbols) for symbols in itertools.product(TARGET_SYMBOLS, repeat=length)]
    pairs = [(source, t) for t in ended] + [(source, t + [END_ID]) for t in cut]
    with torch.no_grad():
        token_log_probs = model.token_log_probs(*pad(pairs, extra=0))
    # a cut output's probability is that of its symbols: the end symbol appended for scoring is left out
    log_probs = torch.cat([token_log_probs[:len(ended)].sum(1), token_log_probs[len(ended):, :length].sum(1)])
    return ended + cut, log_probs


def hypotheses(result) -> tuple[list[list[int]], torch.Tensor]:
    return ([h.tokens for h in result.hypotheses],
            torch.tensor([h.log_prob for h in result.hypotheses], dtype=torch.float64))


@pytest.mark.parametrize("attention,cells", [("none", ("lstm", "lstm")), ("general", ("gru", "gru")),
                                             ("additive", ("tanh", "lstm")), ("dot", ("lstm", "lstm"))])
def test_exact_decoding_equals_brute_force_over_every_output(attention, cells):
    model = make_model(attention, "linear", cells, seed=11)
    pairs = make_pairs([3, 1, 4], [1, 1, 1], seed=12)
    source, source_lengths, _, _ = pad(pairs)
    length = 4
    for (s, _), result in zip(pairs, decode("exact", model, source, source_lengths, length, {"n_best": 5})):
        outputs, log_probs = brute_force(model, s, length)
        close(log_probs.exp().sum(), torch.tensor(1.0, dtype=torch.float64))  # nothing else has probability
        ranked = log_probs.argsort(descending=True)[:5]
        tokens, scores = hypotheses(result)
        assert tokens == [outputs[i] for i in ranked.tolist()]
        close(scores, log_probs[ranked])
        assert result.extras["mass"] == pytest.approx(1.0, abs=1e-10)


def test_a_beam_as_wide_as_every_output_equals_exact():
    model = make_model("general", "last", seed=13)
    source, source_lengths, _, _ = pad(make_pairs([2, 5, 1], [1, 1, 1], seed=14))
    outputs = sum(len(TARGET_SYMBOLS) ** n for n in range(5))
    exact = decode("exact", model, source, source_lengths, 4, {"n_best": 4})
    beam = decode("beam", model, source, source_lengths, 4, {"beam_size": outputs, "n_best": 4})
    for e, b in zip(exact, beam):
        assert hypotheses(b)[0] == hypotheses(e)[0]
        close(hypotheses(b)[1], hypotheses(e)[1])


@pytest.mark.parametrize("strategy,options", [
    ("greedy", {}), ("sample", {"num_samples": 5, "seed": 0}), ("beam", {"beam_size": 3, "n_best": 3}),
    ("beam", {"beam_size": 4, "n_best": 2, "length_penalty": 1.0}), ("exact", {"n_best": 3})])
def test_every_decoder_decodes_a_batch_as_it_decodes_each_source_alone(strategy, options):
    model = make_model("additive", "linear", ("lstm", "gru"), seed=15)
    pairs = make_pairs([2, 6, 1, 4], [1, 1, 1, 1], seed=16)
    source, source_lengths, _, _ = pad(pairs, extra=3)
    length = 4
    together = decode(strategy, model, source, source_lengths, length, options)
    for (s, _), result in zip(pairs, together):
        if strategy != "sample":  # samples share one random stream: a batch draws other ones
            [alone] = decode(strategy, model, *pad([(s, [END_ID])], extra=0)[:2], length, options)
            assert hypotheses(result)[0] == hypotheses(alone)[0]
            close(hypotheses(result)[1], hypotheses(alone)[1])
        assert result.hypotheses
        for tokens, log_prob in zip(*hypotheses(result)):
            assert not set(tokens) & set(NEVER_PREDICTED)
            ended = tokens[-1:] == [END_ID]
            scored = model.token_log_probs(*pad([(s, tokens if ended else tokens + [END_ID])], extra=0))[0]
            close(log_prob, scored.sum() if ended else scored[:-1].sum())  # the model's own probability


def test_the_encoder_runs_once_and_beam_search_never_copies_its_memory():
    model = make_model("general", seed=17)
    source, source_lengths, _, _ = pad(make_pairs([3, 2], [1, 1], seed=18))
    encoder_runs = []
    model.encoder.register_forward_hook(lambda *_: encoder_runs.append(1))
    state, first = start_decoding(model, source, source_lengths)
    step_model, seen = TranslationStepModel(model), []

    class Spy:
        vocab_size, end_token = step_model.vocab_size, step_model.end_token

        def step(self, tokens, state):
            seen.append(state[0])
            return step_model.step(tokens, state)

    build_decoder("beam", {"beam_size": 4}).decode(Spy(), state, first, 5)
    assert len(encoder_runs) == 1
    assert len(seen) > 1 and all(shared is state[0] for shared in seen)
    assert isinstance(state[0], Shared) and state[0].value.memory.shape[0] == 2  # one row per source
    assert first.tolist() == [START_ID, START_ID]


@pytest.mark.parametrize("rows,gathered", [
    (None, []),  # the rows start_decoding made (greedy search): the memory as it is
    ([0, 0, 0, 1, 1, 1, 2, 2, 2], []),  # every source's rows together (beam search, sampling)
    ([1, 1, 1, 2, 2, 2], [2]),  # some sources (beam search once it has finished the others)
    ([2, 0, 1, 1], [4]),  # rows in any order (exact search): a gather per row
])
def test_a_step_reads_each_sources_memory_once_for_all_its_rows_as_a_gather_per_row_would(
        rows, gathered, monkeypatch):
    model = make_model("general", seed=21)
    source, source_lengths, _, _ = pad(make_pairs([3, 5, 2], [1, 1, 1], seed=22))
    state, _ = start_decoding(model, source, source_lengths)
    shared, made, states, feed = state
    rows = made if rows is None else torch.tensor(rows)
    g = torch.Generator().manual_seed(23)
    row_state = (shared, rows, tuple(tuple(torch.randn(len(rows), HIDDEN * 2, generator=g, dtype=torch.float64)
                                           for _ in range(2)) for _ in states),
                 torch.randn(len(rows), HIDDEN * 2, generator=g, dtype=torch.float64))
    tokens = torch.randint(4, TARGET_VOCAB, (len(rows),), generator=g)
    selected = []
    select = EncodedSource.select
    monkeypatch.setattr(EncodedSource, "select",
                        lambda encoded, index: selected.append(len(index)) or select(encoded, index))
    grouped, _ = TranslationStepModel(model).step(tokens, row_state)
    assert selected == gathered
    per_row, _ = model.decode_step(model.target_embedding(tokens), list(row_state[2]), row_state[3],
                                   select(shared.value, rows))  # each row's own source, gathered
    close(grouped, model.output_log_probs(per_row), 1e-12)


# -- the loss -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_feeding", [True, False])
def test_the_loss_is_the_summed_cross_entropy_with_label_smoothing_over_the_predictable_symbols(input_feeding):
    model = make_model("general", input_feeding=input_feeding, seed=19)
    pairs = make_pairs([3, 2, 4], [4, 2, 3], seed=20)
    batch = pad(pairs)
    loss, tokens = model.loss(*batch)
    close(loss, -model.log_likelihood(*batch).sum())
    assert tokens.item() == sum(len(t) for _, t in pairs)
    # Independently: the step model's rows along the gold targets, torch's label smoothing over the
    # symbols the model can predict.
    step_model = TranslationStepModel(model)
    state, previous = start_decoding(model, batch[0], batch[1])
    allowed = [v for v in range(TARGET_VOCAB) if v not in NEVER_PREDICTED]
    rows, gold = [], []
    for position in range(max(len(t) for _, t in pairs)):
        log_probs, state = step_model.step(previous, state)
        for b, (_, t) in enumerate(pairs):
            if position < len(t):
                rows.append(log_probs[b, allowed])
                gold.append(allowed.index(t[position]))
        previous = torch.tensor([t[min(position, len(t) - 1)] for _, t in pairs])
    expected = F.cross_entropy(torch.stack(rows), torch.tensor(gold), label_smoothing=0.2, reduction="sum")
    smoothed, _ = model.loss(*batch, label_smoothing=0.2)
    close(smoothed, expected)
    smoothed.backward()  # the -inf of the symbols never predicted leaves every gradient finite
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert (model.head.weight.grad[list(NEVER_PREDICTED)] == 0).all()


def test_a_small_model_learns_to_reverse_its_input():
    """Gradients reach every part: with attention, input feeding and the bridge, a few hundred Adam
    steps teach a tiny model to reverse symbol strings it has never seen."""
    torch.manual_seed(0)
    model = Seq2SeqModel(6, 8, "lstm", hidden_size=16, source_embedding_size=8, target_embedding_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

    def batch(size, seed):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(2, 6, (size,), generator=g)
        source = torch.randint(2, 6, (size, 5), generator=g)
        mask = torch.arange(5) < lengths.unsqueeze(1)
        reversed_source = source.gather(1, (lengths.unsqueeze(1) - 1 - torch.arange(5)).clamp(min=0))
        target = torch.cat([torch.where(mask, reversed_source + 2, PAD_ID), torch.full((size, 1), PAD_ID)], 1)
        target[torch.arange(size), lengths] = END_ID  # source symbols 2..5 are target symbols 4..7
        return source, lengths, target, lengths + 1

    for step in range(150):
        loss, tokens = model.loss(*batch(32, step))
        optimizer.zero_grad()
        (loss / tokens).backward()
        optimizer.step()
    model.eval()
    source, lengths, target, target_lengths = batch(50, 10_000)
    results = decode("greedy", model, source, lengths, 7)
    correct = sum(r.hypotheses[0].tokens == target[b, :target_lengths[b]].tolist() for b, r in enumerate(results))
    assert correct >= 45


# -- what cannot work is refused -------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,message", [
    (dict(bridge="last", decoder_layers=1), "needs as many decoder layers \\(1\\) as encoder layers \\(2\\)"),
    (dict(bridge="last", decoder_hidden_size=4), r"encoder's is \(\(6,\), \(6,\)\) \(directions concatenated\), "
                                                 r"the decoder's \(\(4,\), \(4,\)\)"),
    (dict(bridge="last", cells=("gru", "lstm")), r"encoder's is \(6,\) .*the decoder's \(\(6,\), \(6,\)\)"),
    (dict(bridge="middle"), "bridge must be one of linear, zero, last; got 'middle'"),
    (dict(attention="luong"), "attention must be one of none, dot, general, additive"),
    (dict(attention="none", input_feeding=True), "input_feeding .* needs attention"),
    (dict(attention="dot", decoder_hidden_size=4), r"decoder's hidden size \(4\) must equal .* \(6: hidden_size"),
])
def test_impossible_configurations_are_refused_with_a_reason(options, message):
    with pytest.raises(ValueError, match=message):
        make_model(**options)


def test_a_vocabulary_without_room_for_its_special_symbols_is_refused():
    with pytest.raises(ValueError, match="target_vocab_size=3"):
        Seq2SeqModel(SOURCE_VOCAB, 3)
    with pytest.raises(ValueError, match="source_vocab_size=1"):
        Seq2SeqModel(1, TARGET_VOCAB)


@pytest.mark.parametrize("change,message", [
    (lambda s, sl, t, tl: (s, torch.tensor([0, 2]), t, tl), r"source lengths must be 2 integers in \[1, 4\]"),
    (lambda s, sl, t, tl: (s.double(), sl, t, tl), "source must be integer ids"),
    (lambda s, sl, t, tl: (s, sl, t[:1], tl[:1]), "target has 1 sentences, the source 2"),
    (lambda s, sl, t, tl: (s, sl, t, tl - 1), "must end with the end symbol"),
    (lambda s, sl, t, tl: (s, sl, t.index_put((torch.tensor([0]), torch.tensor([0])), torch.tensor(END_ID)), tl),
     "hold it nowhere before"),
    (lambda s, sl, t, tl: (s, sl, t.index_put((torch.tensor([1]), torch.tensor([0])), torch.tensor(START_ID)), tl),
     "ones the model never predicts"),
    (lambda s, sl, t, tl: (s, sl, t.index_put((torch.tensor([1]), torch.tensor([0])), torch.tensor(TARGET_VOCAB)), tl),
     r"ids outside \[0, 7\)"),
], ids=["empty source", "float source", "batch sizes", "end missing", "end early", "start inside", "id too large"])
def test_batches_that_do_not_fit_the_model_are_refused(change, message):
    model = make_model()
    batch = change(*pad(make_pairs([3, 2], [3, 4], seed=21), extra=1))
    with pytest.raises(ValueError, match=message):
        model.loss(*batch)


def test_label_smoothing_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="label_smoothing must be in \\[0, 1\\]"):
        make_model().loss(*pad(make_pairs([2], [2])), label_smoothing=1.5)


def test_a_float32_model_gives_float32_log_probabilities():
    model = Seq2SeqModel(SOURCE_VOCAB, TARGET_VOCAB, "gru", hidden_size=4).eval()
    source, source_lengths, target, target_lengths = pad(make_pairs([2], [2]))
    state, tokens = start_decoding(model, source, source_lengths)
    log_probs, _ = TranslationStepModel(model).step(tokens, state)
    assert log_probs.dtype == torch.float32
    assert model.token_log_probs(source, source_lengths, target, target_lengths).dtype == torch.float32
