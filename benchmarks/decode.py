"""Decoding speed: greedy and sampling against hand-written torch loops, linearity, exact enumeration.

    python -m benchmarks.decode [--quick] [--repeats N] [--threads N] [--no-write]

The model is the char LM seqkit trains (``char_lm``: embedding 64 -> 2-layer 256-unit LSTM ->
linear over 96 symbols), with random weights. The hand-written baselines get the very same
weights and carry their state token by token, as a user would write them:

* ``nn.LSTMCell loop``: two ``nn.LSTMCell`` (one fused kernel per layer and step);
* ``nn.LSTM loop``: one ``nn.LSTM(num_layers=2)`` called on one-token sequences;
* ``plain step loop``: seqkit's own step model driven by a bare ``for`` loop: what remains
  between it and ``seqkit`` is the decoder's own cost.

The ratio is taken against the faster of the two torch baselines. Contenders run in
alternation, repeat after repeat, and each keeps its best time, so a busy shared CPU does not
skew the ratios. ``exact`` enumerates V=4, T=10 (4^10 sequences) with the same architecture,
and is compared at T=7 with scoring every sequence on its own through ``nn.LSTM`` (what
enumeration costs without sharing prefixes: T·V^T steps instead of about V^T).
"""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks._report import argument_parser, machine, write_section
from seqkit.decoding import build_decoder
from seqkit.plugins.tasks.char_lm.model import CharLanguageModel
from seqkit.plugins.tasks.char_lm.step import CharStepModel
from seqkit.registry import get_registry

VOCAB, EMBED, HIDDEN, LAYERS = 96, 64, 256, 2
TEMPERATURE = 0.8
RATIO_TARGET = 1.0       # seqkit at least the faster hand-written loop, at batch 1 and 64
LINEAR_TARGET = 2.2      # time for 2T tokens at most 2.2x the time for T
EXACT_TARGET_S = 3.0     # the whole V=4, T=10 enumeration


def char_model(vocab: int, seed: int = 0) -> CharLanguageModel:
    torch.manual_seed(seed)
    cell = get_registry().get("cell", "lstm")
    return CharLanguageModel(vocab, EMBED, cell, HIDDEN, LAYERS).eval()


