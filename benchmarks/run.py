"""The benchmark suite: what linear attention buys, measured on this machine.

    python benchmarks/run.py                 # default: about a minute on a 2-core CPU
    python benchmarks/run.py --full --out benchmarks/results/full   # n up to 16384 (the targets at n = 8192),
                                                                     # and peak RSS versus depth (~8 min)
    python benchmarks/run.py --rss           # also peak RSS of deep stacks, reversible vs sequential (~2 min)
    python benchmarks/run.py --quick         # tiny sizes: checks that everything runs (numbers meaningless)
    python benchmarks/run.py --notebooks     # also time every notebook under nbval at test size (slow)
    python benchmarks/run.py --trainer       # also char-LM training tokens/s per model (a few minutes)
    python benchmarks/run.py --out DIR       # where results go (default: benchmarks/results)

Writes to DIR: results.json (everything, with the machine), sweep.csv (time and memory of one attention
layer and of a whole model versus n), versus_reference.csv, reversible_rss.csv, summary.txt (the printed
tables) and PNG plots. The explorer's update latency is measured when linformer_edu.explore is there; sections
whose module is missing are skipped with a note.
See linformer_edu/bench.py and linformer_edu/measure.py for what each column means.
"""
import argparse
import csv
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run from a fresh clone without installing

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from linformer_edu import bench  # noqa: E402
from linformer_edu.bench import Case  # noqa: E402
from linformer_edu.notebook import pick_device  # noqa: E402
from linformer_edu.plots import loglog  # noqa: E402


@dataclass
class Preset:
    """Sizes of one run. Times grow with n (and n² for full attention), so each list is a budget."""
    layer_ns: list            # sequence lengths for the one-layer sweep (batch 1)
    ks: list                  # linformer_edu's k values in the layer sweep (the reference runs at ref_k)
    model_ns: list            # sequence lengths for the whole-model sweep (depth 2)
    model_ks: list
    naive_max: int            # the explicit n×n kernel is measured up to this n (memory and time are n²)
    speed_ns: list            # linformer_edu against the reference, same weights
    ref_k: int = 128
    speed_batch: int = 4
    matmul: list = field(default_factory=lambda: [2048])
    repeats: int = 5
    rss: dict = field(default_factory=dict)  # reversible vs sequential peak RSS: depths, dim, n, batch, k, ...
    run_rss: bool = True      # measure peak RSS without being asked (--rss)
    extras: bool = True       # the explorer's update latency, when linformer_edu.explore exists


# glibc's default, and large blocks always mapped (freed memory leaves the process): see bench.peak_rss
RSS_ALLOCATORS = ("default", "fixed-mmap") if sys.platform.startswith("linux") else ("default",)

PRESETS = {
    "quick": Preset(layer_ns=[64, 128], ks=[16, 32], model_ns=[64, 128], model_ks=[32], naive_max=128,
                    speed_ns=[128], ref_k=32, speed_batch=1, matmul=[256], repeats=2,
                    rss=dict(depths=(1, 2), dim=32, n=64, batch=2, k=16, impls=("linformer",)), extras=False),
    "default": Preset(layer_ns=[128, 256, 512, 1024, 2048, 4096], ks=[64, 128, 256],
                      model_ns=[512, 1024, 2048], model_ks=[128], naive_max=2048, speed_ns=[1024, 4096],
                      rss=dict(depths=(2, 8), dim=256, n=1024, batch=8, k=128, allocators=RSS_ALLOCATORS),
                      run_rss=False),
    "full": Preset(layer_ns=[256, 512, 1024, 2048, 4096, 8192, 16384], ks=[64, 128, 256, 512],
                   model_ns=[512, 1024, 2048, 4096, 8192], model_ks=[128, 256], naive_max=8192,
                   speed_ns=[1024, 4096, 8192], matmul=[2048, 4096], repeats=7,
                   rss=dict(depths=(2, 8), dim=256, n=1024, batch=8, k=128, allocators=RSS_ALLOCATORS)),
}


# ----------------------------------------------------------------------------------------------------------------
# The measurements

