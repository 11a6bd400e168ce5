"""The contract every exercise module keeps (see linformer_edu/exercises/__init__.py), checked for every
`check_<name>` / `solution_<name>` pair found in `linformer_edu.exercises`:

- each notebook has its module nbNN, and in it every checker has a worked solution and every solution a checker;
- the worked solution passes: True, and one line "✓ Exercise N - title: correct", the same line every time;
- an answer the checker cannot use (not a function, a crash, no return value) is one ✗ line and False, never an
  exception;
- a module's exercises are numbered 1, 2, 3, … in the order they are written;
- checking leaves the global random state alone, so a notebook's later cells draw what they drew before.

The particular wrong answers of each exercise, and the hints they must get, are in tests/test_exercises_nbNN.py.
"""
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import linformer_edu.exercises

ROOT = Path(__file__).resolve().parents[1]
MODULES = [importlib.import_module(f"linformer_edu.exercises.{m.name}")
           for m in pkgutil.iter_modules(linformer_edu.exercises.__path__) if re.fullmatch(r"nb\d\d", m.name)]


def names(module, prefix):
    return {name.removeprefix(prefix) for name in dir(module) if name.startswith(prefix)}


def short_name(module):
    return module.__name__.rsplit(".", 1)[1]   # nb04


def exercise(module, name):
    return pytest.param(getattr(module, f"check_{name}"), getattr(module, f"solution_{name}"),
                        id=f"{short_name(module)}.{name}")


PAIRS = [exercise(m, name) for m in MODULES for name in sorted(names(m, "check_") & names(m, "solution_"))]
NOT_A_FUNCTION = ("expected a function, got a value of type NoneType — pass the function itself, without calling "
                  "it (`check(f)`, not `check(f(...))`)")


def title(line):
    """The checker's title, from any line it printed: "Exercise N - what it is about"."""
    return re.match(r"[✓✗] (Exercise \d+ - [^:]+): ", line)[1]


def test_every_notebook_has_an_exercise_module():
    notebooks = sorted(f"nb{path.name[:2]}" for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, "no notebooks found"
    assert [short_name(m) for m in MODULES] == notebooks


@pytest.mark.parametrize("module", MODULES, ids=short_name)
def test_every_checker_has_a_worked_solution_and_back(module):
    assert names(module, "check_"), "no checkers"
    assert names(module, "check_") == names(module, "solution_")


@pytest.mark.parametrize("check, solution", PAIRS)
def test_the_worked_solution_passes_the_same_way_every_time(check, solution, feedback):
    ok, line = feedback(check, solution)
    assert ok is True and re.fullmatch(r"✓ Exercise \d+ - [^:\n]+: correct(\.| — [^\n]+)", line), line
    assert feedback(check, solution) == (True, line)


@pytest.mark.parametrize("check, solution", PAIRS)
def test_answers_it_cannot_use_are_feedback_not_exceptions(check, solution, feedback):
    ok, line = feedback(check, None)
    name = title(line)
    assert not ok and line == f"✗ {name}: {NOT_A_FUNCTION}"
    assert feedback(check, lambda *args, **kwargs: 1 / 0) == (
        False, f"✗ {name}: your function raised ZeroDivisionError: division by zero")
    ok, line = feedback(check, lambda *args, **kwargs: None)
    assert not ok and line.startswith(f"✗ {name}: ") and "None" in line and "\n" not in line


@pytest.mark.parametrize("module", MODULES, ids=short_name)
def test_exercises_are_numbered_in_the_order_they_are_written(module, feedback):
    checks = sorted((getattr(module, f"check_{name}") for name in names(module, "check_")),
                    key=lambda check: inspect.unwrap(check).__code__.co_firstlineno)
    numbers = [int(re.match(r"Exercise (\d+) - ", title(feedback(check, None)[1]))[1]) for check in checks]
    assert numbers == list(range(1, len(checks) + 1))


@pytest.mark.parametrize("check, solution", PAIRS)
def test_checking_leaves_the_global_random_state_alone(check, solution, feedback):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    feedback(check, solution)
    feedback(check, lambda *args, **kwargs: 1 / 0)
    assert torch.equal(torch.rand(3), expected)
