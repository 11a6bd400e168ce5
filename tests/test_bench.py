"""The benchmark suite: FLOP counts against PyTorch's counter, exact memory counters, the runner's output.

No timed asserts: times are reported by `benchmarks/run.py`, never tested.
"""
import csv
import json
import pathlib
import subprocess
import sys
import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from linformer_edu import FullSelfAttention, LinformerSelfAttention, bench
from linformer_edu.bench import Case

ROOT = pathlib.Path(__file__).resolve().parent.parent


def counted_flops(module, x, backward):
    """FLOPs PyTorch's own counter sees (matmuls; it has no formula for CPU's fused SDPA kernel)."""
    with FlopCounterMode(display=False) as counter:
        out = module(x)
        if backward:
            out.sum().backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("scope", ["layer", "model"])
@pytest.mark.parametrize("model", ["naive", "reference", "linformer"])
def test_flop_formula_matches_pytorch_flop_counter(model, scope, backward):
    if model == "reference":
        pytest.importorskip("linformer")
    case = Case(model, 96, k=24, scope=scope, backward=backward, batch=2, dim=64, heads=4)
    module = bench.build(case)
    if model == "linformer":   # dropout on: the explicit attention path, whose matmuls the counter sees
        for layer in module.modules():
            if isinstance(layer, LinformerSelfAttention):
                layer.dropout.p = 0.1
    x = torch.randn(2, 96, 64, requires_grad=backward)
    assert bench.flops(case) == counted_flops(module.train(), x, backward)


@pytest.mark.parametrize("model", ["sdpa", "linformer"])
def test_the_fused_kernels_flops_are_counted_as_the_formula_says(model):
    case = Case(model, 96, k=24, batch=2, dim=64, heads=4)
    module = bench.build(case)
    x = torch.randn(2, 96, 64)
    with torch.no_grad():
        assert bench.count_flops(lambda: module(x)) == bench.flops(case)


def test_linformer_edu_does_fewer_flops_than_the_reference_for_the_same_layer():
    kw = dict(batch=1, n=4096, dim=256, heads=4, k=128)
    ours, ref = bench.attention_flops("linformer", **kw), bench.attention_flops("reference", **kw)
    # keys and values mapped on k rows instead of n (the sequence projections cost the same when dim = h·d)
    assert ref - ours == 2 * (2 * (4096 - 128) * 256 * 256)
    assert bench.attention_flops("sdpa", **kw) == bench.attention_flops("naive", **kw)


def test_naive_attention_gives_the_fused_kernels_numbers():
    torch.manual_seed(0)
    fused = FullSelfAttention(32, heads=4)
    naive = bench.NaiveSelfAttention(32, heads=4)
    naive.load_state_dict(fused.state_dict())
    x, context = torch.randn(2, 10, 32), torch.randn(2, 7, 32)
    mask = torch.rand(2, 7) > 0.3
    mask[:, 0] = True                                   # every query keeps at least one key
    torch.testing.assert_close(naive(x), fused(x))
    torch.testing.assert_close(naive(x, context=context, mask=mask), fused(x, context=context, mask=mask))
    assert not naive.fast and fused.fast                # FullSelfAttention(..., fast=False): the explicit n×n map


def test_saved_bytes_counts_each_storage_once_and_skips_parameters():
    w = torch.nn.Parameter(torch.randn(100))
    x = torch.randn(100, requires_grad=True)

    def fn():
        y = x.exp()              # saves its result y (400 bytes)
        return (y * w).sum()     # saves y again (same storage) and w (a parameter)

    assert bench.saved_bytes(fn) == 400


