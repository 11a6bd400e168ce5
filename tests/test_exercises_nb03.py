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
    (lambda n, k, d: 3 * n * k * d, "three of the four products"),
    (lambda n, k, d: 8 * n * k * d, "that is FLOPs"),
    (lambda n, k, d: 2 * n * n * d, "that is full attention's cost"),
    (lambda n, k, d: 4 * n * k * d + 1, "for n=4096, k=128, d=64 you counted 134,217,729, which is not the cost"),
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


def test_mean_pooling_weights_of_1_over_k_are_named_exactly(feedback):
    assert feedback(nb03.check_mean_pooling, lambda n, k: windows(n, k, value=1 / k)) == (
        False, "✗ Exercise 1 - mean pooling as a matrix: each weight is 1/k: a window holds w = n/k = 4 positions, so "
               "for n=12, k=3 each weight is 1/4")


SUM_UP = "a (p, q) @ (q, r) product costs p·q·r multiply-adds — add up those of E K, F V, Q (E K)ᵀ and P̄ (F V)"


@pytest.mark.parametrize("answer, message", [
    (lambda n, k, d: 3 * n * k * d, "100,663,296: three of the four products — E K, F V, Q (E K)ᵀ and P̄ (F V) cost "
                                    "the same each; which one is missing?"),
    (lambda n, k, d: 2 * k * n * d + 2 * n * n * d, "2,214,592,512: the scores and the weighted sum are counted with "
                                                    "n keys — after the projection there are only k"),
    (lambda n, k, d: 2 * k * n + 2 * n * k * d, "68,157,440: projecting costs k·n multiply-adds per feature — each of "
                                                "the k rows of E K sums n vectors of d numbers"),
    (lambda n, k, d: 4 * n * k * d + n * k, "134,742,016: the n·k on top is the softmax, which is not a matrix "
                                            "product — count the four products only"),
    (lambda n, k, d: 4 * n * k * d + 3 * n * d * d, "184,549,376: that includes the maps to q, k and v — the exercise "
                                                    "starts from q, k, v; count E K, F V, Q (E K)ᵀ and P̄ (F V)"),
    (lambda n, k, d: 4 * n * k * d + 4 * n * d * d, "201,326,592: that includes the maps to q, k, v and the output — "
                                                    "the exercise starts from q, k, v; count E K, F V, Q (E K)ᵀ and "
                                                    "P̄ (F V)"),
    (lambda n, k, d: 5 * n * k * d, f"167,772,160 = 5·n·k·d, which is not the cost: {SUM_UP}"),
    (lambda n, k, d: 4 * n * k * d + 1, f"134,217,729, which is not the cost: {SUM_UP}"),
    (lambda n, k, d: float("nan"), f"nan, which is not the cost: {SUM_UP}"),
], ids=["three products", "n keys", "projection without d", "softmax", "q k v maps", "all four maps", "a multiple",
        "off by one", "nan"])
def test_linformer_macs_says_what_a_wrong_count_is_without_giving_the_answer(answer, message, feedback):
    ok, line = feedback(nb03.check_linformer_macs, answer)
    assert (ok, line) == (False, f"✗ Exercise 2 - the cost of a Linformer head: for n=4096, k=128, d=64 you counted "
                                 f"{message}")
    assert "134,217,728" not in line and "4·n·k·d" not in line   # the answer itself


def test_linformer_macs_takes_a_one_element_tensor(feedback):
    assert feedback(nb03.check_linformer_macs, lambda n, k, d: torch.tensor(4 * n * k * d))[0] is True


ORDER = ("the inner sizes of a matrix product must agree: E (k, n) mixes the n positions, so it multiplies from the "
         "left, E @ x: (k, n) @ (b, n, dim) -> (b, k, dim); W (dim, d) maps the features, from the right")


@pytest.mark.parametrize("answer, message", [
    (lambda x, E, W: (x @ E) @ W, "mat1 and mat2 shapes cannot be multiplied (128x32 and 8x64)"),
    (lambda x, E, W: W @ (E @ x), "Expected size for first two dimensions of batch2 tensor to be: [2, 16] but got: "
                                  "[2, 8]."),
], ids=["x @ E", "W on the left"])
def test_projected_keys_products_that_do_not_line_up_are_named_exactly(answer, message, feedback):
    assert feedback(nb03.check_projected_keys, answer) == (
        False, f"✗ Exercise 3 - the cheap order: your function raised RuntimeError: {message} — {ORDER}")