def sweep_cases(p):
    """Every case of the layer and model sweeps: forward and forward+backward for each contestant."""
    cases = []
    for scope, ns, ks in (("layer", p.layer_ns, p.ks), ("model", p.model_ns, p.model_ks)):
        for n in ns:
            for backward in (False, True):
                contestants = [("sdpa", None), ("reference", p.ref_k)] + [("linformer", k) for k in ks]
                if n <= (p.naive_max if scope == "layer" else min(p.naive_max, 4096)):
                    contestants.insert(0, ("naive", None))
                cases += [Case(model, n, k=k, scope=scope, backward=backward) for model, k in contestants
                          if k is None or k <= n]
    return cases


def explorer_latency():
    """The explorer's control-update latency, from linformer_edu.explore's own measuring function."""
    try:
        from linformer_edu import explore
    except ImportError as error:
        return {"skipped": f"linformer_edu.explore not importable ({error})"}
    for name in ("measure_update_latency", "measure_latency", "update_latency"):
        if hasattr(explore, name):
            result = getattr(explore, name)()
            return result if isinstance(result, dict) else {"result": result}
    return {"skipped": "linformer_edu.explore has no measure_update_latency()"}


def trainer_throughput(models=(("full", None), ("linformer", None)), steps=20):
    """Char-LM training tokens/s per model (cpu preset, its default k), from the trainer's CLI (metrics.json)."""
    try:
        import linformer_edu.train  # noqa: F401
    except ImportError as error:
        return [{"skipped": f"linformer_edu.train not importable ({error})"}]
    rows = []
    for model, k in models:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "linformer_edu.train", "--preset", "cpu", "--model", model,
                   "--steps", str(steps), "--eval-interval", str(steps), "--device", "auto", "--out", out, "--no-progress"] + (["--k", str(k)] if k else [])
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            metrics = pathlib.Path(out, "metrics.json")
            if done.returncode or not metrics.exists():
                rows.append({"model": model, "k": k, "skipped": (done.stderr or done.stdout).strip()[-300:]})
                continue
            m = json.loads(metrics.read_text())
            rows.append({"model": model, "k": k, "steps": m.get("steps"), "device": m.get("device"),
                         "tokens_per_s": m.get("tokens_per_s")})
    return rows


def notebook_times():
    """Seconds each notebook takes under nbval at test size (LINFORMER_EDU_QUICK=1), and whether it passed."""
    rows = []
    env = {**os.environ, "LINFORMER_EDU_QUICK": "1"}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(path.relative_to(ROOT))], capture_output=True, text=True, cwd=ROOT, env=env)
        rows.append({"notebook": path.name, "seconds": time.perf_counter() - start,
                     "passed": done.returncode == 0})
    rows.append({"notebook": "total", "seconds": sum(r["seconds"] for r in rows),
                 "passed": all(r["passed"] for r in rows)})
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Reading the results: the targets, stated as measured

def lookup(rows, **where):
    found = [r for r in rows if all(r.get(key) == value for key, value in where.items())]
    return found[0] if found else None


def targets(results, p):
    """The targets of issues 2 and 6, each with the measured value and whether it was met (None: not measured)."""
    rows, speed = results["sweep"], results["versus_reference"]
    matmul = max(results["matmul_gflops"].values())
    out = []

    def add(name, value, goal, met):
        out.append({"target": name, "measured": value, "goal": goal, "met": met})

    for r in speed:
        if r["pass"] == "fwd+bwd":
            add(f"fwd+bwd speed-up vs reference, n={r['n']}, batch {r['batch']}", r["speedup"], ">= 1.15",
                r["speedup"] >= 1.15)
    r = next((r for r in speed if r["pass"] == "fwd" and r["n"] == 4096), None)
    if r:
        add("forward GFLOP/s / matmul GFLOP/s, n=4096 (actual FLOPs)", r["linformer_gflops"] / matmul, ">= 0.70",
            r["linformer_gflops"] / matmul >= 0.7)
        add("  same, reference-equivalent FLOPs", r["linformer_gflops_reference_equivalent"] / matmul,
            "(for comparison)", None)
    n_top = max(n for n in p.layer_ns if lookup(rows, model="linformer", n=n, k=p.ref_k, scope="layer"))
    for backward in (False, True):
        for n in sorted({8192, n_top}):
            ours = lookup(rows, model="linformer", n=n, k=p.ref_k, scope="layer", backward=backward)
            sdpa = lookup(rows, model="sdpa", n=n, scope="layer", backward=backward)
            if ours and sdpa:
                ratio = sdpa["median_ms"] / ours["median_ms"]
                add(f"SDPA time / Linformer time, {ours['pass']}, n={n}, k={p.ref_k}", ratio,
                    ">= 10 at n=8192", ratio >= 10 if n == 8192 else None)
            elif n == 8192:
                add(f"SDPA time / Linformer time, n=8192, k={p.ref_k}", "not measured (run --full)", ">= 10", None)
    for model, k in (("linformer", p.ref_k), ("sdpa", None), ("naive", None)):
        saved = {r["n"]: r["saved_MiB"] for r in rows if r["model"] == model and r["scope"] == "layer"
                 and r["backward"] and r["k"] == k}
        ns = sorted(saved)
        pairs = [(8192, 4096)] if {8192, 4096} <= saved.keys() else []   # the pair the target names
        pairs += [(ns[-1], ns[-2])] if len(ns) >= 2 and (ns[-1], ns[-2]) not in pairs else []
        for big, small in pairs:
            ratio = saved[big] / saved[small]
            add(f"saved-for-backward {big}/{small}, {model}" + (f" k={k}" if k else ""), ratio,
                "<= 2.1" if model == "linformer" else "(≈4 if quadratic)",
                ratio <= 2.1 if model == "linformer" else None)
    for k in p.ks:
        for backward in (False, True):
            found = bench.crossover(rows, k, backward=backward)
            text = ("never, in the sizes measured" if found is None else
                    f"n = {found[0]}" + (f" (loses at {found[1]})" if found[1] else " (wins at every n measured)"))
            add(f"crossover vs SDPA, {'fwd+bwd' if backward else 'fwd'}, k={k}", text, "(stated)", None)
    return out