def test_saved_bytes_sees_tensors_kept_on_a_custom_function_context():
    class KeepsExtra(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.extra = [torch.zeros(50)]       # not saved through save_for_backward
            return x * 2

        @staticmethod
        def backward(ctx, dy):
            return dy * 2

    x = torch.randn(10, requires_grad=True)
    assert bench.saved_bytes(lambda: KeepsExtra.apply(x)) == 50 * 4


def test_saved_bytes_leaves_out_a_modules_buffers():
    layer = LinformerSelfAttention(32, 64, k=8, heads=4, projection="random", sharing="kv")   # E: a buffer
    x = torch.randn(1, 64, 32, requires_grad=True)
    kept = bench.saved_bytes(lambda: layer(x), layer)
    assert kept == bench.saved_bytes(lambda: layer(x)) - 64 * 8 * 4   # Eᵀ X saves E


def test_full_attention_memory_is_quadratic_only_when_the_map_is_built():
    saved, largest = {}, {}
    for model in ("naive", "sdpa", "linformer"):
        for n in (128, 256):
            case = Case(model, n, k=32, dim=64, heads=4, backward=True)
            module = bench.build(case)
            x = torch.randn(1, n, 64, requires_grad=True)
            saved[model, n] = bench.saved_bytes(lambda: module(x), module)
            largest[model, n] = bench.largest_intermediate(lambda: module(x), module)
    assert largest["naive", 256] == 4 * 256 * 256 * 4               # the (b, h, n, n) map, float32
    assert largest["sdpa", 256] == largest["linformer", 256] == 256 * 64 * 4   # (b, n, dim): no n×n map
    assert saved["naive", 256] - saved["naive", 128] >= 3 * 4 * 128 * 128 * 4  # grows like n²
    assert saved["linformer", 256] <= 2.1 * saved["linformer", 128]
    assert saved["sdpa", 256] <= 2.1 * saved["sdpa", 128]   # the fused kernel keeps no n×n map either


def test_peak_bytes_reports_the_map_on_cpu():
    pytest.importorskip("torch.distributed._tools.mem_tracker")
    module = bench.build(Case("naive", 256, dim=64, heads=4))
    x = torch.randn(1, 256, 64)
    with torch.no_grad():
        peak = bench.peak_bytes(lambda: module(x))
    assert peak >= 4 * 256 * 256 * 4


def test_crossover_finds_the_first_n_from_which_the_linformer_wins():
    row = lambda model, n, ms, k=None: dict(model=model, n=n, k=k, scope="layer", backward=False, median_ms=ms)
    rows = [row("sdpa", 256, 1), row("sdpa", 512, 4), row("sdpa", 1024, 16), row("sdpa", 2048, 64),
            row("linformer", 256, 3, 64), row("linformer", 512, 3.5, 64), row("linformer", 1024, 20, 64),
            row("linformer", 2048, 10, 64)]
    assert bench.crossover(rows, 64) == (2048, 1024)   # a win at 512 that does not last is no crossover
    assert bench.crossover(rows, 128) is None


@pytest.mark.parametrize("bad, message", [
    (Case("bogus", 64), "model: got 'bogus', expected one of 'naive', 'sdpa', 'reference', 'linformer'"),
    (Case("linformer", 64), "k: model='linformer' needs the projected length k, got None"),
    (Case("sdpa", 64, scope="stack"), "scope: got 'stack', expected 'layer' or 'model'"),
])
def test_bad_cases_are_named(bad, message):
    with pytest.raises(ValueError) as error:
        bench.build(bad)
    assert str(error.value) == message


def test_versus_reference_uses_the_same_weights(monkeypatch):
    pytest.importorskip("linformer")
    timed = []                                         # (module, input) of each function versus_reference times
    real_step, real_build = bench.step, bench.build

    def build_differently(case):                       # both are seeded alike: make ours differ before loading
        module = real_build(case)
        if case.model == "linformer":
            with torch.no_grad():
                for p in module.parameters():
                    p.add_(1.0)
        return module

    monkeypatch.setattr(bench, "build", build_differently)
    monkeypatch.setattr(bench, "step", lambda module, x, backward: timed.append((module, x)) or
                        real_step(module, x, backward))
    row = bench.versus_reference(64, k=16, dim=32, heads=4, repeats=2, warmup=1)
    assert row["n"] == 64 and row["pass"] == "fwd+bwd" and row["rounds"] == 2
    (ref, x), (ours, x_ours) = timed
    assert type(ref).__module__.startswith("linformer.") and type(ours).__module__.startswith("linformer_edu.")
    assert x is x_ours
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))    # same weights, so the same numbers


def test_runner_quick_writes_every_result_file(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--out", str(tmp_path), "--threads", "1",
                           "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Time and memory versus n" in done.stdout and "Targets" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"machine", "matmul_gflops", "sweep", "versus_reference", "reversible_rss", "table3", "targets",
            "explorer", "trainer", "notebooks"} <= results.keys()
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"scope", "model", "k", "n", "pass", "median_ms", "saved_MiB", "largest_MiB", "gflops"} <= rows[0].keys()
    models = {r["model"] for r in rows}
    assert models == set(bench.MODELS) if bench.reference_available() else models == {"naive", "sdpa", "linformer"}
    assert {r["scope"] for r in rows} == {"layer", "model"} and {r["pass"] for r in rows} == {"fwd", "fwd+bwd"}
    assert all(float(r["saved_MiB"]) > 0 for r in rows if r["pass"] == "fwd+bwd")
    assert [r["stack"] for r in results["reversible_rss"]] == ["reversible", "sequential"]
    for name in ("layer_time", "model_time", "layer_memory", "table3", "reversible_rss", "summary.txt"):
        path = tmp_path / (name if "." in name else name + ".png")
        assert path.stat().st_size > 0


