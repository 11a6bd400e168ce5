"""Notebook 09's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb09


def undo_stack(y1, y2, blocks, *, order=-1, sign=-1, f_first=False):
    for f, g in blocks[::order]:
        if f_first:
            y1, y2 = y1 - f(y2), y2 - g(y1)
        else:
            y2 = y2 + sign * g(y1)
            y1 = y1 + sign * f(y2)
    return y1, y2


@pytest.mark.parametrize("options, message", [
    (dict(order=1), "the blocks were undone in the order they ran"),
    (dict(sign=+1), "a sign slip"),
    (dict(f_first=True), "x1 was computed from y2"),
])
def test_invert_stack_mistakes(options, message, feedback):
    ok, out = feedback(nb09.check_invert_stack, lambda *a: undo_stack(*a, **options))
    assert not ok and out.startswith("✗ Exercise 1 - undo a stack of couplings: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda y1, y2, blocks: y1, "invert_stack should return a pair of tensors (x1, x2), got Tensor"),
    (lambda y1, y2, blocks: (y2, y1), "the shape is right but the values differ"),
])
def test_invert_stack_other_answers(answer, message, feedback):
    ok, out = feedback(nb09.check_invert_stack, answer)
    assert not ok and message in out


def invert_affine_with(y1, y2, f, g, s, *, mistake):
    x2 = y2 - g(y1)
    if mistake == "scale first":
        return y1 * (-s(x2)).exp() - f(x2), x2
    if mistake == "multiply":
        return (y1 - f(x2)) * s(x2).exp(), x2
    return y1 - f(x2), x2


@pytest.mark.parametrize("mistake, message", [
    ("scale first", "the scale was undone before the shift"),
    ("multiply", "multiplied by exp(s(x2)) again"),
    ("no scale", "the scale was left out"),
])
def test_invert_affine_mistakes(mistake, message, feedback):
    ok, out = feedback(nb09.check_invert_affine, lambda *a: invert_affine_with(*a, mistake=mistake))
    assert not ok and out.startswith("✗ Exercise 2 - invert an affine coupling: ") and message in out


def test_affine_coupling_round_trip():
    torch.manual_seed(0)
    f, g, s = (torch.nn.Linear(4, 4) for _ in range(3))
    x1, x2 = torch.randn(2, 4), torch.randn(2, 4)
    with torch.no_grad():
        back = nb09.solution_invert_affine(*nb09.affine_couple(x1, x2, f, g, s), f, g, s)
    torch.testing.assert_close(back, (x1, x2))


def test_an_answer_that_reverses_the_list_in_place_is_right(feedback):
    def invert_stack(y1, y2, blocks):
        blocks.reverse()   # the learner's own list: the checker must not see the change
        for f, g in blocks:
            y2 = y2 - g(y1)
            y1 = y1 - f(y2)
        return y1, y2
    assert feedback(nb09.check_invert_stack, invert_stack) == (
        True, "✓ Exercise 1 - undo a stack of couplings: correct — three blocks undone, last one first: nothing had "
              "to be stored but the output.")


def test_invert_affine_with_y2_in_place_of_x2_is_named_exactly(feedback):
    answer = lambda y1, y2, f, g, s: ((y1 - f(y2)) * (-s(y2)).exp(), y2 - g(y1))
    assert feedback(nb09.check_invert_affine, answer) == (
        False, "✗ Exercise 2 - invert an affine coupling: f and s were given y2: they take x2, so recover x2 = "
               "y2 - g(y1) first and use it in both")
