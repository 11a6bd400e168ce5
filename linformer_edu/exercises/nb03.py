"""Exercises for notebook 03, the projection step by step: mean pooling written as a k×n matrix, the cost of one
Linformer head counted in multiply-adds, and the cheap order of the key projection. Each `check_*` takes the learner's function;
each `solution_*` is the worked solution.
"""
import torch
from torch.utils.flop_counter import FlopCounterMode

from ._feedback import Mistake, call, checker, diagnose, expect, expect_close, expect_number, expect_shape


def _inputs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: mean pooling as a k×n matrix

def solution_mean_pooling(n, k):
    """E (k, n) whose row j averages the window of w = n/k positions j·w … (j+1)·w - 1."""
    w = n // k
    E = torch.zeros(k, n)
    for j in range(k):
        E[j, j * w:(j + 1) * w] = 1 / w      # window j: contiguous positions, weights summing to 1
    return E                                 # (k, n)


@checker("Exercise 1 - mean pooling as a matrix")
def check_mean_pooling(mean_pooling):
    """`mean_pooling(n, k)` -> E of shape (k, n): E @ K averages windows of n/k neighbouring keys."""
    for n, k in [(12, 3), (16, 8)]:
        w = n // k
        got = expect_shape(call(mean_pooling, n, k), (k, n), f"your E for n={n}, k={k}")
        want = solution_mean_pooling(n, k)
        diagnose(got, {
            f"each window is summed, not averaged: for n={n}, k={k} each row should hold {w} entries of "
            f"1/{w}, so the row sums to 1": want * w,
            f"the windows are not contiguous: row j must cover positions j·w … (j+1)·w - 1, not every k-th "
            f"position": (torch.arange(n)[None, :] % k == torch.arange(k)[:, None]).float() / w,
            f"each row averages over all n={n} positions: every projected key is then the same mean — use "
            f"windows of n/k={w} positions": torch.full((k, n), 1 / n),
        })
        expect(torch.allclose(got.sum(-1), torch.ones(k), atol=1e-5),
               f"for n={n}, k={k} the rows should each sum to 1 (an average), got sums {got.sum(-1).tolist()}")
        try:
            expect_close(got, want)
        except Mistake as mistake:
            raise Mistake(f"your E for n={n}, k={k}: {mistake}") from None
    return "E @ K now averages n/k neighbouring keys into each projected key."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the cost of one head, in multiply-adds

def solution_linformer_macs(n, k, d):
    """Multiply-adds of one Linformer head's attention, given its q, k, v (n×d each) and E, F (k×n)."""
    project = 2 * k * n * d     # E K and F V: k rows, each a sum over n positions of d-vectors
    scores = n * k * d          # Q (E K)ᵀ: n×k dot products of length d
    weigh = n * k * d           # P̄ (F V): n outputs, each a sum of k d-vectors
    return project + scores + weigh   # 4·n·k·d: linear in n


@checker("Exercise 2 - the cost of a Linformer head")
def check_linformer_macs(linformer_macs):
    """`linformer_macs(n, k, d)`: multiply-adds of E K, F V, Q (E K)ᵀ and P̄ (F V)."""
    for n, k, d in [(4096, 128, 64), (1000, 7, 3), (512, 64, 32)]:
        got = call(linformer_macs, n, k, d)
        case = f"for n={n}, k={k}, d={d}"
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            wrong = {
                2 * n * k * d: f"{case} you counted {got:,}: only the scores and the weighted sum — projecting "
                               f"K and V with E and F costs k·n·d multiply-adds each too",
                3 * n * k * d: f"{case} you counted {got:,}: one projection is missing — both E K and F V "
                               f"cost k·n·d",
                8 * n * k * d: f"{case} you counted {got:,}: that is FLOPs (a multiply and an add each); count "
                               f"multiply-adds",
                2 * n * n * d: f"{case} you counted {got:,} = 2·n²·d: that is full attention's cost, with n "
                               f"keys instead of k",
            }
            expect(got not in wrong, wrong.get(got, ""))
        want = solution_linformer_macs(n, k, d)
        expect_number(got, want, f"your count {case}")
        expect(got == want, f"your count {case} is {got:,}, expected {want:,}: count every multiply-add exactly")
    return "4·n·k·d grows linearly in n; full attention's 2·n²·d grows quadratically."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: project first, then map the features

def solution_projected_keys(x, E, W):
    """E x W for x (b, n, dim), E (k, n), W (dim, d), in the cheap order: (E x) W."""
    pooled = E @ x         # (b, k, dim): k·n·dim multiply-adds
    return pooled @ W      # (b, k, d):   k·dim·d multiply-adds, not n·dim·d


def _flops(fn, *args):
    with FlopCounterMode(display=False) as counter:
        out = call(fn, *args)
    return out, counter.get_total_flops()


@checker("Exercise 3 - the cheap order")
def check_projected_keys(projected_keys):
    """`projected_keys(x, E, W)` -> (b, k, d) with the fewest multiply-adds; the checker counts them."""
    b, n, k, dim, d = 2, 64, 8, 32, 16
    x, E, W = _inputs(b, n, dim, seed=5), _inputs(k, n, seed=6), _inputs(dim, d, seed=7)
    got, flops = _flops(projected_keys, x, E, W)
    if getattr(got, "shape", None) == (b, n, d):
        raise Mistake(f"you returned shape {(b, n, d)}: the features are mapped but the sequence was never "
                      f"projected — multiply by E to go from n={n} positions to k={k} rows")
    got = expect_shape(got, (b, k, d))
    expect_close(got, solution_projected_keys(x, E, W))
    cheap = 2 * b * (k * n * dim + k * dim * d)           # FLOPs = 2 × multiply-adds
    expensive = 2 * b * (n * dim * d + k * n * d)
    expect(flops != expensive, f"right numbers, but in the expensive order E (x W): {flops:,} FLOPs instead of "
                               f"{cheap:,} — project the n rows down to k first, (E x) W, so W meets k rows, not n")
    expect(flops <= cheap, f"right numbers, but {flops:,} FLOPs where (E x) W needs {cheap:,}")
    return f"{flops:,} FLOPs instead of {expensive:,}: W now meets k rows, not n."


__all__ = ["Mistake", "check_linformer_macs", "check_mean_pooling", "check_projected_keys", "solution_linformer_macs",
           "solution_mean_pooling", "solution_projected_keys"]
