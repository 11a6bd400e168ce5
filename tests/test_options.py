"""The paper's options beyond the reference: sharing levels, projection kinds, per-layer k, padding masks,
attention maps, and the full-attention baseline."""
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

import linformer_edu as le
from linformer_edu.projections import KINDS, SHARING, pooling_matrix


def distinct_projections(model):
    """Distinct E/F tensors in a model (shared ones counted once), as matrices: per-head tensors count per head."""
    tensors = {}
    for module in model.modules():
        if isinstance(module, le.LinformerSelfAttention):
            for t in (module.proj_k, module.proj_v):
                if t is not None:
                    tensors[id(t)] = t
    return sum(t.shape[0] if t.dim() == 3 else 1 for t in tensors.values())


@pytest.mark.parametrize("sharing, expected", [("none", 3 * 4 * 2), ("headwise", 3 * 2), ("kv", 3), ("layerwise", 1)])
def test_sharing_levels_count_like_the_paper(sharing, expected):
    # the paper's count for 12 layers × 12 heads is 288 / 24 / 12 / 1; here 3 layers × 4 heads
    model = le.Linformer(32, 64, 3, k=16, heads=4, sharing=sharing)
    assert distinct_projections(model) == expected
    model(torch.randn(2, 64, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_layerwise_sharing_is_one_trained_tensor():
    model = le.Linformer(32, 64, 3, k=16, heads=4, sharing="layerwise")
    layers = [f.fn for f, _ in model.net.layers]
    assert all(layer.proj_k is layers[0].proj_k and layer.proj_v is None for layer in layers)
    assert sum(p is layers[0].proj_k for p in model.parameters()) == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sharing", SHARING)
def test_every_kind_and_sharing_runs_and_trains(kind, sharing):
    model = le.LinformerLM(20, 32, 64, 2, k=16, heads=4, projection=kind, sharing=sharing)
    logits = model(torch.randint(0, 20, (2, 48)))
    assert logits.shape == (2, 48, 20)
    logits.sum().backward()
    trained = {n: p for n, p in model.named_parameters() if "proj" in n}
    assert bool(trained) == (kind in ("learned", "conv"))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.values())   # in the graph
    fixed = [n for n, _ in model.named_buffers() if "proj" in n]
    assert bool(fixed) == (kind in ("random", "mean"))


def test_mean_pooling_averages_windows():
    layer = le.LinformerSelfAttention(8, 12, k=3, heads=2, projection="mean")
    E, _ = layer.projections(12)
    expected = torch.repeat_interleave(torch.eye(3), 4, dim=0) / 4   # (12, 3): window j averages rows 4j..4j+3
    torch.testing.assert_close(E, expected)


def test_conv_projection_is_a_strided_convolution():
    kernel, k, width = torch.randn(4), 5, 4
    x = torch.randn(2, k * width, 3)                                   # (b, n, d)
    by_matrix = pooling_matrix(kernel, k).T @ x                        # (b, k, d)
    by_conv = F.conv1d(rearrange(x, "b n d -> (b d) 1 n"), kernel.view(1, 1, -1), stride=width)
    torch.testing.assert_close(by_matrix, rearrange(by_conv, "(b d) 1 k -> b k d", b=2))


def test_random_projection_keeps_lengths_on_average():
    torch.manual_seed(0)
    layer = le.LinformerSelfAttention(8, 512, k=256, heads=2, projection="random")
    E, _ = layer.projections(512)
    x = torch.randn(512, 100)
    ratio = (E.T @ x).norm(dim=0) / x.norm(dim=0)                      # Johnson–Lindenstrauss: ≈ 1
    assert abs(ratio.mean().item() - 1) < 0.05


def test_nonuniform_k_per_layer():
    model = le.Linformer(32, 64, 3, k=[32, 16, 8], heads=4)
    assert [f.fn.k for f, _ in model.net.layers] == [32, 16, 8]
    assert model(torch.randn(1, 64, 32)).shape == (1, 64, 32)


def test_identity_projection_at_k_equal_n_is_full_attention():
    torch.manual_seed(0)
    layer = le.LinformerSelfAttention(32, 16, k=16, heads=4).eval()
    full = le.FullSelfAttention(32, heads=4).eval()
    with torch.no_grad():
        layer.proj_k.copy_(torch.eye(16))
        layer.proj_v.copy_(torch.eye(16))
    full.load_state_dict({k: v for k, v in layer.state_dict().items() if "proj" not in k})
    x = torch.randn(2, 16, 32)
    torch.testing.assert_close(layer(x), full(x), atol=1e-5, rtol=1e-5)


MODELS = {
    "learned": dict(),
    "none-conv": dict(sharing="none", projection="conv"),
    "mean-kv": dict(sharing="kv", projection="mean", one_kv_head=True),
    "reversible": dict(reversible=True),
    "full": dict(attention="full"),
}


@pytest.mark.parametrize("opts", MODELS.values(), ids=MODELS.keys())
def test_padding_mask_hides_masked_tokens(opts):
    torch.manual_seed(0)
    model = le.LinformerLM(30, 32, 64, 2, k=16, heads=4, **opts).eval()
    tokens = torch.randint(0, 30, (2, 64))
    mask = torch.ones(2, 64, dtype=torch.bool)
    mask[0, 40:], mask[1, 10:20] = False, False
    changed = torch.where(mask, tokens, (tokens + 7) % 30)             # only masked tokens differ
    before, after = model(tokens, mask=mask), model(changed, mask=mask)
    torch.testing.assert_close(after[mask], before[mask], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(model(changed)[mask], model(tokens)[mask], atol=1e-3)   # without the mask, they do


def test_attention_maps_are_what_forward_applies():
    torch.manual_seed(0)
    layer = le.LinformerSelfAttention(32, 64, k=16, heads=4).eval()
    x = torch.randn(2, 50, 32)
    mask = torch.ones(2, 50, dtype=torch.bool)
    mask[1, 30:] = False
    maps = layer.attention_maps(x, mask=mask)
    assert maps.p_bar.shape == (2, 4, 50, 16) and maps.effective.shape == (2, 4, 50, 50)
    torch.testing.assert_close(maps.p_bar.sum(-1), torch.ones(2, 4, 50))
    values = rearrange(layer.to_v(x), "b m (h d) -> b h m d", h=4)     # (b, h, m, d) before projecting
    out = layer.to_out(rearrange(maps.effective @ values, "b h n d -> b n (h d)"))
    torch.testing.assert_close(out, layer(x, mask=mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reversible", [False, True])
def test_collect_attention_maps_one_per_layer(reversible):
    model = le.LinformerLM(30, 32, 64, 3, k=[16, 8, 4], heads=4, reversible=reversible).eval()
    maps = le.collect_attention_maps(model, torch.randint(0, 30, (1, 64)))
    assert [m.p_bar.shape[-1] for m in maps] == [16, 8, 4]
    assert all(m.effective.shape == (1, 4, 64, 64) for m in maps)


@pytest.mark.parametrize("causal", [False, True])
def test_attend_fast_path_equals_the_readable_one(causal):
    q, k, v = torch.randn(3, 2, 4, 10, 8).unbind(0)
    mask = torch.rand(2, 1, 1, 10) > 0.3
    mask[..., 0] = True   # every row keeps something
    fast = le.attend(q, k, v, mask=mask, causal=causal)
    slow = le.attend(q, k, v, mask=mask, causal=causal, fast=False)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    scores = (q @ k.transpose(-1, -2)) / 8 ** 0.5
    scores = scores.masked_fill(~mask, float("-inf"))
    if causal:
        scores = scores.masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(slow, scores.softmax(-1) @ v, atol=1e-5, rtol=1e-5)


def test_full_attention_is_causal_when_asked():
    torch.manual_seed(0)
    layer = le.FullSelfAttention(32, heads=4, causal=True).eval()
    x = torch.randn(1, 20, 32)
    y = x.clone()
    y[:, 12:] += 1.0
    torch.testing.assert_close(layer(y)[:, :12], layer(x)[:, :12])
    assert not torch.allclose(layer(y)[:, 12:], layer(x)[:, 12:])
