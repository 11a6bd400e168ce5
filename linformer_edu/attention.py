"""Scaled dot-product attention, and full softmax self-attention with the Linformer's interface.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V                    (Vaswani et al. 2017, eq. 1)

`attend` is the one place attention is computed in this package. Its fast path is PyTorch's fused
`scaled_dot_product_attention`; beside it is the plain version a learner can follow line by line.
Both give the same numbers (tests/test_options.py checks it).

`FullSelfAttention` is the quadratic baseline every notebook and benchmark compares the Linformer against:
the same constructor arguments, forward signature and parameter names as `LinformerSelfAttention`,
minus the sequence projections.
"""
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ._checks import check_bool, check_context, check_dropout, check_heads, check_last_dim, check_mask


def attend(q, k, v, *, mask=None, causal=False, dropout=None, fast=True, exact_dropout=False):
    """softmax(q kᵀ / √d) v for q (b, h, n, d) and k, v (b, h, m, d).

    mask:    bool, broadcastable to (b, h, n, m); True = may attend.
    causal:  query i attends to keys j <= i only (needs n == m).
    dropout: an `nn.Dropout` for the attention weights, active in training mode. The fused kernel draws its own
             dropout mask (`dropout_p`), never building the n×m map.
    fast:    use the fused kernel; the explicit path runs when fast=False, or under dropout with exact_dropout.
    exact_dropout: under active dropout, take the explicit path and apply `dropout` to the weights, so the
             random mask is drawn exactly as the reference implementation draws it (bit for bit).
    A query that may attend to no key at all (an all-padding row, left padding under causal) gets output 0 on
    every path, with finite gradients.
    """
    if causal and mask is not None:   # the fused kernel takes one or the other: fold causality into the mask
        n, m = q.shape[-2], k.shape[-2]
        mask, causal = mask & torch.ones(n, m, dtype=torch.bool, device=q.device).tril(), False
    p = dropout.p if dropout is not None and dropout.training else 0.0
    if not fast or (exact_dropout and p > 0):
        return attention_weights(q, k, mask=mask, causal=causal, dropout=dropout) @ v   # (b, h, n, d)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)     # (b, h, n, d)
    empty = ~mask.any(dim=-1, keepdim=True)                     # (…, n, 1) queries that may attend to no key
    # inside a kernel such a row is all -inf (NaN on some paths): let it see every key, then zero its output
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty, dropout_p=p)   # (b, h, n, d)
    return out.masked_fill(empty, 0.0)


def attention_weights(q, k, *, mask=None, causal=False, dropout=None):
    """The attention map softmax(q kᵀ / √d): (b, h, n, m), each row sums to 1 — or is 0 for a query that may
    attend to no key."""
    scores = torch.einsum("bhnd,bhmd->bhnm", q, k) * q.shape[-1] ** -0.5   # (b, h, n, m)
    if not causal and mask is None:
        weights = scores.softmax(dim=-1)                                      # (b, h, n, m)
        return dropout(weights) if dropout is not None else weights
    blocked = torch.zeros((), dtype=torch.bool, device=q.device)
    if causal:
        n, m = scores.shape[-2:]
        blocked = torch.ones(n, m, dtype=torch.bool, device=q.device).triu(1)   # (n, m) True above the diagonal
    if mask is not None:
        blocked = blocked | ~mask                                             # broadcastable to (b, h, n, m)
    empty = blocked.all(dim=-1, keepdim=True)                              # (…, n, 1) rows with no key
    # a row of only -inf would give NaN weights and NaN gradients: leave such rows finite, then zero them
    scores = scores.masked_fill(blocked & ~empty, float("-inf"))
    weights = scores.softmax(dim=-1).masked_fill(empty, 0.0)                  # (b, h, n, m)
    return dropout(weights) if dropout is not None else weights


class FullSelfAttention(nn.Module):
    """Multi-head softmax attention over all n positions: O(n²) time and memory.

    Parameters are named as in `LinformerSelfAttention` (to_q, to_k, to_v, to_out), so the two swap freely.
    Keyword-only: fast — the fused kernel when True; False builds the n×n map explicitly (`attend`'s readable
    path: the same numbers, the textbook cost). exact_dropout — under dropout in training, draw the dropout mask
    on the explicit path as the reference does, instead of inside the fused kernel (see `attend`).
    """

    def __init__(self, dim, heads=8, dim_head=None, causal=False, dropout=0., *, fast=True, exact_dropout=False):
        super().__init__()
        dim_head = check_heads(dim, heads, dim_head)
        check_bool("causal", causal)
        check_dropout(dropout)
        check_bool("fast", fast)
        check_bool("exact_dropout", exact_dropout)
        self.dim, self.heads, self.dim_head, self.causal, self.fast = dim, heads, dim_head, causal, fast
        self.exact_dropout = exact_dropout
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x, context=None, mask=None):
        """x (b, n, dim); context (b, m, dim) for cross-attention; mask (b, m) bool, True = keep."""
        dtype = self.to_q.weight.dtype
        check_last_dim("x", x, self.dim, dtype)
        kv_input = x if context is None else check_context(context, x, self.dim, dtype)
        if self.causal and context is not None:
            raise ValueError("context: causal attention is self-attention only; got a context, expected None")
        b, m = kv_input.shape[:2]
        if mask is not None:
            mask = rearrange(check_mask(mask, b, m), "b m -> b 1 1 m")         # (b, 1, 1, m)
        split = lambda t: rearrange(t, "b n (h d) -> b h n d", h=self.heads)
        q = split(self.to_q(x))                                                  # (b, h, n, d)
        k, v = split(self.to_k(kv_input)), split(self.to_v(kv_input))            # (b, h, m, d)
        out = attend(q, k, v, mask=mask, causal=self.causal, dropout=self.dropout, fast=self.fast,
                     exact_dropout=self.exact_dropout)                           # (b, h, n, d)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))              # (b, n, dim)
