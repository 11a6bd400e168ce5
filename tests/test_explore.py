"""The attention explorer, driven from code: what each control changes, the maths behind the pictures, in-place
updates, errors shown in the output area, and the model input (an untrained LinformerLM)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from einops import rearrange  # noqa: E402

from linformer_edu import LinformerLM, LinformerSelfAttention, collect_attention_maps  # noqa: E402
from linformer_edu.comparison import RandomVectors, Sentence, compare  # noqa: E402
from linformer_edu.explore import AttentionExplorer, Picture, measure_latency  # noqa: E402
from linformer_edu.lowrank import best_rank_error, mean_pooling, relative_error  # noqa: E402
from linformer_edu.projections import init_projection  # noqa: E402


@pytest.fixture(scope="module")
def explorer():
    return AttentionExplorer(n=64, k=8)


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    return LinformerLM(num_tokens=20, dim=32, seq_len=48, depth=2, k=8, heads=4)


TOKENS = torch.arange(48) % 20
START = dict(source="text sentence", n=64, heads=4, head=0, k=8, projection="learned", sharing="headwise", seed=0,
             sharpness=1.0, fit_f=False)


def reset(explorer, **changes):
    """The shared explorer in a known state, whatever the tests before did to it."""
    return explorer.set(**{**START, **changes})


def test_moving_k_changes_the_pictures_and_the_printed_error(explorer):
    reset(explorer)
    before = (explorer.image, explorer.status.value, explorer.drawing.images[1].get_array().shape,
              explorer.result.error)
    explorer.controls["k"].value = 16                  # what a slider move does
    assert explorer.image != before[0] and explorer.picture.value == explorer.image
    assert explorer.status.value != before[1] and "k = 16" in explorer.status.value
    assert f"{explorer.result.error:.3f}" in explorer.status.value and explorer.result.error != before[3]
    assert explorer.drawing.images[1].get_array().shape == (64, 16, 4) != before[2]   # P̄ is n×k
    assert explorer.result.p_bar.shape == (64, 16)


@pytest.mark.parametrize("control, value", [("seed", 3), ("head", 2), ("heads", 8), ("projection", "random"),
                                            ("sharpness", 4.0), ("fit_f", True), ("source", "random vectors"),
                                            ("n", 32)])
def test_every_control_changes_the_numbers(explorer, control, value):
    reset(explorer)
    before = explorer.result
    explorer.set(**{control: value})
    assert not explorer.log.outputs
    changed = [not torch.equal(getattr(before, m), getattr(explorer.result, m)) if
               getattr(before, m).shape == getattr(explorer.result, m).shape else True
               for m in ("full", "p_bar", "effective")]
    if control == "projection":                        # the full map stays: same queries and keys
        assert changed == [False, True, True]
    elif control == "fit_f":                           # fitting F changes only the effective map P̄F
        assert changed == [False, False, True]
    else:
        assert any(changed)


def test_sharing_changes_the_map_when_e_and_f_differ(explorer):
    reset(explorer, projection="random")
    own_f = explorer.result.effective
    explorer.set(sharing="kv")                         # F becomes E
    assert not torch.allclose(own_f, explorer.result.effective)
    explorer.set(projection="mean", sharing="headwise")
    pooled = explorer.result.effective
    explorer.set(sharing="kv")                         # mean pooling: E and F were the same matrix already
    torch.testing.assert_close(explorer.result.effective, pooled)


@pytest.mark.parametrize("projection", ["identity", "mean"])
def test_identity_projection_at_k_equal_n_is_full_attention(projection):
    for source in (RandomVectors(32), Sentence(32)):
        c = compare(source, n=40, k=40, heads=2, head=1, projection=projection, sharpness=2.0)
        torch.testing.assert_close(c.effective, c.full)
        assert c.error < 1e-5 and c.best_error < 1e-5


def test_the_full_map_is_softmax_of_the_same_queries_and_keys_as_the_linformer_layer(explorer):
    reset(explorer, source="random vectors", head=3, seed=5)
    x, layer, A, V, _ = explorer.compute.full(explorer.settings())
    q = rearrange(layer.to_q(x), "b n (h d) -> b h n d", h=4)
    k = rearrange(layer.to_k(x), "b n (h d) -> b h n d", h=4)
    want = (q @ k.transpose(-1, -2) / 16 ** 0.5).softmax(-1)[0]       # dim_head = 64 / 4
    torch.testing.assert_close(A, want)
    torch.testing.assert_close(explorer.result.full, want[3])
    torch.testing.assert_close(explorer.result.full.sum(-1), torch.ones(64))
    # P̄ and P̄F are the package layer's own maps, with those to_q and to_k
    attn = LinformerSelfAttention(64, 64, k=8, heads=4)
    attn.load_state_dict({**attn.state_dict(), "to_q.weight": layer.to_q.weight, "to_k.weight": layer.to_k.weight})
    torch.manual_seed(5)
    fresh = LinformerSelfAttention(64, 64, k=8, heads=4)   # the explorer's E, F come from the seed like this
    attn.proj_k.data, attn.proj_v.data = fresh.proj_k.data, fresh.proj_v.data
    maps = attn.attention_maps(x)
    torch.testing.assert_close(explorer.result.p_bar, maps.p_bar[0, 3])
    torch.testing.assert_close(explorer.result.effective, maps.effective[0, 3])


def test_errors_are_the_frobenius_ratio_and_never_beat_the_svd_floor(explorer):
    A, B = torch.rand(6, 6), torch.rand(6, 6)
    assert relative_error(A, B).item() == pytest.approx(((A - B).norm() / A.norm()).item())
    s = torch.linalg.svdvals(A)
    U, S, Vh = torch.linalg.svd(A)
    assert best_rank_error(s, 2).item() == pytest.approx(relative_error(A, U[:, :2] * S[:2] @ Vh[:2]).item(),
                                                          rel=1e-4)
    for projection in ("learned", "random", "mean", "conv", "identity"):
        for fit_f in (False, True):
            reset(explorer, projection=projection, fit_f=fit_f)
            c = explorer.result
            assert c.error >= c.best_error - 1e-5, (projection, fit_f)
            assert c.best_error == pytest.approx(best_rank_error(c.singular_values, 8).item())


def test_fitting_f_never_makes_the_error_worse(explorer):
    for projection in ("learned", "random", "mean"):
        reset(explorer, source="random vectors", projection=projection)
        raw = explorer.result.error
        explorer.set(fit_f=True)
        assert explorer.result.error <= raw + 1e-6


@pytest.mark.parametrize("projection, fit_f", [("mean", False), ("random", True), ("learned", False)])
def test_error_falls_as_k_grows_on_average_over_seeds(projection, fit_f):
    def mean_error(k):
        return sum(compare(Sentence(32), n=64, k=k, heads=2, projection=projection, fit_f=fit_f, seed=seed).error
                   for seed in range(4)) / 4
    errors = [mean_error(k) for k in (4, 16, 48)]
    assert errors[0] > errors[1] > errors[2], errors


def test_mean_pooling_takes_any_k_and_matches_the_package_when_k_divides_n():
    torch.testing.assert_close(mean_pooling(128, 16), init_projection("mean", 128, 16))
    E = mean_pooling(10, 4)
    torch.testing.assert_close(E.sum(0), torch.ones(4))                  # each column averages its window
    assert (E > 0).sum(1).tolist() == [1] * 10                          # each position in exactly one window


def test_a_convolution_uses_the_largest_k_that_divides_n(explorer):
    reset(explorer, projection="conv", k=10)
    assert explorer.result.k == 8 and explorer.result.p_bar.shape == (64, 8)
    assert "a convolution's windows need k to divide n=64: using k=8" in explorer.status.value


def test_controls_keep_their_ranges_consistent(explorer):
    reset(explorer, heads=8)
    assert explorer.controls["head"].max == 7 and explorer.controls["k"].max == 64
    explorer.set(n=32)
    assert explorer.controls["k"].max == 32
    explorer.set(heads=2)
    assert explorer.controls["head"].max == 1
    assert list(explorer.controls["heads"].options) == [1, 2, 4, 8, 16, 32, 64]   # the divisors of dim


def test_updates_reuse_one_figure_and_draw_what_a_fresh_picture_draws():
    plt.close("all")
    ex = AttentionExplorer(n=64, k=8)
    figure, images, lines = ex.figure, list(ex.drawing.images), list(ex.drawing.figure.axes[3].lines)

    def drawn_afresh(result):                          # the same numbers on a new figure, drawn from scratch
        picture = Picture()
        picture.update(result)
        return picture.render()

    changes = [dict(k=9), dict(k=10), dict(seed=4, projection="random", head=2), dict(n=32), dict(n=48, k=5)]
    for change in changes:                             # the last two re-lay the axes for a new n
        before = ex.image
        ex.set(**change)
        assert ex.image != before and ex.picture.value == ex.image      # every change shows a new picture...
        assert ex.image == drawn_afresh(ex.result), change              # ...exactly the one these numbers make
    assert ex.figure is figure and ex.drawing.images == images and list(ex.figure.axes[3].lines) == lines
    assert len(ex.figure.axes) == 6                        # 4 panels and two colour bars, never more
    assert plt.get_fignums() == []                          # no pyplot figure that a notebook would show again
    assert ex.image[:2] == b"\xff\xd8" and ex.snapshot().data[:4] == b"\x89PNG"


def test_a_failing_update_shows_its_traceback_in_the_output_area():
    ex = AttentionExplorer(n=32, k=4)

    def broken(settings):
        raise RuntimeError("boom in the callback")
    working, ex.compute = ex.compute, broken
    ex.controls["k"].value = 5                              # a slider move: the callback fails
    (output,) = ex.log.outputs
    assert output["output_type"] == "error" and output["ename"] == "RuntimeError"
    assert output["evalue"] == "boom in the callback"
    assert "Traceback" in output["traceback"][0] and "boom in the callback" in output["traceback"][-1]
    assert "error: RuntimeError: boom in the callback" in ex.status.value
    assert ex.result is None                                # no stale numbers presented as those of k = 5
    ex.compute = working
    ex.controls["k"].value = 6                              # fixed: the next update clears the message
    assert ex.log.outputs == () and "k = 6" in ex.status.value and ex.result.k == 6


@pytest.mark.parametrize("bad", [dict(k=10**6), dict(n=32, k=10**6), dict(n=32, projection="bad"),
                                 dict(seed=5, sharpness=0), dict(heads=8, head=9)], ids=str)
def test_a_refused_set_leaves_controls_picture_and_result_as_they_were(explorer, bad):
    # issue 12, item 5: the controls before the bad value used to stay changed under the old result
    reset(explorer)
    settings, result, image, status = explorer.settings(), explorer.result, explorer.image, explorer.status.value
    with pytest.raises(ValueError):
        explorer.set(**bad)
    assert explorer.settings() == settings and explorer.result is result
    assert explorer.image == image and explorer.status.value == status
    assert explorer.controls["k"].max == 64 and explorer.controls["head"].max == 3   # the ranges too


def test_settings_that_cannot_be_computed_raise_from_set_and_change_nothing():
    ex = AttentionExplorer(n=32, k=4)
    settings, result, image = ex.settings(), ex.result, ex.image
    working = ex.compute

    def broken(s):
        if s.k == 5:
            raise RuntimeError("boom")
        return working(s)
    ex.compute = broken
    with pytest.raises(RuntimeError, match="^boom$"):      # from code, an error is raised, not only logged
        ex.set(k=5, seed=3)
    assert ex.settings() == settings and ex.image == image
    assert (ex.result.k, ex.result.error) == (result.k, result.error)


def test_compare_names_a_setting_out_of_range():
    source = RandomVectors(64)
    for settings, message in [
            (dict(head=5), "head: got 5, expected an int from 0 to 3 (one of heads=4)"),   # was an IndexError
            (dict(heads=3), "heads: got 3, expected one of [1, 2, 4, 8, 16, 32, 64] (the divisors of dim=64)"),
            (dict(n=64, k=65), "k: got 65, expected an int from 1 to 64 (at most n=64)"),
            (dict(layer=1), "layer: got 1, expected an int from 0 to 0"),
            (dict(n=300), "n: got 300, expected an int from 1 to 256 (the longest this input allows)")]:
        with pytest.raises(ValueError) as err:
            compare(source, **settings)
        assert str(err.value) == message


def test_fewer_than_8_positions_name_what_was_passed(lm):
    # the message used to name n, which the user never passed
    with pytest.raises(ValueError, match=r"^tokens: expected at least 8 token ids \(the explorer's shortest "
                                         r"length n\), got 5$"):
        AttentionExplorer(model=lm, tokens=TOKENS[None, :5])   # (1, n) is taken as n tokens
    short = LinformerLM(num_tokens=20, dim=32, seq_len=4, depth=1, k=2, heads=4)
    with pytest.raises(ValueError, match=r"^model: its seq_len=4 is shorter than the explorer's shortest length "
                                         r"n=8$"):
        AttentionExplorer(model=short, tokens=TOKENS)


def test_bad_settings_say_what_is_allowed(explorer):
    reset(explorer)
    with pytest.raises(TypeError, match=r"set: unknown control\(s\) kk; expected some of source, layer"):
        explorer.set(kk=3)
    with pytest.raises(ValueError, match=r"^k: got 65, expected an int from 1 to 64$"):
        explorer.set(k=65)
    with pytest.raises(ValueError, match=r"^heads: got 3, expected one of \[1, 2, 4, 8, 16, 32, 64\] "
                                         r"\(the divisors of dim=64\)$"):
        explorer.set(heads=3)
    with pytest.raises(ValueError, match=r"^projection: got 'model', expected one of 'learned', 'random'"):
        explorer.set(projection="model")                   # only for a model's Linformer layers
    with pytest.raises(ValueError, match=r"^source: got 'model', expected one of 'random vectors', "
                                         r"'text sentence'$"):
        explorer.set(source="model")
    with pytest.raises(ValueError, match=r"^sharpness: got 0, expected a number from 0.25 to 8$"):
        explorer.set(sharpness=0)
    with pytest.raises(TypeError, match=r"^sharpness: expected a number from 0.25 to 8, got '2' of type str$"):
        explorer.set(sharpness="2")
    with pytest.raises(TypeError, match=r"^k: expected an int from 1 to 64, got 8.0 of type float$"):
        explorer.set(k=8.0)
    with pytest.raises(TypeError, match=r"^fit_f: expected True or False, got 1$"):
        explorer.set(fit_f=1)
    with pytest.raises(ValueError, match=r"^model, tokens: give both"):
        AttentionExplorer(tokens=TOKENS)
    with pytest.raises(TypeError, match=r"^model: expected a torch.nn.Module such as a LinformerLM, got str$"):
        AttentionExplorer(model="lm", tokens=TOKENS)
    with pytest.raises(ValueError, match=r"^model: found no attention layer \(a submodule with to_q, to_k and "
                                         r"heads\) in Linear$"):
        AttentionExplorer(model=torch.nn.Linear(2, 2), tokens=TOKENS)


def test_a_model_input_keeps_the_heads_of_its_layers(lm):
    ex = AttentionExplorer(model=lm, tokens=TOKENS)
    with pytest.raises(ValueError, match=r"^heads: the model's layers have 4 heads; got 2$"):
        ex.set(heads=2)
    assert ex.controls["heads"].value == 4 and not ex.log.outputs
    ex.set(heads=4, head=3)                                    # its own number of heads is accepted
    assert ex.controls["head"].value == 3
    ex.set(source="random vectors", heads=2)                   # fresh weights: any divisor of dim
    assert ex.controls["heads"].value == 2
    with pytest.raises(ValueError, match=r"^heads: the model's layers have 4 heads; got 8$"):
        ex.set(source="model", heads=8)                        # back to the model: its heads again


@pytest.mark.parametrize("text, error, got", [("", ValueError, "''"), (None, TypeError, "None of type NoneType"),
                                              (42, TypeError, "42 of type int")])
def test_the_text_input_needs_a_non_empty_string(text, error, got):
    with pytest.raises(error, match=rf"^text: expected a non-empty string, got {got}$"):
        Sentence(16, text)
    with pytest.raises(error, match=rf"^text: expected a non-empty string, got {got}$"):
        AttentionExplorer(n=32, k=4, text=text)


def test_bad_tokens_say_what_is_expected(lm):
    with pytest.raises(TypeError, match=r"^tokens: expected a non-empty 1-D sequence of integer token ids, got "
                                        r"\(48,\) of torch.float32$"):
        AttentionExplorer(model=lm, tokens=TOKENS.float())
    with pytest.raises(ValueError, match=r"^tokens: expected a non-empty 1-D sequence of integer token ids, got "
                                         r"\(2, 24\) of torch.int64$"):
        AttentionExplorer(model=lm, tokens=TOKENS.view(2, 24))


def test_a_model_input_shows_each_layer_and_head_of_an_untrained_linformer_lm(lm):
    ex = AttentionExplorer(model=lm, tokens=TOKENS)
    c = ex.controls
    assert c["source"].label == "model" and c["layer"].max == 1 and not c["layer"].disabled
    assert c["projection"].value == "model" and c["k"].value == 8 and c["n"].value == 48
    assert list(c["heads"].options) == [4] and c["heads"].disabled and c["sharpness"].disabled
    assert c["n"].max == 48
    maps = collect_attention_maps(lm, TOKENS[None, :48])
    ex.set(projection="model", layer=1, head=2, n=48)         # the layer's own E and F
    assert c["k"].value == 8 and c["k"].disabled and c["sharing"].disabled
    torch.testing.assert_close(ex.result.p_bar, maps[1].p_bar[0, 2])
    torch.testing.assert_close(ex.result.effective, maps[1].effective[0, 2])
    # the full map: softmax of that layer's own queries and keys, on the input the layer received
    layer = lm.linformer.net.layers[1][0]
    seen = []
    hook = layer.fn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    lm(TOKENS[None])
    hook.remove()
    q = rearrange(layer.fn.to_q(seen[0]), "b n (h d) -> b h n d", h=4)[0, 2]
    k = rearrange(layer.fn.to_k(seen[0]), "b n (h d) -> b h n d", h=4)[0, 2]
    torch.testing.assert_close(ex.result.full, (q @ k.T / 8 ** 0.5).softmax(-1), atol=1e-5, rtol=1e-4)
    ex.set(projection="identity", k=48)                       # other projections keep the model's queries/keys
    assert ex.result.error < 1e-5
    ex.set(source="random vectors")                            # back to fresh weights: heads free again
    assert not c["heads"].disabled and list(c["heads"].options) == [1, 2, 4, 8, 16, 32, 64]
    assert [v for _, v in c["projection"].options][-1] == "identity"


def test_a_causal_model_gives_a_causal_full_map():
    torch.manual_seed(0)
    for attention in ("full", "linformer"):
        lm = LinformerLM(20, 32, seq_len=32, depth=1, k=8, heads=2, attention=attention, causal=True)
        ex = AttentionExplorer(model=lm, tokens=torch.arange(32) % 20, projection="mean", k=8)
        A, effective = ex.result.full, ex.result.effective
        assert torch.equal(A, A.tril()) and not ex.log.outputs
        # issue 14: the Linformer side is causal too (it was a bidirectional P̄F with weight on future keys)
        assert torch.equal(effective, effective.tril()) and ex.result.causal


def test_a_bf16_model_is_explored_in_its_dtype_and_drawn_in_float32(lm):
    # the layers get their input in bf16 (float32 would not multiply with bf16 weights); the maps come back float32
    half = LinformerLM(num_tokens=20, dim=32, seq_len=48, depth=2, k=8, heads=4)
    half.load_state_dict(lm.state_dict())
    half.to(torch.bfloat16)
    wide, narrow = AttentionExplorer(model=lm, tokens=TOKENS), AttentionExplorer(model=half, tokens=TOKENS)
    for projection in ("model", "mean"):   # the layer's own E, F; a fresh float32 layer with the model's W_Q, W_K
        for ex in (wide, narrow):
            ex.set(projection=projection, layer=1, head=2, n=48, k=8)
        assert not narrow.log.outputs, narrow.status.value
        r = narrow.result
        assert r.full.dtype == r.p_bar.dtype == r.effective.dtype == torch.float32
        for name in ("full", "p_bar", "effective"):   # bf16 keeps about 3 significant digits
            torch.testing.assert_close(getattr(r, name), getattr(wide.result, name), atol=2e-2, rtol=5e-2)


def test_measure_latency_reports_a_median_per_control():
    ex = AttentionExplorer(n=32, k=4)
    result = measure_latency(n=32, repeats=3, control="seed", explorer=ex)
    assert set(result) == {"median_ms", "p90_ms", "cpu_median_ms", "n", "control", "repeats", "threads"}
    assert result["median_ms"] > 0 and result["n"] == 32 and result["repeats"] == 3
    with pytest.raises(ValueError, match=r"^control: got 'colour', expected one of 'k', 'seed'"):
        measure_latency(control="colour", explorer=ex)
