"""Notebook 00's warm-up checkers: typical wrong answers get the right feedback."""
import pytest

from linformer_edu.exercises import nb00


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
    (lambda x: x.softmax(-1), "the shape is right but the values differ"),
    (lambda x: x / x.sum(dim=-1, keepdim=True) + 0.1, "the rows do not sum to 1"),
    (lambda x: None, "did you forget to `return` it?"),
])
def test_normalize_rows_mistakes(answer, message, feedback):
    ok, out = feedback(nb00.check_normalize_rows, answer)
    assert not ok and out.startswith("✗ Exercise 2 - rows that sum to 1: ") and message in out
