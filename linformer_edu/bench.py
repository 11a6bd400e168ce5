"""What linear attention buys: a contest of four attention algorithms versus sequence length n.

The paper's promise is cost: softmax(Q (E K)ᵀ / √d) (F V) touches an n×k map instead of an n×n one
(Wang et al. 2020, Table 3: time and memory saved versus n and k). This module measures that promise on
the machine at hand, against four contestants (`MODELS`):

    naive      full softmax attention with the n×n map built explicitly (`FullSelfAttention(..., fast=False)`)
    sdpa       full attention through PyTorch's fused scaled_dot_product_attention (`FullSelfAttention`)
    reference  lucidrains' `linformer` 0.2.3 (a dev dependency; skipped with a note when not installed)
    linformer  linformer_edu's `LinformerSelfAttention`

A `Case` is one layer or a whole `Linformer` stack, forward only or forward+backward; `measure` gives its row:
median and fastest time, GFLOP/s (matmul FLOPs of the algorithm actually run, `flops`, over the median time),
and the memory the call keeps for backward (saved), the largest tensor it builds and its peak allocation. The
instruments are those of `linformer_edu.measure`, re-exported here (`bench.timeit`, `bench.saved_bytes`, …).
`peak_rss` and `rss_versus_depth` measure a whole process instead, each in a fresh one.

    rows = sweep([Case("linformer", n, k=128) for n in (1024, 2048)])       # list of dicts, one per case
    matmul_gflops(2048)                                                      # the machine's matmul rate

On a machine that other jobs share, time the work rather than the waiting: one torch thread and its CPU time
(`torch.set_num_threads(1)`, clock="thread"), and `interleaved_sweep`, which times every case once per round so
that a load that drifts during the sweep slows all cases alike.
"""
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, replace

import torch
from tqdm.auto import tqdm

from ._checks import check_choice
from .attention import FullSelfAttention
from .linformer import Linformer, LinformerSelfAttention
from .measure import (MODELS, Timing, attention_flops, contended, count_flops, interleaved,  # noqa: F401
                      largest_intermediate, matmul_gflops, peak_bytes, saved_and_largest, saved_bytes, step, timeit)

MiB = 2 ** 20


def reference_available():
    """True when lucidrains' `linformer` package (the reference) can be imported."""
    try:
        import linformer  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# The contestants

def NaiveSelfAttention(dim, heads=8, dim_head=None, causal=False, dropout=0.):
    """`FullSelfAttention` with the n×n map built explicitly, softmax(Q Kᵀ / √d) V as written: its fast=False.

    Same parameters as the fused one, so the two load each other's weights; only the kernel differs.
    """
    return FullSelfAttention(dim, heads, dim_head, causal, dropout, fast=False)


@dataclass(frozen=True)
class Case:
    """One measurement: which model, at which size, doing what."""
    model: str              # one of MODELS
    n: int                  # sequence length
    k: int = None           # the Linformer's projected length (ignored by full attention)
    scope: str = "layer"    # 'layer': one attention layer; 'model': a Linformer stack of `depth` layers
    backward: bool = False  # False: inference forward (no graph); True: forward + backward
    batch: int = 1
    dim: int = 256
    heads: int = 4
    depth: int = 2          # layers, when scope='model'


def check_case(case):
    check_choice("model", case.model, MODELS)
    if case.scope not in ("layer", "model"):
        raise ValueError(f"scope: got {case.scope!r}, expected 'layer' or 'model'")
    if case.model in ("reference", "linformer") and case.k is None:
        raise ValueError(f"k: model={case.model!r} needs the projected length k, got None")


