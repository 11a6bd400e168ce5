"""The checks that need a CUDA GPU, in one command and one results file (about 4 minutes on one GPU).

    python tools/gpu_check.py --out gpu-check           # make gpu-check
    python tools/gpu_check.py --out gpu-check --only train notebook

Steps, each in its own process, in a temporary folder (nothing committed is touched):
  tests      pytest -m cuda tests: the tests marked `cuda` (skipped elsewhere), none of which may skip here
  train      one minute of `python -m linformer_edu.train --preset gpu`, in mixed precision; its metrics.json
             must name the precision device.amp_settings picks for this GPU, and finite losses
  notebook   notebook 07 on this GPU, a copy run top to bottom at the quick size (LINFORMER_EDU_QUICK=1)
  bench      benchmarks/run.py --quick --device cuda: the benchmarks' CUDA timing and memory path, small sizes
Writes OUT/gpu_check.json and OUT/gpu_check.txt: the GPU's name and compute capability, torch and CUDA versions,
the precision picked, and each step's pass or fail, seconds and the end of its output. Exit status 0 when every
step passed, 1 when one failed, 2 when PyTorch sees no CUDA GPU (then nothing is run or written).
"""
import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run from a fresh clone without installing

import torch  # noqa: E402

from linformer_edu.device import amp_settings  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "07_train_a_char_lm.ipynb"
STEPS = ("tests", "train", "notebook", "bench")
TAIL = 3000   # characters of each step's output kept in the results


@dataclass
class Step:
    """One check: what ran, whether it passed, how long it took and why it failed."""
    name: str
    command: str
    passed: bool
    seconds: float
    note: str = ""     # 'exit 0', 'timed out after 120 s', or what the check found wrong
    tail: str = ""     # the end of its stdout and stderr


def no_gpu_message() -> str:
    """The one line printed where this PyTorch sees no CUDA GPU."""
    return (f"gpu_check: no CUDA GPU visible to this PyTorch (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda or 'none'}); run it on a machine with an NVIDIA GPU")


def run_step(name, command, *, timeout, env=None, check=None) -> Step:
    """Run `command` from the repository root; it passes on exit 0 and when `check()` then returns ''."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        output, passed, note = proc.stdout + proc.stderr, proc.returncode == 0, f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as err:
        parts = (err.stdout, err.stderr)   # bytes here even with text=True
        output = "".join(p.decode(errors="replace") if isinstance(p, bytes) else (p or "") for p in parts)
        passed, note = False, f"timed out after {timeout} s"
    if passed and check is not None and (problem := check(output)):
        passed, note = False, problem
    return Step(name, " ".join(map(str, command)), passed, round(time.perf_counter() - start, 1), note,
                output[-TAIL:])


def environment(extra=None) -> dict:
    """os.environ with this checkout first on PYTHONPATH, so every subprocess imports this code."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return env


def nothing_skipped(output: str) -> str:
    """A check of pytest's summary line: on a GPU no test marked `cuda` may skip."""
    last = output.strip().splitlines()[-1] if output.strip() else ""
    return f"some cuda tests were skipped on a GPU: {last}" if "skipped" in last else ""


def training_check(out: pathlib.Path, expected: str):
    """A check of the training run's metrics.json: the precision expected for this GPU, finite losses."""
    def check(_output):
        m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        if m["amp"] != expected:
            return f"trained in {m['amp']}, expected {expected} on this GPU"
        if not all(isinstance(m[key], float) and math.isfinite(m[key]) for key in ("train_loss", "val_loss")):
            return f"losses not finite: train {m['train_loss']}, val {m['val_loss']}"
        return ""
    return check


def gpu_steps(tmp: pathlib.Path, only=STEPS) -> list[Step]:
    """Run the chosen steps in order; each writes only under `tmp`."""
    py, amp = sys.executable, amp_settings("cuda")
    dtype = str(amp.dtype).replace("torch.", "")
    steps = []
    if "tests" in only:
        steps.append(run_step("tests", [py, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"],
                              timeout=120, env=environment(), check=nothing_skipped))
    if "train" in only:
        out = tmp / "train"
        steps.append(run_step("train", [py, "-m", "linformer_edu.train", "--preset", "gpu", "--minutes", "1",
                                        "--no-progress", "--sample", "100", "--out", out],
                              timeout=150, env=environment(), check=training_check(out, dtype)))
    if "notebook" in only:
        copy = tmp / "notebooks" / NOTEBOOK.name
        copy.parent.mkdir(parents=True)
        shutil.copy2(NOTEBOOK, copy)
        steps.append(run_step("notebook", [py, "tools/run_notebooks.py", "--timeout", "300", copy],
                              timeout=180, env=environment({"LINFORMER_EDU_QUICK": "1"})))
    if "bench" in only:
        steps.append(run_step("bench", [py, "benchmarks/run.py", "--quick", "--device", "cuda", "--no-progress",
                                        "--no-extras", "--out", tmp / "bench"], timeout=120, env=environment()))
    return steps


def gpu_facts() -> dict:
    """The GPU and software the checks ran on."""
    amp = amp_settings("cuda")
    return {"gpu": torch.cuda.get_device_name(), "capability": ".".join(map(str, torch.cuda.get_device_capability())),
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "amp": f"{str(amp.dtype).replace('torch.', '')}{' + GradScaler' if amp.use_scaler else ''}"}


def write_results(out: pathlib.Path, facts: dict, steps: list[Step]) -> tuple[pathlib.Path, pathlib.Path]:
    """Write OUT/gpu_check.json and OUT/gpu_check.txt (each to a temporary file, then renamed); return both paths."""
    out.mkdir(parents=True, exist_ok=True)
    passed = all(s.passed for s in steps)
    record = {**facts, "passed": passed, "seconds": round(sum(s.seconds for s in steps), 1),
              "steps": [asdict(s) for s in steps]}
    lines = [f"gpu_check: {'all passed' if passed else 'FAILED'} on {facts['gpu']} (capability "
             f"{facts['capability']}), torch {facts['torch']}, CUDA {facts['cuda']}, amp {facts['amp']}, "
             f"{record['seconds']:.0f} s"]
    lines += [f"{'pass' if s.passed else 'FAIL'}  {s.name:9s} {s.seconds:6.1f} s  {s.note}" for s in steps]
    for s in steps:
        if not s.passed:
            lines += ["", f"--- {s.name}: {s.command}", s.tail.rstrip()]
    paths = out / "gpu_check.json", out / "gpu_check.txt"
    for path, text in zip(paths, (json.dumps(record, indent=1) + "\n", "\n".join(lines) + "\n")):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, required=True, help="folder for gpu_check.json and .txt")
    parser.add_argument("--only", nargs="+", choices=STEPS, default=STEPS, help="run only these steps")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(no_gpu_message(), file=sys.stderr)
        return 2
    facts = {**gpu_facts(), "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        steps = gpu_steps(pathlib.Path(tmp), args.only)
    _, txt = write_results(args.out, facts, steps)
    print(txt.read_text(encoding="utf-8"), end="")
    return 0 if all(s.passed for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
