"""Exercises for notebook 02, attention is (nearly) low rank: the paper's cumulative spectrum, the best rank-r
approximation, and a Johnson–Lindenstrauss random projection. Each `check_*` takes the learner's function;
each `solution_*` is the worked solution.
"""
import torch

from ._feedback import Mistake, call, checker, diagnose, expect, expect_close, expect_shape


def _attention_maps(batch=3, n=12, seed=0):
    """A few softmax maps (batch, n, n) with some structure, to take apart."""
    g = torch.Generator().manual_seed(seed)
    scores = 2 * torch.randn(batch, n, n, generator=g)                     # (batch, n, n)
    return scores.softmax(dim=-1)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the normalized cumulative singular values (the paper's Fig. 1)

def solution_cumulative_spectrum(s):
    """(..., r) singular values, largest first -> (..., r): the running sum divided by the total."""
    return s.cumsum(dim=-1) / s.sum(dim=-1, keepdim=True)


@checker("Exercise 1 - normalized cumulative spectrum")
def check_cumulative_spectrum(cumulative_spectrum):
    """`cumulative_spectrum(s)` for singular values s (..., r): entry i is (σ₁ + … + σᵢ) / (σ₁ + … + σᵣ)."""
    s = torch.linalg.svdvals(_attention_maps(batch=4, n=10))[:3]           # (3, 10): note 3 != 10
    got = expect_shape(call(cumulative_spectrum, s), s.shape)
    want = solution_cumulative_spectrum(s)
    diagnose(got, {
        "not normalised: divide the running sum by the total, so the curve ends at 1": s.cumsum(-1),
        "you summed squared singular values (the 'energy'); Fig. 1 of the paper accumulates the singular values "
        "themselves": (s ** 2).cumsum(-1) / (s ** 2).sum(-1, keepdim=True),
        "the running sum went along the wrong axis: accumulate over the last axis (the singular values of one "
        "matrix)": s.cumsum(0) / s.sum(0, keepdim=True),
        "divided by the largest singular value instead of the total: the curve must end at 1":
            s.cumsum(-1) / s[..., :1],
        "that is the normalized singular values, not their running sum: use cumsum": s / s.sum(-1, keepdim=True),
    })
    expect(torch.allclose(got[..., -1], torch.ones(3)), "the last entry of each curve must be 1 (all the mass)")
    expect_close(got, want)
    return "the curve rises from σ₁/Σσ to 1."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the best rank-r approximation (Eckart–Young)

def solution_best_rank_r(P, r):
    """The rank-r matrix closest to P in Frobenius norm: keep the r largest singular values of the SVD."""
    U, S, Vh = torch.linalg.svd(P)                   # P = U diag(S) Vh, S largest first
    return U[..., :, :r] @ torch.diag_embed(S[..., :r]) @ Vh[..., :r, :]   # (..., n, m)


@checker("Exercise 2 - best rank-r approximation")
def check_best_rank_r(best_rank_r):
    """`best_rank_r(P, r)` -> the rank-r matrix nearest to P (same shape as P)."""
    P, r = _attention_maps(batch=2, n=12, seed=1), 3
    got = expect_shape(call(best_rank_r, P, r), P.shape)
    U, S, Vh = torch.linalg.svd(P)
    diagnose(got, {
        "you kept the r smallest singular values: torch.linalg.svd returns them largest first, keep the first r":
            U[..., -r:] @ torch.diag_embed(S[..., -r:]) @ Vh[..., -r:, :],
        "the singular values are missing: multiply by diag(S) between U and Vh": U[..., :r] @ Vh[..., :r, :],
        "torch.linalg.svd already returns Vh = Vᵀ: use its first r rows, without transposing again":
            U[..., :r] @ torch.diag_embed(S[..., :r]) @ Vh.mT[..., :r, :],
        "that is P itself: keep only r singular values": P,
    })
    ranks = torch.linalg.matrix_rank(got.double(), atol=1e-6)
    expect(bool((ranks <= r).all()), f"the rank of your answer is {ranks.max().item()}, more than r = {r}")
    expect_close(got, solution_best_rank_r(P, r))
    return "its error is √(σ²ᵣ₊₁ + … + σ²ₙ), the smallest any rank-r matrix can reach."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: a Johnson–Lindenstrauss random projection

def solution_random_projection(n, k, generator):
    """R (k, n) with independent N(0, 1/k) entries, so that E‖R x‖² = ‖x‖² and E[(Ra)·(Rb)] = a·b."""
    return torch.randn(k, n, generator=generator) / k ** 0.5


@checker("Exercise 3 - random projection")
def check_random_projection(random_projection):
    """`random_projection(n, k, generator)` -> R (k, n) that keeps lengths and dot products on average."""
    n, k = 400, 25
    R = expect_shape(call(random_projection, n, k, torch.Generator().manual_seed(0)), (k, n))
    again = call(random_projection, n, k, torch.Generator().manual_seed(0))
    expect(isinstance(again, torch.Tensor) and torch.equal(again, R),
           "two calls with equally seeded generators gave different matrices: draw from `generator` "
           "(torch.randn(..., generator=generator))")
    expect(R.mean().abs() < 0.1 * R.std(),
           "the entries are not centred on 0: draw from a normal distribution (torch.randn), not torch.rand, "
           "which is uniform on [0, 1)")
    ratio = (R ** 2).sum(0).mean().item()   # average ‖R x‖² over unit vectors x = e₁ … eₙ: 1 when lengths are kept
    expect(ratio < 0.5 * k, f"lengths grow by √k = {k ** 0.5:.0f}: ‖Rx‖² ≈ {ratio:.3g}·‖x‖² — the entries need "
                            f"standard deviation 1/√k, not 1")
    expect(ratio > 2 / k, f"lengths shrink: ‖Rx‖² ≈ {ratio:.3g}·‖x‖² — scale by 1/√k, not 1/k")
    expect(0.8 < ratio < 1.25, f"lengths are not kept on average: ‖Rx‖² ≈ {ratio:.3g}·‖x‖², expected ≈ 1 — use "
                               f"independent N(0, 1/k) entries")
    return "dot products survive the projection on average, with an error shrinking like 1/√k."


__all__ = ["Mistake", "check_best_rank_r", "check_cumulative_spectrum", "check_random_projection",
           "solution_best_rank_r", "solution_cumulative_spectrum", "solution_random_projection"]
