"""An interactive explorer of low-rank attention: move k and watch the Linformer's map approach the full one.

For one input, one head, and the same queries and keys it draws the full map A = softmax(Q Kᵀ / √d), the
Linformer map P̄ = softmax(Q (E K)ᵀ / √d), the effective map P̄·F and the spectrum of A with k marked, and prints
the relative error ‖A − P̄F‖_F / ‖A‖_F beside the best any rank-k map can do. The numbers come from
`linformer_edu.comparison` (inputs, settings, `compare`); this module draws them and wires the controls.

    explorer = AttentionExplorer()                          # random vectors or a text sentence
    explorer = AttentionExplorer(model=lm, tokens=ids)      # the attention of a (trained) LinformerLM
    explorer                                                # last line of a cell: shows the widget
    explorer.set(k=8, projection="mean")                    # drive it from code; explorer.result has the numbers

Speed: one figure and one set of artists, made once. A control change recomputes only what it touches (the full
map and its SVD are cached per input), updates the artists with `set_data`, redraws just those artists over a
saved background (blitting on the Agg canvas) and sends the image bytes to an `ipywidgets.Image`: the picture is
swapped in place, so there is no flicker and no stacked figures. (Re-rendering the whole figure the way inline
`display(fig)` does costs about 20 times more.) Core ipywidgets and matplotlib's Agg only, so it runs unchanged
in JupyterLab and Colab. `measure_latency()` times a series of control changes.
"""
import io
import statistics
import sys
import time
import traceback

import ipywidgets as widgets
import numpy as np
import torch
from IPython.display import Image as StaticImage
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import AsinhNorm
from matplotlib.figure import Figure
from PIL import Image as PILImage

from ._checks import check_choice, check_positive_int, check_type
from .comparison import (MAX_LEN, PROJECTIONS, SENTENCE, Computer, ModelLayers, RandomVectors, Sentence,  # noqa: F401
                         Settings, compare, fresh_layer)   # compare, fresh_layer: notebook 05 imports them from here
from .linformer import LinformerSelfAttention
from .lowrank import divisors
from .projections import SHARING

PROJECTION_LABELS = {"learned": "learned (at init)", "random": "random Gaussian (JL)", "mean": "mean pooling",
                     "conv": "convolution (at init)", "identity": "identity: first k keys",
                     "model": "the model's own E, F"}
# the controls, each before those whose range it sets (n bounds k, heads bounds head, projection fixes k)
ORDER = ("source", "layer", "n", "heads", "head", "projection", "sharing", "k", "seed", "sharpness", "fit_f")
MIN_LEN = 8   # the shortest n the explorer shows (the n slider moves in steps of 8)


# ----------------------------------------------------------------------------------------------------------------
# The picture: one figure, made once; each change redraws only the artists that changed

