"""Notebook 05's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb05
from linformer_edu.lowrank import best_rank_error, fit_values, relative_error


def test_worked_solutions_are_what_the_explorer_computes():
    g = torch.Generator().manual_seed(0)
    A, B = torch.rand(3, 7, 7, generator=g), torch.rand(3, 7, 7, generator=g)
    torch.testing.assert_close(nb05.solution_relative_error(A, B), relative_error(A, B))
    s = torch.linalg.svdvals(A)
    for k in (1, 4, 7):
        torch.testing.assert_close(nb05.solution_best_rank_error(s, k), best_rank_error(s, k))
    p_bar = torch.rand(3, 7, 2, generator=g).softmax(-1)
    torch.testing.assert_close(nb05.solution_fitted_effective_map(p_bar, A), fit_values(p_bar, A))


def frobenius(t):
    return t.pow(2).sum((-2, -1)).sqrt()


@pytest.mark.parametrize("answer, message", [
    (lambda A, B: frobenius(A - B), "that is the absolute error ‖A − Â‖_F: divide by ‖A‖_F"),
    (lambda A, B: frobenius(A - B) / frobenius(B), "you divided by ‖Â‖_F, the approximation's norm"),
    (lambda A, B: (frobenius(A - B) / frobenius(A)) ** 2, "that is the squared ratio"),
    (lambda A, B: (A - B).abs().sum((-2, -1)) / A.abs().sum((-2, -1)),
     "the sum of absolute differences is not the Frobenius norm"),
    (lambda A, B: frobenius(A - B)[None] / frobenius(A), "wrong shape: expected (3,), got (1, 3)"),
    (lambda A, B: None, "your result for 3 maps of 6×6 is None — did you forget to `return` it?"),
])
def test_relative_error_mistakes_are_named(answer, message, feedback):
    ok, out = feedback(nb05.check_relative_error, answer)
    assert not ok and out.startswith("✗ Exercise 1 - the relative error: ") and message in out


def share(s, start, stop=None):
    e = s.pow(2)
    return e[..., start:stop].sum(-1) / e.sum(-1)


@pytest.mark.parametrize("answer, message", [
    (lambda s, k: s[..., k:].sum(-1) / s.sum(-1), "for k=3: the singular values add up as squares"),
    (lambda s, k: share(s, k), "for k=3: that is the squared error — take the square root"),
    (lambda s, k: share(s, 0, k).sqrt(), "for k=3: that is the share the rank-k map keeps"),
    (lambda s, k: share(s, k - 1).sqrt(), "for k=3: one singular value too many is dropped"),
    (lambda s, k: share(s, k + 1).sqrt(), "for k=3: one singular value too few is dropped"),
    (lambda s, k: share(s, k).sqrt() + 0.01, "for k=3: the shape is right but the values differ"),
])
def test_best_rank_error_mistakes_are_named(answer, message, feedback):
    ok, out = feedback(nb05.check_best_rank_error, answer)
    assert not ok and out.startswith("✗ Exercise 2 - the best rank-k error: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda p, A: p @ p.transpose(-1, -2) @ A, "P̄ P̄ᵀ A is not a least-squares fit"),
    (lambda p, A: A.clone(), "that is A itself"),
    (lambda p, A: torch.linalg.pinv(p) @ A, "that looks like F (k, n): return the effective map P̄ F (n, n)"),
    (lambda p, A: p @ torch.linalg.pinv(p) @ A + 0.01, "the shape is right but the values differ"),
    (lambda p, A: 1 / 0, "your function raised ZeroDivisionError"),
])
def test_fitted_effective_map_mistakes_are_named(answer, message, feedback):
    ok, out = feedback(nb05.check_fitted_effective_map, answer)
    assert not ok and out.startswith("✗ Exercise 3 - the best F for a given E: ") and message in out


def test_pinv_is_an_accepted_way_to_fit(feedback):
    ok, _ = feedback(nb05.check_fitted_effective_map, lambda p, A: p @ torch.linalg.pinv(p) @ A)
    assert ok


@pytest.mark.parametrize("answer, message", [
    (lambda A, B: torch.linalg.norm(A - B, dim=-1) / torch.linalg.norm(A, dim=-1),
     "got (3, 6), one number per row of each map: the Frobenius norm runs over both axes of a map, dim=(-2, -1)"),
    (lambda A, B: torch.linalg.norm(A - B) / torch.linalg.norm(A),
     "got one number for the whole batch of 3 maps: take each map's norm over its own two axes, dim=(-2, -1)"),
    (lambda A, B: torch.linalg.matrix_norm(A - B, ord=2) / torch.linalg.matrix_norm(A, ord=2),
     "that is the spectral norm (ord=2, the largest singular value): the relative error uses the Frobenius norm, the "
     "root of the sum of squares (ord='fro', the default)"),
    (lambda A, B: torch.linalg.matrix_norm(A - B, keepdim=True) / torch.linalg.matrix_norm(A, keepdim=True),
     "wrong shape: expected (3,), got (3, 1, 1) — extra axes of size 1: a keepdim=True (or [..., None]) kept an axis "
     "the answer drops"),
], ids=["rows", "whole batch", "spectral", "keepdim"])
def test_relative_error_norm_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb05.check_relative_error, answer) == (False, f"✗ Exercise 1 - the relative error: {message}")


@pytest.mark.parametrize("answer", [
    lambda s, k: (s[k:].pow(2).sum(-1) / s.pow(2).sum(-1)).sqrt(),
    lambda s, k: (s[k:].pow(2).sum() / s.pow(2).sum()).sqrt(),
], ids=["s[k:] on a batch", "sums over everything"])
def test_best_rank_error_written_for_one_spectrum_is_named_exactly(answer, feedback):
    assert feedback(nb05.check_best_rank_error, answer) == (
        False, "✗ Exercise 2 - the best rank-k error: right for a single spectrum, but the input is a batch of them, "
               "shape (2, 8): work along the last axis ([..., i], sum(dim=-1)), so that each spectrum gets its answer")


@pytest.mark.parametrize("answer, message", [
    (lambda p, A: p @ torch.linalg.solve(p, A), "RuntimeError: linalg.solve: A must be batches of square matrices, "
                                                "but they are 10 by 3 matrices — torch.linalg.solve needs a square "
                                                "matrix, and P̄ is n×k: fit in the least-squares sense, "
                                                "torch.linalg.lstsq or torch.linalg.pinv"),
    (lambda p, A: p @ torch.linalg.lstsq(p, A), "TypeError: unsupported operand type(s) for @: 'Tensor' and "
                                                "'torch.return_types.linalg_lstsq' — linalg.lstsq(…) returns a named "
                                                "tuple (solution, residuals, rank, singular_values), not a tensor: "
                                                "take its .solution"),
], ids=["solve", "lstsq tuple"])
def test_fitted_effective_map_solver_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb05.check_fitted_effective_map, answer) == (
        False, f"✗ Exercise 3 - the best F for a given E: your function raised {message}")
