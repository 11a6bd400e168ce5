"""The explorer's pictures: one head's maps and spectrum, redrawn in place, and every layer's and head's maps at once.

What the colours show. A weight is drawn relative to the uniform weight of its row: A and P̄F as n × weight (1 is
a query spreading evenly over its n keys), P̄ as k × weight (1: evenly over its k projected keys). P̄'s entries are
about n/k times larger than A's, so on one absolute scale A and P̄F would be almost white beside a saturated P̄;
on these scales all three read alike. The colour scale is linear from −1 to 1 and logarithmic beyond (asinh), up
to ±`VMAX`: a key a query looks at 4 times more than uniform is mid red, so the stripes of keys that many queries
look at stand out, and the negative weights an untrained E, F give P̄F (blue) stay visible. A and P̄F share the
right-hand colour bar, P̄ has its own. When the input is text, the axes of A and P̄F carry the characters
(one label every ⌈n/16⌉ positions).

    picture = Picture(); picture.update(comparison); jpeg = picture.render()     # what the widget shows
    figure = heads_grid(rows)    # rows: one list of Comparisons per layer, one per head; A beside P̄F for each
"""
import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import AsinhNorm
from matplotlib.figure import Figure
from PIL import Image as PILImage

VMAX = 32          # colour limit, in multiples of the uniform weight
TICKS = [-8, -1, 0, 1, 4, 32]
MAX_LABELS = 16    # token labels per axis, at most
SHOWN = {" ": "␣", "\n": "⏎", "\t": "⇥"}   # characters that would be invisible as tick labels


def colours():
    """The colour scale of every map: weight × (number of keys), asinh-scaled, diverging around 0."""
    return ScalarMappable(AsinhNorm(linear_width=1, vmin=-VMAX, vmax=VMAX), "RdBu_r")


def token_ticks(tokens):
    """(positions, labels) for an axis of len(tokens) positions: every ⌈n/16⌉-th character, invisible ones shown."""
    step = max(1, math.ceil(len(tokens) / MAX_LABELS))
    positions = list(range(0, len(tokens), step))
    return positions, [SHOWN.get(tokens[p], tokens[p]) for p in positions]


def titles(causal):
    """The three maps' titles: a causal model's Linformer side is its window plus its memory."""
    if causal:
        return ("causal full map A = softmax(QKᵀ/√d)\n(n×n, weight × n)",
                "memory weights P̄ on the k slots\n(n×k, weight × k; window not shown)",
                "what it computes: window + P̄·F\n(n×n, weight × n)")
    return ("full map A = softmax(QKᵀ/√d)\n(n×n, weight × n)", "Linformer map P̄ = softmax(Q(EK)ᵀ/√d)\n"
            "(n×k, weight × k)", "effective map P̄·F\n(n×n, rank ≤ k, weight × n)")