class Picture:
    """Four panels — A, P̄, P̄F on one colour scale, and A's spectrum — rendered to JPEG bytes by blitting
    (`snapshot_png` draws a PNG from scratch for static copies).

    Axes, labels, titles and the colour bar form a background drawn once per sequence length; an update puts new
    data on the images and lines (`set_data`), pastes the background and draws only those artists on it.
    """

    def __init__(self, width=12.0, height=3.3, dpi=80):
        self.figure = Figure(figsize=(width, height), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(1, 4, gridspec_kw=dict(width_ratios=[1, 1, 1, 1.15]))
        self.figure.subplots_adjust(left=0.025, right=0.985, top=0.80, bottom=0.13, wspace=0.28)
        # one scale for all three maps, linear near 0 and logarithmic beyond ±0.02 (asinh): small weights stay
        # visible next to large ones, and so do the negative weights an untrained E, F give P̄F
        # (the maps are coloured here, at their own resolution, and drawn as RGB pixels: cheaper than letting
        # every redraw colour the upsampled picture)
        self.colours = ScalarMappable(AsinhNorm(linear_width=0.02, vmin=-1, vmax=1), "RdBu_r")
        self.images = [ax.imshow(np.zeros((2, 2, 4), np.uint8), interpolation="nearest", aspect="auto")
                       for ax in axes[:3]]
        titles = ("full map A = softmax(QKᵀ/√d)\n(n×n)", "Linformer map P̄ = softmax(Q(EK)ᵀ/√d)\n(n×k)",
                  "effective map P̄·F\n(n×n, rank ≤ k)")
        for ax, title, xlabel in zip(axes[:3], titles, ("key", "projected key", "key")):
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0].set_ylabel("query", fontsize=9)
        bar = self.figure.colorbar(self.colours, ax=axes[:3].tolist(), fraction=0.02, pad=0.01)
        bar.set_ticks([-1, -0.1, -0.02, 0, 0.02, 0.1, 1], labels=["−1", "−0.1", "−0.02", "0", "0.02", "0.1", "1"])
        bar.ax.tick_params(labelsize=7)
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
        self.axes, self._n, self._background = axes, None, None

    def update(self, c):
        """Put a Comparison on the artists; re-lay the background only when n changes."""
        n, k = c.full.shape[-1], c.k
        if self._n != n:
            for ax in self.axes[:3]:
                ax.set_xlim(-0.5, n - 0.5)
                ax.set_ylim(n - 0.5, -0.5)
            self.axes[3].set_xlim(0, n + 1)
            self._n, self._background = n, None
        for image, matrix in zip(self.images, (c.full, c.p_bar, c.effective)):
            image.set_data(self.colours.to_rgba(matrix.numpy(), bytes=True))             # (n, ·, 4) uint8
            image.set_extent((-0.5, matrix.shape[1] - 0.5, n - 0.5, -0.5))
        self.axes[1].set_xlim(-0.5, k - 0.5)
        s = (c.singular_values / c.singular_values[0]).numpy()                  # (n,)
        index = np.arange(1, n + 1)
        self.spectrum.set_data(index, s)
        self.tail.set_data(index[k:], s[k:])    # σ_{k+1} … σ_n: the part any rank-k map must drop
        self.k_line.set_xdata([k, k])
        self.headline.set_text(f"‖A − P̄F‖/‖A‖ = {c.error:.3f}      best rank-{k} error = {c.best_error:.3f}")

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


def encode(canvas, format):
    """The canvas as image bytes. Live updates use JPEG at quality 90 without chroma subsampling: no visible
    loss at this size, and a quarter of PNG's encoding time. Snapshots (kept in notebooks) use PNG."""
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]                              # (H, W, 3) uint8
    out = io.BytesIO()
    options = dict(quality=90, subsampling=0) if format == "jpeg" else dict(compress_level=6)
    PILImage.fromarray(rgb).save(out, format=format, **options)
    return out.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# The widget

def set_range(slider, low, high):
    """A slider's new [min, max], in an order that never has min > max on the way (ipywidgets refuses that)."""
    if low > slider.max:
        slider.max, slider.min = high, low
    else:
        slider.min, slider.max = low, high


