"""Exercises for notebook 07, training a character model: bits per character, the sampling distribution, and the
learning-rate schedule. Each `check_*` takes the learner's function; each `solution_*` is the worked solution.
"""
import math

import torch
import torch.nn.functional as F

from ..sample import next_char_distribution
from ..train import TrainConfig, lr_at
from ._feedback import (Mistake, call, checker, diagnose, expect, expect_close, expect_number, expect_shape,
                        is_close)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: bits per character

def solution_bits_per_char(logits, targets):
    """Mean cross-entropy of the targets under softmax(logits), in bits. logits (b, n, V), targets (b, n)."""
    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten())   # (b·n, V) against (b·n,): mean, in nats
    return nats / math.log(2)                                          # 1 nat = 1 / ln 2 bits


@checker("Exercise 1 - bits per character")
def check_bits_per_char(bits_per_char):
    """`bits_per_char(logits, targets)` -> one number: the mean cross-entropy in bits."""
    g = torch.Generator().manual_seed(0)
    logits, targets = 3 * torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    got = call(bits_per_char, logits, targets, hints={
        r"Expected target size": "F.cross_entropy wants the classes on axis 1: flatten to (b·n, V) logits and (b·n,) "
                                 "targets, or pass logits.transpose(1, 2)"})
    expect(got is not None, "your answer is None — did you forget to `return` it?")
    if isinstance(got, torch.Tensor):
        expect(got.numel() == 1, f"expected one number for the whole batch, got a tensor of shape "
                                 f"{tuple(got.shape)}: average over every position of every sequence")
    nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    log_p = logits.log_softmax(dim=-1).gather(-1, targets[..., None])[..., 0]   # (b, n)
    wrong_axis = logits.log_softmax(dim=1).gather(-1, targets[..., None])[..., 0]
    diagnose(torch.as_tensor(got, dtype=torch.float32), {
        "that is the loss in nats (natural log): divide by ln 2 to get bits": nats,
        "that is in decimal digits (log base 10): divide the natural-log loss by ln 2, not ln 10":
            nats / math.log(10),
        "the cross-entropy is summed over the positions: bits *per character* is the mean": -log_p.sum() / math.log(2),
        "the sign is flipped: cross-entropy is minus the log-probability of the right character, so it is "
        "positive": -nats / math.log(2),
        "softmax over the wrong axis: each position's probabilities run over the vocabulary (the last axis)":
            -wrong_axis.mean() / math.log(2),
        "F.nll_loss expects log-probabilities, and these are raw logits: apply log_softmax first (F.cross_entropy "
        "does both)": -logits.gather(-1, targets[..., None]).mean() / math.log(2),
    })
    expect_number(got, (nats / math.log(2)).item())
    return f"a uniform guess over V characters costs log2(V) bits; here log2(7) = {math.log2(7):.2f}."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the next-character distribution

def solution_next_char_probs(logits, temperature, top_k=None):
    """Probabilities (V,) for logits (V,): keep the top_k largest logits (if given), divide by temperature,
    softmax."""
    if top_k is not None:
        kth = logits.topk(top_k).values[-1]                           # the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))      # the rest get probability 0
    return (logits / temperature).softmax(dim=-1)                     # (V,)


CASES = ((1.0, None), (0.5, None), (2.0, 3), (0.7, 1))


