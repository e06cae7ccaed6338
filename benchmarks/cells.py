"""Training throughput (forward + backward, tokens/s) of every registered cell beside torch baselines.

    python -m benchmarks.cells [--quick] [--repeats N] [--threads N[,N]] [--cells a,b] [--no-write]

Each registered cell runs in a one-layer ``seqkit.Recurrent``; the baselines are what a user
would write by hand: ``nn.RNN`` (tanh), ``nn.LSTM``, ``nn.GRU`` and plain Python loops with the
input projection hoisted out of the loop. Every round times each contender once, a cell right
beside its baseline, plus the matmul peak; figures are medians over rounds, and a ratio is the
median of the per-round ratios, so a busy shared CPU skews both sides of a ratio alike.
FLOP/s count the matrix products (forward 2·G·(I+H) per token for G gate rows, backward twice
that) and are compared with the measured fp32 matrix-multiply peak. The "matmuls-only ratio"
times just the matrix products a cell needs (projection, the per-step recurrent products both
ways, dW and dx), with no elementwise work: the baseline's time over that is the most any kernel
built on torch's GEMMs could reach, so a missed ratio target can be read against it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from benchmarks._report import machine, write_section
from seqkit import Recurrent
from seqkit.nn import kernels
from seqkit.registry import get_registry

SIZES = [(64, 100, 64, 256), (256, 64, 64, 512)]  # (batch, time, input, hidden)
QUICK_SIZES = [(8, 12, 8, 16)]
GATES = {"tanh": 1, "residual": 1, "gated": 2, "gru": 3, "lstm": 4}
# cell -> (baseline it must beat, ratio target)
TARGETS = {"tanh": ("nn.RNN", 1.0), "lstm": ("nn.LSTM", 1.0), "gru": ("nn.GRU", 1.5),
           "residual": ("loop residual", 1 / 1.1), "gated": ("loop gated", 1 / 1.1)}
PEAK_TARGET = 0.5  # every cell at the larger size reaches half the matmul peak


class TorchModule(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU with batch_first, returning (outputs, _) like Recurrent."""

    def __init__(self, cls, input_size, hidden_size):
        super().__init__()
        self.rnn = cls(input_size, hidden_size, batch_first=True)

    def forward(self, x):
        return self.rnn(x)


class HoistedLoop(nn.Module):
    """The loop a user writes: project every input at once, then only the recurrent part per step."""

    def __init__(self, kind, input_size, hidden_size):
        super().__init__()
        self.kind, self.hidden_size = kind, hidden_size
        gates = GATES[kind]
        self.input = nn.Linear(input_size, gates * hidden_size)
        self.recurrent = nn.Linear(hidden_size, gates * hidden_size, bias=kind == "gru")

    def forward(self, x):
        batch = x.shape[0]
        h = x.new_zeros(batch, self.hidden_size)
        c = torch.zeros_like(h)
        outputs = []
        for p in self.input(x.transpose(0, 1)).unbind(0):
            if self.kind == "gru":
                p_r, p_z, p_n = p.chunk(3, 1)
                g_r, g_z, g_n = self.recurrent(h).chunk(3, 1)
                r, z = torch.sigmoid(p_r + g_r), torch.sigmoid(p_z + g_z)
                n = torch.tanh(p_n + r * g_n)
                h = n + z * (h - n)
            else:
                a = p + self.recurrent(h)
                if self.kind == "tanh":
                    h = torch.tanh(a)
                elif self.kind == "residual":
                    h = h + torch.tanh(a)
                elif self.kind == "gated":
                    candidate, gate = a.chunk(2, 1)
                    lam = torch.sigmoid(gate)
                    h = lam * h + (1 - lam) * torch.tanh(candidate)
                else:  # lstm
                    i, f, g, o = a.chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, 1), h


class MatmulsOnly(nn.Module):
    """Only the matrix products a cell with ``gates`` blocks must do for one forward+backward,
    none of its elementwise work: what a kernel costs at best when built on torch's GEMMs."""

    def __init__(self, gates, input_size, hidden_size):
        super().__init__()
        rows = gates * hidden_size
        self.weight_ih, self.weight_hh = torch.randn(rows, input_size), torch.randn(rows, hidden_size)
        self.bias = torch.randn(rows)

    def train_step(self, x):
        batch, time_steps, _ = x.shape
        x = x.detach().transpose(0, 1)
        p = torch.nn.functional.linear(x, self.weight_ih, self.bias)  # input projection
        h = x.new_zeros(batch, self.weight_hh.shape[1])
        w_t = self.weight_hh.t()
        for t in range(time_steps):  # forward recurrence
            torch.mm(h, w_t, out=p[t])
        for t in range(time_steps):  # backward recurrence: dh_{t-1} += d_pre_t W_hh
            torch.mm(p[t], self.weight_hh, out=h)
        d_pre = p.flatten(0, 1)
        d_pre.t().mm(x.flatten(0, 1))  # dW_ih
        d_pre.mm(self.weight_ih)  # dx
        d_pre.t().mm(d_pre[:, :h.shape[1]])  # dW_hh: (gates*hidden, T*B) x (T*B, hidden)


