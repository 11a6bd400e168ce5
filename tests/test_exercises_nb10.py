"""Notebook 10's exercise checkers: the worked solutions pass, typical wrong answers get the right feedback."""
import statistics

import pytest
import torch

from linformer_edu.exercises import nb10
from linformer_edu.longrun import value_at


def feedback(check, answer, capsys):
    ok = check(answer)
    return ok, capsys.readouterr().out.strip()


@pytest.mark.parametrize("check, solution", [
    (nb10.check_step_ratio, nb10.solution_step_ratio),
    (nb10.check_bits_at_time, nb10.solution_bits_at_time),
])
def test_worked_solutions_pass(check, solution, capsys):
    ok, out = feedback(check, solution, capsys)
    assert ok and out.startswith("✓ Exercise") and "correct" in out


def test_the_package_reads_curves_as_the_worked_solution_does(capsys):
    ok, _ = feedback(nb10.check_bits_at_time, lambda history, seconds: value_at(history, seconds), capsys)
    assert ok


def test_checkers_leave_the_random_state_alone(capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    nb10.check_step_ratio(nb10.solution_step_ratio)
    nb10.check_bits_at_time(nb10.solution_bits_at_time)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("answer, message", [
    (lambda t, r: statistics.median(b / a for a, b in zip(t, r)), "that is the reference's time over the model's"),
    (lambda t, r: statistics.median(t) / statistics.median(r), "that is the ratio of the two medians"),
    (lambda t, r: statistics.mean(a / b for a, b in zip(t, r)), "that is a mean of the ratios"),
    (lambda t, r: sum(t) / sum(r), "that is the ratio of the total times"),
    (lambda t, r: 0.5, "for these rounds the ratio is"),
    (lambda t, r: "fast", "step_ratio should return one number, got a value of type str"),
])
def test_step_ratio_mistakes(answer, message, capsys):
    ok, out = feedback(nb10.check_step_ratio, answer, capsys)
    assert not ok and out.startswith("✗ Exercise 1 - a step-time ratio a busy machine cannot bend: ")
    assert message in out


def last_before(history, seconds):
    return [h for h in history if h["seconds"] <= seconds][-1]["bits"]


@pytest.mark.parametrize("answer, message", [
    (lambda h, s: nb10.solution_bits_at_time([{**p, "seconds": p["step"]} for p in h], s),
     "that reads the curve on the steps axis"),
    (last_before, "that takes the last validation before the time"),
    (lambda h, s: h[-1]["bits"], "the curve reads"),
    (lambda h, s: None, "bits_at_time should return one number, got a value of type NoneType"),
])
def test_bits_at_time_mistakes(answer, message, capsys):
    ok, out = feedback(nb10.check_bits_at_time, answer, capsys)
    assert not ok and out.startswith("✗ Exercise 2 - read a curve at equal time: ") and message in out


def test_the_rounds_tell_the_wrong_answers_apart():
    for seed in nb10.SEEDS:
        t, r = nb10._rounds(seed)
        values = [statistics.median(a / b for a, b in zip(t, r)), statistics.median(t) / statistics.median(r),
                  statistics.mean(a / b for a, b in zip(t, r)), sum(t) / sum(r),
                  statistics.median(b / a for a, b in zip(t, r))]
        assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1:]) > 0.02
