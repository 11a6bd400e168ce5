"""The causal Linformer: same numbers as a per-position loop, leak-free, linear memory, clear errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from linformer_edu import bench
from linformer_edu import LinformerLM
from linformer_edu.causal import CausalLinformerSelfAttention
from linformer_edu.leak import leaks_future


def per_position_loop(attn, x):
    """The construction written plainly: for each position t, its exact window, then memory of the prefix."""
    b, n, _ = x.shape
    h, d, c, L = attn.heads, attn.dim_head, attn.chunk_size, attn.look_back
    q, k, v = (lin(x).view(b, n, h, d) for lin in (attn.to_q, attn.to_k, attn.to_v))  # (b, n, h, d)
    out = torch.zeros(b, n, h, d)
    for t in range(n):
        start = max(0, (t // c - L) * c)                       # first position of the exact window
        keys, values = k[:, start:t + 1], v[:, start:t + 1]    # (b, m, h, d)
        if start > 0:                                          # memory: E K and F V over positions < start
            mem_k = torch.einsum("bphd,pk->bkhd", k[:, :start], attn.proj_k[:start])  # (b, k, h, d)
            mem_v = torch.einsum("bphd,pk->bkhd", v[:, :start], attn.proj_v[:start])
            keys, values = torch.cat([mem_k, keys], 1), torch.cat([mem_v, values], 1)
        scores = torch.einsum("bhd,bmhd->bhm", q[:, t], keys) / math.sqrt(d)          # (b, h, m)
        out[:, t] = torch.einsum("bhm,bmhd->bhd", scores.softmax(-1), values)
    return attn.to_out(out.reshape(b, n, h * d))


SETTINGS = [  # (n, seq_len, k, chunk_size, look_back, heads)
    (64, 64, 16, None, 1, 4),   # defaults: chunk = k
    (50, 64, 8, 8, 1, 4),       # shorter than seq_len, last chunk partial
    (64, 64, 16, 10, 0, 2),     # no look-back: a chunk sees itself and the memory
    (33, 40, 5, 7, 2, 1),       # two chunks of look-back
    (7, 16, 4, 3, 1, 2),
]


@pytest.mark.parametrize("n, seq_len, k, chunk_size, look_back, heads", SETTINGS)
@pytest.mark.parametrize("fast", [True, False])
def test_matches_the_per_position_loop(n, seq_len, k, chunk_size, look_back, heads, fast, one_thread):
    torch.manual_seed(0)
    attn = CausalLinformerSelfAttention(24, seq_len, k=k, heads=heads, chunk_size=chunk_size,
                                        look_back=look_back, fast=fast)
    x = torch.randn(2, n, 24)
    torch.testing.assert_close(attn(x), per_position_loop(attn, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n, seq_len, k, chunk_size, look_back, heads", SETTINGS)
def test_leak_free(n, seq_len, k, chunk_size, look_back, heads):
    torch.manual_seed(0)
    attn = CausalLinformerSelfAttention(24, seq_len, k=k, heads=heads, chunk_size=chunk_size, look_back=look_back)
    report = leaks_future(attn, n, positions=range(0, n - 1, 4))
    assert not report.leaks
    assert report.worst == 0.0


def test_one_chunk_is_exact_causal_attention():
    torch.manual_seed(0)
    attn = CausalLinformerSelfAttention(16, 32, k=4, heads=2, chunk_size=32)
    x = torch.randn(3, 20, 16)
    split = lambda t: t.view(3, 20, 2, 8).transpose(1, 2)                        # (b, h, n, d)
    out = F.scaled_dot_product_attention(split(attn.to_q(x)), split(attn.to_k(x)), split(attn.to_v(x)),
                                         is_causal=True)                          # (b, h, n, d)
    torch.testing.assert_close(attn(x), attn.to_out(out.transpose(1, 2).reshape(3, 20, 16)))


def test_the_memory_carries_the_distant_past():
    torch.manual_seed(0)
    attn = CausalLinformerSelfAttention(16, 64, k=4, heads=2, chunk_size=4, look_back=1).eval()
    x = torch.randn(1, 64, 16)
    y = x.clone()
    y[:, 0] += 1.0                                  # position 0 lies only in the memory of chunks 2 and later
    moved = (attn(x) - attn(y)).abs().amax(dim=-1)[0]  # (n,)
    assert moved[8:].min() > 0                      # seen through the memory
    with torch.no_grad():                           # with E = F = 0 the memory holds nothing ...
        attn.proj_k.zero_(), attn.proj_v.zero_()
    assert (attn(x) - attn(y))[:, 8:].abs().max() == 0  # ... and the distant past is out of reach


def test_gradients_reach_every_parameter_and_the_input():
    torch.manual_seed(0)
    attn = CausalLinformerSelfAttention(16, 48, k=8, heads=2, dropout=0.1)
    x = torch.randn(2, 48, 16, requires_grad=True)
    attn(x).pow(2).mean().backward()
    for name, p in list(attn.named_parameters()) + [("x", x)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("n", [1, 5, 16, 17, 40])
def test_shapes(n):
    attn = CausalLinformerSelfAttention(32, 40, k=8, heads=4, dim_head=5)
    assert attn(torch.randn(3, n, 32)).shape == (3, n, 32)


def saved_bytes(module, x):
    """Bytes of activations kept for backward (the suite's exact counter: each storage once, no parameters)."""
    return bench.saved_bytes(lambda: module(x), module)


@pytest.mark.parametrize("fast", [True, False])
def test_memory_for_backward_grows_linearly_in_n(fast):
    torch.manual_seed(0)
    attn = CausalLinformerSelfAttention(32, 2048, k=32, heads=4, fast=fast)
    used = [saved_bytes(attn, torch.randn(1, n, 32, requires_grad=True)) for n in (512, 1024, 2048)]
    assert used[1] / used[0] <= 2.2 and used[2] / used[1] <= 2.2
    # the control: one chunk as long as the sequence is full causal attention, and quadratic in n
    full = lambda n: CausalLinformerSelfAttention(32, 2048, k=32, heads=4, chunk_size=n, fast=False)
    used = [saved_bytes(full(n), torch.randn(1, n, 32, requires_grad=True)) for n in (512, 1024)]
    assert used[1] / used[0] >= 3.0


def test_causal_language_model_does_not_leak_and_the_bidirectional_one_does():
    torch.manual_seed(0)
    kw = dict(num_tokens=20, dim=32, seq_len=64, depth=2, k=8, heads=2)
    causal = LinformerLM(**kw, causal=True)
    assert not leaks_future(causal, 64, positions=[0, 7, 8, 15, 16, 40, 62]).leaks
    assert not leaks_future(causal, 37).leaks                    # shorter than seq_len
    assert leaks_future(LinformerLM(**kw), 64).leaks             # the plain Linformer sees the future
    assert not leaks_future(LinformerLM(**kw, attention="full", causal=True), 64).leaks
    assert LinformerLM(**kw, causal=True)(torch.randint(0, 20, (2, 64))).shape == (2, 64, 20)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(dim=30, seq_len=16, heads=4), ValueError,
     "heads: dim=30 is not divisible by heads=4; choose heads among the divisors of 30 or pass dim_head"),
    (dict(dim=32, seq_len=16, k=17), ValueError, "k: got 17, expected 1 <= k <= seq_len=16"),
    (dict(dim=32, seq_len=16, k=0), ValueError, "k: expected a positive int, got 0"),
    (dict(dim=32, seq_len=16, k=4, chunk_size=0), ValueError, "chunk_size: expected a positive int, got 0"),
    (dict(dim=32, seq_len=16, k=4, chunk_size=20), ValueError,
     "chunk_size: got 20, expected 1 <= chunk_size <= seq_len=16"),
    (dict(dim=32, seq_len=16, k=4, look_back=-1), ValueError,
     "look_back: got -1, expected an int >= 0 (the number of earlier chunks attended exactly)"),
    (dict(dim=32, seq_len=16, k=4, chunk_size=2.5), TypeError,
     "chunk_size: expected a positive int, got 2.5 of type float"),
])
def test_bad_construction(kwargs, error, message):
    with pytest.raises(error) as err:
        CausalLinformerSelfAttention(**kwargs)
    assert str(err.value) == message


