"""The plotting helpers: shapes of the returned axes, the shared colour scale, the fitted slope."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from linformer_edu import plots  # noqa: E402


def teardown_function():
    plt.close("all")


def test_heatmaps_share_one_colour_scale(raises_exactly):
    axes = plots.heatmaps([torch.zeros(4, 4), 2 * torch.ones(4, 2)], ["a", "b"])
    assert axes.shape == (1, 2)
    assert [ax.images[0].get_clim() for ax in axes.flat] == [(0.0, 2.0), (0.0, 2.0)]
    assert plots.heatmaps(torch.rand(2, 3, 5, 5)).shape == (2, 3)
    assert plots.heatmaps(torch.rand(5, 4, 4), ncols=2).shape == (3, 2)
    with raises_exactly(ValueError, "maps: expected 2-4 dims (n, m), (p, n, m) or (r, c, n, m), got shape (5,)"):
        plots.heatmaps(torch.rand(5))


def test_fit_slope_recovers_the_exponent(raises_exactly):
    n = torch.tensor([64.0, 128, 256, 512])
    assert plots.fit_slope(n, 3 * n ** 2) == pytest.approx(2.0)
    ax, slopes = plots.loglog(n, {"quadratic": n ** 2, "linear": n + 0 * n}, fit_last=2)
    assert slopes == pytest.approx({"quadratic": 2.0, "linear": 1.0})
    assert ax.get_legend().get_texts()[0].get_text() == "quadratic (slope 2.00)"
    with raises_exactly(ValueError, "x, y: expected two equal-length series of at least 2 points, got (2,) and (1,)"):
        plots.fit_slope([1, 2], [1])


def test_spectrum_is_normalized_cumulative():
    ax = plots.spectrum(torch.tensor([[3.0, 1.0]]), labels=["one"])
    assert ax.lines[0].get_ydata().tolist() == [0.75, 1.0]
    ax = plots.spectrum(torch.tensor([3.0, 1.0]), cumulative=False)
    assert ax.lines[0].get_ydata().tolist() == [3.0, 1.0]


def test_spectrum_draws_one_line_per_row_for_each_documented_shape():
    # (r,): one line.  (lines, r): one line per row, no band (notebook 02's "identity" vs "uniform").
    ax = plots.spectrum(torch.tensor([1.0, 1.0, 1.0, 1.0]))
    assert [line.get_ydata().tolist() for line in ax.lines] == [[0.25, 0.5, 0.75, 1.0]]
    ax = plots.spectrum(torch.tensor([[1.0, 1.0, 1.0, 1.0], [4.0, 0.0, 0.0, 0.0]]), labels=["identity", "uniform"])
    assert [line.get_ydata().tolist() for line in ax.lines] == [[0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 1.0, 1.0]]
    assert not ax.collections                                       # a band needs several samples
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["identity", "uniform"]
    # (lines, samples, r): each line is its mean over samples, with a min-max band.
    ax = plots.spectrum(torch.tensor([[[1.0, 1.0], [3.0, 1.0]]]), labels=["mean"])
    assert [line.get_ydata().tolist() for line in ax.lines] == [[0.625, 1.0]]
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match=r"singular_values: expected shape \(r,\), \(lines, r\) or \(lines, samples, r\), got \(1, 1, 1, 2\)"):
        plots.spectrum(torch.ones(1, 1, 1, 2))


def test_loss_curves_take_lists_or_step_pairs():
    ax = plots.loss_curves({"train": [3, 2, 1], "val": ([0, 2], [3, 1.5])})
    assert ax.lines[1].get_xdata().tolist() == [0, 2]


def test_heatmaps_write_token_labels():
    ax = plots.heatmap(torch.rand(3, 2), ticklabels=(["a", "b", "c"], ["x", "y"]))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y"]


def test_loglog_labels_the_measured_sizes():
    ax, _ = plots.loglog([256, 512, 1024], {"t": [1, 4, 16]})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["256", "512", "1024"]
