"""Issue 11 §1: is a causal Linformer training step faster than fused causal attention at long n?

    python benchmarks/causal_step.py                    # the full run: n = 128 … 8192, k = 32, 64, 128 (~20 min)
    python benchmarks/causal_step.py --quick --out DIR  # tiny sizes: checks that everything runs (seconds)
    python benchmarks/causal_step.py --ns 1024 4096 --ks 64 --rounds 9
    python benchmarks/causal_step.py --threads 1 --clock cpu   # CPU time of one thread: a busy machine's view
    python benchmarks/causal_step.py --baseline main           # also the causal layer of git ref main, same rounds

One training step = forward + cross-entropy + backward + AdamW of a `LinformerLM(causal=True)` (the causal
Linformer of linformer_edu.causal) against the same `LinformerLM` with attention="full", causal=True (fused
causal `scaled_dot_product_attention`): float32, CPU, dim 128, 4 heads, depth 4, 4096 tokens per step
(batch = 4096 // n; batch 1, n tokens, when n > 4096).

Timing: the two steps alternate (A, B, A, B, …) after a warm-up, and each round gives one ratio
full-attention time / Linformer time; the table shows the median of those per-round ratios and their
spread (lowest … highest). Alternating makes the ratio robust to a machine that other jobs share: both
contestants see the same load, within a round. On a machine that other jobs crowd, threads that wait for
each other inflate times far beyond the work done; --threads 1 --clock cpu then still measures the work.

FLOP limit: the ratio of the FLOPs the two algorithms must do per step (analytic; matmuls of the linear layers,
of the attention and of the memory projections; forward and backward scale alike, so the ratio is the forward
one). Causal attention scores each pair (query, key <= query) once: (n + 1) / 2 keys per query on average,
as a fused kernel that skips the masked blocks does; the causal Linformer scores each query against its
visible window keys and, past the first look_back + 1 chunks, the k memory slots. A ratio can only beat its
limit by running at a higher FLOP rate than the other contestant.

Memory: bytes kept for backward by one forward at batch 1 (`linformer_edu.bench.saved_bytes`), n = 4096 and
8192 when both are measured: linear in n means a ratio near 2.

Writes DIR/causal_step.txt (the table), DIR/causal_step.png (ratio against n for each k, beside the FLOP limit
and issue 11's targets) and DIR/causal_step.json (every per-round time, the settings, the machine);
`--replot DIR` redraws the picture from DIR/causal_step.json without timing anything. The numbers are only as quiet as the machine was: say so when other jobs shared it.
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run from a fresh clone without installing
# OpenMP threads that wait for each other spin by default. With any other busy process on the machine a
# 2-thread step then takes several times its work, and the model with more, smaller operations suffers most
# (measured at n = 1024 beside one other busy process: 6.7 s for the causal Linformer and 5.4 s for SDPA per
# step when spinning, 1.3 s and 1.9 s when waiting passively). Passive waiting, set before torch loads OpenMP,
# keeps the comparison about the algorithms; OMP_WAIT_POLICY=active in the environment restores spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from linformer_edu import LinformerLM  # noqa: E402
from linformer_edu._files import write_atomically  # noqa: E402
from linformer_edu.bench import saved_bytes  # noqa: E402
from linformer_edu.measure import interleaved  # noqa: E402
from linformer_edu.causal import CausalLinformerSelfAttention  # noqa: E402

VOCAB = 65   # tiny Shakespeare's characters


def baseline_layer(ref):
    """CausalLinformerSelfAttention as linformer_edu/causal.py was at git ref `ref` (e.g. main): a class."""
    source = subprocess.run(["git", "show", f"{ref}:linformer_edu/causal.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("linformer_edu._causal_baseline")
    module.__package__ = "linformer_edu"            # its relative imports resolve against today's package
    exec(compile(source, f"{ref}:linformer_edu/causal.py", "exec"), module.__dict__)
    return module.CausalLinformerSelfAttention


def build(kind, n, k, *, dim, heads, depth, seed=0, layer=None):
    """The model of one contestant: 'linformer' (causal Linformer with k) or 'full' (causal SDPA).

    layer: another causal layer class with the same attributes (a baseline), swapped into every layer."""
    torch.manual_seed(seed)
    if kind == "full":
        return LinformerLM(VOCAB, dim, n, depth, heads=heads, attention="full", causal=True)
    model = LinformerLM(VOCAB, dim, n, depth, k=k, heads=heads, causal=True)
    for module in model.modules():
        if layer is not None and isinstance(module, CausalLinformerSelfAttention):
            module.__class__ = layer
    return model


def training_step(model, n, tokens, seed=0):
    """A function that runs one training step (forward, loss, backward, AdamW) on a fixed random batch."""
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randint(0, VOCAB, (max(1, tokens // n), n + 1), generator=generator)   # (b, n + 1)
    inputs, targets = batch[:, :-1], batch[:, 1:]                                          # (b, n) each
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(inputs)                                                             # (b, n, vocab)
        F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1)).backward()
        opt.step()

    return step


def visible_keys(n, k, c, L):
    """Keys each query of the causal Linformer scores, summed over the n queries: window + memory slots."""
    total = 0
    for t in range(n):
        start = max(0, (t // c - L) * c)            # the first position of t's exact window
        total += t + 1 - start + (k if start > 0 else 0)
    return total


def flop_limit(n, k, *, dim, heads, depth, chunk_size=None, look_back=1):
    """FLOPs of a causal full-attention step / FLOPs of a causal Linformer step, per the module docstring."""
    c = k if chunk_size is None else chunk_size
    inner = dim   # heads · dim_head
    linear = 2 * n * (4 * dim * inner + 2 * dim * 4 * dim)        # q, k, v, out; feed-forward dim -> 4 dim -> dim
    full = linear + 2 * 2 * inner * n * (n + 1) // 2               # q kᵀ and p v over the visible pairs
    remembered = max(0, (-(-n // c) - look_back - 1) * c)           # positions that enter some query's memory
    linformer = (linear + 2 * 2 * inner * visible_keys(n, k, c, look_back)
                 + 2 * 2 * remembered * k * inner)                  # E K and F V: each position into k slots
    logits = 2 * n * dim * VOCAB
    return (depth * full + logits) / (depth * linformer + logits)


def kept_for_backward(n, k, *, dim, heads, depth):
    """Bytes of activations kept for backward by one forward at batch 1, per contestant."""
    out = {}
    for kind in ("linformer", "full"):
        model = build(kind, n, k, dim=dim, heads=heads, depth=depth)
        tokens = torch.randint(0, VOCAB, (1, n))
        out[kind] = saved_bytes(lambda: model(tokens), model)
    return out


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def run(ns, ks, *, rounds, dim, heads, depth, tokens, memory_ns, clock="wall", baseline=None,
        progress=print):
    rows = []
    for k in ks:
        for n in ns:
            if k > n:
                continue
            layers = {"linformer": None, "full": None} | ({"baseline": baseline} if baseline else {})
            steps = {name: training_step(build("full" if name == "full" else "linformer", n, k, dim=dim,
                                               heads=heads, depth=depth, layer=layer), n, tokens)
                     for name, layer in layers.items()}
            times = interleaved(steps, rounds=rounds, clock=clock)         # {name: [seconds per round]}
            ratios = [f / lin for f, lin in zip(times["full"], times["linformer"])]
            row = {"n": n, "k": k, "batch": max(1, tokens // n), "ratio": statistics.median(ratios),
                   "ratio_low": min(ratios), "ratio_high": max(ratios),
                   "flop_limit": flop_limit(n, k, dim=dim, heads=heads, depth=depth),
                   "linformer_ms": 1e3 * statistics.median(times["linformer"]),
                   "full_ms": 1e3 * statistics.median(times["full"]), "ratios": ratios, "times": times}
            if baseline:
                base = [f / old for f, old in zip(times["full"], times["baseline"])]
                gain = [old / lin for old, lin in zip(times["baseline"], times["linformer"])]
                row.update(baseline_ratio=statistics.median(base), baseline_ratio_low=min(base),
                           baseline_ratio_high=max(base), gain=statistics.median(gain), gain_low=min(gain),
                           gain_high=max(gain))
            rows.append(row)
            progress(f"n={n:5d} k={k:3d}  ratio {row['ratio']:.2f} ({row['ratio_low']:.2f} … {row['ratio_high']:.2f})"
                     f"  limit {row['flop_limit']:.2f}  linformer {row['linformer_ms']:.0f} ms"
                     f"  full {row['full_ms']:.0f} ms")
    memory = {n: kept_for_backward(n, ks[0], dim=dim, heads=heads, depth=depth) for n in memory_ns}
    return rows, memory


def table(rows, memory, settings):
    lines = [f"Causal training step, full causal SDPA time / causal Linformer time (median of {settings['rounds']} "
             f"interleaved per-round ratios; lowest … highest round); dim {settings['dim']}, "
             f"{settings['heads']} heads, "
             f"depth {settings['depth']}, {settings['tokens']} tokens per step, float32, "
             f"{settings['machine']['torch_threads']} threads (OpenMP wait policy "
             f"{settings['machine']['omp_wait_policy']}), {settings['clock']} time, chunk = k, look_back 1",
             ""]
    base = settings.get("baseline")
    head = "| n | k | batch | ratio | spread | FLOP limit |"
    if base:
        head += f" ratio at {base} | spread | gain over {base} | spread |"
    lines += [head + " Linformer ms | full ms |", "|---" * (head.count("|") + 1) + "|"]
    for r in sorted(rows, key=lambda r: (r["k"] != 64, r["k"], r["n"])):
        line = (f"| {r['n']} | {r['k']} | {r['batch']} | {r['ratio']:.2f} | {r['ratio_low']:.2f} … "
                f"{r['ratio_high']:.2f} | {r['flop_limit']:.2f} |")
        if base:
            line += (f" {r['baseline_ratio']:.2f} | {r['baseline_ratio_low']:.2f} … {r['baseline_ratio_high']:.2f} |"
                     f" {r['gain']:.2f} | {r['gain_low']:.2f} … {r['gain_high']:.2f} |")
        lines.append(line + f" {r['linformer_ms']:.0f} | {r['full_ms']:.0f} |")
    if len(memory) >= 2:
        small, big = sorted(memory)[-2:]
        lines += ["", f"Bytes kept for backward (batch 1, k = {settings['memory_k']}), n = {big} / n = {small}: "
                  + ", ".join(f"{kind} {memory[big][kind] / memory[small][kind]:.2f}"
                              for kind in ("linformer", "full"))]
    return "\n".join(lines) + "\n"


TARGETS = {1024: 1.1, 2048: 1.5, 4096: 2.4}   # issue 11 §1, k = 64: training-step ratio at least this


def plot(rows, path):
    """Ratio (full / Linformer step time) against n, one colour per k: the median with the rounds' spread as a
    bar, the FLOP limit dashed, the k = 64 targets as black marks; 1 (level) as a grey line. Returns the figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, k in enumerate(sorted({r["k"] for r in rows})):
        mine = sorted((r for r in rows if r["k"] == k), key=lambda r: r["n"])
        ns = [r["n"] for r in mine]
        ratio = [r["ratio"] for r in mine]
        spread = [[r["ratio"] - r["ratio_low"] for r in mine], [r["ratio_high"] - r["ratio"] for r in mine]]
        ax.errorbar(ns, ratio, yerr=spread, fmt="o-", color=f"C{i}", capsize=3, label=f"k = {k}")
        ax.plot(ns, [r["flop_limit"] for r in mine], "--", color=f"C{i}", alpha=0.6)
    ax.plot(list(TARGETS), list(TARGETS.values()), "k_", markersize=14, mew=2, label="target (k = 64)")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="sequence length n",
           ylabel="full causal SDPA time / causal Linformer time",
           title="causal training step (dashed: FLOP-ratio limit)")
    ns = sorted({r["n"] for r in rows})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.legend()
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[128, 256, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--ks", type=int, nargs="+", default=[64, 32, 128])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=4096, help="tokens per step: batch = tokens // n")
    parser.add_argument("--memory-ns", type=int, nargs="*", default=[4096, 8192])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: this thread's CPU time, with --threads 1: robust to other jobs on the machine")
    parser.add_argument("--baseline", metavar="GITREF",
                        help="also time the causal layer as it was at this git ref (e.g. main), in the same rounds")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that everything runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "causal_step"))
    parser.add_argument("--replot", metavar="DIR", help="redraw DIR/causal_step.png from DIR/causal_step.json, "
                        "timing nothing")
    args = parser.parse_args(argv)
    if args.replot:
        folder = pathlib.Path(args.replot)
        rows = json.loads((folder / "causal_step.json").read_text())["rows"]
        plot(rows, folder / "causal_step.png")
        return rows, None
    if args.quick:
        args.ns, args.ks, args.rounds, args.dim, args.heads = [32, 64], [16], 2, 32, 2
        args.depth, args.tokens, args.memory_ns, args.threads = 1, 128, [32, 64], 1   # 1: no waits on a busy CPU
    if args.clock == "cpu" and args.threads != 1:
        parser.error(f"--clock cpu measures one thread's CPU time: it needs --threads 1, got --threads {args.threads}")
    torch.set_num_threads(args.threads)
    settings = {key: getattr(args, key) for key in ("rounds", "dim", "heads", "depth", "tokens", "quick", "clock",
                                                    "baseline")}
    settings.update(memory_k=args.ks[0], machine=machine())
    started = time.time()
    rows, memory = run(args.ns, args.ks, rounds=args.rounds, dim=args.dim, heads=args.heads, depth=args.depth,
                       tokens=args.tokens, memory_ns=args.memory_ns,
                       clock="thread" if args.clock == "cpu" else "wall",
                       baseline=baseline_layer(args.baseline) if args.baseline else None)
    settings["seconds"] = time.time() - started
    text = table(rows, memory, settings)
    print(text)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "causal_step.txt", lambda tmp: tmp.write_text(text))
    plot(rows, out / "causal_step.png")
    record = {"settings": settings, "rows": rows, "saved_bytes": {str(n): v for n, v in memory.items()}}
    write_atomically(out / "causal_step.json", lambda tmp: tmp.write_text(json.dumps(record, indent=1)))
    return rows, memory


if __name__ == "__main__":
    main()
