"""The Linformer on its home turf: masked-LM training at long n, full attention vs Linformer, at equal steps and
at equal wall time (the paper's Fig. 3 at CPU size), and the causal LM at n = 1024 and 2048.

    python benchmarks/long_context.py --threads 1      # full size: about 12 minutes of one quiet CPU core
    python benchmarks/long_context.py --quick --out DIR # tiny sizes, well under a minute (numbers meaningless)

Experiments (linformer_edu.longrun_plan): (a) full vs Linformer k = 32, 64, 128 at n = 1024; (b) Linformer k = 64
at n = 256 … 2048; (c) sharing headwise / key-value / layerwise; (d) causal full vs causal Linformer, next
characters, n = 1024 and 2048. Every run shares one recipe (AdamW, warm-up then constant learning rate, the same
tokens per step: batch = tokens // n) and is seeded; nothing is tuned for one side.

Time: each group of runs that shares a budget is first timed in interleaved rounds (every model one training step
per round, order rotated; the median of per-round ratios to the reference), and a run's seconds are its steps ×
that step time. A busy machine stretches every curve alike instead of bending one (linformer_edu.longrun).

Writes to --out (default benchmarks/results/long_context): summary.txt (tables: bits at equal steps and equal
time, step-time ratios, the paper's claims), results.json (every run's curve), and PNG plots.
"""
import argparse
import json
import os
import pathlib
import sys
import time
from dataclasses import asdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # run from a fresh clone without installing

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from linformer_edu.longrun import Recipe, load_data  # noqa: E402
from linformer_edu.longrun_plan import make_plan, run_plan, seed_noise, verdicts  # noqa: E402
from linformer_edu.longrun_plots import experiment_figure  # noqa: E402
from linformer_edu.notebook import pick_device  # noqa: E402

PRESETS = {
    "quick": dict(recipe=Recipe(dim=16, depth=1, heads=2, tokens_per_step=256, warmup=2, eval_every=2,
                                eval_tokens=256),
                  plan=dict(n=128, ks=(16, 32), k=16, ns=(64, 128), causal_ns=(64, 128), mlm_budget=4,
                            causal_budget=4), rounds=2),
    "full": dict(recipe=Recipe(), rounds=7,
                 plan=dict(n=1024, ks=(32, 64, 128), k=64, ns=(256, 512, 1024, 2048), causal_ns=(1024, 2048),
                           mlm_budget=80, causal_budget=60)),
}
PLOTS = {"a": "a_k.png", "b": "b_n.png", "c": "c_sharing.png", "d": "d_causal.png"}
COLUMNS = ["model", "seeds", "steps", "s_per_step", "speed_vs_ref", "bits_equal_steps", "best_equal_steps",
           "bits_equal_time", "best_equal_time", "gap_equal_steps", "gap_equal_time", "seed_spread"]


def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(rows, columns):
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells]) + "\n"


def machine(device):
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": str(device)}
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def describe(results):
    """The header of summary.txt: command, machine, recipe, method, load."""
    r, m, load = results["recipe"], results["machine"], results["load"]
    lines = [f"{results['command']}  ({results['preset']}; {results['seconds']:.0f} s)",
             f"machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
             f"device {m['device']}",
             f"corpus: pydoc ({results['corpus_chars']:,} characters, first 90% train, last 10% validation)",
             f"recipe (every run): dim {r['dim']}, depth {r['depth']}, {r['heads']} heads, {r['tokens_per_step']} "
             f"tokens per step (batch = {r['tokens_per_step']} // n), AdamW lr {r['lr']} ({r['warmup']} warm-up "
             f"steps, then constant), weight decay {r['weight_decay']}, gradient clip {r['clip']}, no dropout; "
             f"validation every {r['eval_every']} steps on {r['eval_tokens']} characters, the same windows and "
             f"masks each time; seeds as listed (weights, batches and masks all follow the seed)",
             "objective: masked LM (15% of characters chosen; 80/10/10 mask/random/keep) for (a)-(c), reported as "
             "bits per masked character; next character for (d), bits per character",
             "time axis: every model of a group takes one training step per round, in rotated order; its step time "
             "over the reference's in the same round, median over rounds, times the reference's median step time, "
             "is its seconds per step; a run's time is steps x that (validation not counted). Budgets: "
             + "; ".join(f"{name}: {g['budget_steps']} steps of {g['reference']} "
                         f"({g['budget_steps'] * g['timing']['seconds_per_step'][g['reference']]:.0f} s)"
                         for name, g in results["groups"].items()),
             f"load: load average {load['start']:.1f} at the start, {load['end']:.1f} at the end; this process got "
             f"{100 * load['cpu_share']:.0f}% of {m['torch_threads']} thread(s) of CPU time over the run"
             + (" -- other jobs shared the CPU; the per-round ratios make that matter little, but the absolute "
                "seconds are slower than on a quiet machine" if load["busy"] else ""),
             f"seed-to-seed spread (largest, bits at equal time): {fmt(results['seed_noise'])}; a gap no larger "
             "than that is called level", ""]
    return "\n".join(lines) + "\n"


