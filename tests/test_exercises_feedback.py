"""The checker framework every notebook's exercises use: one printed line, a bool, never an exception."""
import pytest
import torch

from linformer_edu.exercises import Mistake, call, checker, diagnose, expect_close, expect_number, expect_shape
from linformer_edu.exercises._feedback import KEEPDIM, call_on_batch


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
    (lambda q, k: torch.stack([scores(q, k)] * 3), "wrong shape: expected (2, 4, 4), got (3, 2, 4, 4) — an extra "
                                                   "axis: did you forget to merge or sum over an axis?"),
    (lambda q, k: scores(q, k)[:, None], "wrong shape: expected (2, 4, 4), got (2, 1, 4, 4) — extra axes of size 1: "
                                         "a keepdim=True (or [..., None]) kept an axis the answer drops"),
    (lambda q, k: scores(q, k) / 8 ** 0.5 + torch.eye(4), "the shape is right but the values differ: largest "
                                                          "difference 1 at index (0, 0, 0)"),
    (lambda q, k: scores(q, k) / 0, "your answer contains NaN or infinity — look for a division by zero or log "
                                    "of zero"),
], ids=["known slip", "transposed", "axis missing", "extra axis", "extra size-1 axis", "values", "infinity"])
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


MAX = ("max(dim=…) returns a named tuple (values, indices), not a tensor: take its .values, or call amax(dim=…), which "
       "returns the values alone")


@pytest.mark.parametrize("answer, message", [
    (lambda q, k: scores(q, k) - scores(q, k).max(dim=-1, keepdim=True),
     f"your function raised TypeError: unsupported operand type(s) for -: 'Tensor' and 'torch.return_types.max' — "
     f"{MAX}"),
    (lambda q, k: scores(q, k).max(dim=-1), f"your answer should be a torch.Tensor, got a named tuple — {MAX}"),
    (lambda q, k: scores(q, k) < scores(q, k).topk(2), "your function raised TypeError: '<' not supported between "
                                                       "instances of 'Tensor' and 'torch.return_types.topk' — topk(…) "
                                                       "returns a named tuple (values, indices), not a tensor: take "
                                                       "its .values"),
    (lambda q, k: q @ torch.linalg.lstsq(q, k), "your function raised TypeError: unsupported operand type(s) for @: "
                                                "'Tensor' and 'torch.return_types.linalg_lstsq' — linalg.lstsq(…) "
                                                "returns a named tuple (solution, residuals, rank, singular_values), "
                                                "not a tensor: take its .solution"),
    (lambda q, k: scores(q, k).masked_fill(torch.ones(4, 4).triu(1), 0.0),
     "your function raised RuntimeError: masked_fill_ only supports boolean masks, but got mask with dtype float — "
     "masked_fill needs a bool mask, True where the value goes in: make one with a comparison (mask == 0) or .bool()"),
], ids=["max in a sum", "max returned", "topk", "lstsq", "float mask"])
def test_slips_every_exercise_shares_are_named(answer, message, feedback):
    assert feedback(check_scores, answer) == (False, f"✗ Exercise 0 - scaled scores: {message}")


def test_a_checker_names_the_slips_it_expects_and_only_those(raises_exactly):
    rows = torch.ones(3, 4)
    without_keepdim = lambda x: x / x.sum(dim=-1)
    with raises_exactly(Mistake, "your function raised RuntimeError: The size of tensor a (4) must match the size of "
                                 f"tensor b (3) at non-singleton dimension 1 — {KEEPDIM[next(iter(KEEPDIM))]}"):
        call(without_keepdim, rows, hints=KEEPDIM)
    with raises_exactly(Mistake, "your function raised RuntimeError: The size of tensor a (4) must match the size of "
                                 "tensor b (3) at non-singleton dimension 1"):
        call(without_keepdim, rows)


def test_call_gives_the_answer_copies_of_lists_too():
    blocks = [torch.zeros(2), torch.ones(2)]
    call(lambda b: (b.reverse(), b[0].add_(5)), blocks)
    assert [t.tolist() for t in blocks] == [[0.0, 0.0], [1.0, 1.0]]


def total(s):
    return s.sum(-1)


@pytest.mark.parametrize("answer, message", [
    (lambda s: s.sum(), "right for a single row, but the input is a batch of them, shape (3, 4): work along the last "
                        "axis ([..., i], sum(dim=-1)), so that each row gets its answer"),
    (lambda s: s.view(5), "your function raised RuntimeError: shape '[5]' is invalid for input of size 12"),
    (lambda s: s / s.sum(-1), "your function raised RuntimeError: The size of tensor a (4) must match the size of "
                              f"tensor b (3) at non-singleton dimension 1 — {KEEPDIM[next(iter(KEEPDIM))]}"),
], ids=["written for one", "other crash", "named crash"])
def test_an_answer_written_for_one_item_is_told_so(answer, message, raises_exactly):
    batch = torch.arange(12.0).view(3, 4)
    assert torch.equal(call_on_batch(total, batch, want=total(batch), item="row"), total(batch))
    with raises_exactly(Mistake, message):
        call_on_batch(answer, batch, want=total(batch), item="row", hints=KEEPDIM)
