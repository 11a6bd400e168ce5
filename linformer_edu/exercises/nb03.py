"""Exercises for notebook 03, the projection step by step: mean pooling written as a k×n matrix, the cost of one
Linformer head counted in multiply-adds, and the cheap order of the key projection. Each `check_*` takes the learner's function;
each `solution_*` is the worked solution.
"""
import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from ._feedback import Mistake, call, checker, diagnose, expect, expect_close, expect_shape

ORDER = {   # a product of x (b, n, dim), E (k, n) and W (dim, d) whose sizes do not line up
    r"mat1 and mat2 shapes cannot be multiplied|Expected size for first two dimensions of batch2":
        "the inner sizes of a matrix product must agree: E (k, n) mixes the n positions, so it multiplies from "
        "the left, E @ x: (k, n) @ (b, n, dim) -> (b, k, dim); W (dim, d) maps the features, from the right",
}


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
            f"each weight is 1/k: a window holds w = n/k = {w} positions, so for n={n}, k={k} each weight is "
            f"1/{w}": want * w / k,
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
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        expect(isinstance(got, (int, float)) and not isinstance(got, bool),
               f"your count {case} should be a number, got a value of type {type(got).__name__}")
        if got != solution_linformer_macs(n, k, d):
            raise Mistake(f"{case} you counted {got:,}{_macs_hint(got, n, k, d)}")
    return "4·n·k·d grows linearly in n; full attention's 2·n²·d grows quadratically."


def _macs_hint(got, n, k, d):
    """What a wrong count of multiply-adds corresponds to, without giving the right one away."""
    nkd = n * k * d
    slips = {
        2 * nkd: ": only the scores and the weighted sum — projecting K and V with E and F costs multiply-adds too",
        3 * nkd: ": three of the four products — E K, F V, Q (E K)ᵀ and P̄ (F V) cost the same each; which one is "
                 "missing?",
        8 * nkd: ": that is FLOPs (a multiply and an add each); count multiply-adds",
        2 * n * n * d: " = 2·n²·d: that is full attention's cost, with n keys instead of k",
        2 * nkd + 2 * n * n * d: ": the scores and the weighted sum are counted with n keys — after the projection "
                                 "there are only k",
        2 * k * n + 2 * nkd: ": projecting costs k·n multiply-adds per feature — each of the k rows of E K sums n "
                             "vectors of d numbers",
        4 * nkd + n * k: ": the n·k on top is the softmax, which is not a matrix product — count the four "
                         "products only",
        4 * nkd + 3 * n * d * d: ": that includes the maps to q, k and v — the exercise starts from q, k, v; count "
                                 "E K, F V, Q (E K)ᵀ and P̄ (F V)",
        4 * nkd + 4 * n * d * d: ": that includes the maps to q, k, v and the output — the exercise starts from q, "
                                 "k, v; count E K, F V, Q (E K)ᵀ and P̄ (F V)",
    }
    if got in slips:
        return slips[got]
    ratio = got / nkd
    multiple = f" = {ratio:g}·n·k·d" if math.isfinite(ratio) and (2 * ratio).is_integer() else ""
    return (f"{multiple}, which is not the cost: a (p, q) @ (q, r) product costs p·q·r multiply-adds — add up "
            f"those of E K, F V, Q (E K)ᵀ and P̄ (F V)")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: project first, then map the features

def solution_projected_keys(x, E, W):
    """E x W for x (b, n, dim), E (k, n), W (dim, d), in the cheap order: (E x) W."""
    pooled = E @ x         # (b, k, dim): k·n·dim multiply-adds
    return pooled @ W      # (b, k, d):   k·dim·d multiply-adds, not n·dim·d


def _flops(fn, *args):
    with FlopCounterMode(display=False) as counter:
        out = call(fn, *args, hints=ORDER)
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
