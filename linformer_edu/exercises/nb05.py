"""Exercises for notebook 05, exploring low-rank attention: the relative error the explorer prints, the best any
rank-k map can do (Eckart–Young, from the singular values), and the effective map when F is fitted by least
squares. Each `check_*` takes the learner's function; each `solution_*` is the worked solution.
"""
import torch

from ._feedback import Mistake, call, call_on_batch, checker, diagnose, expect, expect_close, expect_shape


def _maps(*shape, seed=0):
    """Attention-like test maps: rows of a softmax, so positive and summing to 1."""
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(*shape, generator=g)).softmax(-1)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the relative error ‖A − Â‖_F / ‖A‖_F

def solution_relative_error(A, approx):
    """‖A − Â‖_F / ‖A‖_F for each matrix: A, approx (..., n, m) -> (...)."""
    return (A - approx).pow(2).sum((-2, -1)).sqrt() / A.pow(2).sum((-2, -1)).sqrt()


@checker("Exercise 1 - the relative error")
def check_relative_error(relative_error):
    """`relative_error(A, approx)` for a batch of maps (…, n, m) -> one number per map (…)."""
    A, approx = _maps(3, 6, 6, seed=1), _maps(3, 6, 6, seed=2)
    got = call(relative_error, A, approx)
    expect(getattr(got, "shape", None) != (3, 6), "got (3, 6), one number per row of each map: the Frobenius norm "
                                                  "runs over both axes of a map, dim=(-2, -1)")
    expect(getattr(got, "shape", None) != (), "got one number for the whole batch of 3 maps: take each map's norm "
                                              "over its own two axes, dim=(-2, -1)")
    got = expect_shape(got, (3,), "your result for 3 maps of 6×6")
    diff, norm = (A - approx).pow(2).sum((-2, -1)).sqrt(), A.pow(2).sum((-2, -1)).sqrt()
    want = solution_relative_error(A, approx)
    diagnose(got, {
        "that is the spectral norm (ord=2, the largest singular value): the relative error uses the Frobenius "
        "norm, the root of the sum of squares (ord='fro', the default)":
            torch.linalg.matrix_norm(A - approx, ord=2) / torch.linalg.matrix_norm(A, ord=2),
        "that is the absolute error ‖A − Â‖_F: divide by ‖A‖_F, so that 0 means exact and 1 means as far off as "
        "predicting all zeros": diff,
        "you divided by ‖Â‖_F, the approximation's norm: measure the error relative to the map being "
        "approximated, ‖A‖_F": diff / approx.pow(2).sum((-2, -1)).sqrt(),
        "that is the squared ratio: take the square roots of both sums (the Frobenius norm is the root of the "
        "sum of squares)": diff.pow(2) / norm.pow(2),
        "the sum of absolute differences is not the Frobenius norm: square the entries, sum, then take the "
        "root": (A - approx).abs().sum((-2, -1)) / A.abs().sum((-2, -1)),
    })
    expect_close(got, want)
    expect_close(call(relative_error, A, A), torch.zeros(3), "your error of a map against itself")
    return "0 means exact; 1 is what predicting all zeros would score."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the best rank-k error, from the singular values

def solution_best_rank_error(s, k):
    """min over rank-k Â of ‖A − Â‖_F / ‖A‖_F, from A's singular values s (..., r), largest first."""
    energy = s.pow(2)                                          # (..., r): σᵢ²
    return (energy[..., k:].sum(-1) / energy.sum(-1)).sqrt()   # (...): the dropped share, rooted


