"""What linear attention buys: time, memory and FLOP rate of attention versus sequence length n.

The paper's promise is cost: softmax(Q (E K)ᵀ / √d) (F V) touches an n×k map instead of an n×n one
(Wang et al. 2020, Table 3: time and memory saved versus n and k). This module measures that promise on
the machine at hand, against four contestants (`MODELS`):

    naive      full softmax attention with the n×n map built explicitly (attend(fast=False))
    sdpa       full attention through PyTorch's fused scaled_dot_product_attention (`FullSelfAttention`)
    reference  lucidrains' `linformer` 0.2.3 (a dev dependency; skipped with a note when not installed)
    linformer  linformer_edu's `LinformerSelfAttention`

What is measured, for one attention layer or a whole `Linformer` stack, forward only or forward+backward:

    time      median wall time of `repeats` calls after `warmup` calls (CUDA synchronised), and the fastest
    saved     bytes kept alive for backward: tensors saved by autograd (saved-tensor hooks) and tensors a custom
              autograd Function keeps on its context, each storage once, parameters and buffers excluded
    largest   the largest tensor any single operation produced in the forward pass — the n×n map, if built
    peak      memory allocated at the peak of the call: CUDA max_memory_allocated; on CPU PyTorch's MemTracker
              where this torch has it (else None)
    GFLOP/s   matmul FLOPs of the algorithm actually run (`flops`) divided by the median time

`saved` and `largest` are exact and the same on every run: they count tensors, not process memory.
Times are noisy on a shared machine; `spread` = (slowest - fastest) / median says how noisy.

    rows = sweep([Case("linformer", n, k=128) for n in (1024, 2048)])       # list of dicts, one per case
    matmul_gflops(2048)                                                      # the machine's matmul rate
"""
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace

import torch
from einops import rearrange
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from tqdm.auto import tqdm

from .attention import FullSelfAttention, attend
from .linformer import Linformer, LinformerSelfAttention

MODELS = ("naive", "sdpa", "reference", "linformer")
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

class NaiveSelfAttention(FullSelfAttention):
    """`FullSelfAttention` with the n×n map built explicitly: softmax(Q Kᵀ / √d) V, as written.

    Same parameters as its parent, so the two load each other's weights; only the kernel differs.
    """

    def forward(self, x, context=None, mask=None):
        if context is not None or mask is not None:
            raise ValueError("NaiveSelfAttention: a benchmark baseline for self-attention; context and mask "
                             "must be None")
        split = lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads)
        q, k, v = split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x))   # (b, h, n, d)
        out = attend(q, k, v, fast=False)                                        # (b, h, n, d) via (b, h, n, n)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))              # (b, n, dim)


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
    if case.model not in MODELS:
        raise ValueError(f"model: got {case.model!r}, expected one of {', '.join(map(repr, MODELS))}")
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
        return (NaiveSelfAttention if case.model == "naive" else FullSelfAttention)(dim, heads=heads)
    if case.model == "linformer":
        return Linformer(dim, n, case.depth, k=case.k, heads=heads)
    model = Linformer(dim, n, case.depth, k=min(n, 256), heads=heads, attention="full")
    if case.model == "naive":   # the same stack with the explicit kernel in every attention layer
        for attn_block, _ in model.net.layers:
            naive = NaiveSelfAttention(dim, heads=heads)
            naive.load_state_dict(attn_block.fn.state_dict())
            attn_block.fn = naive
    return model


# ----------------------------------------------------------------------------------------------------------------
# FLOPs: 2 per multiply-add, matmuls only (softmax, norms and additions are a few per element and ignored)

def attention_flops(model, *, batch, n, dim, heads, k=None, dim_head=None):
    """Matmul FLOPs of one self-attention layer's forward, for the algorithm `model` runs.

    Full attention maps q, k, v, out over n rows and builds an n×n map. The reference maps k and v over n
    rows, then projects them along the sequence. linformer_edu projects the *inputs* along the sequence first
    — (Eᵀ X) W = Eᵀ (X W) — so its key and value maps run on k rows: fewer FLOPs for the same numbers.
    """
    dim_head = dim_head or dim // heads
    inner = heads * dim_head
    linear = lambda rows: 2 * batch * rows * dim * inner                       # one (rows, dim) @ (dim, inner)
    attention = lambda m: 2 * (2 * batch * heads * n * m * dim_head)          # q kᵀ and p v over m keys
    if model in ("naive", "sdpa"):
        return 4 * linear(n) + attention(n)
    if model == "reference":
        return 4 * linear(n) + 2 * (2 * batch * k * n * inner) + attention(k)   # keys, values projected to k
    if model == "linformer":
        return 2 * linear(n) + 2 * (2 * batch * k * n * dim) + 2 * linear(k) + attention(k)
    raise ValueError(f"model: got {model!r}, expected one of {', '.join(map(repr, MODELS))}")


