"""Notebook 01's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch
from einops import rearrange

from linformer_edu.exercises import nb01
from linformer_edu.exercises._feedback import KEEPDIM


def naive_softmax(s):
    return s.exp() / s.exp().sum(-1, keepdim=True)


@pytest.mark.parametrize("answer, message", [
    (lambda s: s.softmax(dim=-2), "softmax taken over the wrong axis: each row (last axis"),
    (lambda s: s.exp(), "the rows are not normalised"),
    (naive_softmax, "NaN or inf when every score is large (scores + 1000): exp overflows — subtract each row's "
                    "maximum"),
    (lambda s: s.softmax(-1).transpose(-1, -2), "wrong shape: expected (2, 3, 5, 7), got (2, 3, 7, 5) — the "
                                                "right sizes in the wrong order"),
    (lambda s: s.softmax(-1).sum(-1), "an axis is missing"),
])
def test_softmax_mistakes(answer, message, feedback):
    ok, out = feedback(nb01.check_softmax, answer)
    assert not ok and out.startswith("✗ Exercise 1 - softmax by hand: ") and message in out


def attention_with(q, k, v, *, scale=True, mask="future", fill=float("-inf"), after=False, axis=-1):
    n, d = q.shape[-2:]
    scores = q @ k.transpose(-2, -1) / (d ** 0.5 if scale else 1)
    drop = {"future": torch.ones(n, n, dtype=torch.bool).triu(1),
            "past": torch.ones(n, n, dtype=torch.bool).tril(-1),
            "none": torch.zeros(n, n, dtype=torch.bool)}[mask]
    if after:
        return scores.softmax(-1).masked_fill(drop, 0) @ v
    return scores.masked_fill(drop, fill).softmax(axis) @ v


@pytest.mark.parametrize("options, message", [
    (dict(mask="none"), "no mask: every query attended to the future too"),
    (dict(mask="past"), "the mask points the wrong way"),
    (dict(fill=0.0), "masked scores were set to 0 instead of -inf"),
    (dict(after=True), "the mask was applied after the softmax"),
    (dict(scale=False), "scores not scaled by 1/√d"),
    (dict(axis=-2), "softmax taken over the wrong axis"),
])
def test_causal_attention_mistakes(options, message, feedback):
    ok, out = feedback(nb01.check_causal_attention, lambda q, k, v: attention_with(q, k, v, **options))
    assert not ok and out.startswith(f"✗ Exercise 2 - causal attention: {message}")


def test_causal_attention_names_an_unknown_leak(feedback):
    def leaky(q, k, v):   # right everywhere except that every output also sees the last value
        return attention_with(q, k, v) + 0.01 * v[:, -1:]
    ok, out = feedback(nb01.check_causal_attention, leaky)
    assert not ok and "changing the last value changed earlier outputs" in out


@pytest.mark.parametrize("answer, message", [
    (lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1), "right shape, wrong arrangement: a plain reshape"),
    (lambda x, h: rearrange(x, "b n (d h) -> b h n d", h=h), "split as (d, h) instead of (h, d)"),
    (lambda x, h: rearrange(x, "b n (h d) -> b h d n", h=h), "wrong shape: expected (2, 3, 5, 4), got (2, 3, 4, 5)"),
    (lambda x: x, "your function raised TypeError"),
])
def test_split_heads_mistakes(answer, message, feedback):
    ok, out = feedback(nb01.check_split_heads, answer)
    assert not ok and message in out


def one_max_softmax(s):   # safe against overflow, but not against rows far below the largest score
    e = (s - s.max()).exp()
    return e / e.sum(-1, keepdim=True)


def column_max_softmax(s):
    e = (s - s.amax(dim=-2, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


@pytest.mark.parametrize("answer, message", [
    (lambda s: (s - s.max(dim=-1, keepdim=True)).exp(), "your function raised TypeError: unsupported operand type(s) "
                                                        "for -: 'Tensor' and 'torch.return_types.max' — max(dim=…) "
                                                        "returns a named tuple (values, indices), not a tensor: take "
                                                        "its .values, or call amax(dim=…), which returns the values "
                                                        "alone"),
    (lambda s: s.exp() / s.exp().sum(-1), "your function raised RuntimeError: The size of tensor a (7) must match the "
                                          "size of tensor b (5) at non-singleton dimension 3 — "
                                          + KEEPDIM[next(iter(KEEPDIM))]),
    (column_max_softmax, "the maximum was taken over the wrong axis: subtract each row's own maximum (dim=-1) — a "
                         "softmax ignores a constant only when the whole row shares it"),
    (one_max_softmax, "NaN for widely spread scores (×1000): one maximum for the whole tensor leaves rows far below "
                      "it, whose exp is 0 everywhere (0/0) — subtract each row's own maximum (dim=-1, keepdim=True)"),
    (lambda s: s.softmax(-1) if s.std() < 100 else naive_softmax(s),
     "NaN or inf for widely spread scores (×1000): exp overflows, or a whole row underflows to 0 — subtract each "
     "row's own maximum before exp"),
], ids=["max tuple", "no keepdim", "max over columns", "one maximum", "overflow at x1000"])
def test_softmax_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb01.check_softmax, answer) == (False, f"✗ Exercise 1 - softmax by hand: {message}")


def mask(n, rule):
    return {"future": torch.ones(n, n, dtype=torch.bool).triu(1), "triu()": torch.ones(n, n, dtype=torch.bool).triu(),
            "tril()": torch.ones(n, n, dtype=torch.bool).tril(),
            "float": torch.ones(n, n).triu(1), "row 3": (torch.arange(n) == 3)[:, None].expand(n, n)}[rule]


def attention_masked(q, k, v, rule, scale=None):
    scores = q @ k.transpose(-2, -1) / (scale or q.shape[-1] ** 0.5)
    return scores.masked_fill(mask(q.shape[-2], rule), float("-inf")).softmax(-1) @ v


@pytest.mark.parametrize("answer, message", [
    (lambda q, k, v: attention_masked(q, k, v, "triu()"), "the diagonal is masked too: triu() marks the keys j ≥ i, "
                                                          "so no query may attend to itself and query 0 sees nothing "
                                                          "at all (its row is NaN) — mask only the keys after the "
                                                          "query: triu(1), or diagonal=1"),
    (lambda q, k, v: attention_masked(q, k, v, "tril()"), "the mask points the wrong way and covers the diagonal: "
                                                          "query i attended to the keys after it, and the last query "
                                                          "sees nothing (NaN) — mask the future, the keys j > i: "
                                                          "triu(1)"),
    (lambda q, k, v: attention_masked(q, k, v, "row 3"), "your answer contains NaN: a query whose every key is "
                                                         "masked gets a softmax of all -inf, 0/0 — each query must "
                                                         "keep at least itself (key j = i)"),
    (lambda q, k, v: attention_masked(q, k, v, "float"), "your function raised RuntimeError: masked_fill_ only "
                                                         "supports boolean masks, but got mask with dtype float — "
                                                         "masked_fill needs a bool mask, True where the value goes "
                                                         "in: make one with a comparison (mask == 0) or .bool()"),
    (lambda q, k, v: attention_masked(q, k, v, "future", scale=q.shape[-1]), "scores divided by d: the scale is "
                                                                             "1/√d (d ** 0.5)"),
], ids=["triu()", "tril()", "a whole row masked", "float mask", "divided by d"])
def test_causal_attention_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb01.check_causal_attention, answer) == (False, f"✗ Exercise 2 - causal attention: {message}")


def test_split_heads_without_moving_the_head_axis_is_named_exactly(feedback):
    assert feedback(nb01.check_split_heads, lambda x, h: rearrange(x, "b n (h d) -> b n h d", h=h)) == (
        False, "✗ Exercise 3 - split into heads: you returned (2, 5, 3, 4) = (b, n, h, d): the features are split "
               "into heads, but the head axis must come before the positions — swap them with .transpose(1, 2)")