def test_a_timing_is_contended_when_noisy_or_starved_of_cpu():
    timing = lambda spread, share: bench.Timing(1.0, 0.9, spread, share, [1.0])
    assert not bench.contended(timing(0.1, 0.97))
    assert bench.contended(timing(0.4, 0.97))      # repeats disagree: something came and went
    assert bench.contended(timing(0.1, 0.6))       # steady, but other programs held a core throughout
    assert not bench.contended(timing(0.1, None))  # CUDA: no CPU share to judge by


def test_timeit_waits_for_an_apple_gpu_and_reports_no_cpu_share_there(monkeypatch):
    # the timed function runs on the CPU; only the synchronisation is faked, so this runs without a Mac
    synced = []
    monkeypatch.setattr(torch.mps, "synchronize", lambda: synced.append("mps"))
    timing = bench.timeit(lambda: None, repeats=3, warmup=1, device="mps")
    assert synced == ["mps"] * 4                     # after the warmup and after each timed call
    assert timing.cpu_share is None                  # GPU time is not CPU time: nothing to judge by
    assert bench.timeit(lambda: sum(range(1000)), repeats=2, device="cpu").cpu_share is not None


def test_the_thread_clock_counts_the_work_of_this_thread_not_the_time_it_waits():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sleep = lambda: time.sleep(0.05)                       # waiting: wall time passes, no CPU time
        assert bench.timeit(sleep, repeats=2, warmup=0).median >= 0.05
        timing = bench.timeit(sleep, repeats=2, warmup=0, clock="thread")
        assert timing.median < 0.01
        assert timing.cpu_share is None                       # nothing to judge: waiting is not on this clock
        busy = lambda: sum(range(200_000))                     # working: the thread clock sees it
        assert bench.timeit(busy, repeats=3, clock="thread").median > 0
        row = bench.measure(bench.Case("linformer", 64, k=16, dim=32, heads=2), repeats=2, memory=False,
                            clock="thread")
        assert row["clock"] == "thread" and row["median_ms"] > 0
    finally:
        torch.set_num_threads(threads)


def test_the_thread_clock_refuses_work_it_cannot_see():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="clock: got 'thread' with 2 torch threads, expected 1"):
            bench.timeit(lambda: None, clock="thread")
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="expected device 'cpu'"):
        bench.timeit(lambda: None, clock="thread", device="cuda")
    with pytest.raises(ValueError, match="clock: got 'cpu', expected one of 'wall', 'thread'"):
        bench.timeit(lambda: None, clock="cpu")


def test_an_interleaved_sweep_times_every_case_once_per_round(monkeypatch):
    calls = []
    real_step = bench.step

    def logged_step(module, x, backward):
        fn = real_step(module, x, backward)
        return lambda: (calls.append(x.shape[1]), fn())[1]
    monkeypatch.setattr(bench, "step", logged_step)
    cases = [bench.Case("linformer", n, k=8, dim=16, heads=2) for n in (16, 32)]
    rows = bench.interleaved_sweep(cases, rounds=3, warmup=1, progress=False)
    assert calls == [16, 32] + [16, 32] * 3              # one warm-up call each, then one call per case per round
    assert [(r["n"], r["rounds"], r["clock"]) for r in rows] == [(16, 3, "wall"), (32, 3, "wall")]
    assert all(0 < r["best_ms"] <= r["median_ms"] for r in rows)
    assert bench.crossover(rows, 8) is None              # rows fit crossover's keys (no SDPA rows here)
    with pytest.raises(ValueError, match="rounds"):
        bench.interleaved_sweep(cases, rounds=0)


def test_interleaved_warms_up_then_takes_turns_and_rotates_on_request():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = bench.interleaved(fns, rounds=3, warmup=1)
    assert calls == list("abc") + list("abc") * 3                      # warm-up, then one call each per round
    assert list(times) == list("abc") and all(len(t) == 3 and min(t) >= 0 for t in times.values())
    calls.clear()
    bench.interleaved(fns, rounds=3, warmup=0, rotate=True)
    assert calls == list("abc") + list("bca") + list("cab")            # who goes first moves each round
    with pytest.raises(ValueError, match="rounds: expected a positive int, got 0"):
        bench.interleaved(fns, rounds=0)