class _FlopCount(TorchDispatchMode):
    """Adds up the FLOPs of every operation that has a formula in PyTorch's flop counter (matmuls, attention)."""

    def __init__(self):
        super().__init__()
        from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count, shape_wrapper
        # PyTorch has formulas for the fused attention kernels of CUDA, not for the CPU one: add them
        forward = lambda q, k, v, *args, out_shape=None, **kwargs: sdpa_flop_count(q, k, v)
        backward = lambda dout, q, k, v, *args, out_shape=None, **kwargs: sdpa_backward_flop_count(dout, q, k, v)
        aten = torch.ops.aten
        self.formulas = {**flop_registry,
                         aten._scaled_dot_product_flash_attention_for_cpu: shape_wrapper(forward),
                         aten._scaled_dot_product_flash_attention_for_cpu_backward: shape_wrapper(backward)}
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        formula = self.formulas.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **(kwargs or {}), out_val=out)
        return out


def count_flops(fn):
    """Matmul FLOPs of everything fn() runs, forward and backward, with PyTorch's per-operation formulas.

    The fused attention kernel's backward recomputes the scores: it counts 2.5× its forward, not 2×.
    """
    with _FlopCount() as counter:
        fn()
    return counter.total


def flops(case):
    """Matmul FLOPs of a case: forward, or ×3 with backward (each matmul's two input gradients)."""
    check_case(case)
    per_layer = attention_flops(case.model, batch=case.batch, n=case.n, dim=case.dim, heads=case.heads, k=case.k)
    if case.scope == "model":   # plus the feed-forward layer: dim -> 4·dim -> dim
        per_layer = case.depth * (per_layer + 2 * (2 * case.batch * case.n * case.dim * 4 * case.dim))
    return per_layer * (3 if case.backward else 1)


# ----------------------------------------------------------------------------------------------------------------
# Time

@dataclass
class Timing:
    """Seconds per call: median, fastest, spread = (slowest - fastest) / median, and cpu_share.

    cpu_share = CPU time this process got / (wall time × torch threads): about 1 when the machine is ours,
    lower when other programs take cores from it (then every time is inflated). None on a GPU (CUDA, MPS).
    """
    median: float
    best: float
    spread: float
    cpu_share: float
    times: list


def _sync(device):
    """Wait for the GPU's queued work, so the clock measures it (CPU work is done when the call returns)."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


def timeit(fn, *, repeats=5, warmup=1, device="cpu"):
    """Time fn(): `warmup` untimed calls (allocations, kernel choice, caches), then `repeats` timed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times, cpu = [], time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    share = (time.process_time() - cpu) / (sum(times) * torch.get_num_threads())
    return Timing(median, min(times), (max(times) - min(times)) / median,
                  share if torch.device(device).type == "cpu" else None, times)   # GPU time is not CPU time


def contended(timing, max_spread=0.25, min_share=0.85):
    """True when a timing looks disturbed: noisy repeats, or the process got too little of the CPU."""
    return timing.spread > max_spread or (timing.cpu_share is not None and timing.cpu_share < min_share)


def step(module, x, backward):
    """The function a case times: an inference forward, or forward + backward (gradients cleared first)."""
    params = list(module.parameters())

    def forward():
        with torch.no_grad():
            return module(x)

    def forward_backward():
        for p in params + [x]:
            p.grad = None
        out = module(x)
        out.sum().backward()
        return out

    return forward_backward if backward else forward


def matmul_gflops(size=2048, *, repeats=5, device="cpu", dtype=torch.float32):
    """The machine's large-matmul rate, GFLOP/s: a (size, size) @ (size, size) product, 2·size³ FLOPs.

    A ceiling, so the fastest of the repeats counts.
    """
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    timing = timeit(lambda: a @ b, repeats=repeats, warmup=2, device=device)
    return 2 * size ** 3 / timing.best / 1e9


# ----------------------------------------------------------------------------------------------------------------
# Memory

def _storage(t):
    s = t.untyped_storage()
    return (t.device, s.data_ptr()), s.nbytes()


def _state(module):
    """The storages of a module's parameters and buffers: model state, not activations."""
    if module is None:
        return set()
    return {_storage(t)[0] for t in [*module.parameters(), *module.buffers()]}


