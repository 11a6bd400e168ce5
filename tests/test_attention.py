"""`attend` and the layers built on it: queries that may attend to no key, and which path draws dropout.

Issue 12, item 2: a query that sees no key (left padding under causal attention, an all-padding row) gets output 0
on the fused and the explicit path, in training and eval mode, with finite gradients.
Issue 13 §1: dropout is drawn inside the fused kernel by default; exact_dropout=True draws the reference's masks.
"""
import pytest
import torch
from torch import nn

import linformer_edu as le
import linformer_edu.attention as attention


def left_padded_causal_mask(b=2, n=6, pad=3):
    """(b, n) keep-mask whose first row starts with `pad` padding positions: under causal attention its first
    `pad` queries see no key at all."""
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, :pad] = False
    return mask


@pytest.mark.parametrize("fast, exact_dropout", [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize("training", [True, False])
def test_a_query_that_sees_no_key_gets_zero_and_finite_gradients(fast, exact_dropout, training):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 4, requires_grad=True) for _ in range(3))
    mask = left_padded_causal_mask()[:, None, None, :]                         # (b, 1, 1, m)
    dropout = nn.Dropout(0.3).train(training)
    out = le.attend(q, k, v, mask=mask, causal=True, dropout=dropout, fast=fast, exact_dropout=exact_dropout)
    assert out[0, :, :3].eq(0).all()                       # positions 0..2 of row 0 see no key: output 0
    assert out[0, :, 3:].abs().sum() > 0 and out[1].abs().sum() > 0
    out.square().sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_an_all_padding_row_gets_zero_and_the_weights_of_such_a_row_are_zero():
    q, k, v = torch.randn(3, 2, 2, 5, 4).unbind(0)
    mask = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    mask[1] = False                                                          # row 1 is all padding
    for fast in (True, False):
        out = le.attend(q, k, v, mask=mask, fast=fast)
        assert out[1].eq(0).all() and torch.isfinite(out).all()
    weights = le.attention_weights(q, k, mask=mask)
    assert weights[1].eq(0).all()
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(2, 5))


def full_lm(**options):
    torch.manual_seed(0)
    return le.LinformerLM(12, 16, 8, 2, k=4, heads=2, dropout=0.2, **options).train()


@pytest.mark.parametrize("model, mask_row", [
    (lambda: full_lm(attention="full", causal=True), "left-padded"),
    (lambda: full_lm(attention="full", causal=True, exact_dropout=True), "left-padded"),
    (lambda: full_lm(attention="full"), "all padding"),
    (lambda: full_lm(attention="full", exact_dropout=True), "all padding"),
    (lambda: full_lm(), "all padding"),
    (lambda: full_lm(exact_dropout=True), "all padding"),
], ids=["causal-full", "causal-full-exact", "full", "full-exact", "linformer", "linformer-exact"])
def test_training_with_dropout_and_padding_keeps_every_gradient_finite(model, mask_row):
    # the loss scores only kept positions, so nothing about padding should make it NaN (it did, issue 12 item 2)
    lm = model()
    tokens = torch.randint(0, 12, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.bool)
    if mask_row == "left-padded":
        mask[0, :3] = False
    else:
        mask[1] = False
    logits = lm(tokens, mask=mask)
    loss = nn.functional.cross_entropy(logits[mask], tokens[mask])
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in lm.parameters() if p.grad is not None)


@pytest.fixture
def fused_calls(monkeypatch):
    """The dropout_p of every call to the fused kernel made by `attend`."""
    calls, fused = [], attention.F.scaled_dot_product_attention

    def recording(*args, dropout_p=0.0, **kwargs):
        calls.append(dropout_p)
        return fused(*args, dropout_p=dropout_p, **kwargs)
    monkeypatch.setattr(attention.F, "scaled_dot_product_attention", recording)
    return calls


@pytest.mark.parametrize("make", [lambda **o: le.LinformerSelfAttention(16, 8, k=4, heads=2, dropout=0.25, **o),
                                  lambda **o: le.FullSelfAttention(16, heads=2, dropout=0.25, **o)],
                         ids=["linformer", "full"])
def test_dropout_is_drawn_by_the_fused_kernel_unless_exact_dropout(make, fused_calls):
    x = torch.randn(1, 8, 16)
    make().train()(x)
    make().eval()(x)
    assert fused_calls == [0.25, 0.0]          # training: the kernel's own dropout; eval: none
    fused_calls.clear()
    layer = make(exact_dropout=True)
    layer.train()(x)
    assert fused_calls == []                   # the explicit path, nn.Dropout on the weights as the reference does
    layer.eval()(x)
    assert fused_calls == [0.0]                # no dropout active: the fused kernel all the same


def test_exact_dropout_reaches_every_layer_of_a_stack():
    for attention_kind in ("linformer", "full"):
        model = le.LinformerLM(12, 16, 8, 2, k=4, heads=2, dropout=0.1, attention=attention_kind,
                               exact_dropout=True)
        layers = [m for m in model.modules() if isinstance(m, (le.LinformerSelfAttention, le.FullSelfAttention))]
        assert len(layers) == 2 and all(layer.exact_dropout for layer in layers)
