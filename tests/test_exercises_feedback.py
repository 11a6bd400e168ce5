"""The checker framework every notebook's exercises use: one printed line, a bool, never an exception."""
import torch

from linformer_edu.exercises import Mistake, call, checker, diagnose, expect_close, expect_number, expect_shape


@checker("Exercise 0 - scaled scores")
def check_scores(fn):
    q, k = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0)), torch.ones(2, 4, 8)
    got = call(fn, q, k)
    want = q @ k.transpose(-2, -1) / 8 ** 0.5
    expect_shape(got, want.shape)
    diagnose(got, {"scores not scaled by 1/√d": q @ k.transpose(-2, -1)})
    expect_close(got, want)
    return "well done."


def run(fn, capsys):
    ok = check_scores(fn)
    return ok, capsys.readouterr().out.strip()


def test_right_answer_passes_with_the_takeaway(capsys):
    assert run(lambda q, k: q @ k.transpose(-2, -1) / 8 ** 0.5, capsys) == (
        True, "✓ Exercise 0 - scaled scores: correct — well done.")


def test_known_wrong_answer_is_named(capsys):
    assert run(lambda q, k: q @ k.transpose(-2, -1), capsys) == (
        False, "✗ Exercise 0 - scaled scores: scores not scaled by 1/√d")


def test_wrong_shapes_come_with_a_guess(capsys):
    ok, out = run(lambda q, k: (q @ k.transpose(-2, -1)).transpose(0, 1), capsys)
    assert not ok and out.endswith("wrong shape: expected (2, 4, 4), got (4, 2, 4) — the right sizes in the "
                                   "wrong order: did you transpose the wrong axes?")
    ok, out = run(lambda q, k: (q @ k.transpose(-2, -1)).sum(-1), capsys)
    assert not ok and "an axis is missing" in out
    ok, out = run(lambda q, k: (q @ k.transpose(-2, -1))[None], capsys)
    assert not ok and "an extra axis" in out


def test_crashes_none_and_non_functions_are_feedback_not_exceptions(capsys):
    assert run(lambda q, k: 1 / 0, capsys) == (
        False, "✗ Exercise 0 - scaled scores: your function raised ZeroDivisionError: division by zero")
    assert run(lambda q, k: None, capsys) == (
        False, "✗ Exercise 0 - scaled scores: your answer is None — did you forget to `return` it?")
    ok, out = run(torch.zeros(3), capsys)
    assert not ok and "expected a function, got a value of type Tensor" in out
    ok, out = run(lambda q, k: q.long() @ k.long().transpose(-2, -1), capsys)
    assert not ok and "floating-point" in out


def test_values_that_differ_say_where(capsys):
    ok, out = run(lambda q, k: q @ k.transpose(-2, -1) / 8 ** 0.5 + torch.eye(4), capsys)
    assert not ok and "the shape is right but the values differ: largest difference 1 at index (0, 0, 0)" in out


def test_call_gives_the_answer_copies():
    x = torch.zeros(3)
    call(lambda t: t.add_(1), x)
    assert torch.equal(x, torch.zeros(3))


def test_expect_number():
    assert expect_number(torch.tensor(2.0), 2.0) == 2.0
    for bad, message in [(3.0, "your answer is 3, expected 2"), ("2", "should be a number"),
                         (torch.ones(2), "should be one number")]:
        try:
            expect_number(bad, 2.0)
        except Mistake as mistake:
            assert message in str(mistake)
        else:
            raise AssertionError(f"{bad!r} passed")
