"""Measuring instruments for attention: matmul FLOPs, wall time, and the memory a call keeps or builds.

Notebooks and the benchmark contest (`linformer_edu.bench`) measure with these; none of them knows a model.

    FLOPs     `attention_flops`: the formula for each algorithm; `count_flops`: what PyTorch actually ran
    time      `timeit`: median time of `repeats` calls after `warmup` calls (CUDA synchronised), and the
              fastest; `contended` says whether other programs disturbed it; `matmul_gflops`: the machine's rate.
              clock="wall" (default) times elapsed seconds; clock="thread" the CPU seconds of one torch thread
              (torch.set_num_threads(1)): the work itself, which other programs on a shared machine barely bend
              `interleaved`: several calls taking turns, round by round, so that a drifting load slows them alike
    saved     `saved_bytes`: bytes kept alive for backward — tensors saved by autograd (saved-tensor hooks) and
              tensors a custom autograd Function keeps on its context, each storage once, parameters and buffers
              excluded
    largest   `largest_intermediate`: the largest tensor any single operation produced — the n×n map, if built
    peak      `peak_bytes`: memory allocated at the peak of the call: CUDA max_memory_allocated; on CPU PyTorch's
              MemTracker where this torch has it (else None)

`saved` and `largest` are exact and the same on every run: they count tensors, not process memory.
Wall times are noisy on a shared machine; `spread` = (slowest - fastest) / median says how noisy.

    timeit(step(layer, x, backward=True)).median            # seconds per training step of one layer
    saved_bytes(lambda: layer(x), layer)                    # bytes the graph keeps for backward
"""
import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from tqdm.auto import tqdm

from ._checks import check_choice, check_clock, check_positive_int

MODELS = ("naive", "sdpa", "reference", "linformer")   # the attention algorithms measured (bench's contestants)


# ----------------------------------------------------------------------------------------------------------------
# FLOPs: 2 per multiply-add, matmuls only (softmax, norms and additions are a few per element and ignored)

def attention_flops(model, *, batch, n, dim, heads, k=None, dim_head=None):
    """Matmul FLOPs of one self-attention layer's forward, for the algorithm `model` (one of MODELS) runs.

    Full attention maps q, k, v, out over n rows and builds an n×n map. The reference maps k and v over n
    rows, then projects them along the sequence. linformer_edu projects the *inputs* along the sequence first
    — (Eᵀ X) W = Eᵀ (X W) — so its key and value maps run on k rows: fewer FLOPs for the same numbers.
    """
    check_choice("model", model, MODELS)
    dim_head = dim_head or dim // heads
    inner = heads * dim_head
    linear = lambda rows: 2 * batch * rows * dim * inner                       # one (rows, dim) @ (dim, inner)
    attention = lambda m: 2 * (2 * batch * heads * n * m * dim_head)          # q kᵀ and p v over m keys
    if model in ("naive", "sdpa"):
        return 4 * linear(n) + attention(n)
    if model == "reference":
        return 4 * linear(n) + 2 * (2 * batch * k * n * inner) + attention(k)   # keys, values projected to k
    return 2 * linear(n) + 2 * (2 * batch * k * n * dim) + 2 * linear(k) + attention(k)   # linformer


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


# ----------------------------------------------------------------------------------------------------------------
# Time

@dataclass
class Timing:
    """Seconds per call: median, fastest, spread = (slowest - fastest) / median, and cpu_share.

    cpu_share = CPU time this process got / (wall time × torch threads): about 1 when the machine is ours,
    lower when other programs take cores from it (then every time is inflated). None on a GPU (CUDA, MPS), and
    with clock="thread" (CPU time is not inflated by waiting for a core).
    """
    median: float
    best: float
    spread: float
    cpu_share: float
    times: list


def synchronize(device):
    """Wait for the GPU's queued work, so the clock measures it (CPU work is done when the call returns)."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}


def timeit(fn, *, repeats=5, warmup=1, device="cpu", clock="wall"):
    """Time fn(): `warmup` untimed calls (allocations, kernel choice, caches), then `repeats` timed ones.

    clock: "wall" (elapsed seconds) or "thread" (CPU seconds of this thread; needs the CPU and one torch thread,
    so that all the work runs on it — then time spent waiting for a core while other programs run is not counted).
    """
    check_clock(clock, device)
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    synchronize(device)
    times, cpu = [], time.process_time()
    for _ in range(repeats):
        start = now()
        fn()
        synchronize(device)
        times.append(now() - start)
    median = statistics.median(times)
    share = (time.process_time() - cpu) / (sum(times) * torch.get_num_threads())
    judged = torch.device(device).type == "cpu" and clock == "wall"   # GPU time and CPU time are not wall time
    return Timing(median, min(times), (max(times) - min(times)) / median, share if judged else None, times)


def interleaved(calls, *, rounds=5, warmup=1, device="cpu", clock="wall", rotate=False, progress=False):
    """Seconds per call of each of `calls` ({name: fn}), taking turns: {name: [seconds, one per round]}.

    `warmup` untimed calls of each first, then `rounds` rounds of one timed call each. Taking turns makes a load
    that drifts (another job starting or ending on a shared machine) slow every contestant alike, so a ratio taken
    within a round, or a median over rounds, keeps its shape. rotate=True changes who goes first each round.
    clock as in `timeit`.
    """
    check_positive_int("rounds", rounds)
    check_clock(clock, device)
    now = CLOCKS[clock]
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    names, times = list(calls), {name: [] for name in calls}
    for i in tqdm(range(rounds), desc="rounds", disable=not progress, leave=False):
        for name in names[i % len(names):] + names[:i % len(names)] if rotate else names:
            synchronize(device)
            start = now()
            calls[name]()
            synchronize(device)
            times[name].append(now() - start)
    return times


def contended(timing, max_spread=0.25, min_share=0.85):
    """True when a timing looks disturbed: noisy repeats, or the process got too little of the CPU."""
    return timing.spread > max_spread or (timing.cpu_share is not None and timing.cpu_share < min_share)


def step(module, x, backward):
    """The function to time: an inference forward, or forward + backward (gradients cleared first)."""
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


def matmul_gflops(size=2048, *, repeats=5, device="cpu", dtype=torch.float32, clock="wall"):
    """The machine's large-matmul rate, GFLOP/s: a (size, size) @ (size, size) product, 2·size³ FLOPs.

    A ceiling, so the fastest of the repeats counts. clock as in `timeit` ("thread": one thread's rate).
    """
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))   # (size, size) each
    timing = timeit(lambda: a @ b, repeats=repeats, warmup=2, device=device, clock=clock)
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


def saved_and_largest(fn, module=None, *, saved=True):
    """(saved_bytes, largest_intermediate) of fn() from a single call; saved is None when saved=False (for an
    fn that builds no graph, e.g. under no_grad)."""
    with _LargestOutput(_state(module)) as mode:
        kept = saved_bytes(fn, module) if saved else None
        if not saved:
            fn()
    return kept, mode.largest


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
