"""Exercises for notebook 01, attention from scratch: a numerically safe softmax, causal attention, and the
multi-head split. Each `check_*` takes the learner's function; each `solution_*` is the worked solution.
"""
import torch
from einops import rearrange

from ._feedback import Mistake, call, checker, diagnose, expect, expect_close, expect_shape


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
    got = expect_shape(call(softmax, scores), scores.shape)
    diagnose(got, {
        "softmax taken over the wrong axis: each row (last axis, one query's scores over all keys) must sum "
        "to 1": scores.softmax(dim=-2),
        "the rows are not normalised: divide exp(scores) by its sum over the last axis": scores.exp(),
    })
    expect(torch.allclose(got.sum(-1), torch.ones(2, 3, 5), atol=1e-5),
           "rows must sum to 1 — normalise over the last axis (dim=-1, keepdim=True)")
    expect_close(got, scores.softmax(dim=-1))
    big = call(softmax, 1000 * scores)                                   # exp(1000) overflows float32
    expect(isinstance(big, torch.Tensor) and torch.isfinite(big).all(),
           "NaN or inf for large scores (×1000): exp overflows — subtract each row's maximum before exp")
    expect_close(big, (1000 * scores).softmax(dim=-1), "your answer for large scores")
    return "and it survives scores of ±3000."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: causal attention

def solution_causal_attention(q, k, v):
    """softmax(q kᵀ/√d + causal mask) v for q, k, v (b, n, d): query i sees keys 0..i only."""
    n, d = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / d ** 0.5                              # (b, n, n)
    future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)    # (n, n), True where key j > query i
    scores = scores.masked_fill(future, float("-inf"))                      # no weight after softmax
    return scores.softmax(dim=-1) @ v                                       # (b, n, d)


@checker("Exercise 2 - causal attention")
def check_causal_attention(attention):
    """`attention(q, k, v)` for (b, n, d) inputs where query i may only attend to keys 0..i."""
    q, k, v = _inputs(2, 6, 8, seed=1), _inputs(2, 6, 8, seed=2), _inputs(2, 6, 8, seed=3)
    got = expect_shape(call(attention, q, k, v), v.shape)
    scores = q @ k.transpose(-2, -1) / 8 ** 0.5                       # (b, n, n)
    future = torch.ones(6, 6, dtype=torch.bool).triu(1)
    past = torch.ones(6, 6, dtype=torch.bool).tril(-1)
    diagnose(got, {
        "no mask: every query attended to the future too": scores.softmax(-1) @ v,
        "the mask points the wrong way: query i attended to keys after it (use triu(1) to find the future, "
        "or tril to keep the past)": scores.masked_fill(past, float("-inf")).softmax(-1) @ v,
        "masked scores were set to 0 instead of -inf: exp(0) = 1, so the future still gets weight":
            scores.masked_fill(future, 0.0).softmax(-1) @ v,
        "the mask was applied after the softmax, so the rows no longer sum to 1: mask the scores before "
        "softmax": scores.softmax(-1).masked_fill(future, 0.0) @ v,
        "scores not scaled by 1/√d": (scores * 8 ** 0.5).masked_fill(future, float("-inf")).softmax(-1) @ v,
        "softmax taken over the wrong axis: each query's row of weights must sum to 1":
            scores.masked_fill(future, float("-inf")).softmax(-2).nan_to_num() @ v,
    })
    changed = v.clone()
    changed[:, -1] += 10                                              # only the last position's value changes
    later = call(attention, q, k, changed)
    expect(isinstance(later, torch.Tensor) and torch.allclose(later[:, :-1], got[:, :-1], atol=1e-5),
           "changing the last value changed earlier outputs: information leaks from the future")
    expect_close(got, solution_causal_attention(q, k, v))
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
    got = expect_shape(call(split_heads, x, h), (b, h, n, d))
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
