"""Notebook 02's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb02
from linformer_edu.exercises._feedback import KEEPDIM


def test_the_causal_map_takeaway_is_computed(feedback):
    ok, out = feedback(nb02.check_prefix_average, nb02.solution_prefix_average)
    assert out.endswith("at n = 128 its rank is 128 (full), yet its first 8 singular values carry 61% of the mass.")


def cumulative(s, power=1, normalise=True):
    c = (s ** power).cumsum(-1)
    return c / c[..., -1:] if normalise else c


@pytest.mark.parametrize("answer, message", [
    (lambda s, f: (cumulative(s) < f).sum(-1), "off by one"),
    (lambda s, f: (cumulative(s, power=2) < f).sum(-1) + 1, "you used squared singular values"),
    (lambda s, f: (cumulative(s, normalise=False) < f).sum(-1) + 1, "the running sum is not normalised"),
    (lambda s, f: 3, "got one number (3) for a batch of 4 spectra"),
    (lambda s, f: (cumulative(s) < f).sum(-1)[0] + 1, "wrong shape: expected (4,), got ()"),
    (lambda s, f: (cumulative(s) < f).sum(-1) + 2, "the shape is right but the values differ"),
])
def test_smallest_rank_mistakes(answer, message, feedback):
    ok, out = feedback(nb02.check_smallest_rank, answer)
    assert not ok and out.startswith("✗ Exercise 1 - smallest rank for a share of the mass: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda n: torch.ones(n, n).tril(), "the rows are not normalised"),
    (lambda n: torch.ones(n, n).triu() / torch.ones(n, n).triu().sum(-1, keepdim=True), "that is the future"),
    (lambda n: torch.ones(n, n).tril() / n, "divided by n"),
    (lambda n: torch.ones(n, n).tril() / torch.arange(n, 0, -1.0), "the columns sum to 1 instead of the rows"),
    (lambda n: torch.full((n, n), 1 / n), "that is the bidirectional uniform map"),
    (lambda n: torch.eye(n), "the shape is right but the values differ"),
    (lambda n: torch.ones(n).tril(), "your function raised"),
])
def test_prefix_average_mistakes(answer, message, feedback):
    ok, out = feedback(nb02.check_prefix_average, answer)
    assert not ok and out.startswith("✗ Exercise 2 - the uniform causal map: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda n, k, g: torch.randn(k, n, generator=g), "lengths grow by √k = 5: ‖Rx‖² ≈ 2"),
    (lambda n, k, g: torch.randn(k, n, generator=g) / k, "lengths shrink: ‖Rx‖² ≈ 0.0"),
    (lambda n, k, g: torch.rand(k, n, generator=g) / k ** 0.5, "the entries are not centred on 0"),
    (lambda n, k, g: torch.randn(k, n) / k ** 0.5, "different matrices: draw from `generator`"),
    (lambda n, k, g: torch.randn(n, k, generator=g) / k ** 0.5, "wrong shape: expected (25, 400), got (400, 25)"),
    (lambda n, k, g: torch.randn(k, n, generator=g) / (2 * k) ** 0.5, "lengths are not kept on average"),
])
def test_random_projection_mistakes(answer, message, feedback):
    ok, out = feedback(nb02.check_random_projection, answer)
    assert not ok and out.startswith("✗ Exercise 3 - random projection: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda s, f: ((s.cumsum(-1) / s.sum(-1)) < f).sum(-1) + 1,
     "your function raised RuntimeError: The size of tensor a (10) must match the size of tensor b (4) at "
     "non-singleton dimension 1 — " + KEEPDIM[next(iter(KEEPDIM))]),
    (lambda s, f: ((s.cumsum(0) / s.sum()) < f).sum() + 1,
     "right for a single spectrum, but the input is a batch of them, shape (4, 10): work along the last axis "
     "([..., i], sum(dim=-1)), so that each spectrum gets its answer"),
    (lambda s, f: s.max(dim=-1), "your answer should be a torch.Tensor, got a named tuple — max(dim=…) returns a "
                                 "named tuple (values, indices), not a tensor: take its .values, or call amax(dim=…), "
                                 "which returns the values alone"),
], ids=["no keepdim", "written for one spectrum", "max tuple"])
def test_smallest_rank_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb02.check_smallest_rank, answer) == (
        False, f"✗ Exercise 1 - smallest rank for a share of the mass: {message}")


def test_prefix_average_without_keepdim_is_named_exactly(feedback):
    assert feedback(nb02.check_prefix_average, lambda n: torch.ones(n, n).tril() / torch.ones(n, n).tril().sum(-1)) \
        == (False, "✗ Exercise 2 - the uniform causal map: entry [i, j] was divided by j + 1, the sum of row j: a row "
                   "sum of shape (n,) lines up with the columns — keepdim=True (shape (n, 1)) divides each row by its "
                   "own sum")


@pytest.mark.parametrize("answer, message", [
    (lambda n, k, g: torch.randn(k, n, generator=g) / n ** 0.5,
     "lengths shrink: ‖Rx‖² ≈ 0.0627·‖x‖², which is k/n — you scaled by 1/√n, but ‖Rx‖² adds up k coordinates, one "
     "per row of R: scale by 1/√k"),
    (lambda n, k, g: torch.normal(0, 1 / k, (k, n), generator=g),
     "lengths shrink: ‖Rx‖² ≈ 0.0402·‖x‖², which is 1/k — the entries have standard deviation 1/k; it should be 1/√k "
     "(the variance is 1/k)"),
], ids=["1/sqrt(n)", "std 1/k"])
def test_random_projection_scaling_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb02.check_random_projection, answer) == (False, f"✗ Exercise 3 - random projection: {message}")
