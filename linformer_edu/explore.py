"""An interactive explorer of low-rank attention: move k and watch the Linformer's map approach the full one.

For one input, one head, and the same queries and keys it draws the full map A = softmax(Q Kᵀ / √d), the
Linformer map P̄ = softmax(Q (E K)ᵀ / √d), the effective map P̄·F and the spectrum of A with k marked, and prints
the relative error ‖A − P̄F‖_F / ‖A‖_F, the error on the outputs ‖AV − P̄FV‖_F / ‖AV‖_F and the best any rank-k
map can do. A causal model is drawn as what it computes (its window plus its memory, zero above the diagonal).
The numbers come from `linformer_edu.comparison`, the pictures (and what their colours mean) from
`linformer_edu.explore_picture`; this module wires the controls.

    explorer = AttentionExplorer()                          # random vectors or a text sentence
    explorer = AttentionExplorer(model=lm, tokens=ids, vocab=vocab)   # a (trained) model's attention
    explorer                                                # last line of a cell: shows the widget
    explorer.set(k=8, projection="mean")                    # drive it from code; explorer.result has the numbers
    explorer.all_heads()                                    # every layer's and head's A beside P̄F, as an image

Speed: one figure and one set of artists, made once. A control change recomputes only what it touches (the full
map and its SVD are cached per input), updates the artists with `set_data`, redraws just those artists over a
saved background (blitting on the Agg canvas) and sends the image bytes to an `ipywidgets.Image`: the picture is
swapped in place, so there is no flicker and no stacked figures. (Re-rendering the whole figure the way inline
`display(fig)` does costs about 20 times more.) The "all heads" toggle swaps in the grid of every layer and head,
drawn from scratch. Core ipywidgets and matplotlib's Agg only, so it runs unchanged in JupyterLab and Colab
(ipywidgets 7 and 8). `measure_latency()` times a series of control changes.
"""
import statistics
import sys
import time
import traceback
from dataclasses import replace

import ipywidgets as widgets
import torch
from IPython.display import Image as StaticImage
from IPython.display import display

from ._checks import check_choice, check_positive_int, check_type
from .comparison import (CAUSAL_SHARING, MAX_LEN, PROJECTIONS, SENTENCE, Computer, ModelLayers,  # noqa: F401
                         RandomVectors, Sentence, Settings, compare, fresh_layer,   # notebook 05 imports these here
                         has_own_projection, is_causal)
from .explore_picture import Picture, figure_bytes, heads_grid
from .lowrank import divisors
from .projections import SHARING

PROJECTION_LABELS = {"learned": "learned (at init)", "random": "random Gaussian (JL)", "mean": "mean pooling",
                     "conv": "convolution (at init)", "identity": "identity: first k keys",
                     "model": "the model's own E, F"}
CAUSAL_LABELS = {"model": "the model's own (window + memory)", "learned": "learned (at init), causal",
                 "random": "random Gaussian, causal", "mean": "mean pooling, causal", "conv": "convolution, causal",
                 "identity": "identity, causal"}
