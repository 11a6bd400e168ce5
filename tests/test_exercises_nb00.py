"""Notebook 00's warm-up checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb00
from linformer_edu.exercises._feedback import KEEPDIM

KEEPDIM_HINT = KEEPDIM[next(iter(KEEPDIM))]


@pytest.mark.parametrize("answer, message", [
    (lambda a, b: b @ a.T, "wrong shape: expected (3, 5), got (5, 3) — the right sizes in the wrong order"),
    (lambda a, b: a.T @ b, "your function raised RuntimeError"),
    (lambda a, b: (a * b).sum(-1), "your function raised RuntimeError"),
    (lambda a, b: a @ b.T / 2, "each entry is off by a factor"),
    (lambda a, b: (a @ b.T).sum(-1), "an axis is missing"),
])
def test_all_dot_products_mistakes(answer, message, feedback):
    ok, out = feedback(nb00.check_all_dot_products, answer)
    assert not ok and out.startswith("✗ Exercise 1 - all dot products: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda x: x / x.sum(dim=-2, keepdim=True), "the columns sum to 1, not the rows"),
    (lambda x: x / x.sum(), "divided by the sum of the whole tensor"),
    (lambda x: x / x.amax(dim=-1, keepdim=True), "divided by the row maximum"),
    (lambda x: x / x.sum(dim=-1), "your function raised RuntimeError"),
    (lambda x: x.softmax(-1).roll(1, -1), "the shape is right but the values differ"),
    (lambda x: x / x.sum(dim=-1, keepdim=True) + 0.1, "the rows do not sum to 1"),
    (lambda x: None, "did you forget to `return` it?"),
])
def test_normalize_rows_mistakes(answer, message, feedback):
    ok, out = feedback(nb00.check_normalize_rows, answer)
    assert not ok and out.startswith("✗ Exercise 2 - rows that sum to 1: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda a, b: a @ b, "your function raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (3x4 and 5x4) "
                         "— the inner sizes of a matrix product must agree, (n, d) @ (d, m): transpose b, not a"),
    (lambda a, b: a.T @ b, "your function raised RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x3 and "
                           "5x4) — the inner sizes of a matrix product must agree, (n, d) @ (d, m): transpose b, not a"),
    (lambda a, b: (a * b).sum(-1), "your function raised RuntimeError: The size of tensor a (3) must match the size of "
                                   "tensor b (5) at non-singleton dimension 0 — a * b multiplies entry by entry, row i "
                                   "of a with row i of b only (and needs n = m); every pair a[i] · b[j] at once is a "
                                   "matrix product"),
    (torch.dot, "your function raised RuntimeError: 1D tensors expected, but got 2D and 2D tensors — torch.dot takes "
                "two vectors, one pair at a time; every pair at once is a matrix product"),
], ids=["a @ b", "a.T @ b", "a * b", "torch.dot"])
def test_all_dot_products_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb00.check_all_dot_products, answer) == (False, f"✗ Exercise 1 - all dot products: {message}")


@pytest.mark.parametrize("answer, message", [
    (lambda x: x / x.sum(dim=-1), "your function raised RuntimeError: The size of tensor a (4) must match the size of "
                                  f"tensor b (3) at non-singleton dimension 2 — {KEEPDIM_HINT}"),
    (lambda x: x / x.norm(dim=-1, keepdim=True), "divided by each row's length (its L2 norm): then the squares sum to "
                                                 "1; for the entries to sum to 1, divide by the row's sum"),
    (lambda x: x.softmax(-1), "a softmax exponentiates first: these entries are already positive, so divide each by "
                              "its row's sum as it is"),
    (lambda x: x / x.max(dim=-1, keepdim=True), "your function raised TypeError: unsupported operand type(s) for /: "
                                                "'Tensor' and 'torch.return_types.max' — max(dim=…) returns a named "
                                                "tuple (values, indices), not a tensor: take its .values, or call "
                                                "amax(dim=…), which returns the values alone"),
], ids=["no keepdim", "L2 norm", "softmax", "max tuple"])
def test_normalize_rows_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb00.check_normalize_rows, answer) == (False, f"✗ Exercise 2 - rows that sum to 1: {message}")
