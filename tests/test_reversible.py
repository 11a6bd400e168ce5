"""Reversible layers: the same gradients as plain autograd and as the reference, and memory flat in depth."""
from oracle import ref
import pytest
import torch

import linformer_edu as le
from linformer_edu import bench
from linformer_edu.reversible import ReversibleSequence

DIM, SEQ = 32, 48


def stack(depth, reversible, dropout=0.2, seed=0):
    torch.manual_seed(seed)
    return le.Linformer(DIM, SEQ, depth, k=8, heads=4, reversible=reversible, dropout=dropout)


def plain_reversible(model, x):
    """The reversible coupling run with ordinary autograd: every activation kept, no recomputation."""
    x1 = x2 = x
    for block in model.net.blocks:
        x1 = x1 + block.f.net(x2)
        x2 = x2 + block.g.net(x1)
    return x1 + x2


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_gradients_equal_plain_autograd_with_dropout_on():
    model = stack(3, reversible=True).train()
    x = torch.randn(2, SEQ, DIM, requires_grad=True)
    torch.manual_seed(7)
    out = model(x)
    out.square().mean().backward()
    ours, ours_x = grads(model), x.grad.clone()

    model.zero_grad(); x.grad = None
    torch.manual_seed(7)   # the same dropout masks, drawn in the same order
    expected_out = plain_reversible(model, x)
    expected_out.square().mean().backward()
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(x.grad, ours_x, atol=1e-5, rtol=1e-4)
    for got, expected in zip(ours, grads(model)):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_recomputation_runs_under_the_forwards_autocast():
    model = stack(2, reversible=True, dropout=0.0)
    seen = []                                          # dtype of one inner matmul, every time it runs
    model.net.blocks[0].f.net.fn.to_q.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = torch.randn(2, SEQ, DIM, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().square().mean().backward()             # backward runs outside the autocast block, as usual
    assert seen == [torch.bfloat16, torch.bfloat16]    # the forward, then its recomputation in backward
    ours = grads(model)

    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = plain_reversible(model, x)
    expected.float().square().mean().backward()
    for got, want in zip(ours, grads(model)):          # the gradient of the function the forward computed
        torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)


def test_gradients_equal_the_reference_reversible_stack():
    torch.manual_seed(0)
    reference = ref.Linformer(DIM, SEQ, 3, k=8, heads=4, reversible=True, dropout=0.2).train()
    ours = le.Linformer(DIM, SEQ, 3, k=8, heads=4, reversible=True, dropout=0.2, exact_dropout=True).train()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, SEQ, DIM, requires_grad=True)   # the reference needs this (see the next test)
    outs = []
    for model in (reference, ours):
        torch.manual_seed(11)
        out = model(x)
        out.square().mean().backward()
        outs.append(out)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
    for (name, p_ref), p_ours in zip(reference.named_parameters(), ours.parameters()):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_parameters_get_gradients_when_the_input_needs_none():
    model = stack(2, reversible=True)
    model(torch.randn(1, SEQ, DIM)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.manual_seed(0)   # the reference builds no graph at all here
    reference = ref.Linformer(DIM, SEQ, 2, k=8, heads=4, reversible=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        reference(torch.randn(1, SEQ, DIM)).sum().backward()


def test_backward_after_an_eval_mode_forward():
    model = stack(2, reversible=True).eval()
    x = torch.randn(1, SEQ, DIM, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # The reference records RNG state only in training mode, so the same call fails there.
    torch.manual_seed(0)
    reference = ref.Linformer(DIM, SEQ, 2, k=8, heads=4, reversible=True).eval()
    with pytest.raises(TypeError):
        reference(x).sum().backward()


def test_mask_reaches_the_attention_inside_reversible_blocks():
    model = stack(2, reversible=True, dropout=0.).eval()
    x = torch.randn(2, SEQ, DIM)
    mask = torch.ones(2, SEQ, dtype=torch.bool)
    mask[:, 30:] = False
    y = x.clone()
    y[:, 30:] += torch.randn(2, SEQ - 30, DIM)   # change only padded positions
    torch.testing.assert_close(model(y, mask=mask)[:, :30], model(x, mask=mask)[:, :30])
    assert not torch.allclose(model(y)[:, :30], model(x)[:, :30])


def saved_bytes(module, x):
    """Bytes of activations kept for backward (the suite's exact counter: each storage once, no parameters)."""
    return bench.saved_bytes(lambda: module(x), module)


@pytest.mark.parametrize("reversible", [True, False])
def test_memory_kept_for_backward_versus_depth(reversible):
    x = torch.randn(2, SEQ, DIM, requires_grad=True)
    kept = {depth: saved_bytes(stack(depth, reversible, dropout=0.).train(), x) for depth in (2, 4, 8)}
    if reversible:   # flat: only the top output (and the mask) is kept, whatever the depth
        assert kept[2] == kept[4] == kept[8] > 0
    else:            # linear: each layer keeps its own activations
        per_layer = (kept[4] - kept[2]) / 2
        assert per_layer > 0 and kept[8] - kept[4] == pytest.approx(4 * per_layer)
        assert kept[8] > 8 * saved_bytes(stack(8, True, dropout=0.).train(), x)


def test_reversible_sequence_is_the_public_class():
    assert isinstance(stack(1, reversible=True).net, ReversibleSequence)
