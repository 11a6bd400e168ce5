"""Notebook 01's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch
from einops import rearrange

from linformer_edu.exercises import nb01


def naive_softmax(s):
    return s.exp() / s.exp().sum(-1, keepdim=True)


@pytest.mark.parametrize("answer, message", [
    (lambda s: s.softmax(dim=-2), "softmax taken over the wrong axis: each row (last axis"),
    (lambda s: s.exp(), "the rows are not normalised"),
    (naive_softmax, "NaN or inf for large scores (×1000): exp overflows — subtract each row's maximum"),
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
    (lambda x, h: rearrange(x, "b n (h d) -> b n h d", h=h), "wrong shape: expected (2, 3, 5, 4), got (2, 5, 3, 4)"),
    (lambda x: x, "your function raised TypeError"),
])
def test_split_heads_mistakes(answer, message, feedback):
    ok, out = feedback(nb01.check_split_heads, answer)
    assert not ok and message in out
