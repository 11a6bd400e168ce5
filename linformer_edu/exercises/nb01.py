"""Exercises for notebook 01, attention from scratch: a numerically safe softmax, causal attention, and the
multi-head split. Each `check_*` takes the learner's function; each `solution_*` is the worked solution.
"""
import torch
from einops import rearrange

from ._feedback import KEEPDIM, Mistake, call, checker, diagnose, expect, expect_close, expect_shape, is_close


def _inputs(*shape, scale=1.0, seed=0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: softmax by hand, safe for large scores

def solution_softmax(scores):
    """softmax over the last axis: exp(s - max) / sum(exp(s - max)); subtracting the row max avoids overflow."""
    shifted = scores - scores.amax(dim=-1, keepdim=True)   # (..., m), largest entry of each row is 0
    e = shifted.exp()                                       # (..., m)
    return e / e.sum(dim=-1, keepdim=True)                  # (..., m), each row sums to 1


@checker("Exercise 1 - softmax by hand")
def check_softmax(softmax):
    """`softmax(scores)` over the last axis, without torch.softmax, that survives scores in the thousands."""
    scores = _inputs(2, 3, 5, 7)                                         # rows of length 7, and 5 != 7
    got = expect_shape(call(softmax, scores, hints=KEEPDIM), scores.shape)
    column_max = (scores - scores.amax(dim=-2, keepdim=True)).exp()
    diagnose(got, {
        "softmax taken over the wrong axis: each row (last axis, one query's scores over all keys) must sum "
        "to 1": scores.softmax(dim=-2),
        "the rows are not normalised: divide exp(scores) by its sum over the last axis": scores.exp(),
        "the maximum was taken over the wrong axis: subtract each row's own maximum (dim=-1) — a softmax ignores "
        "a constant only when the whole row shares it": column_max / column_max.sum(dim=-1, keepdim=True),
    })
    expect(torch.allclose(got.sum(-1), torch.ones(2, 3, 5), atol=1e-5),
           "rows must sum to 1 — normalise over the last axis (dim=-1, keepdim=True)")
    expect_close(got, scores.softmax(dim=-1))
    high = call(softmax, scores + 1000)                                  # exp(1000) overflows float32
    expect(isinstance(high, torch.Tensor) and torch.isfinite(high).all(),
           "NaN or inf when every score is large (scores + 1000): exp overflows — subtract each row's maximum "
           "before exp")
    expect_close(high, (scores + 1000).softmax(dim=-1), "your answer for large scores")
    wide = 1000 * scores                                                 # rows thousands apart
    big = call(softmax, wide)
    one_max = (wide - wide.amax()).exp()                                 # rows far below the top underflow to 0
    if isinstance(big, torch.Tensor) and not torch.isfinite(big).all():
        diagnose(big, {"NaN for widely spread scores (×1000): one maximum for the whole tensor leaves rows far below "
                       "it, whose exp is 0 everywhere (0/0) — subtract each row's own maximum (dim=-1, keepdim=True)":
                       one_max / one_max.sum(dim=-1, keepdim=True)})
        raise Mistake("NaN or inf for widely spread scores (×1000): exp overflows, or a whole row underflows to 0 — "
                      "subtract each row's own maximum before exp")
    expect_close(big, wide.softmax(dim=-1), "your answer for widely spread scores")
    return "and it survives scores of ±3000."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: causal attention

def solution_causal_attention(Q, K, V):
    """softmax(Q Kᵀ/√d + causal mask) V for queries, keys, values Q, K, V (b, n, d): query i sees keys 0..i."""
    n, d = Q.shape[-2], Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / d ** 0.5                              # (b, n, n)
    future = torch.ones(n, n, dtype=torch.bool, device=Q.device).triu(1)    # (n, n), True where key j > query i
    scores = scores.masked_fill(future, float("-inf"))                      # no weight after softmax
    return scores.softmax(dim=-1) @ V                                       # (b, n, d)


@checker("Exercise 2 - causal attention")
def check_causal_attention(attention):
    """`attention(Q, K, V)` for (b, n, d) inputs where query i may only attend to keys 0..i."""
    Q, K, V = _inputs(2, 6, 8, seed=1), _inputs(2, 6, 8, seed=2), _inputs(2, 6, 8, seed=3)
    got = expect_shape(call(attention, Q, K, V), V.shape)
    scores = Q @ K.transpose(-2, -1) / 8 ** 0.5                       # (b, n, n)
    future = torch.ones(6, 6, dtype=torch.bool).triu(1)
    past = torch.ones(6, 6, dtype=torch.bool).tril(-1)
    itself = torch.eye(6, dtype=torch.bool)
    diagnose(got, {
        "the diagonal is masked too: triu() marks the keys j ≥ i, so no query may attend to itself and query 0 "
        "sees nothing at all (its row is NaN) — mask only the keys after the query: triu(1), or diagonal=1":
            scores.masked_fill(future | itself, float("-inf")).softmax(-1) @ V,
        "the mask points the wrong way and covers the diagonal: query i attended to the keys after it, and the last "
        "query sees nothing (NaN) — mask the future, the keys j > i: triu(1)":
            scores.masked_fill(past | itself, float("-inf")).softmax(-1) @ V,
        "no mask: every query attended to the future too": scores.softmax(-1) @ V,
        "the mask points the wrong way: query i attended to keys after it (use triu(1) to find the future, "
        "or tril to keep the past)": scores.masked_fill(past, float("-inf")).softmax(-1) @ V,
        "masked scores were set to 0 instead of -inf: exp(0) = 1, so the future still gets weight":
            scores.masked_fill(future, 0.0).softmax(-1) @ V,
        "the mask was applied after the softmax, so the rows no longer sum to 1: mask the scores before "
        "softmax": scores.softmax(-1).masked_fill(future, 0.0) @ V,
        "scores not scaled by 1/√d": (scores * 8 ** 0.5).masked_fill(future, float("-inf")).softmax(-1) @ V,
        "scores divided by d: the scale is 1/√d (d ** 0.5)": (scores / 8 ** 0.5).masked_fill(
            future, float("-inf")).softmax(-1) @ V,
        "softmax taken over the wrong axis: each query's row of weights must sum to 1":
            scores.masked_fill(future, float("-inf")).softmax(-2).nan_to_num() @ V,
    })
    expect(not got.isnan().any(), "your answer contains NaN: a query whose every key is masked gets a softmax of "
                                  "all -inf, 0/0 — each query must keep at least itself (key j = i)")
    changed = V.clone()
    changed[:, -1] += 10                                              # only the last position's value changes
    later = call(attention, Q, K, changed)
    expect(isinstance(later, torch.Tensor) and torch.allclose(later[:, :-1], got[:, :-1], atol=1e-5),
           "changing the last value changed earlier outputs: information leaks from the future")
    expect_close(got, solution_causal_attention(Q, K, V))
    return "no query sees the future."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: splitting the model width into heads

def solution_split_heads(x, heads):
    """(b, n, h·d) -> (b, h, n, d): head i takes features i·d .. (i+1)·d - 1 of every position."""
    return rearrange(x, "b n (h d) -> b h n d", h=heads)


@checker("Exercise 3 - split into heads")
def check_split_heads(split_heads):
    """`split_heads(x, heads)`: (b, n, h·d) -> (b, h, n, d) without mixing positions."""
    b, n, h, d = 2, 5, 3, 4
    x = _inputs(b, n, h * d, seed=4)
    got = call(split_heads, x, h)
    expect(getattr(got, "shape", None) != (b, n, h, d) or not is_close(got, x.view(b, n, h, d)),
           f"you returned {(b, n, h, d)} = (b, n, h, d): the features are split into heads, but the head axis must "
           f"come before the positions — swap them with .transpose(1, 2)")
    got = expect_shape(got, (b, h, n, d))
    diagnose(got, {
        "right shape, wrong arrangement: a plain reshape/view to (b, h, n, d) mixes positions into heads — "
        "split the last axis into (h, d) first, then move the head axis forward": x.reshape(b, h, n, d),
        "the last axis was split as (d, h) instead of (h, d): each head must take a contiguous block of "
        "dim_head features": rearrange(x, "b n (d h) -> b h n d", h=h),
    })
    expect_close(got, solution_split_heads(x, h))
    return "head i holds features i·d to (i+1)·d - 1 of every position."


__all__ = ["Mistake", "check_causal_attention", "check_softmax", "check_split_heads", "solution_causal_attention",
           "solution_softmax", "solution_split_heads"]