class AttentionExplorer:
    """Full attention map vs the Linformer's, for one head, with sliders. Display it as a cell's last line.

    model, tokens: optional — a model with attention layers (e.g. a trained `LinformerLM`) and the token ids
    (1-D) to run it on; adds the "model" input with layer and head selection.
    dim: the width of random and text inputs. text: the sentence of the text input.
    The other arguments are the controls' starting values (see `Settings`); source is "random vectors",
    "text sentence" or "model".
    """

    def __init__(self, model=None, tokens=None, *, dim=64, text=SENTENCE, source=None, n=None, k=None, heads=None,
                 head=0, layer=0, projection=None, sharing="headwise", seed=0, sharpness=1.0, fit_f=False):
        check_positive_int("dim", dim)
        self.sources = [RandomVectors(dim), Sentence(dim, text)]
        if model is not None or tokens is not None:
            if model is None or tokens is None:
                raise ValueError("model, tokens: give both (a model and the token ids to run it on) or neither")
            self.sources.append(ModelLayers(model, tokens))
            given = self.sources[-1]
            if given.max_len < MIN_LEN:   # name what was passed: too few tokens, or a model's short seq_len
                few = len(given.tokens) < MIN_LEN
                raise ValueError(f"tokens: expected at least {MIN_LEN} token ids (the explorer's shortest length n), "
                                 f"got {len(given.tokens)}" if few else f"model: its seq_len={given.max_len} is "
                                 f"shorter than the explorer's shortest length n={MIN_LEN}")
        labels = [src.label for src in self.sources]
        if source is None:
            source = labels[-1] if model is not None else "text sentence"
        check_choice("source", source, labels)
        self.dim = dim
        self.compute = Computer(self.sources)
        self.drawing = Picture()
        self.result, self.image, self._holding = None, b"", False

        c = self.controls = self._make_controls(labels, labels.index(source))
        W, H = self.drawing.size
        self.picture = widgets.Image(format="jpeg", layout=widgets.Layout(width=f"{W}px", height=f"{H}px"))
        self.status = widgets.HTML(layout=widgets.Layout(min_height="24px"))       # the numbers, printed
        self.log = widgets.Output(layout=widgets.Layout(max_height="240px", overflow="auto"))   # tracebacks
        columns = [["source", "layer", "n", "seed"], ["heads", "head", "sharpness"],
                   ["k", "projection", "sharing", "fit_f"]]
        controls = widgets.HBox([widgets.VBox([c[name] for name in column]) for column in columns])
        self.widget = widgets.VBox([controls, self.picture, self.status, self.log])
        self.widget.add_class("linformer-explorer")   # a handle for the browser test and for custom CSS
        for control in c.values():
            control.observe(self._changed, names="value")

        # defaults that depend on the input: n = 128 or as long as it allows, k = 16 or n; a model keeps its own
        # heads, and a Linformer model starts with its own E, F
        src = self.sources[labels.index(source)]
        n = min(128, src.max_len - src.max_len % 8 or src.max_len) if n is None else n
        own = isinstance(src, ModelLayers) and isinstance(src.attn[0], LinformerSelfAttention)
        start = dict(source=source, layer=layer, n=n, heads=heads, head=head, k=min(16, n) if k is None else k,
                     projection=projection or ("model" if own else "mean"), sharing=sharing, seed=seed,
                     sharpness=sharpness, fit_f=fit_f)
        if heads is None:
            start["heads"] = src.fixed_heads or 4
        if start["projection"] == "model":
            del start["k"], start["sharing"]   # the layer's own
        self.set(**start)

    def _make_controls(self, labels, source):
        """One widget per setting, with placeholder values and ranges (`set` puts the real ones in)."""
        slider = dict(continuous_update=False, style={"description_width": "90px"},
                      layout=widgets.Layout(width="290px"))
        menu = dict(style={"description_width": "90px"}, layout=widgets.Layout(width="290px"))
        return {
            "source": widgets.Dropdown(options=[(lab, i) for i, lab in enumerate(labels)], value=source,
                                       description="input", **menu),
            "layer": widgets.IntSlider(0, min=0, max=0, description="layer", **slider),
            "n": widgets.IntSlider(MIN_LEN, min=MIN_LEN, max=MAX_LEN, step=8, description="length n", **slider),
            "heads": widgets.SelectionSlider(options=divisors(self.dim), value=1, description="heads", **slider),
            "head": widgets.IntSlider(0, min=0, max=0, description="head", **slider),
            "k": widgets.IntSlider(1, min=1, max=MAX_LEN, description="k", **slider),
            "projection": widgets.Dropdown(options=self._projection_options(False), value="learned",
                                           description="E, F", **menu),
            "sharing": widgets.Dropdown(options=SHARING, value="headwise", description="sharing", **menu),
            "seed": widgets.IntSlider(0, min=0, max=99, description="seed", **slider),
            "sharpness": widgets.FloatLogSlider(1.0, base=2, min=-2, max=3, step=0.25, description="sharpness β",
                                                readout_format=".2f", **slider),
            "fit_f": widgets.Checkbox(False, description="fit F to A (least squares)", indent=False,
                                      layout=widgets.Layout(width="260px")),
        }

    # -- showing it --------------------------------------------------------------------------------------------
    def _ipython_display_(self):
        display(self.widget)

    def snapshot(self):
        """The current picture as an IPython Image: a static copy that stays in the saved notebook."""
        return StaticImage(data=self.drawing.snapshot_png(), format="png")

    @property
    def figure(self):
        return self.drawing.figure

    # -- driving it --------------------------------------------------------------------------------------------
    def set(self, **values):
        """Set several controls at once, then redraw once: `explorer.set(k=8, projection="mean")`.

        Names are the keys of `explorer.controls`; source and projection also take their names. Returns self.
        A value that is refused, or settings that cannot be computed, raise — and leave every control, the
        picture and `explorer.result` as they were before the call.
        """
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise TypeError(f"set: unknown control(s) {', '.join(unknown)}; expected some of "
                            f"{', '.join(self.controls)}")
        if "source" in values and isinstance(values["source"], str):
            labels = [src.label for src in self.sources]
            values["source"] = labels.index(check_choice("source", values["source"], labels))
        before, drawing = {name: control.value for name, control in self.controls.items()}, False
        try:
            self._apply(values, self._set_value)
            drawing = True
            self._redraw()
        except Exception:
            self._apply(before, lambda name, value: setattr(self.controls[name], "value", value))   # were good
            if drawing and self.result is not None:   # the artists may hold half of the failed picture:
                self.update()                         # draw the previous one again (its full map is cached)
            raise
        return self

    def _apply(self, values, put):
        """put(name, value) for each control in ORDER, its range synced first; no redraw meanwhile."""
        self._holding = True
        try:
            for name in ORDER:
                if name in values:
                    self._sync_ranges()
                    put(name, values[name])
            self._sync_ranges()
        finally:
            self._holding = False

    def _set_value(self, name, value):
        control = self.controls[name]
        if name == "source":
            check_choice("source", value, range(len(self.sources)))
        elif name in ("projection", "sharing"):
            allowed = [v for _, v in control.options] if name == "projection" else list(control.options)
            check_choice(name, value, allowed)
        elif name == "heads":
            if control.disabled and value != control.value:
                raise ValueError(f"heads: the model's layers have {control.value} heads; got {value!r}")
            if value not in control.options:
                raise ValueError(f"heads: got {value!r}, expected one of {list(control.options)} "
                                 f"(the divisors of dim={self.dim})")
        elif name == "fit_f":
            if not isinstance(value, bool):
                raise TypeError(f"fit_f: expected True or False, got {value!r}")
        elif name == "sharpness":
            if not 0.25 <= check_type(name, value, (int, float), "a number from 0.25 to 8") <= 8:
                raise ValueError(f"sharpness: got {value!r}, expected a number from 0.25 to 8")
        else:
            allowed = f"an int from {control.min} to {control.max}"
            if not control.min <= check_type(name, value, int, allowed) <= control.max:
                raise ValueError(f"{name}: got {value!r}, expected {allowed}")
        control.value = value

    def _projection_options(self, own):
        kinds = PROJECTIONS + (("model",) if own else ())
        return [(PROJECTION_LABELS[kind], kind) for kind in kinds]

    def _sync_ranges(self):
        """Make the controls' ranges agree with the input and with each other (no redraw: _holding is set)."""
        c = self.controls
        source = self.sources[c["source"].value]
        model = isinstance(source, ModelLayers)
        c["layer"].max = source.layers - 1
        c["layer"].disabled = source.layers == 1
        c["n"].max = max(MIN_LEN, source.max_len - source.max_len % 8)
        heads = [source.fixed_heads] if model else divisors(self.dim)
        if list(c["heads"].options) != heads:
            c["heads"].options = heads
            c["heads"].value = heads[0] if model else (4 if 4 in heads else heads[0])
        c["heads"].disabled = model
        c["head"].max = c["heads"].value - 1
        own = model and isinstance(source.attn[c["layer"].value], LinformerSelfAttention)
        if [v for _, v in c["projection"].options] != [v for _, v in self._projection_options(own)]:
            current = c["projection"].value
            c["projection"].options = self._projection_options(own)
            c["projection"].value = current if current != "model" or own else "learned"
        c["sharpness"].disabled = model
        if model:
            c["sharpness"].value = 1.0
        uses_own = c["projection"].value == "model"
        if uses_own:
            layer = source.attn[c["layer"].value]
            set_range(c["k"], layer.k, layer.k)
            c["sharing"].value = layer.sharing
        else:
            set_range(c["k"], 1, c["n"].value)
        c["k"].disabled = c["sharing"].disabled = uses_own

    def settings(self):
        values = {name: control.value for name, control in self.controls.items()}
        return Settings(**values)

    def _changed(self, change):
        if self._holding:
            return
        try:
            self._holding = True
            self._sync_ranges()
        except Exception:
            self._show_error()
            return
        finally:
            self._holding = False
        self.update()

    def update(self):
        """Recompute and redraw for the current controls. An error goes to the output area, not lost, and
        `result` becomes None: no number stays on show for settings it was not computed for."""
        try:
            self._redraw()
        except Exception:
            self.result = None
            self._show_error()

    def _redraw(self):
        s = self.settings()
        c = self.compute(s)
        self.drawing.update(c)
        self.image = self.drawing.render()
        self.picture.value = self.image
        parts = [f"head {s.head} of {s.heads}", f"n = {s.n}", f"k = {c.k}",
                 f"‖A − P̄F‖<sub>F</sub>/‖A‖<sub>F</sub> = <b>{c.error:.3f}</b>",
                 f"best rank-{c.k}: {c.best_error:.3f}", *c.notes]
        self.status.value = " · ".join(parts)
        self.result = c
        if self.log.outputs:
            self.log.outputs = ()

    def _show_error(self):
        """Show the traceback in the output area (a callback's exception would otherwise vanish)."""
        etype, evalue, tb = sys.exc_info()
        self.log.outputs = ({"output_type": "error", "ename": etype.__name__, "evalue": str(evalue),
                             "traceback": traceback.format_exception(etype, evalue, tb)},)
        self.status.value = f"<span style='color:#b00'>error: {type(evalue).__name__}: {evalue}</span>"


