"""The explorer's views (issue 14): colour scales where A is readable, token labels, every head at once, the error on
the outputs, and causal models drawn as what they compute with their own projections."""
import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402
from einops import rearrange  # noqa: E402

from linformer_edu import LinformerLM  # noqa: E402
from linformer_edu.causal import CausalLinformerSelfAttention  # noqa: E402
from linformer_edu.comparison import Sentence, compare, fresh_layer  # noqa: E402
from linformer_edu.data import CharVocab  # noqa: E402
from linformer_edu.explore import AttentionExplorer  # noqa: E402
from linformer_edu.explore_picture import VMAX, token_ticks  # noqa: E402

TEXT = "the cat sat on the mat, the dog sat on the log. " * 3


@pytest.fixture(scope="module")
def text_explorer():
    return AttentionExplorer(source="text sentence", n=128, k=16, projection="mean")


@pytest.fixture(scope="module")
def causal_lm():
    torch.manual_seed(0)
    return LinformerLM(num_tokens=30, dim=32, seq_len=64, depth=2, k=8, heads=2, causal=True)


def vocab_and_tokens(n=64):
    vocab = CharVocab(TEXT)
    return vocab, vocab.encode(TEXT[:n])


def test_maps_are_coloured_relative_to_the_uniform_weight_of_their_rows(text_explorer):
    ex = text_explorer.set(k=16, projection="mean")
    c, picture = ex.result, ex.drawing
    norm = picture.colours.norm
    assert (norm.vmin, norm.vmax) == (-VMAX, VMAX) and len(picture.bars) == 2
    assert [bar.ax.get_ylabel() for bar in picture.bars] == ["weight × k", "weight × n (A and P̄F)"]
    for image, matrix, scale in zip(picture.images, (c.full, c.p_bar, c.effective), (128, 16, 128)):
        want = picture.colours.to_rgba(scale * matrix.numpy(), bytes=True)
        assert (image.get_array() == want).all()
    # the uniform weight has the same colour in A (1/n) and in P̄ (1/k), well away from white (0)
    one = picture.colours.to_rgba(1.0, bytes=True)
    assert picture.colours.norm(1.0) > 0.6 and one != picture.colours.to_rgba(0.0, bytes=True)
    # on the old single absolute scale (asinh, linear_width 0.02, ±1) A's typical entry sat 1/13 of the way
    # from white to full colour; here at least a fifth of the way
    assert picture.colours.norm(128 * c.full.median().item()) - 0.5 > 0.2 * 0.5 * 0.5


def test_text_input_labels_the_axes_with_its_characters_thinned(text_explorer):
    ex = text_explorer.set(source="text sentence", n=128)
    ax = ex.drawing.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    want = list(Sentence(64).labels(128))
    assert ax.get_xticks().tolist() == list(range(0, 128, 8)) and len(labels) == 16
    assert labels == [{" ": "␣"}.get(want[p], want[p]) for p in range(0, 128, 8)]
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert [t.get_text() for t in ex.drawing.axes[2].get_xticklabels()] == labels
    assert token_ticks(list("ab \n"))[1] == ["a", "b", "␣", "⏎"]
    ex.set(source="random vectors")                       # no text: no labels
    assert ex.drawing.axes[0].get_xticks().tolist() == [] and ex.result.tokens == ()


def test_the_output_error_is_the_relative_error_of_a_v_against_p_bar_f_v():
    c = compare(Sentence(64), n=96, k=12, heads=4, head=2, projection="random", seed=3)
    x, _ = Sentence(64).inputs(96, seed=3)
    V = rearrange(fresh_layer(64, 4, seed=3).to_v(x), "b n (h d) -> b h n d", h=4)[0, 2]   # (n, d) head 2
    AV, approx = c.full @ V, c.effective @ V
    want = (torch.linalg.matrix_norm(AV - approx) / torch.linalg.matrix_norm(AV)).item()
    assert c.output_error == pytest.approx(want, rel=1e-5)
    assert c.output_error != pytest.approx(c.error, rel=1e-2)


def test_the_headline_prints_the_output_error_beside_the_map_error(text_explorer):
    ex = text_explorer.set(source="text sentence", k=8)
    status = ex.status.value
    assert f"= <b>{ex.result.error:.3f}</b>" in status
    assert f"outputs ‖AV − P̄FV‖<sub>F</sub>/‖AV‖<sub>F</sub> = <b>{ex.result.output_error:.3f}</b>" in status


