"""The committed outputs a reader checks the prose against come from one clean top-to-bottom run (issue 14).

test_notebooks_meta.py already asserts execution counts 1, 2, 3, …, no error outputs and no /root, /home, /tmp,
/work or /Users paths. This file adds what it leaves open:

- the cells ran in one run, in order: tools/run_notebooks.py (nbclient) stamps each code cell with when it ran;
  outputs stitched together from two runs (a merge that kept cells of both sides, one cell re-run later) show
  as a cell that started before the one above it had finished, or as cells with and without stamps;
- each `Out[n]` carries its own cell's count;
- nothing on stderr that a clean run does not print: a traceback (an exception caught and printed) or a warning;
- no other machine-specific paths in outputs: an installed package's location (…/site-packages/…, which
  warnings print), Colab's /content, macOS and Windows temporary or user folders, /usr, /opt, /mnt;
- every `# NBVAL_CHECK_OUTPUT` cell, which nbval compares on each test run, has a text output to compare (else
  it checks nothing) and nothing in it that differs run to run (an object's memory address).
"""
import copy
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BINARY_MIME = ("image/png", "image/jpeg", "image/gif")
MACHINE_PATH = re.compile(r"[\w.-]*[/\\](?:site|dist)-packages[/\\]"
                          r"|(?<![\w.~-])/(?:content|usr|opt|mnt|private|var/folders)/"
                          r"|\b[A-Za-z]:\\(?:Users|Windows|Program Files|ProgramData|Temp)\b")
STDERR_NOISE = re.compile(r"Traceback \(most recent call last\)|^.*\b\w*Warning: .*$", re.M)
MEMORY_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]{6,}\b")


def source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def text(value):
    return value if isinstance(value, str) else "".join(value)


def code_cells(nb):
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def output_texts(cell):
    """Every text an output holds, stream or rich (images aside)."""
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            yield text(out["text"])
        elif out["output_type"] == "error":
            yield "\n".join(out.get("traceback", []))
        else:
            for mime, data in out.get("data", {}).items():
                if mime not in BINARY_MIME:
                    yield data if isinstance(data, str) else json.dumps(data) if isinstance(data, dict) else text(data)


def run_order_problems(nb):
    stamped = [(i, c["metadata"].get("execution", {})) for i, c in code_cells(nb)]
    stamped = [(i, t) for i, t in stamped if "iopub.execute_input" in t and "shell.execute_reply" in t]
    if not stamped:
        return []   # saved without timing (e.g. from JupyterLab): execution counts are all there is to check
    problems = [f"cell {i} has no run time stamps, the others have" for i, c in code_cells(nb)
                if i not in dict(stamped)]
    for (before, t0), (after, t1) in zip(stamped, stamped[1:]):
        if t1["iopub.execute_input"] < t0["shell.execute_reply"]:
            problems.append(f"cell {after} started ({t1['iopub.execute_input']}) before cell {before} "
                            f"finished ({t0['shell.execute_reply']}): outputs from different runs")
    return problems


def out_count_problems(nb):
    return [f"cell {i} (In [{c['execution_count']}]) holds Out [{out['execution_count']}]"
            for i, c in code_cells(nb) for out in c.get("outputs", [])
            if out["output_type"] == "execute_result" and out.get("execution_count") != c["execution_count"]]


def stderr_problems(nb):
    return [f"cell {i} stderr: {m.group(0).strip()[:120]}" for i, c in code_cells(nb)
            for out in c.get("outputs", []) if out["output_type"] == "stream" and out["name"] == "stderr"
            for m in STDERR_NOISE.finditer(text(out["text"]))]


def machine_path_problems(nb):
    return [f"cell {i}: {t[max(0, m.start() - 40):m.end() + 40]!r}" for i, c in code_cells(nb)
            for t in output_texts(c) for m in MACHINE_PATH.finditer(t)]


def checked_output_problems(nb):
    problems = []
    for i, c in code_cells(nb):
        if not source(c).lstrip().startswith("# NBVAL_CHECK_OUTPUT"):
            continue
        texts = [t for t in output_texts(c) if t.strip()]
        if not texts:
            problems.append(f"cell {i} is marked # NBVAL_CHECK_OUTPUT but has no text output: nbval compares nothing")
        problems += [f"cell {i}: {m.group(0)!r} changes every run, so nbval fails on it" for t in texts
                     for m in MEMORY_ADDRESS.finditer(t)]
    return problems


CHECKS = [run_order_problems, out_count_problems, stderr_problems, machine_path_problems, checked_output_problems]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_outputs_are_from_one_clean_run(path, check):
    problems = check(json.loads(path.read_text(encoding="utf-8")))
    assert problems == [], f"{path.name} (0-based cell indices); re-run it with tools/run_notebooks.py"


# Each check fails on the defect it is for: a real notebook, doctored.

def doctored(change):
    nb = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text(encoding="utf-8"))
    assert all(check(nb) == [] for check in CHECKS)
    nb = copy.deepcopy(nb)
    change(nb, [c for _, c in code_cells(nb)])
    return nb


def swap_stamps(nb, cells):
    cells[1]["metadata"]["execution"], cells[2]["metadata"]["execution"] = \
        cells[2]["metadata"]["execution"], cells[1]["metadata"]["execution"]


def print_to_stderr(printed):
    def change(nb, cells):
        cells[1]["outputs"].append({"name": "stderr", "output_type": "stream", "text": [printed]})
    return change


def first_checked(cells):
    return next(c for c in cells if source(c).lstrip().startswith("# NBVAL_CHECK_OUTPUT"))


@pytest.mark.parametrize("check, change", [
    (run_order_problems, swap_stamps),
    (run_order_problems, lambda nb, cells: cells[3]["metadata"].pop("execution")),
    (out_count_problems, lambda nb, cells: cells[2]["outputs"].append(
        {"output_type": "execute_result", "execution_count": 7, "data": {"text/plain": "1"}, "metadata": {}})),
    (stderr_problems, print_to_stderr("Traceback (most recent call last):\n  ...\nValueError: x\n")),
    (stderr_problems, print_to_stderr("train.py:12: UserWarning: the learning rate is high\n")),
    (machine_path_problems, print_to_stderr("/usr/local/lib/python3.11/site-packages/torch/nn/x.py:1: note\n")),
    (machine_path_problems, print_to_stderr("saved to /content/checkpoints/model.pt\n")),
    (machine_path_problems, print_to_stderr("saved to C:\\Users\\ada\\model.pt\n")),
    (checked_output_problems, lambda nb, cells: first_checked(cells).update(outputs=[])),
    (checked_output_problems, lambda nb, cells: first_checked(cells)["outputs"].append(
        {"name": "stdout", "output_type": "stream", "text": "<Linear object at 0x7f3a2c1b5e50>\n"})),
])
def test_each_check_finds_its_defect(check, change):
    assert check(doctored(change)) != []


def test_stderr_progress_and_relative_paths_are_fine():
    nb = doctored(print_to_stderr("100%|██████| 30/30 [00:01<00:00]\nsaved to checkpoints/nb07/model.pt\n"))
    assert stderr_problems(nb) == [] and machine_path_problems(nb) == []
