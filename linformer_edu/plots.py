"""The course's pictures, so notebook cells stay about the idea and not about matplotlib.

    heatmaps(maps, titles)              attention maps side by side on one shared colour scale
    spectrum(s, labels)                 normalized cumulative singular values (the paper's Fig. 1 picture)
    loglog(x, {label: y})               cost versus size on log-log axes, each line labelled with its fitted slope;
                                        returns (ax, {label: slope})
    projection_shapes(n, k, d)          the projection's shapes: K → E → EK, V → F → FV, Q(EK)ᵀ → P̄ → P̄(FV)
    linformer_block(n, k, d, heads)     the Linformer layer as blocks, as in the paper's Fig. 2, shapes marked
    loss_curves({label: losses})        training / validation loss versus step
    LiveLossPlot()                      a callback for `train.train` that redraws every run's curves as it trains

Each returns its matplotlib Axes (or an array of them) so a notebook can add to the picture; end the cell with
`;` to keep the Axes' text out of the output. Tensors, NumPy arrays and lists are all accepted.
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.ticker import NullFormatter

from ._checks import check_choice, check_positive_int


def to_numpy(x):
    """A float NumPy array from a tensor (any device, with or without grad), an array or a list."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    if isinstance(x, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in x):   # e.g. [loss, loss, …]
        return np.stack([to_numpy(v) for v in x])
    return np.asarray(x, dtype=float)


def _axes(ax, figsize=(4.5, 3.2)):
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


# ----------------------------------------------------------------------------------------------------------------
# Attention maps

