"""Notebook 02's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb02


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
