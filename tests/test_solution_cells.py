"""The worked-solution cells (issue 13 §2): hidden in JupyterLab and in Colab, titled, compared by nbval, and never
overwriting what the learner wrote — their names are their own. The rules live in tools/solution_cells.py."""
import copy
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbval.plugin import find_comment_markers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


tool = SimpleNamespace(**runpy.run_path(str(ROOT / "tools" / "solution_cells.py")))   # tools/ is not a package


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def checkers(cell):
    return [call.func.attr for call in tool.checker_calls(tool.parse(tool.source(cell)))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_worked_solution_cell_is_in_form(path):
    assert tool.problems(load(path)) == [], f"fix with: python tools/solution_cells.py --fix notebooks/{path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_exercise_has_one_worked_solution_that_nbval_compares(path):
    code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    solutions = [c for c in code if tool.is_solution(c)]
    assert [name for c in code if not tool.is_solution(c) for name in checkers(c)] == \
           [name for c in solutions for name in checkers(c)]
    for cell in solutions:   # nbval's own reading of the marker, wherever in the cell it sits
        assert dict(find_comment_markers(tool.source(cell))) == {"check": True}


# The rules on a small notebook: a learner's cell, then its worked solution in the form the course had before.

def cell(code, **metadata):
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [],
            "source": code.splitlines(keepends=True)}


LEARNER = "def softmax(s):\n    ...  # your code here\n\nnb01.check_softmax(softmax)"
OLD_SOLUTION = ("# NBVAL_CHECK_OUTPUT\n# Worked solution\ndef softmax(s):\n    e = s.exp()   # softmax(s) by hand\n"
                "    return e / e.sum(-1, keepdim=True)\n\nassert nb01.check_softmax(softmax)")
NEW_SOLUTION = ("# @title Worked solution (double-click to show)\n# NBVAL_CHECK_OUTPUT\ndef solution_softmax(s):\n"
                "    e = s.exp()   # softmax(s) by hand\n    return e / e.sum(-1, keepdim=True)\n\n"
                "assert nb01.check_softmax(solution_softmax)")
HIDDEN = {"cellView": "form", "jupyter": {"source_hidden": True}}


def notebook(solution, **metadata):
    return {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["### Exercise 1"]}, cell(LEARNER),
                      cell(solution, **metadata)]}


def test_the_new_form_passes():
    assert tool.problems(notebook(NEW_SOLUTION, **HIDDEN)) == []


def test_the_old_form_is_out_of_form_on_every_count():
    assert tool.problems(notebook(OLD_SOLUTION, jupyter={"source_hidden": True})) == [
        "cell 2: not hidden in Colab (metadata cellView: form)",
        "cell 2: the first line is not '# @title Worked solution (double-click to show)'",
        "cell 2: binds 'softmax', which cell 1 binds too: running all cells overwrites it",
        "cell 2: checks 'softmax': name it 'solution_softmax', as the package does",
    ]


@pytest.mark.parametrize("change, problem", [
    (lambda c: c["metadata"].pop("jupyter"), "not hidden in JupyterLab (metadata jupyter.source_hidden)"),
    (lambda c: c["metadata"].pop("cellView"), "not hidden in Colab (metadata cellView: form)"),
    (lambda c: c["source"].pop(1), "no '# NBVAL_CHECK_OUTPUT' line, so nbval does not compare its ✓ line"),
    (lambda c: c["source"].append("\nsoftmax = solution_softmax"),
     "binds 'softmax', which cell 1 binds too: running all cells overwrites it"),
    (lambda c: c["source"].append("\nfor softmax in [1]: pass"),
     "binds 'softmax', which cell 1 binds too: running all cells overwrites it"),
    (lambda c: c["source"].append("\nassert nb01.check_softmax(softmax)"),
     "checks 'softmax', which the cell does not define"),
    (lambda c: c["source"].__setitem__(-1, "nb01.check_softmax(solution_softmax);"),
     "line 7 calls its checker without `assert`: a failing solution would pass, and IPython may display the True "
     "beside the ✓ line"),
    (lambda c: c["source"].__setitem__(-1, "solution_softmax"), "calls no checker (nbNN.check_*) on its solution"),
    (lambda c: c["source"].append("\nassert nb01.check_split_heads(solution_softmax)"),
     "checks 'solution_softmax': name it 'solution_split_heads', as the package does"),
])
def test_each_rule_catches_its_slip(change, problem):
    nb = notebook(NEW_SOLUTION, **copy.deepcopy(HIDDEN))
    change(nb["cells"][2])
    assert tool.problems(nb) == [f"cell 2: {problem}"]