def test_unknown_keyword_raises():
    with pytest.raises(TypeError, match="chunksize"):
        CausalLinformerSelfAttention(32, 16, k=4, chunksize=4)


@pytest.mark.parametrize("call, error, message", [
    (lambda a: a(torch.randn(1, 8, 32), context=torch.randn(1, 8, 32)), ValueError,
     "context: CausalLinformerSelfAttention is causal self-attention only; got a context, expected None"),
    (lambda a: a(torch.randn(1, 8, 32), mask=torch.ones(1, 8, dtype=torch.bool)), ValueError,
     "mask: CausalLinformerSelfAttention takes no padding mask; got a mask, expected None "
     "(the causal window already hides every later position)"),
    (lambda a: a(torch.randn(1, 8, 31)), ValueError, "x: expected shape (batch, length, 32), got (1, 8, 31)"),
    (lambda a: a(torch.randn(8, 32)), ValueError, "x: expected shape (batch, length, 32), got (8, 32)"),
    (lambda a: a(torch.randn(1, 17, 32)), ValueError,
     "x: length 17 is longer than seq_len=16; pass at most 16 positions or build the model with a larger seq_len"),
])
def test_bad_input(call, error, message):
    attn = CausalLinformerSelfAttention(32, 16, k=4, heads=4)
    with pytest.raises(error) as err:
        call(attn)
    assert str(err.value) == message