# ----------------------------------------------------------------------------------------------------------------
# Speed

def measure_latency(n=128, repeats=40, control="k", explorer=None):
    """Median time of one control change — compute and redraw, ending with the JPEG handed to the Image widget.

    Steps `control` ("k", "seed", "head", "projection" or "sharing") through values, timing each `set`.
    Returns {"median_ms", "p90_ms", "cpu_median_ms", "n", "control", "repeats", "threads"}; cpu_median_ms is the
    process CPU time, which other programs on the machine do not inflate.
    """
    ex = explorer or AttentionExplorer(n=n, k=16)
    values = {"k": [8 + (i % 24) for i in range(repeats)], "seed": [1 + i % 50 for i in range(repeats)],
              "head": [(i + 1) % ex.controls["heads"].value for i in range(repeats)],
              "projection": [PROJECTIONS[(i + 1) % 4] for i in range(repeats)],
              "sharing": [SHARING[(i + 1) % 4] for i in range(repeats)]}
    check_choice("control", control, tuple(values))
    ex.set(**{control: values[control][-1]})   # warm up
    wall, cpu = [], []
    for value in values[control]:
        t0, c0 = time.perf_counter(), time.process_time()
        ex.controls[control].value = value     # what a slider move does: the observer runs the update
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    wall_ms, cpu_ms = sorted(1000 * w for w in wall), [1000 * c for c in cpu]
    return {"median_ms": statistics.median(wall_ms), "p90_ms": wall_ms[int(0.9 * (len(wall_ms) - 1))],
            "cpu_median_ms": statistics.median(cpu_ms), "n": ex.settings().n, "control": control,
            "repeats": repeats, "threads": torch.get_num_threads()}
