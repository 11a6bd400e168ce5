"""A causal Linformer: exact attention inside a local window, projected memory of everything before it.

Why the plain Linformer cannot predict the next token: it projects the keys and values along the sequence,
``E K`` with E of shape (k, n), so every one of the k projected keys is a mix of *all* n positions, the future
included. A causal mask on the (n, k) score matrix cannot undo that mix (see ``linformer_edu.leak``).

The construction here keeps the projection but only ever applies it to the past. Cut the sequence into
chunks of ``c = chunk_size`` positions. A query in chunk j sees

    1. exact keys: the positions of chunks j-L .. j (L = ``look_back``) up to and including itself,
       with an ordinary causal mask: at most (L+1)·c keys;
    2. memory: the k projected slots of every *earlier* position, i.e. of chunks 0 .. j-L-1,
           M_K[j] = sum over positions p < (j-L)·c of  E[p] ⊗ K[p]      # (k, d), E: the (seq_len, k) projection
       the Linformer's ``E K`` restricted to a finished prefix, so it holds nothing from position >= (j-L)·c.
       (Chunks with no finished prefix have no memory; it is masked out.)

Every position t therefore sees only positions <= t: leak-free by construction, tested by ``leaks_future``.
This is the blockwise variant of accumulating the projected memory over the prefix, as in "Attention with
Bounded-memory Control" (Peng et al. 2021); the exact local window keeps what character data needs most.

All chunks are computed at once (no loop over positions or chunks), with N = ceil(n / c) chunks:

    q, k, v                  (b, h, N, c, d)      queries, keys, values cut into chunks
    per-chunk projection     (b, h, N, k, d)      E_j^T K_j: chunk j's share of E K
    memory                   (b, h, N, k, d)      cumulative sum over chunks, shifted by L+1 chunks
    local keys               (b, h, N, (L+1)c, d) chunks j-L .. j side by side
    scores                   (b, h, N, c, k + (L+1)c)
    output                   (b, h, N, c, d)  ->  (b, n, h·d)

Cost per query: at most k + (L+1)·c keys instead of n, so time and memory grow linearly in n
(the memory tensor adds N·k·d per head: k/c times the size of K). With the default ``chunk_size = k``
a query looks at no more than (L+2)·k keys: O(n·k), the Linformer's cost, and causal.

That table is the readable path (``fast=False``). The default ``fast=True`` runs ``fast_attention``: the same
numbers with less data movement for PyTorch's fused attention kernel (issue 11; ``benchmarks/causal_step.py``).
"""
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ._checks import (check_dropout, check_heads, check_k, check_last_dim, check_length, check_positive_int,
                      check_type)
from .attention import attend


class CausalMaps(NamedTuple):
    """What a causal Linformer head applies to the values, for the explorer to draw (`attention_maps`).

    p_bar:     (b, h, n, k) each query's weights on the k memory slots (zero rows: no finished prefix yet)
    effective: (b, h, n, n) its weights on the n real values: the window's exact weights, plus the memory's
               spread back over the prefix positions through F; zero above the diagonal
    """
    p_bar: torch.Tensor
    effective: torch.Tensor