# the controls, each before those whose range it sets (n bounds k, heads bounds head, projection fixes k)
ORDER = ("source", "layer", "n", "heads", "head", "projection", "sharing", "k", "seed", "sharpness", "fit_f")
MIN_LEN = 8   # the shortest n the explorer shows (the n slider moves in steps of 8)


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
    (1-D) to run it on; adds the "model" input with layer and head selection. vocab: optional, the model's
    `CharVocab`, to label the axes with the characters. A Linformer model starts with its own E, F; a causal one
    is drawn as what it computes (window + memory), and other projections are applied causally too.
    dim: the width of random and text inputs. text: the sentence of the text input.
    The other arguments are the controls' starting values (see `Settings`); source is "random vectors",
    "text sentence" or "model".
    """

    def __init__(self, model=None, tokens=None, *, vocab=None, dim=64, text=SENTENCE, source=None, n=None, k=None,
                 heads=None,
                 head=0, layer=0, projection=None, sharing="headwise", seed=0, sharpness=1.0, fit_f=False):
        check_positive_int("dim", dim)
        self.sources = [RandomVectors(dim), Sentence(dim, text)]
        if model is not None or tokens is not None:
            if model is None or tokens is None:
                raise ValueError("model, tokens: give both (a model and the token ids to run it on) or neither")
            self.sources.append(ModelLayers(model, tokens, vocab))
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
        self.grid = widgets.Checkbox(False, description="all heads (and layers): A beside P̄F", indent=False,
                                     layout=widgets.Layout(width="290px"))

        c = self.controls = self._make_controls(labels, labels.index(source))
        W, H = self.drawing.size
        self.picture = widgets.Image(format="jpeg", layout=widgets.Layout(width=f"{W}px", height=f"{H}px"))
        self.status = widgets.HTML(layout=widgets.Layout(min_height="24px"))       # the numbers, printed
        self.log = widgets.Output(layout=widgets.Layout(max_height="240px", overflow="auto"))   # tracebacks
        columns = [["source", "layer", "n", "seed"], ["heads", "head", "sharpness"],
                   ["k", "projection", "sharing", "fit_f"]]
        controls = widgets.HBox([widgets.VBox([c[name] for name in column]) for column in columns])
        controls.children[0].children += (self.grid,)
        self.widget = widgets.VBox([controls, self.picture, self.status, self.log])
        self.widget.add_class("linformer-explorer")   # a handle for the browser test and for custom CSS
        for control in (*c.values(), self.grid):
            control.observe(self._changed, names="value")

        # defaults that depend on the input: n = 128 or as long as it allows, k = 16 or n; a model keeps its own
        # heads, and a Linformer model starts with its own E, F
        src = self.sources[labels.index(source)]
        n = min(128, src.max_len - src.max_len % 8 or src.max_len) if n is None else n
        own = isinstance(src, ModelLayers) and has_own_projection(src.attn[0])
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

    def heads_figure(self):
        """The current settings for every layer and head: a Figure, A beside P̄F in each cell (`heads_grid`)."""
        s = self.settings()
        layers = self.sources[s.source].layers
        return heads_grid([[self.compute(replace(s, layer=l, head=h)) for h in range(s.heads)]
                           for l in range(layers)])

    def all_heads(self):
        """`heads_figure` as an IPython Image (PNG): shows in any notebook, stays in the saved one."""
        return StaticImage(data=figure_bytes(self.heads_figure()), format="png")

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

    def _projection_options(self, own, causal=False):
        kinds = PROJECTIONS + (("model",) if own else ())
        return [((CAUSAL_LABELS if causal else PROJECTION_LABELS)[kind], kind) for kind in kinds]

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
        layer = source.attn[c["layer"].value] if model else None
        own, causal = has_own_projection(layer), is_causal(layer)
        if list(c["projection"].options) != self._projection_options(own, causal):
            current = c["projection"].value
            c["projection"].options = self._projection_options(own, causal)
            c["projection"].value = current if current != "model" or own else "learned"
        sharing = CAUSAL_SHARING if causal else SHARING
        if tuple(c["sharing"].options) != sharing:
            current = c["sharing"].value
            c["sharing"].options = sharing
            c["sharing"].value = current if current in sharing else "headwise"
        c["sharpness"].disabled = model
        if model:
            c["sharpness"].value = 1.0
        uses_own = c["projection"].value == "model"
        if uses_own:
            set_range(c["k"], layer.k, layer.k)
            c["sharing"].value = getattr(layer, "sharing", "headwise")   # a causal Linformer: one E, F per layer
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
        if self.grid.value:      # every layer and head, drawn from scratch (the picture takes the grid's size)
            figure = self.heads_figure()
            self.image = figure_bytes(figure, "jpeg")
            W, H = (int(v) for v in figure.canvas.get_width_height())
        else:
            self.drawing.update(c)
            self.image = self.drawing.render()
            W, H = self.drawing.size
        self.picture.layout.width, self.picture.layout.height = f"{W}px", f"{H}px"
        self.picture.value = self.image
        parts = [f"head {s.head} of {s.heads}", f"n = {s.n}", f"k = {c.k}",
                 f"‖A − P̄F‖<sub>F</sub>/‖A‖<sub>F</sub> = <b>{c.error:.3f}</b>",
                 f"outputs ‖AV − P̄FV‖<sub>F</sub>/‖AV‖<sub>F</sub> = <b>{c.output_error:.3f}</b>",
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