def build(case):
    """The module a case measures, seeded, on the CPU. Full attention ignores k."""
    check_case(case)
    torch.manual_seed(0)
    dim, n, heads = case.dim, case.n, case.heads
    if case.model == "reference":
        import linformer
        if case.scope == "layer":
            return linformer.LinformerSelfAttention(dim, n, k=case.k, heads=heads)
        return linformer.Linformer(dim, n, case.depth, k=case.k, heads=heads)
    if case.scope == "layer":
        if case.model == "linformer":
            return LinformerSelfAttention(dim, n, k=case.k, heads=heads)
        return FullSelfAttention(dim, heads=heads, fast=case.model == "sdpa")
    if case.model == "linformer":
        return Linformer(dim, n, case.depth, k=case.k, heads=heads)
    model = Linformer(dim, n, case.depth, k=min(n, 256), heads=heads, attention="full")
    if case.model == "naive":   # the same stack with the explicit kernel in every attention layer
        for attn_block, _ in model.net.layers:
            attn_block.fn.fast = False
    return model


# ----------------------------------------------------------------------------------------------------------------
# FLOPs of a case, from the per-layer formula

def flops(case):
    """Matmul FLOPs of a case: forward, or ×3 with backward (each matmul's two input gradients)."""
    check_case(case)
    per_layer = attention_flops(case.model, batch=case.batch, n=case.n, dim=case.dim, heads=case.heads, k=case.k)
    if case.scope == "model":   # plus the feed-forward layer: dim -> 4·dim -> dim
        per_layer = case.depth * (per_layer + 2 * (2 * case.batch * case.n * case.dim * 4 * case.dim))
    return per_layer * (3 if case.backward else 1)


# ----------------------------------------------------------------------------------------------------------------
# Measuring cases

def measure(case, *, device="cpu", repeats=5, warmup=1, memory=True, slow_s=1.0, retries=3, clock="wall"):
    """Time (and, with memory=True, memory) of one case; returns one row (a dict). clock: as in `timeit`.

    A case whose first call takes longer than `slow_s` seconds is timed over 3 repeats instead of `repeats`.
    A timing that looks disturbed by other programs (`contended`) is repeated, up to `retries` times, and the
    fastest median kept (contention only ever adds time); `attempts` and `cpu_share` in the row tell.
    """
    module = build(case).to(device)
    x = torch.randn(case.batch, case.n, case.dim, device=device, requires_grad=case.backward)
    fn = step(module, x, case.backward)
    first = timeit(fn, repeats=1, warmup=0, device=device, clock=clock).median
    timing, attempts = None, 0
    while attempts <= retries and (timing is None or contended(timing)):
        attempt = timeit(fn, repeats=min(repeats, 3) if first > slow_s else repeats, warmup=max(warmup - 1, 0),
                         device=device, clock=clock)
        timing = attempt if timing is None or attempt.median < timing.median else timing
        attempts += 1
    row = {**asdict(case), "pass": "fwd+bwd" if case.backward else "fwd", "device": str(device),
           "median_ms": 1e3 * timing.median, "best_ms": 1e3 * timing.best, "spread": timing.spread,
           "cpu_share": timing.cpu_share, "attempts": attempts, "clock": clock,
           "gflops": flops(case) / timing.median / 1e9}
    if case.model == "linformer":   # the same work counted as the reference algorithm would do it
        row["gflops_reference_equivalent"] = flops(replace(case, model="reference")) / timing.median / 1e9
    if memory:
        for p in module.parameters():
            p.grad = None
        forward = (lambda: module(x)) if case.backward else step(module, x, backward=False)
        saved, largest = saved_and_largest(forward, module, saved=case.backward)   # one forward, both counts
        if case.backward:
            row["saved_MiB"] = saved / MiB
        row["largest_MiB"] = largest / MiB
        peak = peak_bytes(fn, device)
        row["peak_MiB"] = None if peak is None else peak / MiB
    return row


def sweep(cases, *, device="cpu", repeats=5, warmup=1, memory=True, progress=True, clock="wall"):
    """Measure each case (skipping reference cases when the reference is not installed); a list of rows."""
    cases = [c for c in cases if c.model != "reference" or reference_available()]
    return [measure(c, device=device, repeats=repeats, warmup=warmup, memory=memory, clock=clock)
            for c in tqdm(cases, desc="benchmark", disable=not progress, leave=False)]