class Picture:
    """Four panels — A, P̄, P̄F (colours: see the module docstring) and A's spectrum — rendered to JPEG bytes by
    blitting (`snapshot_png` draws a PNG from scratch for static copies).

    Axes, labels, titles and the colour bars form a background drawn once per (n, tokens, causal); an update puts
    new data on the images and lines (`set_data`), pastes the background and draws only those artists on it.
    """

    def __init__(self, width=12.5, height=3.5, dpi=80):
        self.figure = Figure(figsize=(width, height), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(1, 4, gridspec_kw=dict(width_ratios=[1, 1, 1, 1.15]))
        self.figure.subplots_adjust(left=0.03, right=0.985, top=0.78, bottom=0.15, wspace=0.38)
        # the maps are coloured here, at their own resolution, and drawn as RGB pixels: cheaper than letting
        # every redraw colour the upsampled picture
        self.colours = colours()
        self.images = [ax.imshow(np.zeros((2, 2, 4), np.uint8), interpolation="nearest", aspect="auto")
                       for ax in axes[:3]]
        for ax, xlabel in zip(axes[:3], ("key", "projected key", "key")):
            ax.set_xlabel(xlabel, fontsize=9)
        axes[0].set_ylabel("query", fontsize=9)
        self.bars = [self.figure.colorbar(self.colours, ax=axes[i], fraction=0.06, pad=0.02) for i in (1, 2)]
        for bar, label in zip(self.bars, ("weight × k", "weight × n (A and P̄F)")):
            bar.set_ticks(TICKS, labels=[str(t).replace("-", "−") for t in TICKS])
            bar.ax.tick_params(labelsize=7)
            bar.set_label(label, fontsize=7)
        spec = axes[3]
        spec.set_yscale("log")
        spec.set_ylim(1e-5, 2)
        spec.set_xlabel("index i", fontsize=9)
        spec.set_title("singular values σᵢ/σ₁ of A\n(red: what rank k drops)", fontsize=9)
        spec.tick_params(labelsize=8)
        spec.grid(True, which="major", alpha=0.3)
        self.spectrum, = spec.plot([1], [1], color="tab:blue", lw=1.5)
        self.tail, = spec.plot([1], [1], color="tab:red", lw=2.5)
        self.k_line = spec.axvline(1, color="k", lw=1, ls="--")
        self.headline = self.figure.suptitle("", fontsize=11, y=0.99, visible=False)   # for snapshots only
        self.dynamic = [*self.images, self.spectrum, self.tail, self.k_line]
        self.axes, self._layout, self._background = axes, None, None

    def _lay_out(self, n, tokens, causal):
        """Limits, ticks and titles for this length, these tokens and this kind of model (the background)."""
        for ax, title in zip(self.axes[:3], titles(causal)):
            ax.set_title(title, fontsize=9)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in (self.axes[0], self.axes[2]):
            ax.set_xlim(-0.5, n - 0.5)
        if tokens:
            positions, labels = token_ticks(tokens)
            for ax in (self.axes[0], self.axes[2]):
                ax.set_xticks(positions, labels, fontsize=7)
            self.axes[0].set_yticks(positions, labels, fontsize=7)
        self.axes[3].set_xlim(0, n + 1)

    def update(self, c):
        """Put a Comparison on the artists; re-lay the background only when n, the tokens or causality change."""
        n, k = c.full.shape[-1], c.k
        if self._layout != (n, c.tokens, c.causal):
            self._lay_out(n, c.tokens, c.causal)
            self._layout, self._background = (n, c.tokens, c.causal), None
        for image, matrix, keys in zip(self.images, (c.full, c.p_bar, c.effective), (n, k, n)):
            image.set_data(self.colours.to_rgba(keys * matrix.numpy(), bytes=True))    # (n, ·, 4) uint8
            image.set_extent((-0.5, matrix.shape[1] - 0.5, n - 0.5, -0.5))
        self.axes[1].set_xlim(-0.5, k - 0.5)
        s = (c.singular_values / c.singular_values[0]).numpy()                  # (n,)
        index = np.arange(1, n + 1)
        self.spectrum.set_data(index, s)
        self.tail.set_data(index[k:], s[k:])    # σ_{k+1} … σ_n: the part any rank-k map must drop
        self.k_line.set_xdata([k, k])
        self.headline.set_text(f"‖A − P̄F‖/‖A‖ = {c.error:.3f}    outputs ‖AV − P̄FV‖/‖AV‖ = {c.output_error:.3f}"
                               f"    best rank-{k} error = {c.best_error:.3f}")

    def render(self):
        """The picture as JPEG bytes: paste the background, draw the changed artists, encode."""
        if self._background is None:
            for artist in self.dynamic:
                artist.set_visible(False)
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
            for artist in self.dynamic:
                artist.set_visible(True)
        self.canvas.restore_region(self._background)
        for artist in self.dynamic:
            self.figure.draw_artist(artist)
        return encode(self.canvas, "jpeg")

    def snapshot_png(self):
        """The whole figure with the errors in a headline, drawn from scratch (for static copies)."""
        self.headline.set_visible(True)
        try:
            self.canvas.draw()
            return encode(self.canvas, "png")
        finally:
            self.headline.set_visible(False)

    @property
    def size(self):
        return tuple(int(v) for v in self.canvas.get_width_height())         # (W, H) pixels


def heads_grid(rows, size=1.0, dpi=72):
    """Every layer's and head's A beside its P̄F: rows[layer][head] are Comparisons; one row of panels per layer,
    a pair (A, P̄F) per head, each pair titled with its map and output errors. Colours as in `Picture`.

    Returns a matplotlib Figure on an Agg canvas (no pyplot: nothing is shown twice); `figure_bytes` encodes it.
    """
    layers, heads = len(rows), len(rows[0])
    figure = Figure(figsize=(2 * heads * size + 0.6, layers * size + 0.7), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.subplots(layers, 2 * heads, squeeze=False)
    figure.subplots_adjust(left=0.04, right=0.92, top=1 - 0.55 / (layers * size + 0.7), bottom=0.02,
                           wspace=0.08, hspace=0.35)
    scale = colours()
    for l, row in enumerate(rows):
        for h, c in enumerate(row):
            n = c.full.shape[-1]
            for j, (ax, matrix) in enumerate(zip(axes[l, 2 * h: 2 * h + 2], (c.full, c.effective))):
                ax.imshow(scale.to_rgba(n * matrix.numpy(), bytes=True), interpolation="nearest")   # (n, n, 4)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel("A" if j == 0 else "P̄F", fontsize=7, labelpad=1)
            axes[l, 2 * h].set_title(f"L{l} h{h}: map {c.error:.2f}, out {c.output_error:.2f}", fontsize=7,
                                     loc="left")
        axes[l, 0].set_ylabel(f"layer {l}", fontsize=8)
    bar = figure.colorbar(scale, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01)
    bar.set_ticks(TICKS, labels=[str(t).replace("-", "−") for t in TICKS])
    bar.ax.tick_params(labelsize=7)
    bar.set_label("weight × n", fontsize=7)
    return figure


def figure_bytes(figure, format="png"):
    """A figure drawn from scratch and encoded (for the grid and for static copies)."""
    figure.canvas.draw()
    return encode(figure.canvas, format)


def encode(canvas, format):
    """The canvas as image bytes. Live updates use JPEG at quality 90 without chroma subsampling: no visible
    loss at this size, and a quarter of PNG's encoding time. Snapshots (kept in notebooks) use PNG."""
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]                              # (H, W, 3) uint8
    out = io.BytesIO()
    options = dict(quality=90, subsampling=0) if format == "jpeg" else dict(compress_level=6)
    PILImage.fromarray(rgb).save(out, format=format, **options)
    return out.getvalue()