def table3(rows, p):
    """The shape of the paper's Table 3: whole-model inference time and peak memory, full / Linformer."""
    out = []
    for n in p.model_ns:
        for k in p.model_ks:
            ours = lookup(rows, model="linformer", n=n, k=k, scope="model", backward=False)
            if not ours:
                continue
            row = {"n": n, "k": k}
            for base in ("sdpa", "naive"):
                full = lookup(rows, model=base, n=n, scope="model", backward=False)
                row[f"time_saved_vs_{base}"] = full["median_ms"] / ours["median_ms"] if full else None
                peak = full and full.get("peak_MiB") and ours.get("peak_MiB")
                row[f"memory_saved_vs_{base}"] = full["peak_MiB"] / ours["peak_MiB"] if peak else None
            out.append(row)
    return out


# ----------------------------------------------------------------------------------------------------------------
# The machine, tables and plots

def machine():
    """What the numbers were measured on: CPU model, cores, threads, torch, and the GPU if one is used."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        pass
    info = {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def fmt(value, digits=3):
    """A number for a table: None as '—', floats with `digits` significant figures."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)


def table(rows, columns, title):
    widths = [max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in columns]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
    return "\n".join([title, line(columns), line("-" * w for w in widths)]
                     + [line(fmt(r.get(c)) for c in columns) for r in rows]) + "\n"


def label(r):
    return r["model"] + (f" k={r['k']}" if r["model"] in ("linformer", "reference") else "")


def series(rows, key, **where):
    """{label: (ns, values)} for the rows matching `where`."""
    out = {}
    for r in rows:
        if all(r.get(k) == v for k, v in where.items()) and r.get(key) is not None:
            ns, values = out.setdefault(label(r), ([], []))
            ns.append(r["n"])
            values.append(r[key])
    return out


def plot_series(ax, data, ylabel, title):
    for name, (ns, values) in data.items():
        if len(ns) >= 2:
            loglog(ns, {name: values}, ax=ax, ylabel=ylabel, title=title, fit_last=3)
    ns = sorted({n for xs, _ in data.values() for n in xs})
    if ns:   # label the measured lengths, not matplotlib's minor ticks (they overlap within one decade)
        ax.set_xticks(ns, labels=ns, minor=False)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.tick_params(axis="x", labelsize=7)