@checker("Exercise 2 - the best rank-k error")
def check_best_rank_error(best_rank_error):
    """`best_rank_error(s, k)`: s (…, r) singular values in descending order -> (…)."""
    A = _maps(2, 8, 8, seed=3)
    s = torch.linalg.svdvals(A)                                 # (2, 8)
    for k in (3, 1):
        want = solution_best_rank_error(s, k)
        got = expect_shape(call_on_batch(best_rank_error, s, k, want=want, item="spectrum"), (2,),
                           f"your result for k={k}")
        energy = s.pow(2)
        wrong = {
            f"for k={k}: the singular values add up as squares (‖A‖_F² = Σ σᵢ²): square them before summing":
                s[..., k:].sum(-1) / s.sum(-1),
            f"for k={k}: that is the squared error — take the square root of the dropped share":
                energy[..., k:].sum(-1) / energy.sum(-1),
            f"for k={k}: that is the share the rank-k map keeps; the error comes from what it drops, σ_(k+1) "
            f"onwards": (energy[..., :k].sum(-1) / energy.sum(-1)).sqrt(),
        }
        if k > 1:
            wrong[f"for k={k}: one singular value too many is dropped: a rank-k map keeps σ₁ … σ_k, so the "
                  f"error starts at σ_(k+1), which is s[..., k] (Python counts from 0)"] = \
                (energy[..., k - 1:].sum(-1) / energy.sum(-1)).sqrt()
        if k < s.shape[-1]:
            wrong[f"for k={k}: one singular value too few is dropped: the error starts at s[..., k], the "
                  f"(k+1)-th singular value"] = (energy[..., k + 1:].sum(-1) / energy.sum(-1)).sqrt()
        diagnose(got, wrong)
        try:
            expect_close(got, want)
        except Mistake as mistake:
            raise Mistake(f"for k={k}: {mistake}") from None
    expect_close(call(best_rank_error, s, 8), torch.zeros(2), "your error for k = r = 8 (keep everything)")
    U, S, Vh = torch.linalg.svd(A[0])
    truncated = U[:, :3] * S[:3] @ Vh[:3]                       # the best rank-3 map (Eckart–Young)
    floor = torch.linalg.matrix_norm(A[0] - truncated) / torch.linalg.matrix_norm(A[0])
    return f"and it is what the truncated SVD scores (rank 3 here: {floor.item():.3f}); no rank-k map does better."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: fit F by least squares

def solution_fitted_effective_map(p_bar, A):
    """P̄ F with the (k, n) F that minimises ‖A − P̄ F‖_F: P̄ (…, n, k), A (…, n, n) -> (…, n, n)."""
    F = torch.linalg.lstsq(p_bar, A).solution     # (…, k, n): one least-squares problem per column of A
    return p_bar @ F                              # (…, n, n)


@checker("Exercise 3 - the best F for a given E")
def check_fitted_effective_map(fitted_effective_map):
    """`fitted_effective_map(p_bar, A)` -> P̄ F (…, n, n) with the least-squares best F."""
    A = _maps(2, 10, 10, seed=4).double()                      # (2, n, n)
    p_bar = _maps(2, 10, 3, seed=5).double()                   # (2, n, k)
    got = call(fitted_effective_map, p_bar, A, hints={
        r"must be batches of square matrices": "torch.linalg.solve needs a square matrix, and P̄ is n×k: fit in the "
                                               "least-squares sense, torch.linalg.lstsq or torch.linalg.pinv"})
    expect(not (isinstance(got, torch.Tensor) and tuple(got.shape) == (2, 3, 10)),
           "that looks like F (k, n): return the effective map P̄ F (n, n)")
    got = expect_shape(got, (2, 10, 10), "your result")
    want = solution_fitted_effective_map(p_bar, A)
    diagnose(got.double(), {
        "P̄ P̄ᵀ A is not a least-squares fit: P̄ᵀ A must be multiplied by (P̄ᵀ P̄)⁻¹ too — use "
        "torch.linalg.lstsq(p_bar, A) or torch.linalg.pinv(p_bar) @ A": p_bar @ p_bar.transpose(-1, -2) @ A,
        "that is A itself: the effective map P̄ F has rank at most k, so it cannot equal A — fit F, then "
        "multiply by P̄": A,
    })
    expect_close(got.double(), want, rtol=1e-4, atol=1e-6)
    floor = torch.linalg.matrix_norm(A - want) / torch.linalg.matrix_norm(A)
    return (f"with k=3 of 10 the fitted error is {floor.mean().item():.2f} on average; it can never go below the "
            f"best rank-k error of exercise 2.")