def _tensors(value):
    """Tensors in a value that may be a tensor or a (nested) list/tuple of them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def saved_bytes(fn, module=None):
    """Bytes kept alive for backward by the graph that fn() builds (fn returns its output).

    Counts what autograd saves (saved-tensor hooks) and the tensors a custom autograd Function keeps on its
    context, each storage once; parameters (found in the graph) and `module`'s parameters and buffers are
    model state, not activations, and are left out. Deterministic: it counts tensors, not process memory.
    """
    saved = {}

    def pack(t):
        key, nbytes = _storage(t)
        saved[key] = nbytes
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    state = _state(module)
    seen, todo = set(), [t.grad_fn for t in _tensors(out) if t.grad_fn is not None]
    while todo:   # walk the graph: parameters sit on AccumulateGrad nodes, custom contexts on Function nodes
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if isinstance(getattr(node, "variable", None), torch.nn.Parameter):
            state.add(_storage(node.variable)[0])
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            for value in vars(node).values():
                for t in _tensors(value):
                    key, nbytes = _storage(t)
                    saved[key] = nbytes
        todo.extend(next_node for next_node, _ in node.next_functions)
    return sum(nbytes for key, nbytes in saved.items() if key not in state and key[1] != 0)


class _LargestOutput(TorchDispatchMode):
    """Sees every operation's outputs and remembers the largest storage any of them used."""

    def __init__(self, exclude):
        super().__init__()
        self.largest, self.exclude = 0, exclude

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                key, nbytes = _storage(t)
                if key not in self.exclude:   # a view of a weight (W.t()) is no intermediate
                    self.largest = max(self.largest, nbytes)
        return out


def largest_intermediate(fn, module=None):
    """Bytes of the largest tensor any single operation inside fn() produced — the n×n map, if one is built.
    Views of `module`'s parameters and buffers do not count."""
    with _LargestOutput(_state(module)) as mode:
        fn()
    return mode.largest


def peak_bytes(fn, device="cpu"):
    """Memory allocated at the peak of fn(), beyond what was allocated before, parameters excluded.

    CUDA: torch.cuda.max_memory_allocated. CPU: PyTorch's MemTracker (torch.distributed._tools), which
    follows every tensor allocation; None where this torch lacks it or the tracker cannot follow fn.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device) - before
    try:
        from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType
    except Exception:   # not built with distributed, or an older torch
        return None
    tracker = MemTracker()
    try:
        with tracker:
            fn()
    except Exception:   # the tracker cannot follow everything (e.g. a Function running layers under no_grad):
        fn()            # run it untracked, so a genuine error still surfaces, and report no number
        return None
    peak = tracker.get_tracker_snapshot("peak").get(torch.device(device), {})
    return peak.get("Total", 0) - peak.get(_MemRefType.PARAM, 0) - peak.get(_MemRefType.BUFFER, 0)


# ----------------------------------------------------------------------------------------------------------------
# Measuring cases

def measure(case, *, device="cpu", repeats=5, warmup=1, memory=True, slow_s=1.0, retries=3):
    """Time (and, with memory=True, memory) of one case; returns one row (a dict).

    A case whose first call takes longer than `slow_s` seconds is timed over 3 repeats instead of `repeats`.
    A timing that looks disturbed by other programs (`contended`) is repeated, up to `retries` times, and the
    fastest median kept (contention only ever adds time); `attempts` and `cpu_share` in the row tell.
    """
    module = build(case).to(device)
    x = torch.randn(case.batch, case.n, case.dim, device=device, requires_grad=case.backward)
    fn = step(module, x, case.backward)
    first = timeit(fn, repeats=1, warmup=0, device=device).median
    timing, attempts = None, 0
    while attempts <= retries and (timing is None or contended(timing)):
        attempt = timeit(fn, repeats=min(repeats, 3) if first > slow_s else repeats, warmup=max(warmup - 1, 0),
                         device=device)
        timing = attempt if timing is None or attempt.median < timing.median else timing
        attempts += 1
    row = {**asdict(case), "pass": "fwd+bwd" if case.backward else "fwd", "device": str(device),
           "median_ms": 1e3 * timing.median, "best_ms": 1e3 * timing.best, "spread": timing.spread,
           "cpu_share": timing.cpu_share, "attempts": attempts,
           "gflops": flops(case) / timing.median / 1e9}
    if case.model == "linformer":   # the same work counted as the reference algorithm would do it
        row["gflops_reference_equivalent"] = flops(replace(case, model="reference")) / timing.median / 1e9
    if memory:
        for p in module.parameters():
            p.grad = None
        with _LargestOutput(_state(module)) as largest:   # one forward pass gives both counts
            if case.backward:
                row["saved_MiB"] = saved_bytes(lambda: module(x), module) / MiB
            else:
                step(module, x, backward=False)()
        row["largest_MiB"] = largest.largest / MiB
        peak = peak_bytes(fn, device)
        row["peak_MiB"] = None if peak is None else peak / MiB
    return row


def sweep(cases, *, device="cpu", repeats=5, warmup=1, memory=True, progress=True):
    """Measure each case (skipping reference cases when the reference is not installed); a list of rows."""
    cases = [c for c in cases if c.model != "reference" or reference_available()]
    return [measure(c, device=device, repeats=repeats, warmup=warmup, memory=memory)
            for c in tqdm(cases, desc="benchmark", disable=not progress, leave=False)]


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


# ----------------------------------------------------------------------------------------------------------------
# The machine

def machine():
    """What the numbers were measured on: CPU model, cores, threads, torch, and the GPU if one is used."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        pass
    info = {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def fmt(value, digits=3):
    """A number for a table: None as '—', floats with `digits` significant figures."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)
