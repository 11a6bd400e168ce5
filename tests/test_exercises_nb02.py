"""Notebook 02's exercise checkers: the worked solutions pass, typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb02


def feedback(check, answer, capsys):
    ok = check(answer)
    return ok, capsys.readouterr().out.strip()


@pytest.mark.parametrize("check, solution", [
    (nb02.check_cumulative_spectrum, nb02.solution_cumulative_spectrum),
    (nb02.check_best_rank_r, nb02.solution_best_rank_r),
    (nb02.check_random_projection, nb02.solution_random_projection),
])
def test_worked_solutions_pass(check, solution, capsys):
    ok, out = feedback(check, solution, capsys)
    assert ok and out.startswith("✓ Exercise") and "correct" in out


@pytest.mark.parametrize("answer, message", [
    (lambda s: s.cumsum(-1), "not normalised: divide the running sum by the total"),
    (lambda s: (s ** 2).cumsum(-1) / (s ** 2).sum(-1, keepdim=True), "you summed squared singular values"),
    (lambda s: s.cumsum(0) / s.sum(0, keepdim=True), "the running sum went along the wrong axis"),
    (lambda s: s.cumsum(-1) / s[..., :1], "divided by the largest singular value instead of the total"),
    (lambda s: s / s.sum(-1, keepdim=True), "not their running sum: use cumsum"),
    (lambda s: s.cumsum(-1).sum(-1), "wrong shape: expected (3, 10), got (3,) — an axis is missing"),
])
def test_cumulative_spectrum_mistakes(answer, message, capsys):
    ok, out = feedback(nb02.check_cumulative_spectrum, answer, capsys)
    assert not ok and out.startswith("✗ Exercise 1 - normalized cumulative spectrum: ") and message in out


def rank_r_with(P, r, *, smallest=False, no_s=False, transposed=False):
    U, S, Vh = torch.linalg.svd(P)
    keep = slice(-r, None) if smallest else slice(None, r)
    Vh = Vh.mT if transposed else Vh
    middle = torch.eye(r).expand(*S.shape[:-1], r, r) if no_s else torch.diag_embed(S[..., keep])
    return U[..., :, keep] @ middle @ Vh[..., keep, :]


@pytest.mark.parametrize("answer, message", [
    (lambda P, r: rank_r_with(P, r, smallest=True), "you kept the r smallest singular values"),
    (lambda P, r: rank_r_with(P, r, no_s=True), "the singular values are missing"),
    (lambda P, r: rank_r_with(P, r, transposed=True), "already returns Vh = Vᵀ"),
    (lambda P, r: P, "that is P itself"),
    (lambda P, r: 1.1 * rank_r_with(P, r), "the shape is right but the values differ"),
    (lambda P, r: P[..., :r], "wrong shape: expected (2, 12, 12), got (2, 12, 3)"),
])
def test_best_rank_r_mistakes(answer, message, capsys):
    ok, out = feedback(nb02.check_best_rank_r, answer, capsys)
    assert not ok and out.startswith("✗ Exercise 2 - best rank-r approximation: ") and message in out


def test_best_rank_r_names_a_rank_too_high(capsys):
    ok, out = feedback(nb02.check_best_rank_r, lambda P, r: rank_r_with(P, r + 1), capsys)
    assert not ok and "the rank of your answer is 4, more than r = 3" in out


@pytest.mark.parametrize("answer, message", [
    (lambda n, k, g: torch.randn(k, n, generator=g), "lengths grow by √k = 5: ‖Rx‖² ≈ 2"),
    (lambda n, k, g: torch.randn(k, n, generator=g) / k, "lengths shrink: ‖Rx‖² ≈ 0.0"),
    (lambda n, k, g: torch.rand(k, n, generator=g) / k ** 0.5, "the entries are not centred on 0"),
    (lambda n, k, g: torch.randn(k, n) / k ** 0.5, "different matrices: draw from `generator`"),
    (lambda n, k, g: torch.randn(n, k, generator=g) / k ** 0.5, "wrong shape: expected (25, 400), got (400, 25)"),
    (lambda n, k, g: torch.randn(k, n, generator=g) / (2 * k) ** 0.5, "lengths are not kept on average"),
])
def test_random_projection_mistakes(answer, message, capsys):
    ok, out = feedback(nb02.check_random_projection, answer, capsys)
    assert not ok and out.startswith("✗ Exercise 3 - random projection: ") and message in out
