"""Warm-up exercises for notebook 00, start here: the two tensor moves attention is made of — all dot products
between two sets of vectors, and rows rescaled to sum to 1. Each `check_*` takes the learner's function;
each `solution_*` is the worked solution.
"""
import torch

from ._feedback import BROADCAST, KEEPDIM, Mistake, call, checker, diagnose, expect, expect_close, expect_shape

PAIRS = {   # the ways to multiply a (n, d) by b (m, d) that fail, and why
    r"mat1 and mat2 shapes cannot be multiplied": "the inner sizes of a matrix product must agree, (n, d) @ "
                                                   "(d, m): transpose b, not a",
    BROADCAST: "a * b multiplies entry by entry, row i of a with row i of b only (and needs n = m); every pair "
               "a[i] · b[j] at once is a matrix product",
    r"1D tensors expected": "torch.dot takes two vectors, one pair at a time; every pair at once is a matrix product",
}


def _inputs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: every dot product at once

def solution_all_dot_products(a, b):
    """a (n, d), b (m, d) -> (n, m) with entry [i, j] = a[i] · b[j]: one matrix product."""
    return a @ b.T                                   # (n, d) @ (d, m) -> (n, m)


@checker("Exercise 1 - all dot products")
def check_all_dot_products(all_dot_products):
    """`all_dot_products(a, b)` for a (n, d) and b (m, d) -> (n, m)."""
    a, b = _inputs(3, 4, seed=1), _inputs(5, 4, seed=2)                # n = 3, m = 5, d = 4: all different
    got = expect_shape(call(all_dot_products, a, b, hints=PAIRS), (3, 5))
    diagnose(got, {"each entry is off by a factor: a plain dot product has no scaling": a @ b.T / 2})
    expect_close(got, solution_all_dot_products(a, b))
    return "entry [i, j] is a[i] · b[j]; notebook 01 calls this Q Kᵀ."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: rows that sum to 1

def solution_normalize_rows(x):
    """x (..., m) of positive numbers -> each row divided by its sum, so every row sums to 1."""
    return x / x.sum(dim=-1, keepdim=True)           # keepdim: (..., 1) broadcasts over the row


@checker("Exercise 2 - rows that sum to 1")
def check_normalize_rows(normalize_rows):
    """`normalize_rows(x)` for positive x (..., m): every row (last axis) sums to 1."""
    x = _inputs(2, 3, 4, seed=3).exp()                                 # positive, 3 rows of 4 per batch entry
    got = expect_shape(call(normalize_rows, x, hints=KEEPDIM), x.shape)
    diagnose(got, {
        "divided by each row's length (its L2 norm): then the squares sum to 1; for the entries to sum to 1, "
        "divide by the row's sum": x / x.norm(dim=-1, keepdim=True),
        "a softmax exponentiates first: these entries are already positive, so divide each by its row's sum as "
        "it is": x.softmax(dim=-1),
        "the columns sum to 1, not the rows: divide by the sum over the last axis (dim=-1)":
            x / x.sum(dim=-2, keepdim=True),
        "divided by the sum of the whole tensor: each row needs its own sum (dim=-1, keepdim=True)": x / x.sum(),
        "divided by the row maximum: the largest entry became 1, but the row must *sum* to 1":
            x / x.amax(dim=-1, keepdim=True),
    })
    expect(torch.allclose(got.sum(-1), torch.ones(2, 3)), "the rows do not sum to 1")
    expect_close(got, solution_normalize_rows(x))
    return "a softmax is exactly this, applied to exp(scores)."


__all__ = ["Mistake", "check_all_dot_products", "check_normalize_rows", "solution_all_dot_products",
           "solution_normalize_rows"]
