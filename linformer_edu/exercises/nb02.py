"""Exercises for notebook 02, attention is (nearly) low rank: reading the cumulative spectrum, the uniform causal
map (full rank, yet skewed), and a Johnson–Lindenstrauss random projection. Each `check_*` takes the learner's function;
each `solution_*` is the worked solution.
"""
import torch

from ._feedback import KEEPDIM, Mistake, call, call_on_batch, checker, diagnose, expect, expect_close, expect_shape


def _attention_maps(batch=3, n=12, seed=0):
    """A few softmax maps (batch, n, n) with some structure, to take apart."""
    g = torch.Generator().manual_seed(seed)
    scores = 2 * torch.randn(batch, n, n, generator=g)                     # (batch, n, n)
    return scores.softmax(dim=-1)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: how many singular values hold a given share of the mass?

def solution_smallest_rank(s, fraction):
    """(..., r) singular values, largest first -> (...,) the smallest r whose normalized cumulative sum
    (σ₁ + … + σᵣ) / Σσ reaches `fraction` (a count, starting at 1)."""
    cumulative = s.cumsum(dim=-1) / s.sum(dim=-1, keepdim=True)   # (..., r), rises to 1
    return (cumulative < fraction).sum(dim=-1) + 1                 # (...,) entries still short, plus one


@checker("Exercise 1 - smallest rank for a share of the mass")
def check_smallest_rank(smallest_rank):
    """`smallest_rank(s, fraction)` -> (...,) the number of singular values needed to reach `fraction`."""
    s = torch.linalg.svdvals(_attention_maps(batch=4, n=10))       # (4, 10)
    want = solution_smallest_rank(s, 0.8)
    got = call_on_batch(smallest_rank, s, 0.8, want=want, item="spectrum", hints=KEEPDIM)
    if isinstance(got, int):
        raise Mistake(f"got one number ({got}) for a batch of 4 spectra: work along the last axis and return "
                      f"a tensor of shape (4,)")
    got = expect_shape(got.double() if isinstance(got, torch.Tensor) else got, (4,))
    energy = (s ** 2).cumsum(-1) / (s ** 2).sum(-1, keepdim=True)
    diagnose(got, {
        "off by one: that is the 0-based index of the first entry that reaches the fraction; return the count "
        "(index + 1)": want - 1,
        "you used squared singular values (the 'energy'); the paper's Fig. 1 accumulates the singular values "
        "themselves": (energy < 0.8).sum(-1) + 1,
        "the running sum is not normalised: divide by the total first, so the curve ends at 1":
            (s.cumsum(-1) < 0.8).sum(-1) + 1,
    })
    expect_close(got, want.double())
    return "e.g. 0.8 of the mass sits in the first " + ", ".join(str(int(r)) for r in want) + " of 10."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the causal counterpart of the uniform map

def solution_prefix_average(n):
    """(n, n): row i averages positions 0 … i — the map of a causal head that spreads its attention evenly."""
    past = torch.ones(n, n).tril()                                  # (n, n), 1 where key j <= query i
    return past / past.sum(dim=-1, keepdim=True)                    # row i: i + 1 entries of 1/(i + 1)


@checker("Exercise 2 - the uniform causal map")
def check_prefix_average(prefix_average):
    """`prefix_average(n)` -> (n, n) with row i equal to 1/(i+1) on columns 0..i and 0 after."""
    n = 6
    got = expect_shape(call(prefix_average, n, hints=KEEPDIM), (n, n))
    want = solution_prefix_average(n)
    ones = torch.ones(n, n)
    diagnose(got, {
        "entry [i, j] was divided by j + 1, the sum of row j: a row sum of shape (n,) lines up with the columns — "
        "keepdim=True (shape (n, 1)) divides each row by its own sum": ones.tril() / ones.tril().sum(-1),
        "the rows are not normalised: divide row i by its i + 1 ones, so it sums to 1": ones.tril(),
        "that is the future: row i should average positions 0 … i (tril), not i … n-1 (triu)":
            ones.triu() / ones.triu().sum(-1, keepdim=True),
        "divided by n: row i has only i + 1 entries, so each is 1/(i + 1)": ones.tril() / n,
        "the columns sum to 1 instead of the rows: normalise along the last axis (sum(dim=-1))":
            ones.tril() / ones.tril().sum(0, keepdim=True),
        "that is the bidirectional uniform map: a causal query cannot see keys after it": ones / n,
    })
    expect(torch.allclose(got.sum(-1), torch.ones(n)), "each row must sum to 1: it is a row of attention weights")
    expect_close(got, want)
    big = solution_prefix_average(128)
    rank = torch.linalg.matrix_rank(big).item()
    s = torch.linalg.svdvals(big)
    share = (s[:8].sum() / s.sum()).item()
    return f"at n = 128 its rank is {rank} (full), yet its first 8 singular values carry {share:.0%} of the mass."
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
    near = lambda value: 0.8 < ratio / value < 1.25                  # the estimate is within ~2% of its mean
    expect(not near(k / n), f"lengths shrink: ‖Rx‖² ≈ {ratio:.3g}·‖x‖², which is k/n — you scaled by 1/√n, but "
                            f"‖Rx‖² adds up k coordinates, one per row of R: scale by 1/√k")
    expect(not near(1 / k), f"lengths shrink: ‖Rx‖² ≈ {ratio:.3g}·‖x‖², which is 1/k — the entries have standard "
                            f"deviation 1/k; it should be 1/√k (the variance is 1/k)")
    expect(0.8 < ratio < 1.25, f"lengths are not kept on average: ‖Rx‖² ≈ {ratio:.3g}·‖x‖², expected ≈ 1 — use "
                               f"independent N(0, 1/k) entries")
    return "dot products survive the projection on average, with an error shrinking like 1/√k."


__all__ = ["Mistake", "check_prefix_average", "check_random_projection", "check_smallest_rank",
           "solution_prefix_average", "solution_random_projection", "solution_smallest_rank"]
