"""Exercises for notebook 09, reversible layers: undo a whole stack of couplings, and invert an affine coupling
(the kind RealNVP and Glow use). Each `check_*` takes the learner's function; each `solution_*` is the worked
solution.
"""
import torch
from torch import nn

from ._feedback import Mistake, call, checker, diagnose, expect_close


def _randn(*shape, seed):
    """Seeded numbers that leave the notebook's own random state alone."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _net(width, seed):
    """A small fixed network, the f or g of a coupling."""
    with torch.random.fork_rng(devices=[]):   # nn.Linear's own initialisation must not move the global RNG
        net = nn.Sequential(nn.Linear(width, 2 * width), nn.Tanh(), nn.Linear(2 * width, width))
    net.requires_grad_(False)
    for i, p in enumerate(net.parameters()):
        p.copy_(0.5 * _randn(*p.shape, seed=100 * seed + i))
    return net


def _pair(got, what="your function"):
    """The answer must be two tensors (x1, x2); returned as one tensor, x1 and x2 side by side."""
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        raise Mistake(f"{what} should return a pair of tensors (x1, x2), got {type(got).__name__}")
    return torch.cat([got[0], got[1]], dim=-1)


def couple(x1, x2, f, g):
    """One reversible block: y1 = x1 + f(x2), y2 = x2 + g(y1)."""
    y1 = x1 + f(x2)
    return y1, x2 + g(y1)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: undo a whole stack

def solution_invert_stack(y1, y2, blocks):
    """The input (x1, x2) of a stack of couplings `blocks` = [(f, g), ...] from its output (y1, y2)."""
    for f, g in reversed(blocks):   # the last block ran last, so it is undone first
        x2 = y2 - g(y1)
        x1 = y1 - f(x2)
        y1, y2 = x1, x2
    return y1, y2


@checker("Exercise 1 - undo a stack of couplings")
def check_invert_stack(invert_stack):
    """`invert_stack(y1, y2, blocks)` returns the (x1, x2) that the stack turned into (y1, y2)."""
    width = 6
    blocks = [(_net(width, 2 * i), _net(width, 2 * i + 1)) for i in range(3)]
    x1, x2 = _randn(4, width, seed=1), _randn(4, width, seed=2)
    y1, y2 = x1, x2
    for f, g in blocks:
        y1, y2 = couple(y1, y2, f, g)
    got = _pair(call(invert_stack, y1, y2, blocks), "invert_stack")

    def undo(order, sign=-1, f_first=False):
        a, b = y1, y2
        for f, g in order:
            if f_first:   # x1 from y2 instead of the recovered x2
                a, b = a - f(b), b - g(a)
            else:
                b = b + sign * g(a)
                a = a + sign * f(b)
        return torch.cat([a, b], dim=-1)

    diagnose(got, {
        "the blocks were undone in the order they ran: the last block ran last, so undo it first "
        "(iterate over reversed(blocks))": undo(blocks),
        "a sign slip: undoing y2 = x2 + g(y1) subtracts, x2 = y2 - g(y1)": undo(blocks[::-1], sign=+1),
        "x1 was computed from y2: f was applied to x2, so recover x2 = y2 - g(y1) first, then x1 = y1 - f(x2)":
            undo(blocks[::-1], f_first=True),
    })
    expect_close(got, torch.cat([x1, x2], dim=-1), "the recovered input", rtol=1e-4, atol=1e-5)
    return "three blocks undone, last one first: nothing had to be stored but the output."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: invert an affine coupling

def affine_couple(x1, x2, f, g, s):
    """An affine coupling: y1 = x1 · exp(s(x2)) + f(x2), y2 = x2 + g(y1)."""
    y1 = x1 * s(x2).exp() + f(x2)
    return y1, x2 + g(y1)


def solution_invert_affine(y1, y2, f, g, s):
    """The inverse of `affine_couple`: x2 = y2 - g(y1), then x1 = (y1 - f(x2)) · exp(-s(x2))."""
    x2 = y2 - g(y1)
    x1 = (y1 - f(x2)) * (-s(x2)).exp()
    return x1, x2


@checker("Exercise 2 - invert an affine coupling")
def check_invert_affine(invert_affine):
    """`invert_affine(y1, y2, f, g, s)` undoes y1 = x1·exp(s(x2)) + f(x2), y2 = x2 + g(y1)."""
    width = 5
    f, g, s = _net(width, 10), _net(width, 11), _net(width, 12)
    x1, x2 = _randn(3, width, seed=3), _randn(3, width, seed=4)
    y1, y2 = affine_couple(x1, x2, f, g, s)
    got = _pair(call(invert_affine, y1, y2, f, g, s), "invert_affine")
    x2_ = y2 - g(y1)
    diagnose(got, {
        "the scale was undone before the shift: y1 = x1·e^s + f, so subtract f(x2) first, then divide by e^s":
            torch.cat([y1 * (-s(x2_)).exp() - f(x2_), x2_], dim=-1),
        "multiplied by exp(s(x2)) again: undoing a multiplication divides, x1 = (y1 - f(x2)) · exp(-s(x2))":
            torch.cat([(y1 - f(x2_)) * s(x2_).exp(), x2_], dim=-1),
        "the scale was left out: only the shift f(x2) was undone": torch.cat([y1 - f(x2_), x2_], dim=-1),
        "f and s were given y2: they take x2, so recover x2 = y2 - g(y1) first and use it in both":
            torch.cat([(y1 - f(y2)) * (-s(y2)).exp(), x2_], dim=-1),
    })
    expect_close(got, torch.cat([x1, x2], dim=-1), "the recovered input", rtol=1e-4, atol=1e-5)
    return "a learned scale keeps the block invertible as long as exp(s) never reaches 0."


__all__ = ["affine_couple", "check_invert_affine", "check_invert_stack", "couple", "solution_invert_affine",
           "solution_invert_stack"]