def summary(results):
    text = describe(results)
    rows = [{"group": name, "model": label, "s_per_step": g["timing"]["seconds_per_step"][label],
             "ratio_vs_ref": g["timing"]["ratio"][label], "raw_median_s": g["timing"]["raw_median"][label],
             "steps": next(r["steps"] for r in g["runs"] if r["label"] == label)}
            for name, g in results["groups"].items() for label in g["timing"]["ratio"]]
    text += "Step times (interleaved rounds; ratio = median per-round step-time ratio to the group's reference)\n"
    text += table(rows, ["group", "model", "s_per_step", "ratio_vs_ref", "raw_median_s", "steps"]) + "\n"
    for exp in results["experiments"].values():
        text += f"{exp['title']}\npaper: {exp['claim']}\n"
        for panel in exp["panels"]:
            c = panel["comparison"]
            text += (f"[{panel['group']}] equal steps = {c['equal_steps']}, equal time = {c['equal_seconds']:.1f} s, "
                     f"reference {c['reference']}\n")
            text += table(c["rows"], COLUMNS)
            text += "".join(f"- {line}\n" for line in verdicts(panel, results["seed_noise"]))
        text += "\n"
    text += ("columns: bits_* = validation bits per (masked) character, mean over seeds, at the equal-steps point "
             "or at the equal-time point (linear between validations); best_* = the lowest validation up to that "
             "point; gap_* = bits minus the reference's (negative: better than the reference); speed_vs_ref = "
             "reference s/step / this model's s/step; seed_spread = largest minus smallest seed at equal time.\n")
    return text


def step_time_plot(results, path):
    groups = results["groups"]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.2), squeeze=False, layout="constrained")
    for ax, (name, g) in zip(axes[0], groups.items()):
        labels = list(g["timing"]["ratio"])
        ax.barh(labels, [1 / g["timing"]["ratio"][label] for label in labels], color="C0")
        ax.axvline(1, color="grey", lw=0.8)
        ax.set(xlabel=f"steps per second / {g['reference']}'s", title=name)
        ax.tick_params(axis="y", labelsize=7)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that everything runs")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "long_context")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto (CUDA, MPS, CPU) or a device name")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds for the headline runs (default 2)")
    parser.add_argument("--budget", type=int, help="reference steps per time budget (default: the preset's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    preset = "quick" if args.quick else "full"
    p = PRESETS[preset]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    plan_options = dict(p["plan"], seeds=tuple(range(args.seeds)))
    if args.budget:
        plan_options.update(mlm_budget=args.budget, causal_budget=args.budget)
    flags = [a for a in (argv if argv is not None else sys.argv[1:]) if a not in ("--no-progress", "--out", str(args.out))]
    start, cpu_start, load_start = time.perf_counter(), time.process_time(), os.getloadavg()[0]

    data = load_data()
    results = run_plan(make_plan(**plan_options), p["recipe"], data, rounds=p["rounds"], device=device,
                       progress=not args.no_progress)
    seconds = time.perf_counter() - start
    share = (time.process_time() - cpu_start) / seconds / torch.get_num_threads()
    load_end = os.getloadavg()[0]
    results.update(command=" ".join(["python benchmarks/long_context.py", *flags]), preset=preset, seconds=seconds,
                   machine=machine(device), corpus_chars=len(data.train) + len(data.val), rounds=p["rounds"],
                   load={"start": load_start, "end": load_end, "cpu_share": share,
                         "busy": share < 0.9 or max(load_start, load_end) > (os.cpu_count() or 1)},
                   seed_noise=seed_noise(results), plan=dict(plan_options, seeds=list(plan_options["seeds"])))
    text = summary(results)
    print(text)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for key, name in PLOTS.items():
        fig = experiment_figure(results["experiments"][key], results["groups"])
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
    step_time_plot(results, out / "step_times.png")
    print(f"results in {out}: summary.txt results.json step_times.png " + " ".join(PLOTS.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
