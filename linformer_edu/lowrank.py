"""The maths of low-rank attention: how far a rank-k map is from the full one, and the best any rank-k map can do.

For one head with full map A = softmax(Q Kᵀ / √d) (n, n) and a Linformer map P̄ (n, k) whose effective map is P̄F:

    relative_error    ‖A − P̄F‖_F / ‖A‖_F
    output_error      ‖A V − P̄F V‖_F / ‖A V‖_F: the error on the head's outputs, what the paper's theorems bound
    best_rank_error   √(Σ_{i>k} σᵢ²) / ‖A‖_F from A's singular values: the floor no rank-k map beats (Eckart–Young)
    fit_values        the best F for a given P̄, by least squares: what training F alone could reach
    mean_pooling      Eᵀ averaging k windows of about n/k positions, for any n and k

Tensors only — no widgets, no plotting — so exercise checkers and tests use it without the explorer's stack.

    sv = torch.linalg.svdvals(A)                                  # (n,) descending
    relative_error(A, fit_values(p_bar, A)) >= best_rank_error(sv, k)
"""
import torch
from einops import rearrange

from .attention import attention_weights


def split_heads(t, heads):
    """(b, n, h·d) -> (b, h, n, d): one slice per head."""
    return rearrange(t, "b n (h d) -> b h n d", h=heads)                         # (b, h, n, d)


@torch.no_grad()
def full_maps(layer, x, causal=False):
    """A = softmax(Q Kᵀ / √d) for every head of `layer` on x (1, n, dim): (h, n, n), in the layer's dtype."""
    x = x.to(layer.to_q.weight)                                                  # its device and dtype (a bf16 model)
    q = split_heads(layer.to_q(x), layer.heads)                                  # (1, h, n, d)
    keys = split_heads(layer.to_k(x), layer.to_k.out_features // q.shape[-1])    # (1, h or 1, n, d)
    return attention_weights(q, keys.expand_as(q), causal=causal)[0]             # (h, n, n)


@torch.no_grad()
def head_values(layer, x):
    """V for every head of `layer` on x (1, n, dim): (h, n, d), in the layer's dtype (keys when it shares them)."""
    x = x.to(layer.to_q.weight)                                                  # its device and dtype
    to_v = layer.to_k if getattr(layer, "share_kv", False) else layer.to_v
    d = layer.to_q.out_features // layer.heads
    v = split_heads(to_v(x), to_v.out_features // d)                             # (1, h or 1, n, d)
    return v.expand(-1, layer.heads, -1, -1)[0]                                  # (h, n, d)


def relative_error(full, approx):
    """‖A − Â‖_F / ‖A‖_F over the last two dimensions."""
    return torch.linalg.matrix_norm(full - approx) / torch.linalg.matrix_norm(full)


def output_error(full, approx, values):
    """‖A V − Â V‖_F / ‖A V‖_F: how far the outputs are apart when both maps are applied to the values V (…, n, d)."""
    return relative_error(full @ values, approx @ values)


def best_rank_error(singular_values, k):
    """The smallest ‖A − Â‖_F / ‖A‖_F over all Â of rank <= k (Eckart–Young), from A's singular values."""
    energy = singular_values.pow(2)                                              # (…, n)
    return (energy[..., k:].sum(-1) / energy.sum(-1)).sqrt()


@torch.no_grad()
def fit_values(p_bar, full):
    """The best F for this P̄: argmin ‖A − P̄ Fᵀ‖_F, by least squares. Returns P̄ Fᵀ (…, n, n)."""
    return p_bar @ torch.linalg.lstsq(p_bar.double(), full.double()).solution.to(full.dtype)


def mean_pooling(n, k):
    """Eᵀ (n, k) averaging k consecutive windows of n/k positions, rounded: window j is positions
    ⌊j·n/k⌋ … ⌊(j+1)·n/k⌋ - 1. When k divides n this is the package's projection="mean"."""
    edges = torch.arange(k + 1) * n // k                                         # (k+1,)
    position = torch.arange(n)[:, None]                                          # (n, 1)
    inside = (position >= edges[:-1]) & (position < edges[1:])                   # (n, k) bool
    return inside / inside.sum(0)                                                # (n, k) columns sum to 1


def divisors(n):
    """The divisors of n, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def usable_k(projection, k, n):
    """A convolution's windows all have n/k positions, so k must divide n: the largest such k <= the one asked."""
    if projection != "conv" or n % k == 0:
        return k
    return max(d for d in divisors(n) if d <= k)
