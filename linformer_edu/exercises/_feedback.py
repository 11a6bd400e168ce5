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
import re

import torch

# Raw PyTorch errors that a common slip produces, and the slip in plain words. A checker whose exercise invites a
# slip passes its hint to `call`, e.g. `call(fn, x, hints=KEEPDIM)`; the ones below hold for every exercise.
BROADCAST = r"The size of tensor a \(\d+\) must match the size of tensor b"
KEEPDIM = {BROADCAST: "did you forget keepdim=True? A sum (or amax, mean …) over the last axis drops that axis, "
                      "so the result no longer lines up with the rows it came from; keepdim=True keeps it, size 1"}
ALWAYS = {r"masked_fill_? only supports boolean masks": "masked_fill needs a bool mask, True where the value goes "
                                                        "in: make one with a comparison (mask == 0) or .bool()"}


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


def named_tuple_hint(name):
    """What to take from `torch.return_types.<name>` (what max(dim=…), topk, lstsq … return) to get a tensor."""
    fields = getattr(getattr(torch.return_types, name, None), "__match_args__", ())
    if not fields:
        return f"{name} returns a named tuple, not a tensor"
    hint = (f"{name.replace('linalg_', 'linalg.')}({'dim=…' if name in ('max', 'min') else '…'}) returns a named "
            f"tuple ({', '.join(fields)}), not a tensor: take its .{fields[0]}")
    return hint + (f", or call a{name}(dim=…), which returns the values alone" if name in ("max", "min") else "")


def error_hint(error, hints=None):
    """The slip behind a raw exception, from `hints` {regex: hint} or the ones that always hold, or ''."""
    text = f"{type(error).__name__}: {error}"
    for pattern, hint in {**(hints or {}), **ALWAYS}.items():
        if re.search(pattern, text):
            return hint
    named = re.search(r"torch\.return_types\.(\w+)", text)
    return named_tuple_hint(named[1]) if named else ""


def _copy(a):
    """Tensors cloned, lists copied (their tensors cloned): an answer that changes its inputs changes no one else's."""
    if isinstance(a, torch.Tensor):
        return a.clone()
    return [_copy(x) for x in a] if isinstance(a, list) else a


def call(fn, *args, hints=None, **kwargs):
    """fn(*args, **kwargs) on copies of the tensors and lists; a non-function or an exception becomes a `Mistake`,
    which names the slip behind the exception when `hints` {regex on "Type: message": hint} or `ALWAYS` know it."""
    if not callable(fn):
        raise Mistake(f"expected a function, got a value of type {type(fn).__name__} — pass the function itself, "
                      f"without calling it (`check(f)`, not `check(f(...))`)")
    try:
        return fn(*map(_copy, args), **{name: _copy(a) for name, a in kwargs.items()})
    except Exception as error:
        hint = error_hint(error, hints)
        mistake = Mistake(f"your function raised {type(error).__name__}: {error}" + (f" — {hint}" if hint else ""))
        mistake.named = bool(hint)   # the slip is named: nothing better to say
        raise mistake from None


def call_on_batch(fn, batch, *args, want, item, hints=None):
    """fn(batch, *args), which should give `want`, one result per `item` of `batch`. An answer that fails on the
    batch (raises, or gives another shape) but is right for the single item batch[0] is told it was written for one."""
    failure, got = None, None
    try:
        got = call(fn, batch, *args, hints=hints)
        if getattr(got, "shape", None) == want.shape:
            return got
    except Mistake as mistake:
        if getattr(mistake, "named", False):
            raise
        failure = mistake
    try:
        one = call(fn, batch[0], *args)
    except Mistake:
        one = None
    if isinstance(one, (torch.Tensor, int, float)) and is_close(one, want[0]):
        raise Mistake(f"right for a single {item}, but the input is a batch of them, shape {tuple(batch.shape)}: "
                      f"work along the last axis ([..., i], sum(dim=-1)), so that each {item} gets its answer")
    if failure is not None:
        raise failure
    return got


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
    if type(got).__module__ == "torch.return_types":
        raise Mistake(f"{what} should be a torch.Tensor, got a named tuple — {named_tuple_hint(type(got).__name__)}")
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
    if len(got) > len(want) and [n for n in got if n != 1] == [n for n in want if n != 1]:
        return " — extra axes of size 1: a keepdim=True (or [..., None]) kept an axis the answer drops"
    if len(got) > len(want):
        return " — an extra axis: did you forget to merge or sum over an axis?"
    return ""


def expect_shape(got, shape, what="your answer"):
    """`got` is a tensor of exactly `shape`; the message names both shapes and guesses why they differ."""
    got = expect_tensor(got, what)
    if tuple(got.shape) != tuple(shape):
        raise Mistake(f"wrong shape: expected {tuple(shape)}, got {tuple(got.shape)}{shape_hint(got.shape, shape)}")
    return got


def is_close(got, want, rtol=1e-4, atol=1e-5, equal_nan=False):
    """True when `got` and `want` have one shape and equal values within tolerance; never raises."""
    got, want = torch.as_tensor(got).detach().double().cpu(), torch.as_tensor(want).detach().double().cpu()
    return got.shape == want.shape and bool(torch.allclose(got, want, rtol=rtol, atol=atol, equal_nan=equal_nan))


def diagnose(got, wrong_answers, rtol=1e-4, atol=1e-5):
    """If `got` equals one of the typical wrong answers {message: tensor}, raise `Mistake(message)`. A NaN matches
    a NaN: a slip that yields NaN (a row with every score masked) is recognised by where its NaNs are."""
    for message, wrong in wrong_answers.items():
        if is_close(got, wrong, rtol, atol, equal_nan=True):
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
