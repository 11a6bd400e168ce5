"""tools/gpu_check.py without a GPU: it refuses in one line with exit status 2, runs and judges a step, and writes
its results file from a list of steps (faked here; the real ones need CUDA)."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_in_one_line_and_exits_2(tmp_path, gpu_check):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}   # no GPU, even on a machine with one
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr == gpu_check.no_gpu_message() + "\n"
    assert proc.stderr.startswith("gpu_check: no CUDA GPU visible to this PyTorch (torch ")
    assert not (tmp_path / "out").exists()                       # nothing written


def test_a_step_passes_on_exit_0_and_an_empty_check(gpu_check):
    py = sys.executable
    ok = gpu_check.run_step("ok", [py, "-c", "print('fine')"], timeout=60)
    assert (ok.passed, ok.note, ok.tail, ok.name) == (True, "exit 0", "fine\n", "ok")
    failed = gpu_check.run_step("fails", [py, "-c", "import sys; sys.exit('broken')"], timeout=60)
    assert (failed.passed, failed.note, failed.tail) == (False, "exit 1", "broken\n")
    judged = gpu_check.run_step("judged", [py, "-c", "print('3 passed, 1 skipped in 2.0s')"], timeout=60,
                                check=gpu_check.nothing_skipped)
    assert (judged.passed, judged.note) == (False, "some cuda tests were skipped on a GPU: 3 passed, 1 skipped in 2.0s")
    slow = gpu_check.run_step("slow", [py, "-c", "import time; print('started', flush=True); time.sleep(30)"],
                              timeout=1)
    assert (slow.passed, slow.note) == (False, "timed out after 1 s")


def test_results_file_from_a_faked_step_list(tmp_path, gpu_check):
    facts = {"gpu": "Tesla T4", "capability": "7.5", "torch": "2.11.0+cu128", "cuda": "12.8", "python": "3.13.1",
             "amp": "float16 + GradScaler", "started": "2027-01-01T00:00:00+00:00"}
    steps = [gpu_check.Step("tests", "pytest -m cuda tests", True, 12.0, "exit 0", "3 passed\n"),
             gpu_check.Step("train", "python -m linformer_edu.train ...", False, 61.5,
                            "trained in bfloat16, expected float16 on this GPU", "...\nwrote metrics.json\n")]
    json_path, txt_path = gpu_check.write_results(tmp_path / "out", facts, steps)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu_check.json", "gpu_check.txt"]  # no .tmp
    record = json.loads(json_path.read_text(encoding="utf-8"))
    assert record == {**facts, "passed": False, "seconds": 73.5, "steps": [
        {"name": "tests", "command": "pytest -m cuda tests", "passed": True, "seconds": 12.0, "note": "exit 0",
         "tail": "3 passed\n"},
        {"name": "train", "command": "python -m linformer_edu.train ...", "passed": False, "seconds": 61.5,
         "note": "trained in bfloat16, expected float16 on this GPU", "tail": "...\nwrote metrics.json\n"}]}
    assert txt_path.read_text(encoding="utf-8").splitlines() == [
        "gpu_check: FAILED on Tesla T4 (capability 7.5), torch 2.11.0+cu128, CUDA 12.8, amp float16 + GradScaler, 74 s",
        "pass  tests       12.0 s  exit 0",
        "FAIL  train       61.5 s  trained in bfloat16, expected float16 on this GPU",
        "",
        "--- train: python -m linformer_edu.train ...",
        "...",
        "wrote metrics.json"]
    steps[1].passed = True                                        # a second run replaces the first one's files
    gpu_check.write_results(tmp_path / "out", facts, steps)
    assert json.loads(json_path.read_text(encoding="utf-8"))["passed"] is True
    assert txt_path.read_text(encoding="utf-8").startswith("gpu_check: all passed on Tesla T4")