def contenders(input_size, hidden_size, cells):
    """name -> (module, gate count), each cell directly followed by the baseline it is judged by."""
    torch_modules = {"nn.RNN": nn.RNN, "nn.LSTM": nn.LSTM, "nn.GRU": nn.GRU}
    models = {}
    for cell, (baseline, _) in TARGETS.items():
        if cell not in cells:
            continue
        models[cell] = (Recurrent(cell, input_size, hidden_size), GATES[cell])
        if baseline in torch_modules:
            models[baseline] = (TorchModule(torch_modules[baseline], input_size, hidden_size), GATES[cell])
    for kind in cells:
        gates = GATES[kind]
        models[f"matmuls {kind}"] = (MatmulsOnly(gates, input_size, hidden_size), gates)
        models[f"loop {kind}"] = (HoistedLoop(kind, input_size, hidden_size), gates)
    return models


def train_step(model, x):
    if isinstance(model, MatmulsOnly):
        return model.train_step(x)
    outputs, _ = model(x)
    outputs.sum().backward()


def measure(size, repeats, cells):
    """Seconds per forward+backward of every contender, one list entry per round, and the matmul
    peak measured in the same rounds. A cell and its baseline run back to back (their order
    alternating between rounds), so each round's ratio compares like with like."""
    batch, time_steps, input_size, hidden_size = size
    torch.manual_seed(0)
    x = torch.randn(batch, time_steps, input_size, requires_grad=True)
    models = contenders(input_size, hidden_size, cells)
    times = {name: [] for name in models}
    peaks = []
    ran = {}  # seqkit cell -> the kernel its layer runs ("torch" or "own"), chosen in the warm-up
    for name, (model, _) in models.items():
        before = kernels.choices()
        train_step(model, x)  # warm-up: allocator, kernels, and seqkit's choice of kernel (untimed)
        if isinstance(model, Recurrent):
            ran[name] = "+".join(sorted(set(kernels.new_choices(before)))) or "own"
    names = list(models)
    for round_ in range(repeats):
        order = names if round_ % 2 == 0 else _swap_pairs(names)
        for name in order:
            model = models[name][0]
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            train_step(model, x)
            times[name].append(time.perf_counter() - start)
        peaks.append(matmul_peak())
    gates = {name: g for name, (_, g) in models.items()}
    return times, gates, peaks, ran


def _swap_pairs(names):
    """Cell/baseline pairs in the other order (cell first, then baseline -> baseline first)."""
    swapped = list(names)
    for cell, (baseline, _) in TARGETS.items():
        if cell in swapped and baseline in swapped:
            i, j = swapped.index(cell), swapped.index(baseline)
            swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped


