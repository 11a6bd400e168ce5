"""Notebook 07's exercise checkers: typical wrong answers get the right feedback."""
import math

import pytest
import torch
import torch.nn.functional as F

from linformer_edu.exercises import nb07


def ce(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


@pytest.mark.parametrize("answer, message", [
    (lambda l, t: None, "your answer is None — did you forget to `return` it?"),
    (ce, "that is the loss in nats (natural log): divide by ln 2 to get bits"),
    (lambda l, t: ce(l, t) / math.log(10), "that is in decimal digits"),
    (lambda l, t: F.cross_entropy(l.flatten(0, 1), t.flatten(), reduction="sum") / math.log(2),
     "the cross-entropy is summed over the positions"),
    (lambda l, t: -ce(l, t) / math.log(2), "the sign is flipped"),
    (lambda l, t: -l.log_softmax(1).gather(-1, t[..., None]).mean() / math.log(2), "softmax over the wrong axis"),
    (lambda l, t: F.cross_entropy(l.flatten(0, 1), t.flatten(), reduction="none") / math.log(2),
     "expected one number for the whole batch, got a tensor of shape (10,)"),
    (lambda l, t: F.cross_entropy(l, t), "your function raised RuntimeError"),
])
def test_bits_per_char_mistakes(answer, message, feedback):
    ok, out = feedback(nb07.check_bits_per_char, answer)
    assert not ok and out.startswith("✗ Exercise 1 - bits per character: ") and message in out


def top_k_mask(logits, top_k):
    if top_k is None:
        return logits
    kth = logits.topk(top_k).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


@pytest.mark.parametrize("answer, message", [
    (lambda l, T, k: top_k_mask(l * T, k).softmax(-1), "the logits were multiplied by the temperature"),
    (lambda l, T, k: top_k_mask(l, k).softmax(-1), "the temperature was ignored"),
    (lambda l, T, k: (l / T).softmax(-1), "top_k was ignored"),
    (lambda l, T, k: (l / T).softmax(-1) * (top_k_mask(l, k) > float("-inf")),
     "top-k was applied after the softmax without renormalising"),
    (lambda l, T, k: (l / T).masked_fill(l > l.topk(k, largest=False).values[-1], float("-inf")).softmax(-1)
     if k else (l / T).softmax(-1), "top-k kept the smallest logits"),
    (lambda l, T, k: (l / T).exp(), "the probabilities sum to"),
    (lambda l, T, k: (l / T).softmax(-1)[None], "wrong shape: expected (8,), got (1, 8)"),
])
def test_next_char_probs_mistakes(answer, message, feedback):
    ok, out = feedback(nb07.check_next_char_probs, answer)
    assert not ok and out.startswith("✗ Exercise 2 - temperature and top-k: ") and message in out


def schedule(warmup=lambda s, w: min(1.0, (s + 1) / w), floor=True, shape="cosine"):
    def lr_schedule(step, max_steps, lr, min_lr, warmup_steps):
        low = min_lr if floor else 0.0
        if shape == "cosine":
            decay = low + 0.5 * (lr - low) * (1 + math.cos(math.pi * step / max_steps))
        else:
            decay = lr - (lr - low) * step / max_steps
        return warmup(step, warmup_steps) * decay
    return lr_schedule


@pytest.mark.parametrize("answer, message", [
    (schedule(warmup=lambda s, w: 1.0), "no warmup"),
    (schedule(floor=False), "the cosine decays to 0: it should end at min_lr"),
    (schedule(warmup=lambda s, w: min(1.0, s / w)), "the warmup starts at 0"),
    (schedule(shape="linear"), "a linear decay"),
    (lambda *args: "fast", "expected a number for each step, got 'fast' of type str"),
    (lambda step, max_steps, lr, min_lr, w: lr, "the shape is right but the values differ"),
])
def test_lr_schedule_mistakes(answer, message, feedback):
    ok, out = feedback(nb07.check_lr_schedule, answer)
    assert not ok and out.startswith("✗ Exercise 3 - warmup and cosine decay: ") and message in out