def interleaved_sweep(cases, *, rounds=5, warmup=1, device="cpu", clock="wall", progress=True):
    """Time every case once per round, `rounds` rounds, after `warmup` untimed calls of each; a list of rows.

    Unlike `sweep`, which times each case's repeats back to back, a load that drifts while the sweep runs (another
    job starting or ending on a shared machine) then slows every case alike, so the shape of time against n
    survives; within a case, the median over rounds ignores a few unlucky calls. Rows as `measure`'s, without
    memory: median_ms, best_ms, spread over the rounds, gflops.
    """
    cases = [c for c in cases if c.model != "reference" or reference_available()]
    calls = {}
    for i, case in enumerate(cases):
        module = build(case).to(device)
        x = torch.randn(case.batch, case.n, case.dim, device=device, requires_grad=case.backward)   # (b, n, dim)
        calls[i] = step(module, x, case.backward)
    times = interleaved(calls, rounds=rounds, warmup=warmup, device=device, clock=clock, progress=progress)
    rows = []
    for case, seconds in zip(cases, times.values()):
        median = statistics.median(seconds)
        rows.append({**asdict(case), "pass": "fwd+bwd" if case.backward else "fwd", "device": str(device),
                     "median_ms": 1e3 * median, "best_ms": 1e3 * min(seconds),
                     "spread": (max(seconds) - min(seconds)) / median, "rounds": rounds, "clock": clock,
                     "gflops": flops(case) / median / 1e9})
    return rows


def crossover(rows, k, *, scope="layer", backward=False):
    """The smallest measured n where linformer_edu (at this k) beats SDPA full attention, or None.

    Returns (n_win, n_before): the first winning n and the largest measured n below it (None if it won
    at the smallest n measured), so the crossover lies between them.
    """
    pick = lambda model: {r["n"]: r["median_ms"] for r in rows if r["model"] == model and r["scope"] == scope
                          and r["backward"] == backward and (model != "linformer" or r["k"] == k)}
    ours, sdpa = pick("linformer"), pick("sdpa")
    ns = sorted(set(ours) & set(sdpa))
    for i, n in enumerate(ns):
        if all(ours[m] < sdpa[m] for m in ns[i:]):
            return n, (ns[i - 1] if i else None)
    return None


# ----------------------------------------------------------------------------------------------------------------
# linformer_edu against the reference, on the same weights

def versus_reference(n, *, k=128, dim=256, heads=4, batch=1, backward=True, repeats=7, warmup=2, device="cpu"):
    """Time the reference and linformer_edu on the same weights (load_state_dict), calls interleaved so that
    both see the same machine load. A round in which either looks disturbed (`contended`) is run again (at
    most `repeats` extra rounds). Returns a row: both medians and the speed-up (the median of per-round ratios
    reference / ours); None when the reference is not installed."""
    if not reference_available():
        return None
    case = Case("reference", n, k=k, batch=batch, dim=dim, heads=heads, backward=backward)
    ref = build(case).to(device)
    ours = build(replace(case, model="linformer")).to(device)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(batch, n, dim, device=device, requires_grad=backward)
    fns = {"reference": step(ref, x, backward), "linformer": step(ours, x, backward)}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rounds, redone = [], 0
    while len(rounds) < repeats:
        timings = {name: timeit(fn, repeats=1, warmup=0, device=device) for name, fn in fns.items()}
        if any(contended(t) for t in timings.values()) and redone < repeats:
            redone += 1
            continue
        rounds.append({name: t.median for name, t in timings.items()})
    median = {name: statistics.median(r[name] for r in rounds) for name in fns}
    ours_flops, ref_flops = flops(replace(case, model="linformer")), flops(case)
    return {"n": n, "k": k, "dim": dim, "heads": heads, "batch": batch, "pass": "fwd+bwd" if backward else "fwd",
            "reference_ms": 1e3 * median["reference"], "linformer_ms": 1e3 * median["linformer"],
            "speedup": statistics.median(r["reference"] / r["linformer"] for r in rounds),
            "rounds": len(rounds), "rounds_redone": redone,
            "linformer_gflops": ours_flops / median["linformer"] / 1e9,
            "linformer_gflops_reference_equivalent": ref_flops / median["linformer"] / 1e9,
            "reference_gflops": ref_flops / median["reference"] / 1e9}


