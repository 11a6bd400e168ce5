"""The small framework behind every exercise checker: run the learner's answer, compare it with the worked
solution, and say in plain words what is wrong.

A checker body is ordinary code that raises `Mistake("what is wrong, in plain words")` at the first problem;
the `@checker(title)` decorator turns that into one printed line and a bool, and never lets an exception out:

    @checker("Exercise 1 - scaled scores")
    def check_scores(scores):                    # the learner passes their function
        q, k = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
        got = call(scores, q, k)                 # their exception becomes feedback, not a traceback
        want = q @ k.transpose(-2, -1) / 8 ** 0.5
        expect_shape(got, want.shape)            # "wrong shape: expected (2, 4, 4), got ..."
        diagnose(got, {"scores not scaled by 1/√d": q @ k.transpose(-2, -1)})   # known wrong answers
        expect_close(got, want)
        return "the scores are right."           # optional: said after "correct"

    check_scores(my_scores)   # prints "✓ Exercise 1 - scaled scores: correct — the scores are right." -> True
"""
import functools
import math

import torch


class Mistake(Exception):
    """What is wrong with an answer, in plain words. Raised inside a checker body, printed by `checker`."""


def checker(title):
    """Decorator: a body that raises `Mistake` becomes a checker that prints one line and returns a bool."""
    def wrap(body):
        @functools.wraps(body)
        def check(*answer, **options):
            try:
                note = body(*answer, **options)
            except Mistake as mistake:
                print(f"✗ {title}: {mistake}")
                return False
            except Exception as error:  # a checker never raises: an answer it cannot even compare is feedback too
                print(f"✗ {title}: could not check this answer ({type(error).__name__}: {error})")
                return False
            print(f"✓ {title}: correct" + (f" — {note}" if note else "."))
            return True
        return check
    return wrap


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs) on copies of the tensors; a non-function or an exception becomes a `Mistake`."""
    if not callable(fn):
        raise Mistake(f"expected a function, got a value of type {type(fn).__name__} — pass the function itself, "
                      f"without calling it (`check(f)`, not `check(f(...))`)")
    copy = lambda a: a.clone() if isinstance(a, torch.Tensor) else a
    try:
        return fn(*map(copy, args), **{name: copy(a) for name, a in kwargs.items()})
    except Exception as error:
        raise Mistake(f"your function raised {type(error).__name__}: {error}") from None


def expect(condition, message):
    """A plain requirement: `Mistake(message)` unless `condition` holds."""
    if not condition:
        raise Mistake(message)


def expect_tensor(got, what="your answer"):
    """A floating-point tensor; numbers and lists are turned into one."""
    if got is None:
        raise Mistake(f"{what} is None — did you forget to `return` it?")
    if isinstance(got, (int, float)):
        got = torch.tensor(float(got))
    if not isinstance(got, torch.Tensor):
        raise Mistake(f"{what} should be a torch.Tensor, got a value of type {type(got).__name__}")
    if not got.is_floating_point():
        raise Mistake(f"{what} should hold floating-point numbers, got dtype {got.dtype}")
    return got


def shape_hint(got, want):
    """A guess at how a wrong shape arose, or ''."""
    got, want = tuple(got), tuple(want)
    if len(got) == len(want) and sorted(got) == sorted(want):
        return " — the right sizes in the wrong order: did you transpose the wrong axes?"
    if len(got) < len(want):
        return " — an axis is missing: did you sum, index or squeeze away an axis you should keep?"
    if len(got) > len(want):
        return " — an extra axis: did you forget to merge or sum over an axis?"
    return ""


def expect_shape(got, shape, what="your answer"):
    """`got` is a tensor of exactly `shape`; the message names both shapes and guesses why they differ."""
    got = expect_tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        raise Mistake(f"wrong shape: expected {tuple(shape)}, got {tuple(got.shape)}{shape_hint(got.shape, shape)}")
    return got


def is_close(got, want, rtol=1e-4, atol=1e-5):
    """True when `got` and `want` have one shape and equal values within tolerance; never raises."""
    got, want = torch.as_tensor(got).detach().double().cpu(), torch.as_tensor(want).detach().double().cpu()
    return got.shape == want.shape and bool(torch.allclose(got, want, rtol=rtol, atol=atol, equal_nan=False))


def diagnose(got, wrong_answers, rtol=1e-4, atol=1e-5):
    """If `got` equals one of the typical wrong answers {message: tensor}, raise `Mistake(message)`."""
    for message, wrong in wrong_answers.items():
        if is_close(got, wrong, rtol, atol):
            raise Mistake(message)


def expect_close(got, want, what="your answer", rtol=1e-4, atol=1e-5):
    """Same shape and values as `want`; otherwise say how far off the worst entry is."""
    got = expect_shape(got, torch.as_tensor(want).shape, what)
    if not torch.isfinite(got).all():
        raise Mistake(f"{what} contains NaN or infinity — look for a division by zero or log of zero")
    if not is_close(got, want, rtol, atol):
        diff = (got.detach().double().cpu() - torch.as_tensor(want).double().cpu()).abs()
        worst = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        raise Mistake(f"the shape is right but the values differ: largest difference {diff.max().item():.3g} "
                      f"at index {worst}")
    return got


def expect_number(got, want, what="your answer", rel=1e-3, abs_=1e-6):
    """A single number close to `want` (a Python number or a one-element tensor)."""
    if isinstance(got, torch.Tensor):
        expect(got.numel() == 1, f"{what} should be one number, got a tensor of shape {tuple(got.shape)}")
        got = got.item()
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"{what} should be a number, got a value of type {type(got).__name__}")
    expect(math.isclose(got, want, rel_tol=rel, abs_tol=abs_), f"{what} is {got:.4g}, expected {want:.4g}")
    return got
