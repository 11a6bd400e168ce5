"""Notebook 03's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb03
from linformer_edu.projections import pooling_matrix


def test_worked_mean_pooling_is_the_packages_pooling_matrix():
    for n, k in [(12, 3), (256, 32)]:
        w = n // k
        assert torch.equal(nb03.solution_mean_pooling(n, k), pooling_matrix(torch.full((w,), 1 / w), k).T)


def windows(n, k, *, value=None, strided=False, transpose=False):
    w = n // k
    if strided:
        E = (torch.arange(n)[None, :] % k == torch.arange(k)[:, None]).float() / w
    else:
        E = torch.repeat_interleave(torch.eye(k), w, dim=1) * (1 / w if value is None else value)
    return E.T if transpose else E


@pytest.mark.parametrize("answer, message", [
    (lambda n, k: windows(n, k, value=1.0), "each window is summed, not averaged: for n=12, k=3 each row should "
                                            "hold 4 entries of 1/4"),
    (lambda n, k: windows(n, k, strided=True), "the windows are not contiguous"),
    (lambda n, k: torch.full((k, n), 1 / n), "each row averages over all n=12 positions"),
    (lambda n, k: windows(n, k, transpose=True), "wrong shape: expected (3, 12), got (12, 3) — the right sizes in "
                                                 "the wrong order"),
    (lambda n, k: windows(n, k, value=0.5), "for n=12, k=3 the rows should each sum to 1"),
    (lambda n, k: windows(n, k).long(), "should hold floating-point numbers"),
    (lambda n, k: windows(n, k) if n == 12 else windows(n, k).flip(0), "your E for n=16, k=8: the shape is right "
                                                                        "but the values differ"),
])
def test_mean_pooling_mistakes(answer, message, feedback):
    ok, out = feedback(nb03.check_mean_pooling, answer)
    assert not ok and out.startswith("✗ Exercise 1 - mean pooling as a matrix: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda n, k, d: 2 * n * k * d, "only the scores and the weighted sum"),
    (lambda n, k, d: 3 * n * k * d, "one projection is missing"),
    (lambda n, k, d: 8 * n * k * d, "that is FLOPs"),
    (lambda n, k, d: 2 * n * n * d, "that is full attention's cost"),
    (lambda n, k, d: 4 * n * k * d + 1, "your count for n=4096, k=128, d=64 is 134,217,729, expected 134,217,728"),
    (lambda n, k, d: None, "should be a number, got a value of type NoneType"),
])
def test_linformer_macs_mistakes(answer, message, feedback):
    ok, out = feedback(nb03.check_linformer_macs, answer)
    assert not ok and out.startswith("✗ Exercise 2 - the cost of a Linformer head: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda x, E, W: E @ (x @ W), "right numbers, but in the expensive order E (x W)"),
    (lambda x, E, W: x @ W, "the features are mapped but the sequence was never projected"),
    (lambda x, E, W: (E @ x @ W).transpose(-1, -2), "wrong shape: expected (2, 8, 16), got (2, 16, 8)"),
    (lambda x, E, W: (E @ x) @ W * 2, "the shape is right but the values differ"),
    (lambda x, E, W: ((E @ x) @ W) + 0 * (E @ (x @ W)), "right numbers, but 245,760 FLOPs where (E x) W needs 81,920"),
])
def test_projected_keys_mistakes(answer, message, feedback):
    ok, out = feedback(nb03.check_projected_keys, answer)
    assert not ok and out.startswith("✗ Exercise 3 - the cheap order: ") and message in out