class HandWritten:
    """The baselines, holding copies of the seqkit model's weights."""

    def __init__(self, model: CharLanguageModel):
        vocab = model.vocab_size
        self.embedding = nn.Embedding(vocab, EMBED)
        self.cells = [nn.LSTMCell(EMBED if layer == 0 else HIDDEN, HIDDEN) for layer in range(LAYERS)]
        self.lstm = nn.LSTM(EMBED, HIDDEN, LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, vocab)
        with torch.no_grad():
            self.embedding.weight.copy_(model.embedding.weight)
            self.head.load_state_dict(model.head.state_dict())
            for layer, cell in enumerate(model.recurrent.cells):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(self.cells[layer], name).copy_(getattr(cell, name))
                    getattr(self.lstm, f"{name}_l{layer}").copy_(getattr(cell, name))

    def _next(self, logits, sample: bool, generator):
        if not sample:
            return logits.argmax(-1)
        probs = F.softmax(logits / TEMPERATURE, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    @torch.inference_mode()
    def cell_loop(self, batch: int, length: int, sample: bool, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        token = torch.zeros(batch, dtype=torch.long)
        states = [None] * LAYERS
        out = []
        for _ in range(length):
            x = self.embedding(token)
            for layer, cell in enumerate(self.cells):
                states[layer] = cell(x, states[layer])
                x = states[layer][0]
            token = self._next(self.head(x), sample, generator)
            out.append(token)
        return torch.stack(out, 1)

    @torch.inference_mode()
    def lstm_loop(self, batch: int, length: int, sample: bool, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        token = torch.zeros(batch, dtype=torch.long)
        state = None
        out = []
        for _ in range(length):
            h, state = self.lstm(self.embedding(token).unsqueeze(1), state)
            token = self._next(self.head(h[:, 0]), sample, generator)
            out.append(token)
        return torch.stack(out, 1)


def start(model: CharLanguageModel, batch: int):
    return tuple(model.recurrent.initial_states(batch)), torch.zeros(batch, dtype=torch.long)


def seqkit_decode(model, strategy: str, batch: int, length: int, seed: int = 0):
    options = {"temperature": TEMPERATURE, "seed": seed} if strategy == "sample" else {}
    return build_decoder(strategy, options).decode(CharStepModel(model), *start(model, batch), length)


@torch.inference_mode()
def plain_step_loop(model, batch: int, length: int, sample: bool, seed: int = 0):
    step_model, generator = CharStepModel(model), torch.Generator().manual_seed(seed)
    state, token = start(model, batch)
    out = []
    for _ in range(length):
        log_probs, state = step_model.step(token, state)
        token = (torch.multinomial((log_probs / TEMPERATURE).softmax(-1), 1, generator=generator)
                 .squeeze(1) if sample else log_probs.argmax(-1))
        out.append(token)
    return torch.stack(out, 1)


def best_times(contenders: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each zero-argument callable, measured in alternation after a warm-up."""
    for run in contenders.values():
        run()
    best = {name: float("inf") for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            begin = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - begin)
    return best


def generation_rows(model, hand: HandWritten, batches, length: int, repeats: int) -> list[dict]:
    rows = []
    for strategy in ("greedy", "sample"):
        sample = strategy == "sample"
        for batch in batches:
            times = best_times({
                "seqkit": lambda: seqkit_decode(model, strategy, batch, length),
                "plain step loop": lambda: plain_step_loop(model, batch, length, sample),
                "nn.LSTMCell loop": lambda: hand.cell_loop(batch, length, sample),
                "nn.LSTM loop": lambda: hand.lstm_loop(batch, length, sample),
            }, repeats)
            rate = {name: batch * length / seconds for name, seconds in times.items()}
            baseline = max(rate["nn.LSTMCell loop"], rate["nn.LSTM loop"])
            rows.append(dict(strategy=strategy, batch=batch, rate=rate, ratio=rate["seqkit"] / baseline,
                             target=RATIO_TARGET, kernel=step_kernel(model, batch)))
    return rows


def step_kernel(model: CharLanguageModel, batch: int) -> str:
    """The kernel seqkit's steps took at this batch (chosen in best_times' untimed warm-up)."""
    with torch.inference_mode():
        return model.recurrent.step_kernel(torch.zeros(batch, EMBED))


def same_greedy_text(model, hand: HandWritten, length: int) -> bool:
    """seqkit's greedy output equals the hand-written loop's on the same weights."""
    ours = seqkit_decode(model, "greedy", 1, length)[0].hypotheses[0].tokens
    return ours == hand.cell_loop(1, length, sample=False)[0].tolist()


def linearity(model, length: int, repeats: int) -> float:
    times = best_times({n: (lambda n=n: seqkit_decode(model, "greedy", 1, n)) for n in (length, 2 * length)},
                       repeats)
    return times[2 * length] / times[length]


@torch.inference_mode()
def score_every_sequence(hand: HandWritten, vocab: int, length: int, chunk: int = 4096):
    """The naive enumeration: every one of V^T sequences scored on its own with nn.LSTM."""
    codes = torch.arange(vocab ** length)
    digits = torch.stack([(codes // vocab ** (length - 1 - s)) % vocab for s in range(length)], 1)
    log_probs = []
    for block in digits.split(chunk):
        inputs = torch.cat([torch.zeros(len(block), 1, dtype=torch.long), block[:, :-1]], 1)
        out, _ = hand.lstm(hand.embedding(inputs))
        step = hand.head(out).float().log_softmax(-1)
        log_probs.append(step.gather(2, block.unsqueeze(2)).squeeze(2).sum(1))
    log_probs = torch.cat(log_probs).double()
    marginals = torch.zeros(vocab, length, dtype=torch.float64)
    for s in range(length):
        marginals[:, s].index_add_(0, digits[:, s], log_probs.exp())
    return digits[log_probs.argmax()].tolist(), marginals


@torch.inference_mode()
def matmul_floor(model: CharLanguageModel, prefixes: int, chunk: int = 1024, repeats: int = 5) -> float:
    """Seconds the matrix products alone take for ``prefixes`` model steps, ``chunk`` rows at a time:
    each layer's input and recurrent weights (as two products, or as one over the concatenated
    input and state, whichever is faster here) and the head, without the gates, the softmax or
    any bookkeeping. No kernel steps the prefixes faster on this machine and thread count."""
    cells = list(model.recurrent.cells)
    x = [torch.randn(chunk, cell.weight_ih.shape[1]) for cell in cells]
    h = torch.randn(chunk, HIDDEN)
    head = model.head.weight.t().contiguous()
    split = [(cell.weight_ih.t().contiguous(), cell.weight_hh.t().contiguous()) for cell in cells]
    joined = [torch.cat([w_ih, w_hh]) for w_ih, w_hh in split]

    def apart():
        for x_l, (w_ih, w_hh) in zip(x, split):
            torch.addmm(x_l @ w_ih, h, w_hh)
        h @ head

    def together():
        for x_l, w in zip(x, joined):
            torch.cat([x_l, h], 1) @ w
        h @ head

    best = best_times({"apart": apart, "together": together}, repeats)
    return min(best.values()) * prefixes / chunk


def exact_rows(length: int, compare_length: int) -> dict:
    model = char_model(4)
    hand = HandWritten(model)
    # untimed warm-up: its 4^5 prefixes reach every batch size the timed run steps (chunks of at most
    # 1,024), so seqkit's choice of kernel for each is measured here, not in the timed run
    seqkit_decode(model, "exact", 1, min(length, 6))
    begin = time.perf_counter()
    result = seqkit_decode(model, "exact", 1, length)[0]
    seconds = time.perf_counter() - begin
    # At a length the naive way can afford: same answer, and how much sharing prefixes saves.
    begin = time.perf_counter()
    small = seqkit_decode(model, "exact", 1, compare_length)[0]
    small_seconds = time.perf_counter() - begin
    begin = time.perf_counter()
    argmax, marginals = score_every_sequence(hand, 4, compare_length)
    naive_seconds = time.perf_counter() - begin
    agree = (argmax == small.hypotheses[0].tokens
             and torch.allclose(marginals, small.extras["marginals"], rtol=0, atol=1e-4))
    floor = matmul_floor(model, result.extras["prefixes"])
    return dict(length=length, seconds=seconds, floor=floor, prefixes=result.extras["prefixes"],
                kernel=step_kernel(model, 1024),
                sequences=result.extras["sequences"], mass=result.extras["mass"],
                compare_length=compare_length, small_seconds=small_seconds,
                naive_seconds=naive_seconds, agree=agree)


def render(rows, length, linear, exact, same_text) -> str:
    from rich.console import Console
    from rich.table import Table

    names = ["seqkit", "plain step loop", "nn.LSTMCell loop", "nn.LSTM loop"]
    header = ["strategy", "batch", "seqkit kernel", *(f"{n} chars/s" for n in names), "ratio", "target"]
    table = Table(title=f"seqkit decode: {length} characters, 2x{HIDDEN} LSTM char LM, V={VOCAB}")
    for column in header:
        table.add_column(column)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        ok = r["target"] is None or r["ratio"] >= r["target"]
        cells = [r["strategy"], str(r["batch"]), r["kernel"], *(f"{r['rate'][n]:,.0f}" for n in names),
                 f"{r['ratio']:.2f}x", "" if r["target"] is None else
                 f"≥{r['target']:.1f}x" + (" ok" if ok else " MISSED")]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console = Console(width=160)
    console.print(table)
    summary = [
        f"greedy output identical to the nn.LSTMCell loop's (same weights): {'yes' if same_text else 'NO'}",
        f"time for {2 * length} characters / time for {length} (greedy, batch 1): {linear:.2f} "
        f"(target ≤ {LINEAR_TARGET}: {'ok' if linear <= LINEAR_TARGET else 'MISSED'})",
        f"exact, V=4, T={exact['length']}: {exact['sequences']:,} sequences from {exact['prefixes']:,} "
        f"prefixes in {exact['seconds']:.2f} s ({exact['prefixes'] / exact['seconds']:,.0f} prefixes/s, "
        f"mass {exact['mass']:.6f}; steps of 1,024 prefixes by the {exact['kernel']} kernel; target < "
        f"{EXACT_TARGET_S:.0f} s: "
        f"{'ok' if exact['seconds'] < EXACT_TARGET_S else 'MISSED'})",
        f"exact, V=4, T={exact['length']}: its matrix products alone take {exact['floor']:.2f} s on this machine "
        f"and thread count (every weight on 1,024 rows at a time), the floor of any kernel; the search took "
        f"{exact['seconds'] / exact['floor']:.2f}x that"
        + (f" (the {EXACT_TARGET_S:.0f} s target is below this machine's floor)" if exact["floor"] >= EXACT_TARGET_S
           else ""),
        f"exact, V=4, T={exact['compare_length']}: {exact['small_seconds']:.3f} s; scoring every sequence "
        f"on its own with nn.LSTM: {exact['naive_seconds']:.3f} s "
        f"({exact['naive_seconds'] / exact['small_seconds']:.1f}x slower; same argmax and marginals: "
        f"{'yes' if exact['agree'] else 'NO'})",
    ]
    for line in summary:
        console.print(line)
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {line}" for line in summary)


def main(argv=None):
    parser = argument_parser(__doc__, "short lengths, one repeat (smoke run)",
                             "alternating repeats per measurement",
                             "token-by-token decoding at batch 1 is")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    length = 50 if args.quick else 1000
    repeats = args.repeats or (1 if args.quick else 7)
    model = char_model(VOCAB)
    hand = HandWritten(model)
    same_text = same_greedy_text(model, hand, 100 if not args.quick else 20)
    rows = generation_rows(model, hand, (1, 64), length, repeats)
    linear = linearity(model, length, repeats)
    exact = exact_rows(6 if args.quick else 10, 4 if args.quick else 7)
    markdown = render(rows, length, linear, exact, same_text)
    if not args.no_write and not args.quick:
        write_section("decode", f"## Decoding (`python -m benchmarks.decode`)\n\nMachine: {machine()}\n\n"
                                f"Characters/s for {length} characters, best of {repeats} alternating "
                                f"repeats, {args.threads} torch thread(s); ratio = seqkit / the faster "
                                f"torch loop.\n\n{markdown}")


if __name__ == "__main__":
    main()