class CausalLinformerSelfAttention(nn.Module):
    """Causal self-attention over a local window plus a projected memory of the earlier prefix.

    Same arguments as ``LinformerSelfAttention`` where they mean the same: ``proj_k`` stores Eᵀ and ``proj_v``
    stores Fᵀ, (seq_len, k) projections shared by all heads (the paper's headwise sharing). Keyword-only extras:
    ``chunk_size`` (c, default k), ``look_back`` (L: earlier chunks attended exactly, default 1) and ``fast``
    (True: ``fast_attention``, PyTorch's fused attention kernel with little data movement; False: the readable
    path, every chunk alike, explicit softmax; the same numbers).
    """

    def __init__(self, dim, seq_len, k=256, heads=8, dim_head=None, dropout=0., *,
                 chunk_size=None, look_back=1, fast=True):
        super().__init__()
        dim_head = check_heads(dim, heads, dim_head)
        check_positive_int("seq_len", seq_len)
        check_k(k, seq_len)
        chunk_size = k if chunk_size is None else check_k(chunk_size, seq_len, name="chunk_size")
        allowed = "an int >= 0 (the number of earlier chunks attended exactly)"
        if check_type("look_back", look_back, int, allowed) < 0:
            raise ValueError(f"look_back: got {look_back!r}, expected {allowed}")
        check_type("fast", fast, bool, "True or False")
        check_dropout(dropout)
        self.dim, self.seq_len, self.k, self.heads, self.dim_head = dim, seq_len, k, heads, dim_head
        self.chunk_size, self.look_back, self.fast = chunk_size, look_back, fast

        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        bound = 1 / math.sqrt(k)  # the Linformer's initialisation of its projections
        self.proj_k = nn.Parameter(torch.empty(seq_len, k).uniform_(-bound, bound))  # Eᵀ
        self.proj_v = nn.Parameter(torch.empty(seq_len, k).uniform_(-bound, bound))  # Fᵀ
        self.dropout = nn.Dropout(dropout)
        self.to_out = nn.Linear(inner, dim)

    def window_mask(self, num_chunks, device):
        """(N, c, k + (L+1)c) bool, True = may attend: the k memory slots, then the local keys."""
        c, L = self.chunk_size, self.look_back
        chunk = torch.arange(num_chunks, device=device)[:, None, None]    # (N, 1, 1)
        query = torch.arange(c, device=device)[None, :, None]             # (1, c, 1) offset in its chunk
        key = torch.arange((L + 1) * c, device=device)[None, None, :]     # (1, 1, (L+1)c) offset in the window
        # a local key at window offset i sits at position (j-L)·c + i, the query at j·c + a
        local = (key <= L * c + query) & (key >= (L - chunk) * c)         # causal, and not before position 0
        memory = (chunk > L).expand(num_chunks, c, self.k)                # only chunks with a finished prefix
        return torch.cat([memory, local], dim=-1)                         # (N, c, k + (L+1)c)

    @torch.no_grad()
    def attention_maps(self, x):
        """The maps this layer applies to x (b, n, dim), position by position (O(n²): for pictures, not forward).

        Query t in chunk j = t // c sees the memory of positions p < (j-L)·c and, exactly, positions
        (j-L)·c .. t. Its memory score on slot s is Σ_p E[p, s] (q_t · k_p) over that prefix (the projected key
        (E K)_s restricted to it), so its weights are one softmax over k slots and the window's keys; the
        output Σ_s P̄[t, s] (F V)_s puts weight Σ_s P̄[t, s] F[p, s] on each prefix value v_p. Returns
        `CausalMaps` (P̄, and the n×n effective map whose rows times V give the attention output before to_out).
        """
        check_last_dim("x", x, self.dim, self.to_q.weight.dtype)
        check_length("x", x.shape[1], self.seq_len)
        n, c, L = x.shape[1], self.chunk_size, self.look_back
        heads = lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads)
        q, keys = heads(self.to_q(x)), heads(self.to_k(x))                   # (b, h, n, d)
        scores = q @ keys.transpose(-1, -2) * self.dim_head ** -0.5          # (b, h, n, n)
        position = torch.arange(n, device=x.device)                          # (n,)
        start = ((position // c - L) * c).clamp(min=0)[:, None]              # (n, 1) first key of t's window
        in_memory = position[None, :] < start                                # (n, n) p before the window
        in_window = (position[None, :] >= start) & (position[None, :] <= position[:, None])   # (n, n)
        E_T, F_T = self.proj_k[:n].to(scores), self.proj_v[:n].to(scores)    # (n, k) each
        memory = (scores * in_memory) @ E_T                                  # (b, h, n, k) slot scores
        has_memory = in_memory.any(-1, keepdim=True).expand(n, self.k)       # (n, k)
        allowed = torch.cat([has_memory, in_window], dim=-1)                 # (n, k + n)
        weights = torch.cat([memory, scores], dim=-1).masked_fill(~allowed, float("-inf")).softmax(-1)
        p_bar, window = weights.split([self.k, n], dim=-1)                   # (b, h, n, k), (b, h, n, n)
        effective = window + (p_bar @ F_T.transpose(0, 1)) * in_memory       # (b, h, n, n)
        return CausalMaps(p_bar, effective)

    def forward(self, x, context=None, mask=None):
        """x (b, n, dim) with n <= seq_len. Returns (b, n, dim); position t depends on positions <= t only."""
        if context is not None:
            raise ValueError("context: CausalLinformerSelfAttention is causal self-attention only; "
                             "got a context, expected None")
        if mask is not None:
            raise ValueError("mask: CausalLinformerSelfAttention takes no padding mask; got a mask, expected "
                             "None (the causal window already hides every later position)")
        check_last_dim("x", x, self.dim, self.to_q.weight.dtype)
        check_length("x", x.shape[1], self.seq_len)
        b, n, _ = x.shape
        h, c, L = self.heads, self.chunk_size, self.look_back
        N = -(-n // c)                      # number of chunks
        pad = N * c - n                     # the last chunk is padded at its end: later than every real query
        if self.fast and not (self.dropout.training and self.dropout.p > 0):
            return self.to_out(self.fast_attention(x))                      # (b, n, dim) the same numbers, faster
        # the readable path: every chunk alike, its memory and its window laid side by side

        def chunked(t):                     # (b, n, h·d) -> (b, h, N, c, d)
            t = rearrange(t, "b n (h d) -> b h n d", h=h)
            return rearrange(F.pad(t, (0, 0, 0, pad)), "b h (N c) d -> b h N c d", c=c)

        q, k, v = chunked(self.to_q(x)), chunked(self.to_k(x)), chunked(self.to_v(x))  # (b, h, N, c, d)

        # 1. memory: each chunk's share of E K and F V, summed over the finished prefix
        E = F.pad(self.proj_k[:n], (0, 0, 0, pad)).view(N, c, self.k)        # (N, c, k)
        Fv = F.pad(self.proj_v[:n], (0, 0, 0, pad)).view(N, c, self.k)       # (N, c, k)
        mem_k = torch.einsum("bhNcd,Nck->bhNkd", k, E).cumsum(dim=2)        # (b, h, N, k, d) chunks 0..j
        mem_v = torch.einsum("bhNcd,Nck->bhNkd", v, Fv).cumsum(dim=2)       # (b, h, N, k, d)
        mem_k = F.pad(mem_k, (0, 0, 0, 0, L + 1, 0))[:, :, :N]              # (b, h, N, k, d) chunks 0..j-L-1
        mem_v = F.pad(mem_v, (0, 0, 0, 0, L + 1, 0))[:, :, :N]              # (b, h, N, k, d)

        # 2. local window: chunks j-L .. j side by side (the zero chunks before the start are masked)
        k_pad = F.pad(k, (0, 0, 0, 0, L, 0))                                 # (b, h, N+L, c, d)
        v_pad = F.pad(v, (0, 0, 0, 0, L, 0))                                 # (b, h, N+L, c, d)
        keys = torch.cat([mem_k] + [k_pad[:, :, i:i + N] for i in range(L + 1)], dim=3)    # (b, h, N, S, d)
        values = torch.cat([mem_v] + [v_pad[:, :, i:i + N] for i in range(L + 1)], dim=3)  # S = k + (L+1)c

        # 3. attention, every chunk at once: fold the chunks into the head dimension (views, no copies)
        fold = lambda t: rearrange(t, "b h N c d -> b (h N) c d")
        allowed = self.window_mask(N, x.device).repeat(h, 1, 1)             # (h·N, c, S)
        out = attend(fold(q), fold(keys), fold(values), mask=allowed, dropout=self.dropout,
                     fast=False)                                             # (b, h·N, c, d) explicit
        out = rearrange(out, "b (h N) c d -> b (N c) (h d)", h=h)[:, :n]    # (b, n, h·d)
        return self.to_out(out)                                              # (b, n, dim)

    def fast_attention(self, x):
        """The attention of ``forward`` before ``to_out``, (b, n, dim) -> (b, n, h·d), with less data movement.

        The same numbers as the readable path, arranged so that PyTorch's fused kernel does the work:
        chunks 0..L have no memory and their windows start at position 0, so together they are plain causal
        attention over the first (L+1)·c positions; every later chunk j sees k memory slots and a full window of
        (L+1)·c keys under one shared mask, and its memory, the sum of E_iᵀ K_i over chunks i < j-L, is a
        running sum read without a shift: entry j-L-1 of the cumulative sum. No zero padding of keys, no
        per-chunk mask, and for batch 1 the queries and outputs are views.
        """
        b, n, _ = x.shape
        h, d, c, L, k = self.heads, self.dim_head, self.chunk_size, self.look_back, self.k
        N = -(-n // c)                                                      # number of chunks
        if N * c > n:                                                       # pad the last chunk at its end
            x = F.pad(x, (0, 0, 0, N * c - n))                              # (b, N·c, dim)
        q, keys, values = self.to_q(x), self.to_k(x), self.to_v(x)           # (b, N·c, h·d)
        heads = lambda t: t.unflatten(-1, (h, d)).transpose(-3, -2)         # (..., m, h·d) -> (..., h, m, d)

        # 1. chunks 0..L: causal attention from position 0
        P = min(N, L + 1) * c
        first = F.scaled_dot_product_attention(heads(q[:, :P]), heads(keys[:, :P]), heads(values[:, :P]),
                                               is_causal=True)               # (b, h, P, d)
        out = first.transpose(1, 2).flatten(2)                              # (b, P, h·d)
        if N > L + 1:
            # 2. chunks L+1..N-1 (M of them): memory of chunks 0..j-L-1, then the window of chunks j-L..j
            M = N - L - 1
            E = self.proj_k[:M * c].view(M, c, k).transpose(1, 2)          # (M, k, c) E_iᵀ, chunk by chunk
            Fv = self.proj_v[:M * c].view(M, c, k).transpose(1, 2)         # (M, k, c)
            mem_k = running_sum(E @ keys[:, :M * c].unflatten(1, (M, c)))    # (b, M, k, h·d) chunks 0..i
            mem_v = running_sum(Fv @ values[:, :M * c].unflatten(1, (M, c)))  # (b, M, k, h·d)

            def memory_then_window(mem, t):     # chunk j's keys (values): k memory slots, then chunks j-L..j
                window = [t.unflatten(1, (N, c))[:, i:i + M] for i in range(1, L + 2)]  # (b, M, c, h·d) views
                return heads(torch.cat([mem, *window], dim=2).flatten(0, 1))           # (b·M, h, S, d)

            later = q[:, (L + 1) * c:].reshape(b * M, c, h * d)             # (b·M, c, h·d) a view when b = 1
            allowed = self.window_mask(L + 2, x.device)[-1]                 # (c, S) the same for every chunk > L
            rest = F.scaled_dot_product_attention(heads(later), memory_then_window(mem_k, keys),
                                                  memory_then_window(mem_v, values),
                                                  attn_mask=allowed)                 # (b·M, h, c, d)
            out = torch.cat([out, rest.transpose(1, 2).reshape(b, M * c, h * d)], dim=1)  # (b, N·c, h·d)
        return out[:, :n]                                                   # (b, n, h·d)


def running_sum(x):
    """x.cumsum(1) for x (b, M, ...): the running sum of the chunks' memories.

    On a CPU torch.cumsum over a dim that is not the last runs a scalar loop with a large stride; adding chunk
    after chunk (M - 1 vectorised adds) does forward + backward 2-3.5x faster for M = 14 .. 126 (issue 11).
    Elsewhere torch.cumsum is a parallel scan: it is used as is.
    """
    return _RunningSum.apply(x) if x.device.type == "cpu" else x.cumsum(1)


def _add_up(x, reverse=False):
    """Running sum over dim 1 from the front (or, reverse=True, from the back), accumulated in float32 or wider."""
    acc = x.to(torch.promote_types(x.dtype, torch.float32), copy=True)   # (b, M, ...) summed in place
    for j in (range(acc.shape[1] - 2, -1, -1) if reverse else range(1, acc.shape[1])):
        acc[:, j] += acc[:, j + 1] if reverse else acc[:, j - 1]
    return acc.to(x.dtype)


class _RunningSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return _add_up(x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        return _add_up(grad, reverse=True)   # d(sum of chunks 0..j)/d(chunk i) = 1 for every j >= i
