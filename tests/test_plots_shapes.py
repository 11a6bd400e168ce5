"""Each plot helper, fed every input shape its docstring allows, draws what it says (issue 14, "Guards").

Checked on the artists themselves (images and their data, lines and their first values, labels), not only that
the call ran: notebook 02's first low-rank picture once drew two spectra as one curve and nothing failed.
(plots.spectrum's shapes are tested in test_plots.py.)
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from linformer_edu import plots  # noqa: E402


def teardown_function():
    plt.close("all")


def image_data(ax):
    assert len(ax.images) == 1, f"expected one image on {ax.get_title()!r}, found {len(ax.images)}"
    return np.asarray(ax.images[0].get_array()).tolist()


def labels(ax):
    return ax.get_xlabel(), ax.get_ylabel()


def ticks(ax):
    """The tick labels written (rows, columns); a tick whose label was left out reads as nothing."""
    return ([t.get_text() for t in ax.get_yticklabels() if t.get_text()],
            [t.get_text() for t in ax.get_xticklabels() if t.get_text()])


def legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ----------------------------------------------------------------------------------------------------------------
# heatmaps / heatmap: (n, m), (p, n, m), (r, c, n, m), a list of (n, m) of different shapes; ncols; ticklabels

def test_heatmaps_one_matrix_is_one_image_with_its_own_scale():
    m = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    axes = plots.heatmaps(m, ["only"])
    assert axes.shape == (1, 1)
    ax = axes[0, 0]
    assert image_data(ax) == m.tolist()
    assert ax.images[0].get_clim() == (0.0, 5.0)
    assert ax.get_title() == "only"
    assert labels(ax) == ("key position", "query position")
    assert len(ax.figure.axes) == 2                                       # the map and its colour bar


def test_heatmaps_a_stack_is_one_row_in_order():
    stack = torch.arange(3 * 2 * 2, dtype=torch.float32).reshape(3, 2, 2)
    axes = plots.heatmaps(stack, ["a", "b", "c"], colorbar=False, suptitle="row")
    assert axes.shape == (1, 3)
    assert [image_data(ax) for ax in axes.flat] == stack.tolist()
    assert [ax.get_title() for ax in axes.flat] == ["a", "b", "c"]
    assert [labels(ax) for ax in axes.flat] == [("key position", "query position"), ("key position", ""),
                                                ("key position", "")]
    assert {ax.images[0].get_clim() for ax in axes.flat} == {(0.0, 11.0)}   # one scale for all
    assert len(axes[0, 0].figure.axes) == 3                               # no colour bar
    assert axes[0, 0].figure.get_suptitle() == "row"


def test_heatmaps_a_grid_keeps_rows_and_columns():
    grid = torch.arange(2 * 3 * 1 * 2, dtype=torch.float32).reshape(2, 3, 1, 2)
    axes = plots.heatmaps(grid, [f"{r}{c}" for r in range(2) for c in range(3)], xlabel="x", ylabel="y")
    assert axes.shape == (2, 3)
    assert [[image_data(ax) for ax in row] for row in axes] == grid.tolist()
    assert [[ax.get_title() for ax in row] for row in axes] == [["00", "01", "02"], ["10", "11", "12"]]
    assert [[labels(ax) for ax in row] for row in axes] == [[("", "y"), ("", ""), ("", "")],
                                                            [("x", "y"), ("x", ""), ("x", "")]]


def test_heatmaps_a_list_may_mix_shapes_on_one_scale():
    square, wide = np.zeros((4, 4)), [[2.0, 1.0]] * 4                     # an array and a plain nested list
    axes = plots.heatmaps([square, wide], ["n×n", "n×k"])
    assert axes.shape == (1, 2)
    assert [np.shape(image_data(ax)) for ax in axes.flat] == [(4, 4), (4, 2)]
    assert image_data(axes[0, 1])[0] == [2.0, 1.0]
    assert [ax.images[0].get_clim() for ax in axes.flat] == [(0.0, 2.0), (0.0, 2.0)]


def test_heatmaps_vmin_vmax_override_the_shared_scale():
    axes = plots.heatmaps(torch.rand(2, 3, 3), vmin=-1, vmax=4)
    assert [ax.images[0].get_clim() for ax in axes.flat] == [(-1, 4), (-1, 4)]


def test_heatmaps_ncols_wraps_and_labels_the_lowest_map_of_each_column():
    # 5 maps in 2 columns: rows of (0 1) (2 3) (4 _); map 3 is the lowest of its column, the last slot is blank.
    maps = torch.arange(5, dtype=torch.float32).reshape(5, 1, 1)
    axes = plots.heatmaps(maps, ncols=2, ticklabels=(["q"], ["k"]))
    assert axes.shape == (3, 2)
    assert [image_data(ax) for ax in axes.flat[:5]] == maps.tolist()
    assert not axes[2, 1].images and not axes[2, 1].axison
    assert [labels(ax)[0] for ax in axes.flat[:5]] == ["", "", "", "key position", "key position"]
    assert [ticks(ax)[1] for ax in axes.flat[:5]] == [[], [], [], ["k"], ["k"]]
    assert [ticks(ax)[0] for ax in axes.flat[:5]] == [["q"], [], ["q"], [], ["q"]]


def test_heatmaps_ticklabels_one_list_for_both_axes_or_a_pair():
    words = ["the", "cat", "sat"]
    ax = plots.heatmap(torch.rand(3, 3), ticklabels=words)
    assert ticks(ax) == (words, words)
    assert [t.get_rotation() for t in ax.get_xticklabels()] == [90, 90, 90]   # long words stand up
    ax = plots.heatmap(torch.rand(2, 3), ticklabels=(["a", "b"], ["0", "1", "2"]))
    assert ticks(ax) == (["a", "b"], ["0", "1", "2"])
    assert [t.get_rotation() for t in ax.get_xticklabels()] == [0, 0, 0]


def test_heatmap_is_one_axes_and_takes_any_tensor():
    m = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True) * 1   # a tensor with a graph behind it
    ax = plots.heatmap(m, "P")
    assert isinstance(ax, matplotlib.axes.Axes)
    assert image_data(ax) == [[1.0, 2.0], [3.0, 4.0]] and ax.get_title() == "P"
    assert image_data(plots.heatmap([[0, 1], [1, 0]])) == [[0.0, 1.0], [1.0, 0.0]]


@pytest.mark.parametrize("shape", [(3,), (1, 1, 1, 2, 2)])
def test_heatmaps_reject_other_ranks(shape):
    with pytest.raises(ValueError, match=r"maps: expected 2-4 dims .*got shape \(" + ", ".join(map(str, shape))):
        plots.heatmaps(torch.ones(shape))


# ----------------------------------------------------------------------------------------------------------------
# fit_slope and loglog: x and each y as a list, an array or a tensor; fit_last; one axes shared by several calls

@pytest.mark.parametrize("kind", [list, np.array, torch.tensor])
def test_fit_slope_takes_lists_arrays_and_tensors(kind):
    x = [1.0, 4.0, 16.0, 64.0]
    assert plots.fit_slope(kind(x), kind([5 / v ** 0.5 for v in x])) == pytest.approx(-0.5)
    assert isinstance(plots.fit_slope(kind(x), kind(x)), float)


@pytest.mark.parametrize("x, y", [([1.0], [1.0]), ([1.0, 2.0, 3.0], [1.0, 2.0])])
def test_fit_slope_needs_two_equal_length_series(x, y):
    with pytest.raises(ValueError, match="x, y: expected two equal-length series of at least 2 points"):
        plots.fit_slope(x, y)


def test_loglog_draws_one_labelled_line_per_series():
    n = [64, 128, 256, 512]
    ax, slopes = plots.loglog(n, {"quadratic": torch.tensor([1.0, 4, 16, 64]), "linear": np.array([1, 2, 4, 8]),
                                  "flat": [3, 3, 3, 3]}, title="cost")
    assert [line.get_xdata().tolist() for line in ax.lines] == [n, n, n]
    assert [line.get_ydata().tolist()[:2] for line in ax.lines] == [[1, 4], [1, 2], [3, 3]]
    assert [line.get_marker() for line in ax.lines] == ["o"] * 3
    assert slopes == pytest.approx({"quadratic": 2.0, "linear": 1.0, "flat": 0.0})
    assert legend(ax) == ["quadratic (slope 2.00)", "linear (slope 1.00)", "flat (slope 0.00)"]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert labels(ax) == ("sequence length n", "time (s)") and ax.get_title() == "cost"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64", "128", "256", "512"]


def test_loglog_fit_last_fits_only_the_tail_but_draws_every_point():
    x = [1, 2, 4, 8, 16]
    y = [1, 2, 4, 32, 256]                                                 # slope 1, then 3
    ax, slopes = plots.loglog(x, {"t": y}, fit_last=3)
    assert slopes["t"] == pytest.approx(3.0)
    assert ax.lines[0].get_ydata().tolist() == y
    assert plots.loglog(x, {"t": y})[1]["t"] < 3.0


def test_loglog_adds_to_a_given_axes_and_leaves_long_axes_to_matplotlib():
    ax = plt.subplots()[1]
    x = 2.0 ** np.arange(10)                                               # more than 8 sizes: no one tick each
    assert plots.loglog(x, {"a": x}, ax=ax, xlabel="k", ylabel="bytes")[0] is ax
    plots.loglog(x, {"b": x ** 2}, ax=ax, xlabel="k", ylabel="bytes")
    assert [line.get_ydata()[-1] for line in ax.lines] == [512.0, 512.0 ** 2]
    assert legend(ax) == ["a (slope 1.00)", "b (slope 2.00)"]
    assert labels(ax) == ("k", "bytes")
    assert sorted(ax.get_xticks().tolist()) != sorted(x.tolist())


# ----------------------------------------------------------------------------------------------------------------
# loss_curves: each curve a list (one loss per step), an array or tensor, or a pair (steps, losses)

def test_loss_curves_draw_one_line_per_curve_against_its_steps():
    ax = plots.loss_curves({"list": [3.0, 2.0, 1.5], "tensor": torch.tensor([2.5, 2.0]),
                            "pair": (range(24, 27), np.array([2.2, 2.1, 2.0]))}, title="t", logy=True)
    assert [line.get_xdata().tolist() for line in ax.lines] == [[0, 1, 2], [0, 1], [24, 25, 26]]
    assert [line.get_ydata().tolist()[0] for line in ax.lines] == [3.0, 2.5, 2.2]
    assert legend(ax) == ["list", "tensor", "pair"]
    assert labels(ax) == ("step", "loss (nats/char)") and ax.get_title() == "t" and ax.get_yscale() == "log"


def test_loss_curves_take_a_list_of_loss_tensors_still_attached_to_the_graph():
    w = torch.tensor(1.0, requires_grad=True)
    losses = [w * 3, w * 2]                                               # losses.append(loss), without .item()
    ax = plots.loss_curves({"train": losses})
    assert ax.lines[0].get_ydata().tolist() == [3.0, 2.0]
    given = plt.subplots()[1]
    assert plots.loss_curves({"val": ([0, 10], [torch.tensor(2.0), torch.tensor(1.0)])}, ax=given) is given
    assert given.lines[0].get_xydata().tolist() == [[0.0, 2.0], [10.0, 1.0]]
