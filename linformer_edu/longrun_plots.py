"""Pictures of long-context runs (linformer_edu.longrun): learning curves against steps and against time, and
the map of where the Linformer steps faster than full attention.

    experiment_figure(results["experiments"]["a"], results["groups"])   # a row per panel: steps | seconds
    speed_map_plot(speeds)                                              # {(n, k): speed ratio} as a grid
"""
import matplotlib.pyplot as plt
import numpy as np


def curves(panel, groups, ax_steps, ax_time):
    """Validation bits of every run of `panel` against steps (ax_steps) and seconds (ax_time). Seeds of one model
    share a colour; dotted lines mark the points where the runs are compared (equal steps, equal time)."""
    records = groups[panel["group"]]["runs"]
    for i, label in enumerate(panel["labels"]):
        runs = [r for r in records if r["label"] == label]
        for j, run in enumerate(runs):
            h = run["history"]
            style = dict(color=f"C{i}", lw=2 if label == panel["reference"] else 1.3, alpha=1 if j == 0 else 0.55,
                         label=(label + (f" ({len(runs)} seeds)" if len(runs) > 1 else "")) if j == 0 else None)
            ax_steps.plot([p["step"] for p in h], [p["bits"] for p in h], **style)
            ax_time.plot([p["seconds"] for p in h], [p["bits"] for p in h], **style)
    comparison = panel.get("comparison")
    if comparison:
        ax_steps.axvline(comparison["equal_steps"], color="grey", ls=":", lw=1)
        ax_time.axvline(comparison["equal_seconds"], color="grey", ls=":", lw=1)
    objective = "bits per masked char" if "causal" not in panel["reference"] else "bits per char (next)"
    ax_steps.set(xlabel="training steps", ylabel=f"validation {objective}")
    ax_time.set(xlabel="seconds (steps × measured s/step)", ylabel=f"validation {objective}")
    _zoom(ax_steps, records, panel["labels"])
    _zoom(ax_time, records, panel["labels"])
    ax_steps.legend(fontsize=7)


def _zoom(ax, records, labels):
    """Leave out the first validation (the untrained model, far above the rest) when choosing the y range."""
    later = [p["bits"] for r in records if r["label"] in labels for p in r["history"][1:]]
    if later:
        low, high = min(later), max(later)
        ax.set_ylim(low - 0.05 * (high - low + 1e-9), high + 0.05 * (high - low + 1e-9))


def experiment_figure(experiment, groups, *, size=(4.2, 3.0)):
    """One row per panel of an experiment: learning curves against steps, then against seconds."""
    panels = experiment["panels"]
    fig, axes = plt.subplots(len(panels), 2, figsize=(2 * size[0], size[1] * len(panels)), squeeze=False,
                             layout="constrained")
    for panel, (ax_steps, ax_time) in zip(panels, axes):
        curves(panel, groups, ax_steps, ax_time)
    fig.suptitle(experiment["title"], fontsize=10)
    return fig


def speed_map_plot(speeds, *, gaps=None, ax=None, title="training-step speed, full attention time / Linformer"):
    """A grid n × k coloured by the speed ratio (above 1: the Linformer steps faster), each cell labelled.

    gaps: optional {(n, k): text} written under the ratio in a cell (e.g. a quality gap from the results).
    """
    ns = sorted({n for n, _ in speeds})
    ks = sorted({k for _, k in speeds})
    grid = np.full((len(ns), len(ks)), np.nan)
    for (n, k), ratio in speeds.items():
        grid[ns.index(n), ks.index(k)] = ratio
    if ax is None:
        ax = plt.subplots(figsize=(1.3 * len(ks) + 2.2, 0.7 * len(ns) + 1.4), layout="constrained")[1]
    bound = max(2.0, float(np.nanmax(np.abs(np.log2(grid)))))
    image = ax.imshow(np.log2(grid), cmap="RdBu", vmin=-bound, vmax=bound, origin="lower", aspect="auto")
    for (n, k), ratio in speeds.items():
        text = f"{ratio:.2f}×" + (f"\n{gaps[n, k]}" if gaps and (n, k) in gaps else "")
        ax.text(ks.index(k), ns.index(n), text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_yticks(range(len(ns)), [str(n) for n in ns])
    ax.set(xlabel="k (projected length)", ylabel="n (sequence length)", title=title)
    ax.title.set_fontsize(9)
    ax.figure.colorbar(image, ax=ax, label="log2 speed ratio (blue: Linformer faster)")
    return ax
