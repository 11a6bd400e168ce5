"""linformer_edu against the reference implementation (PyPI `linformer` 0.2.3), used here as a test oracle.

Same seed -> same weights; the reference's state dict loads -> same outputs and gradients, for every option.
"""
import itertools

import pytest
import torch

import linformer_edu as le
from oracle import ref

OPTIONS = [dict(one_kv_head=o, share_kv=s, dim_head=d, reversible=r)
           for o, s, d, r in itertools.product([False, True], [False, True], [None, 12], [False, True])]
TOL = dict(atol=1e-5, rtol=1e-5)


def ids(opts):
    return ",".join(f"{k}={v}" for k, v in opts.items())


def make_pair(cls_name, *args, **kwargs):
    torch.manual_seed(0)
    reference = getattr(ref, cls_name)(*args, **kwargs)
    torch.manual_seed(0)
    ours = getattr(le, cls_name)(*args, **kwargs)
    return reference, ours


@pytest.mark.parametrize("opts", OPTIONS, ids=ids)
def test_lm_same_seed_same_weights_and_outputs(opts):
    reference, ours = make_pair("LinformerLM", 50, 32, 64, 2, k=16, heads=4, **opts)
    ref_sd, our_sd = reference.state_dict(), ours.state_dict()
    assert list(ref_sd) == list(our_sd)
    for name in ref_sd:
        torch.testing.assert_close(our_sd[name], ref_sd[name], atol=0, rtol=0, msg=name)
    tokens = torch.randint(0, 50, (3, 64))
    torch.testing.assert_close(ours.eval()(tokens), reference.eval()(tokens), **TOL)


@pytest.mark.parametrize("opts", OPTIONS, ids=ids)
def test_reference_checkpoint_loads_and_matches(opts):
    torch.manual_seed(1)
    reference = ref.LinformerLM(50, 32, 64, 2, k=16, heads=4, **opts).eval()
    with torch.no_grad():   # move every weight off its initial value, so nothing matches by luck
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    torch.manual_seed(2)   # a different seed: only load_state_dict can make the two agree
    ours = le.LinformerLM(50, 32, 64, 2, k=16, heads=4, **opts).eval()
    ours.load_state_dict(reference.state_dict())
    tokens = torch.randint(0, 50, (2, 40))   # shorter than seq_len: the leading rows of the projections
    torch.testing.assert_close(ours(tokens), reference(tokens), **TOL)


@pytest.mark.parametrize("opts", OPTIONS[::3], ids=ids)
def test_gradients_match_reference(opts):
    reference, ours = make_pair("LinformerLM", 50, 32, 64, 2, k=16, heads=4, **opts)
    tokens = torch.randint(0, 50, (2, 64))
    for model in (reference, ours):
        model(tokens).square().mean().backward()
    for (name, p_ref), p_ours in zip(reference.named_parameters(), ours.parameters()):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_dropout_draws_the_same_masks_as_the_reference():
    # exact_dropout: the explicit path, nn.Dropout on the weights (by default the fused kernel draws the masks)
    reference = ref.LinformerLM(50, 32, 64, 2, k=16, heads=4, dropout=0.3)
    ours = le.LinformerLM(50, 32, 64, 2, k=16, heads=4, dropout=0.3, exact_dropout=True)
    ours.load_state_dict(reference.state_dict())
    tokens = torch.randint(0, 50, (2, 64))
    torch.manual_seed(5)
    expected = reference.train()(tokens)
    torch.manual_seed(5)
    got = ours.train()(tokens)
    torch.testing.assert_close(got, expected, **TOL)
    torch.manual_seed(6)
    assert not torch.allclose(ours(tokens), expected)   # dropout is really on


@pytest.mark.parametrize("opts", [dict(), dict(one_kv_head=True, share_kv=True), dict(reversible=True)], ids=ids)
def test_k_above_seq_len_loads_and_matches_the_reference(opts):
    # the reference's own defaults (k=256, seq_len=128) do this: its models load here (issue 12, item 9)
    torch.manual_seed(3)
    reference = ref.LinformerLM(50, 32, 16, 2, k=24, heads=4, **opts).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ours = le.LinformerLM(50, 32, 16, 2, k=24, heads=4, **opts).eval()
    ours.load_state_dict(reference.state_dict())
    for n in (16, 10):   # full length, and shorter: the leading rows of the (16, 24) projections
        tokens = torch.randint(0, 50, (2, n))
        torch.testing.assert_close(ours(tokens), reference(tokens), **TOL)
    layer_ref, layer = make_pair("LinformerSelfAttention", 32, 16, heads=4)   # the default k=256
    x = torch.randn(2, 16, 32)
    torch.testing.assert_close(layer(x), layer_ref(x), **TOL)


@pytest.mark.parametrize("opts", [dict(), dict(one_kv_head=True), dict(share_kv=True), dict(dim_head=8)], ids=ids)
def test_cross_attention_with_a_longer_context(opts):
    reference, ours = make_pair("LinformerSelfAttention", 32, 64, k=16, heads=4, **opts)
    x, context = torch.randn(2, 20, 32), torch.randn(2, 64, 32)
    torch.testing.assert_close(ours(x, context=context), reference(x, context=context), **TOL)


def test_glu_feedforward_matches_reference():
    reference, ours = make_pair("FeedForward", 32, mult=2, glu=True)
    x = torch.randn(2, 10, 32)
    torch.testing.assert_close(ours(x), reference(x), **TOL)


def test_linformer_stack_matches_reference():
    reference, ours = make_pair("Linformer", 32, 64, 3, k=8, heads=2)
    x = torch.randn(2, 64, 32)
    torch.testing.assert_close(ours(x), reference(x), **TOL)


def test_import_line_is_the_only_change():
    from linformer_edu import LinformerLM, LinformerSelfAttention, Linformer, FeedForward, PreNorm  # noqa: F401
    model = LinformerLM(num_tokens=20, dim=16, seq_len=32, depth=1, k=8, heads=2, dim_head=None,
                        one_kv_head=False, share_kv=False, reversible=False, dropout=0.)
    assert model(torch.zeros(1, 32, dtype=torch.long)).shape == (1, 32, 20)
