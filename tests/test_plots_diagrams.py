"""The two diagrams (issue 14): what they draw — boxes, arrows, the texts with their shapes — checked on the artists."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from linformer_edu import plots  # noqa: E402


def teardown_function():
    plt.close("all")


def boxes(ax):
    return [p for p in ax.patches if isinstance(p, FancyBboxPatch)]


def arrows(ax):
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch)]


def texts(ax):
    return [t.get_text() for t in ax.texts]


def box_under(ax, name):
    """The box whose name is written just above it (projection_shapes writes each matrix's name over its box)."""
    label = next(t for t in ax.texts if t.get_text() == name)
    x, y = label.get_position()
    return min(boxes(ax), key=lambda b: abs(b.get_x() + b.get_width() / 2 - x) + abs(b.get_y() + b.get_height() - y))


def test_projection_shapes_draws_ten_matrices_and_nine_arrows_with_their_shapes():
    ax = plots.projection_shapes()
    assert len(boxes(ax)) == 10 and len(arrows(ax)) == 9
    names = ["K", "E", "EK", "V", "F", "FV", "Q", "Q(EK)ᵀ/√d", "P̄", "P̄(FV)"]
    assert set(names) <= set(texts(ax))
    shapes = [t for t in texts(ax) if "×" in t]
    assert sorted(shapes) == sorted(["n × d"] * 4 + ["k × n"] * 2 + ["k × d"] * 2 + ["n × k"] * 2)
    assert "softmax" in texts(ax)
    assert ax.get_title() == "the projection's shapes"


def test_projection_shapes_draws_each_matrix_to_its_proportions():
    ax = plots.projection_shapes()
    size = {name: (box_under(ax, name).get_height(), box_under(ax, name).get_width())
            for name in ("K", "E", "EK", "P̄")}
    (n, d), (k, n_wide), (k_tall, d_wide), (n_tall, k_wide) = size["K"], size["E"], size["EK"], size["P̄"]
    assert n == n_wide == n_tall and k == k_tall == k_wide and d == d_wide    # rows × columns, one length per symbol
    assert n > k > d


def test_projection_shapes_writes_the_numbers_given(raises_exactly):
    ax = plots.projection_shapes(n=256, k=32, d=16)
    assert texts(ax).count("n × d\n256 × 16") == 4 and texts(ax).count("k × n\n32 × 256") == 2
    assert texts(ax).count("n × k\n256 × 32") == 2 and texts(ax).count("k × d\n32 × 16") == 2
    assert ax.get_title() == "the projection's shapes (n = 256, k = 32, d = 16)"
    partly = plots.projection_shapes(k=8)                                    # a size alone: no half-filled shapes
    assert "k × n" in texts(partly) and partly.get_title() == "the projection's shapes (k = 8)"
    with raises_exactly(ValueError, "n: expected a positive int, got 0"):
        plots.projection_shapes(n=0)
    with raises_exactly(TypeError, "d: expected a positive int, got 1.5 of type float"):
        plots.projection_shapes(d=1.5)


def test_linformer_block_draws_the_papers_figure_2_with_shapes():
    ax = plots.linformer_block(n=256, k=32, d=16, heads=4, dim=64)
    assert len(boxes(ax)) == 9 and len(arrows(ax)) == 10
    drawn = texts(ax)
    for text in ["input X\nn × dim = 256 × 64", "Linear → Q\nn × d = 256 × 16", "Linear → K\nn × d = 256 × 16",
                 "Linear → V\nn × d = 256 × 16", "projection E: EK\nk × d = 32 × 16",
                 "projection F: FV\nk × d = 32 × 16",
                 "scaled dot-product attention: P̄(FV), P̄ = softmax(Q(EK)ᵀ/√d)\nn × d = 256 × 16",
                 "concat heads\nn × h·d = 256 × 64", "Linear out\nn × dim = 256 × 64", "h = 4 heads"]:
        assert text in drawn, text
    # data flows upwards: input, linear maps, projections, attention, concat, out — each block above the last
    bottoms = {t.get_text().split("\n")[0]: t.get_position()[1] for t in ax.texts if "\n" in t.get_text()}
    order = ["input X", "Linear → K", "projection E: EK", "scaled dot-product attention: P̄(FV), P̄ = "
             "softmax(Q(EK)ᵀ/√d)", "concat heads", "Linear out"]
    assert [bottoms[name] for name in order] == sorted(bottoms[name] for name in order)


def test_linformer_block_without_sizes_marks_the_symbols(raises_exactly):
    drawn = texts(plots.linformer_block())
    assert {"input X\nn × dim", "projection F: FV\nk × d", "concat heads\nn × h·d", "h heads"} <= set(drawn)
    assert not any(ch.isdigit() for text in drawn for ch in text)
    with raises_exactly(ValueError, "heads: expected a positive int, got -1"):
        plots.linformer_block(heads=-1)
