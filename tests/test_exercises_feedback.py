"""The checker framework every notebook's exercises use: one printed line, a bool, never an exception."""
import pytest
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


def scores(q, k):
    return q @ k.transpose(-2, -1)


def test_right_answer_passes_with_the_takeaway(feedback):
    assert feedback(check_scores, lambda q, k: scores(q, k) / 8 ** 0.5) == (
        True, "✓ Exercise 0 - scaled scores: correct — well done.")


@pytest.mark.parametrize("answer, message", [
    (scores, "scores not scaled by 1/√d"),
    (lambda q, k: scores(q, k).transpose(0, 1), "wrong shape: expected (2, 4, 4), got (4, 2, 4) — the right sizes in "
                                                "the wrong order: did you transpose the wrong axes?"),
    (lambda q, k: scores(q, k).sum(-1), "wrong shape: expected (2, 4, 4), got (2, 4) — an axis is missing: did you "
                                        "sum, index or squeeze away an axis you should keep?"),
    (lambda q, k: scores(q, k)[None], "wrong shape: expected (2, 4, 4), got (1, 2, 4, 4) — an extra axis: did you "
                                      "forget to merge or sum over an axis?"),
    (lambda q, k: scores(q, k) / 8 ** 0.5 + torch.eye(4), "the shape is right but the values differ: largest "
                                                          "difference 1 at index (0, 0, 0)"),
    (lambda q, k: scores(q, k) / 0, "your answer contains NaN or infinity — look for a division by zero or log "
                                    "of zero"),
], ids=["known slip", "transposed", "axis missing", "extra axis", "values", "infinity"])
def test_wrong_answers_are_named(answer, message, feedback):
    assert feedback(check_scores, answer) == (False, f"✗ Exercise 0 - scaled scores: {message}")


@pytest.mark.parametrize("answer, message", [
    (lambda q, k: 1 / 0, "your function raised ZeroDivisionError: division by zero"),
    (lambda q, k: None, "your answer is None — did you forget to `return` it?"),
    (torch.zeros(3), "expected a function, got a value of type Tensor — pass the function itself, without calling it "
                     "(`check(f)`, not `check(f(...))`)"),
    (lambda q, k: q.long() @ k.long().transpose(-2, -1), "your answer should hold floating-point numbers, got dtype "
                                                         "torch.int64"),
], ids=["crash", "None", "not a function", "integers"])
def test_crashes_none_and_non_functions_are_feedback_not_exceptions(answer, message, feedback):
    assert feedback(check_scores, answer) == (False, f"✗ Exercise 0 - scaled scores: {message}")


def test_a_checker_that_cannot_compare_says_so_instead_of_raising(feedback):
    @checker("Exercise 0 - a lookup")
    def check_lookup(answer):
        return {"a": 1}[call(answer)]
    assert feedback(check_lookup, lambda: "b") == (
        False, "✗ Exercise 0 - a lookup: could not check this answer (KeyError: 'b')")


def test_call_gives_the_answer_copies():
    x = torch.zeros(3)
    call(lambda t: t.add_(1), x)
    assert torch.equal(x, torch.zeros(3))


def test_expect_number_takes_a_one_element_tensor():
    assert expect_number(torch.tensor(2.0), 2.0) == 2.0


@pytest.mark.parametrize("answer, message", [
    (3.0, "your answer is 3, expected 2"),
    ("2", "your answer should be a number, got a value of type str"),
    (True, "your answer should be a number, got a value of type bool"),
    (torch.ones(2), "your answer should be one number, got a tensor of shape (2,)"),
])
def test_expect_number_names_what_is_wrong(answer, message, raises_exactly):
    with raises_exactly(Mistake, message):
        expect_number(answer, 2.0)
