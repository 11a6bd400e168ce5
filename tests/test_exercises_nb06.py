"""Notebook 06's exercise checkers: typical wrong answers get the right feedback."""
import pytest

from linformer_edu.measure import attention_flops
from linformer_edu.exercises import nb06


def test_the_crossover_solution_is_2k_plus_1_for_any_width():
    assert [nb06.solution_flop_crossover(k, dim=d, heads=h) for k, d, h in [(16, 64, 2), (32, 512, 8)]] == [33, 65]


def full_flops(b, n, d, h, *, factor=2, maps=4, products=2, per_head=False):
    attention = products * factor * b * n * n * d * (h if per_head else 1)
    return maps * factor * b * n * d * d + attention


@pytest.mark.parametrize("answer, message", [
    (lambda *a: full_flops(*a, factor=1), "half the expected count: a multiply-add is 2 FLOPs"),
    (lambda *a: full_flops(*a, maps=3), "only three linear maps: the output projection"),
    (lambda *a: full_flops(*a, products=0), "the attention products are missing"),
    (lambda *a: full_flops(*a, products=1), "only one of the two n×n products"),
    (lambda *a: full_flops(*a, per_head=True), "multiplied by the number of heads once too often"),
    (lambda *a: 1.5 * full_flops(*a), "the shape is right but the values differ"),
    (lambda *a: "many", "your function should return a number, got a value of type str"),
])
def test_full_attention_flops_mistakes(answer, message, feedback):
    ok, out = feedback(nb06.check_full_attention_flops, answer)
    assert not ok and out.startswith("✗ Exercise 1 - FLOPs of full attention: ") and message in out


def test_full_attention_flops_agree_with_the_benchmark():
    assert nb06.solution_full_attention_flops(2, 300, 64, 4) == attention_flops("naive", batch=2, n=300, dim=64,
                                                                                   heads=4)


@pytest.mark.parametrize("answer, message", [
    (lambda k: 2 * k, "at n = 2k the two counts are equal"),
    (lambda k: k + 1, "n = k + 1 leaves out the projections themselves"),
    (lambda k: 3 * k // 2 + 1, "n = 1.5k + 1 counts one projection only"),
    (lambda k: k, "n = k: at n = k the projection saves nothing"),
    (lambda k: 4 * k, "the shape is right but the values differ"),
    (None, "expected a function, got a value of type NoneType"),
])
def test_flop_crossover_mistakes(answer, message, feedback):
    ok, out = feedback(nb06.check_flop_crossover, answer)
    assert not ok and out.startswith("✗ Exercise 2 - the FLOP crossover: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda b, h, n: b * h * n * n, "that is the number of entries, not bytes"),
    (lambda b, h, n: 8 * b * h * n * n, "8 bytes per entry is float64"),
    (lambda b, h, n: 4 * b * n * n, "every head has its own map"),
    (lambda b, h, n: 4 * h * n * n, "every sequence in the batch has its own maps"),
    (lambda b, h, n: 4 * b * h * n, "the map is n×n"),
    (lambda b, h, n: 1 / 0, "your function raised ZeroDivisionError"),
])
def test_map_bytes_mistakes(answer, message, feedback):
    ok, out = feedback(nb06.check_map_bytes, answer)
    assert not ok and out.startswith("✗ Exercise 3 - bytes of the attention map: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda b, h, n: 2 * b * h * n * n, "2 bytes per entry is float16 or bfloat16; the map here is float32, 4 bytes"),
    (lambda b, h, n: 4 * b * h * n * n / 1e9, "that is in gigabytes (10⁹ bytes): return the number of bytes itself"),
    (lambda b, h, n: 4 * b * h * n * n / 2 ** 30, "that is in gibibytes (2³⁰ bytes): return the number of bytes "
                                                  "itself"),
], ids=["float16", "GB", "GiB"])
def test_map_bytes_unit_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb06.check_map_bytes, answer) == (False, f"✗ Exercise 3 - bytes of the attention map: {message}")