def heatmaps(maps, titles=None, *, suptitle=None, ncols=None, cmap="viridis", vmin=None, vmax=None,
             xlabel="key position", ylabel="query position", size=2.6, colorbar=True, ticklabels=None):
    """Matrices side by side (or in a grid) on one colour scale, so their brightness can be compared.

    maps: one (n, m) matrix, a stack (p, n, m) -> one row, a grid (r, c, n, m), or a list of (n, m) matrices
    (which may differ in shape: an n×n map next to an n×k one). The scale spans all maps unless vmin/vmax given.
    ticklabels: token strings to write along both axes (e.g. the words of a sentence), or a pair (rows, columns).
    """
    if isinstance(maps, (list, tuple)):
        mats = [to_numpy(m) for m in maps]
        rows, cols = 1, len(mats)
    else:
        arr = to_numpy(maps)
        if arr.ndim not in (2, 3, 4):
            raise ValueError(f"maps: expected 2-4 dims (n, m), (p, n, m) or (r, c, n, m), got shape {arr.shape}")
        arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape)   # (r, c, n, m)
        rows, cols = arr.shape[:2]
        mats = list(arr.reshape(-1, *arr.shape[2:]))
    if ncols is not None:
        rows, cols = math.ceil(len(mats) / ncols), ncols
    vmin = min(m.min() for m in mats) if vmin is None else vmin
    vmax = max(m.max() for m in mats) if vmax is None else vmax
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.8 * colorbar, size * rows + 0.3 * bool(suptitle)),
                             squeeze=False, layout="constrained")
    titles = list(titles) if titles is not None else [None] * len(mats)
    for i, ax in enumerate(axes.flat):
        if i >= len(mats):
            ax.axis("off")
            continue
        image = ax.imshow(mats[i], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.set_title(titles[i] if i < len(titles) else None, fontsize=9)
        lowest = i + cols >= len(mats)   # nothing drawn below it (with ncols the last row may be short)
        if ticklabels is not None:
            rows_text, cols_text = ticklabels if isinstance(ticklabels, tuple) else (ticklabels, ticklabels)
            ax.set_yticks(range(len(rows_text)), rows_text if i % cols == 0 else [], fontsize=7)
            ax.set_xticks(range(len(cols_text)), cols_text if lowest else [], fontsize=7,
                          rotation=90 if max(map(len, map(str, cols_text))) > 2 else 0)
        if i % cols == 0:
            ax.set_ylabel(ylabel)
        if lowest:
            ax.set_xlabel(xlabel)
    if colorbar:
        fig.colorbar(image, ax=axes, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return axes


def heatmap(matrix, title=None, **options):
    """One matrix as a heatmap (see `heatmaps` for the options); returns its Axes."""
    return heatmaps([matrix], [title], **options)[0, 0]


# ----------------------------------------------------------------------------------------------------------------
# Singular values

def spectrum(singular_values, labels=None, *, ax=None, cumulative=True, title=None):
    """Normalized cumulative singular values, index 1..r on x, as in the paper's Fig. 1.

    singular_values: (r,) for one matrix, or (lines, r), or (lines, samples, r): each line is drawn as its mean
    over samples with a band from min to max. With cumulative=False the raw singular values are drawn (log y).
    """
    s = to_numpy(singular_values)
    if s.ndim not in (1, 2, 3):
        raise ValueError(f"singular_values: expected shape (r,), (lines, r) or (lines, samples, r), got {s.shape}")
    if s.ndim == 1:
        s = s[None]                                                # (1, r): one line
    if s.ndim == 2:
        s = s[:, None]                                             # (lines, 1, r): one sample per line
    if cumulative:
        s = np.cumsum(s, axis=-1) / s.sum(axis=-1, keepdims=True)
    ax = _axes(ax)
    index = np.arange(1, s.shape[-1] + 1)
    labels = list(labels) if labels is not None else [None] * len(s)
    for line, label in zip(s, labels):
        ax.plot(index, line.mean(0), label=label)
        if line.shape[0] > 1:
            ax.fill_between(index, line.min(0), line.max(0), alpha=0.2)
    ax.set_xlabel("singular value index")
    if cumulative:
        ax.set_ylabel("normalized cumulative\nsingular value")
        ax.set_ylim(0, 1.02)
    else:
        ax.set_ylabel("singular value")
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if any(label is not None for label in labels):
        ax.legend(fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Cost versus size

def fit_slope(x, y):
    """The exponent p of y ≈ c·xᵖ: the least-squares slope of log y against log x."""
    x, y = to_numpy(x), to_numpy(y)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"x, y: expected two equal-length series of at least 2 points, got {x.shape} and {y.shape}")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def loglog(x, series, *, ax=None, xlabel="sequence length n", ylabel="time (s)", title=None, fit_last=None):
    """Each series {label: y} on log-log axes, its label extended by the fitted slope; returns (ax, {label: slope}).

    fit_last: fit only the last points (where the asymptotic cost dominates); all points by default.
    """
    ax = _axes(ax)
    x = to_numpy(x)
    slopes = {}
    for label, y in series.items():
        y = to_numpy(y)
        tail = slice(-fit_last, None) if fit_last else slice(None)
        slopes[label] = fit_slope(x[tail], y[tail])
        ax.loglog(x, y, "o-", label=f"{label} (slope {round(slopes[label], 2) + 0:.2f})")   # + 0: no "-0.00"
    if len(x) <= 8:   # label the measured sizes themselves (64, 128, …) rather than powers of ten
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return ax, slopes


# ----------------------------------------------------------------------------------------------------------------
# Diagrams: boxes, arrows and shapes, no data (notebooks 03 and 04)

def _sizes(**sizes):
    """The sizes a diagram writes beside its symbols: each None (symbol only) or a positive int."""
    for name, value in sizes.items():
        if value is not None:
            check_positive_int(name, value)
    return sizes


def _shape(rows, cols, sizes, sep=" = "):
    """'n × d', then the numbers when both are known: 'n × d = 256 × 32' (joined by `sep`)."""
    numbers = [sizes.get(rows), sizes.get(cols)]
    text = f"{rows} × {cols}"
    return text if None in numbers else f"{text}{sep}{numbers[0]} × {numbers[1]}"


def _box(ax, x, y, w, h, text, color, **text_options):
    """A box with its lower left corner at (x, y), `text` in its middle; returns its centre."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", facecolor=color, edgecolor="0.25"))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", **{"fontsize": 9, **text_options})
    return x + w / 2, y + h / 2


def _arrow(ax, start, end, label=None):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="0.3", lw=1.2))
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.15, label, ha="center", va="bottom",
                fontsize=8, color="0.3")


def _canvas(ax, figsize, xlim, ylim, title):
    ax = _axes(ax, figsize)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    return ax


def projection_shapes(n=None, k=None, d=None, *, ax=None):
    """The shapes of one Linformer head, each matrix a box drawn to its proportions (n tall, k short, d narrow).

    Keys: K (n × d) → E (k × n) → EK (k × d); values: V → F → FV the same; then Q (n × d) meets EK in
    Q(EK)ᵀ/√d (n × k), softmax makes P̄ (n × k), and P̄(FV) is the head's output (n × d). Given n, k, d (positive
    ints), the numbers follow the symbols. Ten boxes, nine arrows; returns the Axes.
    """
    sizes = _sizes(n=n, k=k, d=d)
    N, K, D = 3.0, 1.2, 0.8                          # drawn lengths: k well below n, d narrowest
    numbers = ", ".join(f"{name} = {value}" for name, value in sizes.items() if value is not None)
    ax = _canvas(ax, (8, 6.4), (-0.6, 16.0), (-4.0, 12.4),
                 "the projection's shapes" + (f" ({numbers})" if numbers else ""))
    colors = {"input": "#dbe9f6", "projection": "#fde0c5", "projected": "#fff2b3", "map": "#d9f0d3"}

    def matrix(x, centre_y, rows, cols, name, kind):
        w, h = {"n": N, "k": K, "d": D}[cols], {"n": N, "k": K, "d": D}[rows]
        _box(ax, x, centre_y - h / 2, w, h, "", colors[kind])
        ax.text(x + w / 2, centre_y + h / 2 + 0.2, name, ha="center", va="bottom", fontsize=10)
        ax.text(x + w / 2, centre_y - h / 2 - 0.2, _shape(rows, cols, sizes, "\n"), ha="center", va="top",
                fontsize=8)
        return x, x + w, centre_y - h / 2, centre_y + h / 2          # left, right, bottom, top

    keys_y, maps_y, values_y = 9.8, 4.4, -1.4        # three rows: keys, the maps, values
    rows = {}
    for y, src, proj in ((keys_y, "K", "E"), (values_y, "V", "F")):
        left = matrix(0, y, "n", "d", src, "input")
        mid = matrix(2.2, y, "k", "n", proj, "projection")
        right = matrix(6.6, y, "k", "d", proj + src, "projected")
        _arrow(ax, (left[1], y), (mid[0], y))
        _arrow(ax, (mid[1], y), (right[0], y))
        rows[src] = right
    q = matrix(0, maps_y, "n", "d", "Q", "input")
    scores = matrix(8.9, maps_y, "n", "k", "Q(EK)ᵀ/√d", "map")
    p_bar = matrix(11.9, maps_y, "n", "k", "P̄", "map")
    out = matrix(14.6, maps_y, "n", "d", "P̄(FV)", "map")
    _arrow(ax, (q[1], maps_y), (scores[0], maps_y))
    _arrow(ax, (rows["K"][1], keys_y), ((scores[0] + scores[1]) / 2, scores[3] + 0.75))
    _arrow(ax, (scores[1], maps_y), (p_bar[0], maps_y), "softmax")
    _arrow(ax, (p_bar[1], maps_y), (out[0], maps_y))
    _arrow(ax, (rows["V"][1], values_y), ((out[0] + out[1]) / 2, out[2] - 1.0))
    return ax


def linformer_block(n=None, k=None, d=None, heads=None, dim=None, *, ax=None):
    """The Linformer layer as blocks, bottom to top as in the paper's Fig. 2 (left), with each block's output shape.

    Input X (n × dim) → per head, linear maps to Q, K, V (n × d) → projections E on K and F on V (k × d) →
    scaled dot-product attention softmax(Q(EK)ᵀ/√d)(FV) (n × d, through the n × k map P̄) → concatenate the h heads
    (n × h·d) → linear out (n × dim). Given sizes (positive ints) are written beside the symbols. Nine boxes, ten
    arrows; returns the Axes.
    """
    sizes = _sizes(n=n, k=k, d=d, heads=heads, dim=dim)
    sizes["h·d"] = None if None in (heads, d) else heads * d
    ax = _canvas(ax, (6.4, 6.4), (-0.4, 10.6), (-0.5, 11.4), "the Linformer layer (paper, Fig. 2)")
    blue, orange, green, grey = "#dbe9f6", "#fde0c5", "#d9f0d3", "#eeeeee"
    w, h = 2.6, 1.0

    def block(x, y, name, rows, cols, color, width=w):
        centre = _box(ax, x, y, width, h, f"{name}\n{_shape(rows, cols, sizes)}", color)
        return centre, y, y + h                       # centre, bottom, top

    x_in = block(2.9, 0, "input X", "n", "dim", grey, width=3.2)
    linear = {name: block(x, 2.0, f"Linear → {name}", "n", "d", blue)
              for name, x in (("Q", 0.2), ("K", 3.6), ("V", 7.0))}
    projected = {name: block(x, 4.0, f"projection {p}: {p}{name}", "k", "d", orange)
                 for name, p, x in (("K", "E", 3.6), ("V", "F", 7.0))}
    attention = block(0.2, 6.2, "scaled dot-product attention: P̄(FV), P̄ = softmax(Q(EK)ᵀ/√d)", "n", "d", green,
                      width=9.4)
    concat = block(2.9, 8.2, "concat heads", "n", "h·d", grey, width=3.2)
    out = block(2.9, 10.2, "Linear out", "n", "dim", blue, width=3.2)
    for name, (centre, bottom, _) in linear.items():
        _arrow(ax, (x_in[0][0], x_in[2]), (centre[0], bottom))
    for name, (centre, bottom, _) in projected.items():
        _arrow(ax, (centre[0], linear[name][2]), (centre[0], bottom))
    for centre, _, top in (linear["Q"], *projected.values()):
        _arrow(ax, (centre[0], top), (centre[0], attention[1]))
    _arrow(ax, (concat[0][0], attention[2]), (concat[0][0], concat[1]))
    _arrow(ax, (out[0][0], concat[2]), (out[0][0], out[1]))
    ax.add_patch(Rectangle((-0.2, 1.7), 10.2, 5.8, fill=False, ls="--", ec="0.5"))       # one per head
    heads_text = "h heads" if heads is None else f"h = {heads} heads"
    ax.text(10.1, 4.6, heads_text, ha="left", va="center", rotation=90, fontsize=8, color="0.4")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Training

def loss_curves(curves, *, ax=None, xlabel="step", ylabel="loss (nats/char)", title=None, logy=False):
    """Loss curves {label: losses}: losses a list (one per step) or a pair (steps, losses)."""
    ax = _axes(ax)
    for label, curve in curves.items():
        if isinstance(curve, tuple) and len(curve) == 2:
            steps, losses = to_numpy(curve[0]), to_numpy(curve[1])
        else:
            losses = to_numpy(curve)
            steps = np.arange(len(losses))
        ax.plot(steps, losses, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


class LiveLossPlot:
    """A callback for `train` that redraws the loss curves in one notebook figure while training runs.

        plot = LiveLossPlot()
        result = train(config, callback=plot)                  # one run
        for cfg in configs: train(cfg, callback=plot)          # or several: every run it saw, one colour each

    Each run shows its training loss (running mean over `smooth` steps, thin) and its validation loss at each
    evaluation (dots). x="step", or x="seconds" to compare runs under one time budget. Outside IPython it only
    records; `figure()` draws the same picture on demand. It reads only `result.config.label` and
    `result.history` ({"loss": [...], "seconds": [...], "evals": [{"step", "seconds", "val_loss", "val_bpc"}]}).
    """

    def __init__(self, x: str = "step", smooth: int = 20, title: str | None = None):
        check_choice("x", x, ("step", "seconds"))
        self.x, self.smooth, self.title = x, smooth, title
        self.runs, self.handle = {}, None    # label -> history (the live dict, so it grows as training runs)

    def __call__(self, result):
        self.runs[result.config.label] = result.history
        try:   # IPython is optional: without it there is no notebook to draw in
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = self.figure()
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)

    def figure(self):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        for i, (label, history) in enumerate(self.runs.items()):
            color = f"C{i}"
            losses = torch.tensor(history["loss"])                            # (steps,)
            xs = torch.arange(1, len(losses) + 1) if self.x == "step" else torch.tensor(history["seconds"])
            w = min(self.smooth, len(losses))
            if w:
                mean = losses.unfold(0, w, 1).mean(1)                          # (steps - w + 1,) running mean
                ax.plot(xs[w - 1:].numpy(), mean.numpy(), color=color, lw=0.9, alpha=0.6)
            evals = history["evals"]
            if evals:
                ax.plot([e[self.x] for e in evals], [e["val_loss"] for e in evals], "o-", color=color, ms=3,
                        label=f"{label}: val {evals[-1]['val_bpc']:.3f} bits/char")
        ax.set_xlabel("step" if self.x == "step" else "seconds of training")
        ax.set_ylabel("loss (nats/char)")
        ax.set_title(self.title or "training (thin: running mean) and validation loss (dots)", fontsize=10)
        ax.grid(True, alpha=0.3)
        if self.runs:
            ax.legend(fontsize=8)
        fig.tight_layout()
        return fig
