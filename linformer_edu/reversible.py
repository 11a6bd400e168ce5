"""Reversible layers (RevNet, Gomez et al. 2017): activation memory that does not grow with depth.

A reversible block splits its input into two halves and couples them:

    y1 = x1 + f(x2)            x2 = y2 - g(y1)
    y2 = x2 + g(y1)            x1 = y1 - f(x2)

The right-hand column recovers a block's inputs from its outputs, so the forward pass keeps nothing for
backward but the last block's output: each block's inputs are recomputed, block by block from the top, while
the gradient flows down. Memory kept for backward is O(1) in depth instead of O(depth); the price is running
every f and g a second time.

Dropout inside f and g must draw the same random numbers when recomputed, so each block records the RNG state
(CPU, and CUDA or MPS where in use) before its forward and replays it. The state is recorded whatever the mode, so
backward also works after a forward in eval mode. Likewise a forward run under `torch.autocast` is recomputed
under the same autocast setting, so the gradient is that of the function the forward computed.

`SequentialSequence` is the plain stack with the same interface: x = x + f(x); x = x + g(x).
Parameter names follow the reference implementation (blocks.i.f.net…, layers.i.0…) so checkpoints load.
"""
from contextlib import nullcontext

import torch
from torch import nn

from ._state import device_rng_states, replayed_rng


def _autocast_as_now(device_type):
    """A context that re-enters the autocast setting in force now for `device_type` (or does nothing)."""
    if hasattr(torch, "get_autocast_dtype"):                          # torch >= 2.4
        enabled, dtype = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    elif device_type == "cpu":
        enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
    elif device_type == "cuda":
        enabled, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    else:
        enabled, dtype = False, None
    return (lambda: torch.autocast(device_type, dtype=dtype)) if enabled else nullcontext


class SequentialSequence(nn.Module):
    """Pre-norm residual stack: x + f(x), then x + g(x), for each (f, g) pair in `layers`."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers

    def forward(self, x, mask=None):
        for f, g in self.layers:
            x = x + f(x, mask=mask)   # (b, n, dim)
            x = x + g(x)              # (b, n, dim)
        return x


class Deterministic(nn.Module):
    """Runs `net`, recording the RNG state first, so a recomputation draws the same dropout masks."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.rng_states = None   # the CPU's, and CUDA's or MPS's where in use (`_state.device_rng_states`)

    def forward(self, *args, record_rng=False, replay_rng=False, **kwargs):
        if record_rng:
            self.rng_states = device_rng_states()
        if not replay_rng:
            return self.net(*args, **kwargs)
        with replayed_rng(self.rng_states):   # afterwards every generator is where it was before the replay
            return self.net(*args, **kwargs)


class ReversibleBlock(nn.Module):
    """y1 = x1 + f(x2), y2 = x2 + g(y1) on the two halves of the last dimension."""

    def __init__(self, f, g):
        super().__init__()
        self.f, self.g = Deterministic(f), Deterministic(g)

    def forward(self, x, mask=None):
        x1, x2 = x.chunk(2, dim=-1)                                   # (b, n, dim) each
        y1 = x1 + self.f(x2, record_rng=True, mask=mask)
        y2 = x2 + self.g(y1, record_rng=True)
        return torch.cat([y1, y2], dim=-1)                            # (b, n, 2·dim)

    def backward_pass(self, y, dy, mask=None, recompute=nullcontext):
        """From this block's output y and its gradient dy, return its input x and the gradient dx.

        recompute: a context to rerun f and g in (the forward's autocast setting).
        Parameter gradients accumulate into .grad as a side effect, as in any backward pass.
        """
        y1, y2 = y.chunk(2, dim=-1)
        dy1, dy2 = dy.chunk(2, dim=-1)
        with torch.enable_grad():
            y1 = y1.detach().requires_grad_()
            with recompute():
                gy1 = self.g(y1, replay_rng=True)
            torch.autograd.backward(gy1, dy2)              # frees g's graph at once
        with torch.no_grad():
            x2 = y2 - gy1
            dx1 = dy1 + y1.grad
        del gy1, y2
        with torch.enable_grad():
            x2 = x2.detach().requires_grad_()
            with recompute():
                fx2 = self.f(x2, replay_rng=True, mask=mask)
            torch.autograd.backward(fx2, dx1)              # frees f's graph at once
        with torch.no_grad():
            x1 = y1 - fx2
            dx2 = dy2 + x2.grad
        return torch.cat([x1, x2.detach()], dim=-1), torch.cat([dx1, dx2], dim=-1)


class _ReversibleFunction(torch.autograd.Function):
    """Runs the blocks without building a graph; keeps only the top output for backward."""

    @staticmethod
    def forward(ctx, x, blocks, mask):
        with torch.no_grad():
            for block in blocks:
                x = block(x, mask=mask)
        ctx.blocks = blocks
        ctx.recompute = _autocast_as_now(x.device.type)
        ctx.save_for_backward(x, mask)   # the only activation kept: (b, n, 2·dim), whatever the depth
        return x

    @staticmethod
    def backward(ctx, dy):
        y, mask = ctx.saved_tensors
        for block in reversed(ctx.blocks):
            y, dy = block.backward_pass(y, dy, mask=mask, recompute=ctx.recompute)
        return dy, None, None


class ReversibleSequence(nn.Module):
    """The reversible stack: duplicate x into two halves, run the blocks, sum the halves back."""

    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList([ReversibleBlock(f, g) for f, g in blocks])

    def forward(self, x, mask=None):
        x = torch.cat([x, x], dim=-1)                                    # (b, n, 2·dim)
        if torch.is_grad_enabled() and not x.requires_grad:
            # The parameters are not inputs of the Function: without this, an input that needs no gradient
            # would leave autograd no reason to call its backward, and the parameters no gradients.
            x.requires_grad_()
        x = _ReversibleFunction.apply(x, list(self.blocks), mask)        # (b, n, 2·dim)
        return torch.stack(x.chunk(2, dim=-1)).sum(dim=0)                # (b, n, dim)