# ----------------------------------------------------------------------------------------------------------------
# Peak process memory versus depth, each measurement in a fresh process

def _memory_status(key):
    """A line of /proc/self/status in MB (Linux), e.g. VmRSS (resident now) or VmHWM (peak resident)."""
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
    return kb * 1024 / 1e6


def _rss_child(impl, reversible, depth, dim, n, batch, k, heads):
    """Run in a subprocess: one forward+backward of a Linformer stack; print peak RSS (MB) as JSON.

    On Linux the peak is reset after importing torch and building the model (importing alone can peak higher
    than a small model's training step), so the peak is that of the step, on top of the model's weights.
    """
    torch.manual_seed(0)
    if impl == "reference":
        import linformer
        model = linformer.Linformer(dim, n, depth, k=k, heads=heads, reversible=reversible)
    else:
        model = Linformer(dim, n, depth, k=k, heads=heads, reversible=reversible)
    x = torch.randn(batch, n, dim, requires_grad=True)   # the reference's reversible stack needs it
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                 # reset the peak-RSS mark to the current RSS
        before, peak = _memory_status("VmRSS"), lambda: _memory_status("VmHWM")
    except OSError:                                      # not Linux: the process's peak since it started
        import resource                                  # Unix only
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
        before, peak = None, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6
    model(x).sum().backward()
    print(json.dumps({"before_MB": before, "peak_MB": peak()}))


def peak_rss(impl, *, reversible, depth, dim=256, n=1024, batch=8, k=128, heads=4, fixed_mmap=False):
    """Peak resident memory (MB) of a fresh process running one forward+backward of a stack: a dict with
    peak_MB and before_MB (resident before the step, with the model built; None where it cannot be read).

    fixed_mmap=True sets glibc's MALLOC_MMAP_THRESHOLD_ (Linux), so every large tensor gets its own mapping that
    is returned to the system when freed. By default glibc raises that threshold after the first large free and
    serves later large tensors from its heap, where freed memory often stays resident: process memory then
    grows with the number of allocations, not only with the tensors alive.
    """
    args = (impl, reversible, depth, dim, n, batch, k, heads)
    code = f"from linformer_edu.bench import _rss_child; _rss_child{args!r}"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # importable without installing
    env = {**os.environ, **({"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)} if fixed_mmap else {})}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                            env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def rss_versus_depth(depths=(2, 8), *, impls=("linformer", "reference"), dim=256, n=1024, batch=8, k=128,
                     heads=4, allocators=("default",), progress=True):
    """Peak RSS of each stack (ours/reference × reversible/sequential) at each depth, and MB per extra layer.

    allocators: 'default' (glibc as it comes) and/or 'fixed-mmap' (see `peak_rss`; Linux only).
    """
    impls = [i for i in impls if i != "reference" or reference_available()]
    combos = [(alloc, impl, rev) for alloc in allocators for impl in impls for rev in (True, False)]
    rows = []
    for alloc, impl, rev in tqdm(combos, desc="peak RSS", disable=not progress, leave=False):
        peaks = {d: peak_rss(impl, reversible=rev, depth=d, dim=dim, n=n, batch=batch, k=k, heads=heads,
                             fixed_mmap=alloc == "fixed-mmap")["peak_MB"] for d in depths}
        lo, hi = min(depths), max(depths)
        rows.append({"allocator": alloc, "impl": impl, "stack": "reversible" if rev else "sequential", "dim": dim,
                     "n": n, "batch": batch, "k": k, **{f"peak_MB_depth{d}": peaks[d] for d in depths},
                     "MB_per_extra_layer": (peaks[hi] - peaks[lo]) / (hi - lo)})
    return rows