@checker("Exercise 2 - temperature and top-k")
def check_next_char_probs(next_char_probs):
    """`next_char_probs(logits, temperature, top_k)` -> (V,) probabilities for (V,) logits."""
    logits = 2 * torch.randn(8, generator=torch.Generator().manual_seed(1))
    for temperature, top_k in CASES:
        got = call(next_char_probs, logits, temperature, top_k)
        expect(top_k is None or getattr(got, "shape", None) != (top_k,),
               f"you returned only the top_k={top_k} kept probabilities: return one per character, shape "
               f"{tuple(logits.shape)}, with 0 for the characters dropped")
        got = expect_shape(got, logits.shape, f"your answer for temperature={temperature}, top_k={top_k}")
        keep = len(logits) if top_k is None else top_k
        kept, smallest = torch.zeros(2, len(logits), dtype=torch.bool)       # (V,) each
        kept[logits.topk(keep).indices] = True                               # the right characters to keep
        smallest[(-logits).topk(keep).indices] = True                        # the classic slip
        kth = logits.topk(keep).values[-1]
        want = next_char_distribution(logits, temperature, top_k)
        slips = {
            "top-k kept k - 1 characters: mask the logits strictly below the k-th largest (logits < kth); "
            "logits <= kth drops the k-th too (and with top_k=1, everything: NaN)":
                (logits / temperature).masked_fill(logits <= kth, float("-inf")).softmax(-1),
            "the dropped logits were set to 0 instead of -inf: exp(0) = 1, so they keep some probability":
                (logits / temperature).masked_fill(~kept, 0.0).softmax(-1),
            "the temperature divides the logits before the softmax, not the probabilities after it":
                logits.masked_fill(~kept, float("-inf")).softmax(-1) / temperature,
            "the logits were multiplied by the temperature: divide them, so that a low temperature sharpens":
                (logits * temperature).masked_fill(~kept, float("-inf")).softmax(-1),
            "the temperature was ignored": logits.masked_fill(~kept, float("-inf")).softmax(-1),
            "top-k was applied after the softmax without renormalising: the kept probabilities must sum to 1":
                (logits / temperature).softmax(-1) * kept,
            "top-k kept the smallest logits: keep the k *largest* (topk)":
                (logits / temperature).masked_fill(~smallest, float("-inf")).softmax(-1),
            "top_k was ignored: all but the k most likely characters must get probability 0":
                (logits / temperature).softmax(-1),
        }
        diagnose(got, {message: wrong for message, wrong in slips.items() if not is_close(wrong, want)})
        expect(torch.allclose(got.sum(), torch.tensor(1.0), atol=1e-5),
               f"the probabilities sum to {got.sum().item():.4f}, not 1 (temperature={temperature}, "
               f"top_k={top_k}): finish with a softmax")
        expect_close(got, want, f"your answer for temperature={temperature}, top_k={top_k}")
    return "linformer_edu.sample.generate draws each character from exactly this distribution."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: warmup, then cosine decay

def solution_lr_schedule(step, max_steps, lr, min_lr, warmup_steps):
    """min(1, (step + 1) / warmup) · (min_lr + ½ (lr − min_lr)(1 + cos(π · step / max_steps)))."""
    progress = min(1.0, step / max_steps)
    cosine = min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))
    return min(1.0, (step + 1) / warmup_steps) * cosine


@checker("Exercise 3 - warmup and cosine decay")
def check_lr_schedule(lr_schedule):
    """`lr_schedule(step, max_steps, lr, min_lr, warmup_steps)` -> the learning rate at `step` (a float)."""
    max_steps, lr, min_lr, warmup = 100, 1e-3, 1e-5, 10
    steps = range(max_steps + 1)
    values = [call(lr_schedule, s, max_steps, lr, min_lr, warmup) for s in steps]
    for value in values:
        expect(value is not None, "your answer is None — did you forget to `return` it?")
        if isinstance(value, torch.Tensor):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Mistake(f"expected a number for each step, got {value!r} of type {type(value).__name__}")
    got = torch.tensor([float(v) for v in values], dtype=torch.float64)
    config = TrainConfig(lr=lr, min_lr=min_lr, warmup_steps=warmup, max_steps=max_steps)
    want = torch.tensor([lr_at(s, config) for s in steps], dtype=torch.float64)
    cos = lambda s, low=min_lr: low + 0.5 * (lr - low) * (1 + math.cos(math.pi * s / max_steps))
    warm = lambda s: min(1.0, (s + 1) / warmup)
    rule = lambda f: torch.tensor([f(s) for s in steps], dtype=torch.float64)
    after_warmup = lambda s: cos((s - warmup) / (max_steps - warmup) * max_steps)   # the cosine over S - W steps
    nanogpt = lambda s: lr * (s + 1) / (warmup + 1) if s < warmup else after_warmup(s)
    diagnose(got, {
        "no warmup: the first steps should rise linearly, (step + 1) / warmup_steps of the rate": rule(cos),
        "during the warmup the rate rose towards lr itself: the schedule multiplies the warmup factor by the "
        "cosine, min(1, (step + 1) / warmup_steps) · cosine(step), at every step":
            rule(lambda s: lr * (s + 1) / warmup if s < warmup else cos(s)),
        "that is nanoGPT's schedule (a warmup to lr, then a cosine over the steps after it); this course's is the "
        "product of section 6, min(1, (step + 1) / warmup_steps) · cosine(step / max_steps)": rule(nanogpt),
        "the cosine decays to 0: it should end at min_lr": rule(lambda s: warm(s) * cos(s, 0.0)),
        "the warmup starts at 0 (step / warmup_steps), so step 0 learns nothing: use (step + 1) / warmup_steps":
            rule(lambda s: min(1.0, s / warmup) * cos(s)),
        "a linear decay: the schedule falls along half a cosine, ½ (1 + cos(π · step / max_steps))":
            rule(lambda s: warm(s) * (lr - (lr - min_lr) * s / max_steps)),
    }, rtol=1e-6, atol=1e-12)
    expect_close(got, want, "your schedule", rtol=1e-6, atol=1e-12)
    return f"it starts at {want[0]:.1e}, peaks near step {warmup} and ends at min_lr = {min_lr:.0e}."
