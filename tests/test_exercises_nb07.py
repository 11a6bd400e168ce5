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


@pytest.mark.parametrize("answer, message", [
    (lambda l, t: F.cross_entropy(l, t) / math.log(2), "your function raised RuntimeError: Expected target size "
                                                       "[2, 7], got [2, 5] — F.cross_entropy wants the classes on axis "
                                                       "1: flatten to (b·n, V) logits and (b·n,) targets, or pass "
                                                       "logits.transpose(1, 2)"),
    (lambda l, t: F.nll_loss(l.flatten(0, 1), t.flatten()) / math.log(2), "F.nll_loss expects log-probabilities, and "
                                                                           "these are raw logits: apply log_softmax "
                                                                           "first (F.cross_entropy does both)"),
], ids=["classes on the last axis", "nll_loss on logits"])
def test_bits_per_char_loss_function_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb07.check_bits_per_char, answer) == (False, f"✗ Exercise 1 - bits per character: {message}")


def test_bits_per_char_accepts_the_classes_on_axis_1(feedback):
    assert feedback(nb07.check_bits_per_char, lambda l, t: F.cross_entropy(l.transpose(1, 2), t) / math.log(2))[0]


def probs(logits, T, k, *, at_most=False, fill=float("-inf"), after=False):
    if k is not None:
        kth = logits.topk(k).values[-1]
        logits = logits.masked_fill(logits <= kth if at_most else logits < kth, fill)
    return logits.softmax(-1) / T if after else (logits / T).softmax(-1)


@pytest.mark.parametrize("answer, message", [
    (lambda l, T, k: probs(l, T, k, at_most=True), "top-k kept k - 1 characters: mask the logits strictly below the "
                                                   "k-th largest (logits < kth); logits <= kth drops the k-th too (and "
                                                   "with top_k=1, everything: NaN)"),
    (lambda l, T, k: probs(l, T, k, fill=0.0), "the dropped logits were set to 0 instead of -inf: exp(0) = 1, so they "
                                               "keep some probability"),
    (lambda l, T, k: probs(l, T, k, after=True), "the temperature divides the logits before the softmax, not the "
                                                 "probabilities after it"),
    (lambda l, T, k: (l.topk(k).values / T).softmax(-1) if k else probs(l, T, k), "you returned only the top_k=3 "
                                                                                  "kept probabilities: return one per "
                                                                                  "character, shape (8,), with 0 for "
                                                                                  "the characters dropped"),
    (lambda l, T, k: (l / T).masked_fill(l < l.topk(k), float("-inf")).softmax(-1) if k else probs(l, T, k),
     "your function raised TypeError: '<' not supported between instances of 'Tensor' and 'torch.return_types.topk' "
     "— topk(…) returns a named tuple (values, indices), not a tensor: take its .values"),
], ids=["<= kth", "filled with 0", "temperature after", "only the kept", "topk tuple"])
def test_next_char_probs_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb07.check_next_char_probs, answer) == (False, f"✗ Exercise 2 - temperature and top-k: {message}")


def nanogpt(step, max_steps, lr, min_lr, warmup_steps):   # nanoGPT's get_lr, in this exercise's arguments
    if step < warmup_steps:
        return lr * (step + 1) / (warmup_steps + 1)
    ratio = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


@pytest.mark.parametrize("answer, message", [
    (nanogpt, "that is nanoGPT's schedule (a warmup to lr, then a cosine over the steps after it); this course's is "
              "the product of section 6, min(1, (step + 1) / warmup_steps) · cosine(step / max_steps)"),
    (lambda s, S, lr, low, w: lr * (s + 1) / w if s < w else schedule(warmup=lambda s, w: 1.0)(s, S, lr, low, w),
     "during the warmup the rate rose towards lr itself: the schedule multiplies the warmup factor by the cosine, "
     "min(1, (step + 1) / warmup_steps) · cosine(step), at every step"),
], ids=["nanoGPT", "warmup to lr"])
def test_lr_schedule_other_schedules_are_named_exactly(answer, message, feedback):
    assert feedback(nb07.check_lr_schedule, answer) == (False, f"✗ Exercise 3 - warmup and cosine decay: {message}")