def plots(results, out, p):
    rows = results["sweep"]
    paths = []
    for scope in ("layer", "model"):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, backward in zip(axes, (False, True)):
            plot_series(ax, series(rows, "median_ms", scope=scope, backward=backward), "median time (ms)",
                        f"one {'attention layer' if scope == 'layer' else 'depth-2 model'}, "
                        f"{'forward+backward' if backward else 'forward'}")
        paths.append(save(fig, out / f"{scope}_time.png"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plot_series(axes[0], series(rows, "saved_MiB", scope="layer", backward=True), "MiB",
                "saved for backward, one layer")
    plot_series(axes[1], series(rows, "largest_MiB", scope="layer", backward=False), "MiB",
                "largest single tensor, one layer, forward")
    paths.append(save(fig, out / "layer_memory.png"))
    if results["versus_reference"]:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        speed = results["versus_reference"]
        names = [f"n={r['n']}\n{r['pass']}" for r in speed]
        ax.bar(names, [r["speedup"] for r in speed], color=["C0" if r["pass"] == "fwd" else "C1" for r in speed])
        ax.axhline(1.15, color="k", ls="--", lw=1, label="target 1.15×")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_ylabel("reference time / linformer_edu time")
        ax.set_title(f"same weights, batch {speed[0]['batch']}, k={speed[0]['k']}")
        ax.legend(fontsize=8)
        paths.append(save(fig, out / "versus_reference.png"))
    if results["table3"]:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, what in zip(axes, ("time", "memory")):
            for k in p.model_ks:
                for base, style in (("sdpa", "o-"), ("naive", "s--")):
                    pts = [(r["n"], r[f"{what}_saved_vs_{base}"]) for r in results["table3"]
                           if r["k"] == k and r[f"{what}_saved_vs_{base}"]]
                    if pts:
                        ax.semilogx(*zip(*pts), style, base=2, label=f"k={k} vs {base}")
            ax.axhline(1, color="grey", lw=0.8)
            ax.set_xlabel("sequence length n")
            ax.set_ylabel(f"{what} saved (full / Linformer)")
            ax.set_title(f"whole model, inference: {what} saved")
            ax.legend(fontsize=8)
        paths.append(save(fig, out / "table3.png"))
    if results["reversible_rss"]:
        rss = results["reversible_rss"]
        fig, ax = plt.subplots(figsize=(8, 3.8))
        ax.bar([f"{r['impl']}\n{r['stack']}\n{r['allocator']}" for r in rss], [r["MB_per_extra_layer"] for r in rss],
               color=["C0" if r["stack"] == "reversible" else "C1" for r in rss])
        ax.tick_params(axis="x", labelsize=7)
        ax.set_ylabel("peak RSS per extra layer (MB)")
        ax.set_title(f"depth {p.rss['depths'][0]} → {p.rss['depths'][1]}, n={p.rss['n']}, batch {p.rss['batch']}")
        paths.append(save(fig, out / "reversible_rss.png"))
    return paths


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_csv(path, rows):
    columns = list(dict.fromkeys(c for r in rows for c in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


# ----------------------------------------------------------------------------------------------------------------

SWEEP_COLUMNS = ["scope", "model", "k", "n", "pass", "median_ms", "best_ms", "spread", "cpu_share", "gflops",
                 "gflops_reference_equivalent", "saved_MiB", "largest_MiB", "peak_MiB"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes, to check that the suite runs")
    size.add_argument("--full", action="store_true", help="bigger sizes, n up to 16384")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), or a device name")
    parser.add_argument("--notebooks", action="store_true", help="also time every notebook under nbval (slow)")
    parser.add_argument("--rss", action="store_true", help="also peak RSS versus depth (default run; --full has it)")
    parser.add_argument("--trainer", action="store_true", help="also char-LM training tokens/s (a few minutes)")
    parser.add_argument("--no-extras", action="store_true", help="skip the explorer section")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    preset = "quick" if args.quick else "full" if args.full else "default"
    p = PRESETS[preset]
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)   # for the peak-RSS subprocesses too
    device = pick_device(args.device)
    progress = not args.no_progress
    start = time.perf_counter()

    flags = [a for a in (argv or sys.argv[1:]) if a not in ("--no-progress", "--out", str(args.out))]
    results = {"preset": preset, "command": " ".join(["python benchmarks/run.py"] + flags),
               "machine": machine(), "device": str(device), "notes": []}
    if not bench.reference_available():
        results["notes"].append("reference `linformer` not installed: its columns are skipped "
                                "(pip install linformer==0.2.3)")
    sections = {
        "matmul_gflops": lambda: {str(s): bench.matmul_gflops(s, device=device) for s in p.matmul},
        "sweep": lambda: bench.sweep(sweep_cases(p), device=device, repeats=p.repeats, progress=progress),
        "versus_reference": lambda: [r for n in p.speed_ns for backward in (False, True)
                                     if (r := bench.versus_reference(n, k=p.ref_k, batch=p.speed_batch,
                                                                     backward=backward, device=device))],
        "reversible_rss": lambda: (bench.rss_versus_depth(**p.rss, progress=progress)
                                   if device.type == "cpu" and (p.run_rss or args.rss) else []),
        "explorer": lambda: (explorer_latency() if p.extras and not args.no_extras
                             else {"skipped": "not run (--quick or --no-extras)"}),
        "trainer": lambda: trainer_throughput() if args.trainer else [{"skipped": "not run (pass --trainer)"}],
        "notebooks": lambda: notebook_times() if args.notebooks else [{"skipped": "not run (pass --notebooks)"}],
    }
    results["section_seconds"] = {}
    for name, run in sections.items():
        begin = time.perf_counter()
        results[name] = run()
        results["section_seconds"][name] = time.perf_counter() - begin
    # the matmul ceiling again at the end: a busy moment at the start must not lower it
    again = {str(s): bench.matmul_gflops(s, device=device) for s in p.matmul}
    results["matmul_gflops_runs"] = {s: [v, again[s]] for s, v in results["matmul_gflops"].items()}
    results["matmul_gflops"] = {s: max(v, again[s]) for s, v in results["matmul_gflops"].items()}
    results["table3"] = table3(results["sweep"], p)
    results["targets"] = targets(results, p)
    results["seconds"] = time.perf_counter() - start

    m = results["machine"]
    text = (f"{results['command']}  ({preset}; {results['seconds']:.0f} s: "
            + ", ".join(f"{name} {sec:.0f} s" for name, sec in results["section_seconds"].items()) + ")\n"
            f"machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
            f"device {device}\n"
            f"matmul GFLOP/s (float32 square, best of the start and the end of the run): "
            + ", ".join(f"{s}²: {v:.0f}" for s, v in results["matmul_gflops"].items()) + "\n"
            + "".join(f"note: {note}\n" for note in results["notes"]) + "\n")
    text += table(results["sweep"], SWEEP_COLUMNS, "Time and memory versus n (batch 1, dim 256, 4 heads; "
                  "model = depth 2)")
    noisy = [r for r in results["sweep"]
             if r["spread"] > 0.25 or (r["cpu_share"] is not None and r["cpu_share"] < 0.85)]
    retried = sum(r["attempts"] > 1 for r in results["sweep"])
    text += (f"noise: {retried} of {len(results['sweep'])} cases re-timed because other programs disturbed them; "
             f"{len(noisy)} still disturbed after {bench.measure.__kwdefaults__['retries']} retries"
             + "".join(f"\n  {r['scope']} {label(r)} n={r['n']} {r['pass']}: spread {r['spread']:.2f}, "
                       f"cpu share {fmt(r['cpu_share'])}" for r in noisy) + "\n\n")
    speed_cols = ["n", "pass", "batch", "reference_ms", "linformer_ms", "speedup", "rounds_redone", "linformer_gflops",
                  "linformer_gflops_reference_equivalent", "reference_gflops"]
    if results["versus_reference"]:
        text += table(results["versus_reference"], speed_cols,
                      f"linformer_edu vs reference, same weights (k={p.ref_k})") + "\n"
    if results["table3"]:
        text += table(results["table3"], list(results["table3"][0]),
                      "Paper Table 3 shape: whole model (depth 2), inference, full / Linformer") + "\n"
    if results["reversible_rss"]:
        text += table(results["reversible_rss"], list(results["reversible_rss"][0]),
                      "Peak RSS (fresh process, one forward+backward)") + "\n"
    else:
        text += "Peak RSS versus depth: not run (pass --rss, or --full)\n\n"
    text += table(results["targets"], ["target", "measured", "goal", "met"], "Targets") + "\n"
    for name in ("explorer", "trainer", "notebooks"):
        section = results[name]
        section = section if isinstance(section, list) else [section]
        text += table(section, list(dict.fromkeys(c for r in section for c in r)), name.capitalize()) + "\n"
    print(text)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    write_csv(out / "sweep.csv", results["sweep"])
    write_csv(out / "versus_reference.csv", results["versus_reference"])
    write_csv(out / "reversible_rss.csv", results["reversible_rss"])
    written = [path.name for path in plots(results, out, p)]
    print(f"results in {out}: summary.txt results.json sweep.csv versus_reference.csv reversible_rss.csv "
          + " ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