def test_all_heads_draws_a_layers_by_heads_grid_of_a_beside_p_bar_f(causal_lm):
    vocab, tokens = vocab_and_tokens()
    ex = AttentionExplorer(model=causal_lm, tokens=tokens, vocab=vocab)
    figure = ex.heads_figure()
    assert len(figure.axes) == 2 * (2 * 2) + 1                  # 2 layers × 2 heads × (A, P̄F), and a colour bar
    titles = [ax.get_title(loc="left") for ax in figure.axes[:-1] if ax.get_title(loc="left")]
    c = ex.compute(ex.settings().__class__(**{**ex.settings().__dict__, "layer": 1, "head": 1}))
    assert titles[-1] == f"L1 h1: map {c.error:.2f}, out {c.output_error:.2f}" and len(titles) == 4
    assert ex.all_heads().data[:4] == b"\x89PNG"
    single = ex.image
    ex.grid.value = True                                         # the widget's toggle: the grid in its place
    W, H = (int(v) for v in figure.canvas.get_width_height())
    assert ex.picture.value == ex.image != single and ex.image[:2] == b"\xff\xd8"
    assert (ex.picture.layout.width, ex.picture.layout.height) == (f"{W}px", f"{H}px") and not ex.log.outputs
    ex.grid.value = False
    assert ex.picture.layout.width == f"{ex.drawing.size[0]}px" and ex.image == single


def test_causal_maps_times_v_are_the_layer_output_and_zero_above_the_diagonal():
    torch.manual_seed(0)
    for n, chunk, look_back in [(40, 8, 1), (37, 8, 1), (64, 4, 2), (16, 8, 0)]:
        layer = CausalLinformerSelfAttention(32, 64, k=8, heads=4, chunk_size=chunk, look_back=look_back)
        x = torch.randn(2, n, 32)
        maps = layer.attention_maps(x)
        assert maps.p_bar.shape == (2, 4, n, 8) and maps.effective.shape == (2, 4, n, n)
        assert torch.equal(maps.effective, maps.effective.tril())
        v = rearrange(layer.to_v(x), "b n (h d) -> b h n d", h=4)
        out = layer.to_out(rearrange(maps.effective @ v, "b h n d -> b n (h d)"))       # (b, n, dim)
        with torch.no_grad():
            fast = layer(x)
            layer.fast = False
            readable = layer(x)
        torch.testing.assert_close(out, fast)
        torch.testing.assert_close(out, readable)
        no_memory = maps.p_bar[..., :(look_back + 1) * chunk, :]      # chunks 0..L: no finished prefix yet
        assert torch.equal(no_memory, torch.zeros_like(no_memory))


def test_a_causal_model_is_drawn_as_what_it_computes_with_its_own_projections(causal_lm):
    vocab, tokens = vocab_and_tokens()
    ex = AttentionExplorer(model=causal_lm, tokens=tokens, vocab=vocab)
    c = ex.controls
    assert c["projection"].value == "model" and c["k"].value == 8 and c["k"].disabled
    assert "window + memory" in dict((v, lab) for lab, v in c["projection"].options)["model"]
    ex.set(layer=1, head=1)
    layer = causal_lm.linformer.net.layers[1][0]
    seen = []
    hook = layer.fn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    causal_lm(tokens[None])
    hook.remove()
    maps = layer.fn.attention_maps(seen[0])
    r = ex.result
    torch.testing.assert_close(r.effective, maps.effective[0, 1])
    torch.testing.assert_close(r.p_bar, maps.p_bar[0, 1])
    assert r.causal and torch.equal(r.effective, r.effective.tril()) and torch.equal(r.full, r.full.tril())
    assert ex.drawing.axes[2].get_title().startswith("what it computes")
    assert r.tokens == tuple(TEXT[:64])                           # the vocabulary labels the positions
    for projection in ("mean", "random", "learned", "identity"):  # fresh E, F: applied causally as well
        ex.set(projection=projection, k=16)
        assert torch.equal(ex.result.effective, ex.result.effective.tril()), projection
        assert not ex.log.outputs
    assert list(c["sharing"].options) == ["headwise", "kv"]
    ex.set(source="text sentence")                                # a bidirectional input: every sharing level
    assert list(c["sharing"].options) == ["none", "headwise", "kv", "layerwise"] and not ex.result.causal