# The fast path (fast=True: causal SDPA over the first L+1 chunks, one masked SDPA over the rest) against the
# readable path (fast=False: every chunk's memory and window side by side, explicit softmax), issue 11.
# n = 40: chunk 8 divides it, chunk 6 does not; k below, at and above the chunk size; look_back 0, 1, 2.
FAST_SETTINGS = [(c, L, k) for c in (8, 6) for L in (0, 1, 2) for k in (c // 2, c, c + 3)]


def pair(c, L, k, seq_len=48, heads=2, dim=16):
    """The same weights twice: one layer on the fast path, one on the readable path."""
    torch.manual_seed(0)
    fast = CausalLinformerSelfAttention(dim, seq_len, k=k, heads=heads, chunk_size=c, look_back=L, fast=True)
    explicit = CausalLinformerSelfAttention(dim, seq_len, k=k, heads=heads, chunk_size=c, look_back=L, fast=False)
    explicit.load_state_dict(fast.state_dict())
    return fast, explicit


def output_and_gradients(layer, x):
    out = layer(x)                                                   # (b, n, dim)
    return [out, *torch.autograd.grad(out.pow(2).sum(), [x, *layer.parameters()])]


@pytest.mark.parametrize("c, L, k", FAST_SETTINGS)
def test_fast_path_gives_the_numbers_of_the_readable_path(c, L, k):
    fast, explicit = pair(c, L, k)
    x = torch.randn(3, 40, 16, requires_grad=True)
    for got, want in zip(output_and_gradients(fast, x), output_and_gradients(explicit, x), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("c, L, k", FAST_SETTINGS)
def test_fast_and_readable_paths_are_leak_free(c, L, k):
    for layer in pair(c, L, k):
        report = leaks_future(layer, 40, positions=[0, c - 1, c, 2 * c + 1, 23, 38])
        assert report.worst == 0.0, (layer.fast, report.max_change)


@pytest.mark.parametrize("n", [5, 16, 17, 40])
def test_fast_path_uses_the_fused_kernel(n):
    """fast=True must not fall back to an explicit softmax (as a 3-D mask made SDPA do before issue 11)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    x = torch.randn(2, n, 16, requires_grad=True)
    for fast in (True, False):
        attn = CausalLinformerSelfAttention(16, 40, k=4, heads=2, chunk_size=4, fast=fast)
        with Ops() as ops:
            attn(x).sum().backward()
        softmax = [name for name in ops.names if "softmax" in name]
        assert bool(softmax) is not fast, (fast, softmax)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_running_sum_is_cumsum_with_its_gradient(dtype):
    from linformer_edu.causal import running_sum
    torch.manual_seed(0)
    x = torch.randn(3, 40, 4, 5).to(dtype).requires_grad_()
    grad = torch.randn(3, 40, 4, 5).to(dtype)
    got = running_sum(x)
    (got_grad,) = torch.autograd.grad(got, x, grad)
    # the reference: cumsum in float32, rounded once to the input's dtype (a bf16 sum is not rounded 40 times)
    want = x.detach().float().cumsum(1).to(dtype)
    want_grad = grad.float().flip(1).cumsum(1).flip(1).to(dtype)
    assert got.dtype == got_grad.dtype == dtype
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_grad, want_grad, atol=1e-5, rtol=1e-5)