def test_a_hidden_cell_that_runs_no_checker_is_no_solution():
    nb = notebook(NEW_SOLUTION, **HIDDEN)
    nb["cells"].insert(0, cell("# @title Install the course (Colab)\n!pip install -q linformer_edu\nsoftmax = 1",
                               **HIDDEN))
    assert tool.problems(nb) == []


def test_names_local_to_the_solution_do_not_count_as_clashes():
    local = NEW_SOLUTION + "\n[softmax for softmax in [1]]\nf = lambda softmax: softmax"
    assert tool.problems(notebook(local, **HIDDEN)) == []


def test_fix_puts_the_old_form_in_form_and_only_once():
    nb = notebook(OLD_SOLUTION, jupyter={"source_hidden": True})
    assert tool.fix(nb) == 1
    assert (tool.source(nb["cells"][2]), nb["cells"][2]["metadata"]) == (NEW_SOLUTION, HIDDEN)
    assert tool.source(nb["cells"][1]) == LEARNER
    assert tool.problems(nb) == []
    assert tool.fix(nb) == 0


def test_fix_finds_an_unmarked_hidden_solution_and_leaves_other_clashes_to_a_person():
    nb = notebook("# Solution\ndef softmax(s):\n    return s.softmax(-1)\n\nnb01.check_softmax(softmax);\nn = 3",
                  jupyter={"source_hidden": True})
    nb["cells"][1]["source"].append("\nn = 1")
    tool.fix(nb)
    assert tool.source(nb["cells"][2]) == ("# @title Worked solution (double-click to show)\n# NBVAL_CHECK_OUTPUT\n"
                                           "def solution_softmax(s):\n    return s.softmax(-1)\n\n"
                                           "assert nb01.check_softmax(solution_softmax)\nn = 3")


def test_fix_names_the_solution_after_its_checker_and_a_helper_after_itself():
    nb = notebook("def exp(s):\n    return s.exp()\n\ndef my_softmax(s):\n    return exp(s) / exp(s).sum(-1, True)\n\n"
                  "assert nb01.check_softmax(my_softmax)", jupyter={"source_hidden": True})
    nb["cells"][1]["source"] = ["exp = None\n", "def my_softmax(s):\n", "    ...\n"]
    tool.fix(nb)
    assert tool.source(nb["cells"][2]).splitlines()[2:] == [
        "def solution_exp(s):", "    return s.exp()", "",
        "def solution_softmax(s):", "    return solution_exp(s) / solution_exp(s).sum(-1, True)", "",
        "assert nb01.check_softmax(solution_softmax)"]
    assert tool.problems(nb) == []


def test_the_command_line_lists_and_fixes(tmp_path, capsys):
    path = tmp_path / "00_x.ipynb"
    path.write_text(tool.dumps(notebook(OLD_SOLUTION, jupyter={"source_hidden": True})), encoding="utf-8")
    assert tool.main([str(path)]) == 1
    assert capsys.readouterr().out.count(f"{path}: cell 2: ") == 4
    assert tool.main(["--fix", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: fixed\n"
    assert tool.source(load(path)["cells"][2]) == NEW_SOLUTION