def matmul_peak(n=1024, repeats=3):
    """Best fp32 FLOP/s of a few n×n matrix products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def rows_for(size, times, gates, ran):
    """Median tokens/s and FLOP/s per contender; ratio = median of the per-round paired ratios."""
    batch, time_steps, input_size, hidden_size = size
    tokens = batch * time_steps

    def rate(name):
        seconds = statistics.median(times[name])
        flops = 6 * gates[name] * hidden_size * (input_size + hidden_size) * tokens
        return tokens / seconds, flops / seconds

    rows = []
    for cell, (baseline, target) in TARGETS.items():
        if cell not in times:
            continue
        speed, flops = rate(cell)
        base_speed, base_flops = rate(baseline)
        ratios = [b / c for b, c in zip(times[baseline], times[cell])]
        ratio = statistics.median(ratios)
        # A target inside the per-round ratios' upper quartile is not told apart from noise
        # (lstm runs the very kernel of nn.LSTM, so its rounds scatter around 1.0).
        upper = statistics.quantiles(ratios, n=4)[2] if len(ratios) > 1 else ratio
        # The best a kernel made of torch's matrix products could do against this baseline.
        ceiling = statistics.median(b / m for b, m in zip(times[baseline], times[f"matmuls {cell}"]))
        rows.append(dict(size=size, cell=cell, kernel=ran[cell], speed=speed, flops=flops, baseline=baseline,
                         base_speed=base_speed, base_flops=base_flops, ratio=ratio,
                         target=target, loop=rate(f"loop {cell}")[0], ceiling=ceiling,
                         status="ok" if ratio >= target else "within noise" if upper >= target else "MISSED"))
    return rows


def render(rows, peak, large_size):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"seqkit cells, forward+backward (matmul peak {peak / 1e9:.0f} GFLOP/s)")
    header = ["size (B,T,I,H)", "cell", "kernel", "tok/s", "% peak", "baseline", "tok/s", "% peak",
              "ratio", "target", "matmuls-only ratio", "hoisted loop tok/s"]
    for column in header:
        table.add_column(column)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        r["fraction"], r["base_fraction"] = r["flops"] / peak, r["base_flops"] / peak
        peak_ok = r["size"] != large_size or r["fraction"] >= PEAK_TARGET
        cells = [",".join(map(str, r["size"])), r["cell"], r["kernel"], f"{r['speed'] / 1e3:.0f}k",
                 f"{100 * r['fraction']:.0f}%" + ("" if peak_ok else " (<50%)"), r["baseline"],
                 f"{r['base_speed'] / 1e3:.0f}k", f"{100 * r['base_fraction']:.0f}%",
                 f"{r['ratio']:.2f}x", f"≥{r['target']:.2f}x {r['status']}",
                 f"{r['ceiling']:.2f}x", f"{r['loop'] / 1e3:.0f}k"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=180).print(table)
    missed = missed_targets(rows, large_size)
    for line in missed:
        print(line)
    return "\n".join(lines + [""] + (missed or ["All targets met in this run."]))


def missed_targets(rows, large_size):
    """One line per missed target, with by how much."""
    lines = []
    for r in rows:
        size = ",".join(map(str, r["size"]))
        if r["status"] == "MISSED":
            lines.append(f"- missed: {r['cell']} at ({size}) runs {r['ratio']:.2f}x {r['baseline']}, "
                         f"target {r['target']:.2f}x ({100 * (1 - r['ratio'] / r['target']):.0f}% short); "
                         f"the matrix products alone, with no elementwise work at all, run "
                         f"{r['ceiling']:.2f}x {r['baseline']}")
        if r["size"] == large_size and r["fraction"] < PEAK_TARGET:
            lines.append(f"- missed: {r['cell']} at ({size}) reaches {100 * r['fraction']:.0f}% of the "
                         f"matmul peak, target {100 * PEAK_TARGET:.0f}%")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny size, two repeats (smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per size")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks/")
    parser.add_argument("--threads", default=None,
                        help="torch thread counts to run, e.g. 2 or 1,2 (default: torch's)")
    parser.add_argument("--cells", default=",".join(TARGETS),
                        help="the cells to measure, e.g. gru,lstm (a subset is not written)")
    args = parser.parse_args(argv)
    cells = [c for c in args.cells.split(",") if c in get_registry().names("cell")]
    unknown = set(args.cells.split(",")) - set(TARGETS)
    if unknown:
        parser.error(f"--cells: no benchmark for {', '.join(sorted(unknown))}; choose from {', '.join(TARGETS)}")
    sizes = QUICK_SIZES if args.quick else SIZES
    repeats = args.repeats or (2 if args.quick else 5)
    default_threads = torch.get_num_threads()
    thread_counts = [int(n) for n in args.threads.split(",")] if args.threads else [default_threads]
    parts = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        print(f"{threads} thread(s):")
        rows, peaks = [], []
        for size in sizes:
            times, gates, size_peaks, ran = measure(size, repeats, cells)
            rows += rows_for(size, times, gates, ran)
            peaks += size_peaks
        peak = statistics.median(peaks)
        # A wide spread of the per-round peak means other jobs shared the CPU during the run.
        parts.append(f"### {threads} thread{'s' if threads > 1 else ''}, fp32 matmul peak "
                     f"{peak / 1e9:.0f} GFLOP/s (rounds ranged {min(peaks) / 1e9:.0f}–"
                     f"{max(peaks) / 1e9:.0f})\n\n{render(rows, peak, sizes[-1])}")
    torch.set_num_threads(default_threads)  # machine() reports torch's default
    if not args.no_write and not args.quick and set(cells) == set(TARGETS):
        body = "\n\n".join(parts)
        write_section("cells", f"## Cells (`python -m benchmarks.cells`)\n\nMachine: {machine()}\n\n"
                               f"Forward+backward tokens/s, median of {repeats} rounds; each ratio is the median "
                               f"of per-round ratios (cell and baseline run back to back); the matmul peak is "
                               f"the median of the rounds' best 1024x1024 products. `kernel`: the one seqkit "
                               f"chose by measuring it against the other in the untimed warm-up "
                               f"(seqkit.nn.kernels): `torch` is torch's fused kernel, the one the baseline "
                               f"runs, so its ratio is 1.0 up to noise.\n\n{body}")


if __name__ == "__main__":
    main()
