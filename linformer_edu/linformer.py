"""The Linformer (Wang et al. 2020, "Linformer: Self-Attention with Linear Complexity", arXiv 2006.04768).

Self-attention costs O(n²) because every query meets every key. The paper observes that the n×n attention
map is nearly low rank (its Fig. 1) and replaces the n keys and values by k ≪ n learned mixtures of them:

    headᵢ = softmax( Q Wᵢᵠ (Eᵢ K Wᵢᴷ)ᵀ / √d ) · Fᵢ V Wᵢⱽ            (eq. 7; E, F are k×n)

so the attention map is n×k and the cost O(n·k). Read this file top to bottom: the attention layer, the
feed-forward layer, the pre-norm wrapper, the stack, the language model.

Public names, constructor arguments, defaults and parameter names are those of lucidrains' `linformer` 0.2.3,
so its checkpoints load here and a user switches one import line; weights are even created in the same order,
so the same seed gives the same model. Everything beyond it — sharing levels, projection kinds, per-layer k,
padding masks, attention maps, full attention, causal models — is keyword-only and off by default.

Not causal: projecting along the sequence mixes future positions into every key (see `linformer_edu.causal`
and notebook 08). `LinformerLM(..., causal=True)` builds a causal model that does not leak.
"""
from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from ._checks import (check_bool, check_choice, check_context, check_dropout, check_heads, check_k, check_last_dim,
                      check_length, check_mask, check_positive_int, check_token_ids)
from .attention import FullSelfAttention, attend, attention_weights
from .causal import CausalLinformerSelfAttention
from .projections import KINDS, SHARING, TRAINED, init_projection, projection_matrix
from .reversible import ReversibleSequence, SequentialSequence

ATTENTION = ("linformer", "full")


class AttentionMaps(NamedTuple):
    """What a Linformer head attends to, for a notebook or the explorer to draw.

    p_bar:     (b, h, n, k) the context mapping P̄ = softmax(Q (E K)ᵀ / √d): each query over the k projected keys
    effective: (b, h, n, m) P̄ · F, the n×m map the head effectively applies to the m values
    """
    p_bar: torch.Tensor
    effective: torch.Tensor


class LinformerSelfAttention(nn.Module):
    """Multi-head attention over k projected keys and values: O(n·k) instead of O(n²).

    proj_k stores Eᵀ and proj_v stores Fᵀ, each (seq_len, k) — or (heads, seq_len, k) with sharing='none',
    or a conv kernel with projection='conv'. `context` (up to seq_len long) gives cross-attention.

    k may exceed seq_len, as in the reference (its defaults, k=256 with seq_len=128, do): the k projected keys
    are then mixtures of at most n inputs, so the attention map has rank at most n — no gain, the same cost
    as k slots. Pooling projections (mean, conv) need k to divide seq_len, so k <= seq_len there.

    exact_dropout (keyword-only): under dropout in training, draw the dropout mask on the explicit path exactly
    as the reference does (bit for bit) instead of inside the fused kernel (see `attend`).

    Inputs shorter than seq_len use the first rows of E and F, and padded positions (mask False) are zeroed
    before projecting. Either way some of the k projected keys may be zero vectors: they still get softmax
    weight (score 0) and carry zero values, diluting the attention — as in the reference. Pooling kinds show it
    most: an input filling half of seq_len leaves half of the k slots empty.
    """

    def __init__(self, dim, seq_len, k=256, heads=8, dim_head=None, one_kv_head=False, share_kv=False,
                 dropout=0., *, sharing="headwise", projection="learned", exact_dropout=False):
        super().__init__()
        dim_head = check_heads(dim, heads, dim_head)
        check_positive_int("seq_len", seq_len)
        check_positive_int("k", k)   # k > seq_len is allowed, as in the reference (see the class docstring)
        for name, flag in (("one_kv_head", one_kv_head), ("share_kv", share_kv), ("exact_dropout", exact_dropout)):
            check_bool(name, flag)
        check_dropout(dropout)
        check_choice("sharing", sharing, SHARING)
        check_choice("projection", projection, KINDS)
        if projection in ("mean", "conv") and seq_len % k:
            raise ValueError(f"k: projection={projection!r} pools windows of seq_len/k positions, so k must "
                             f"divide seq_len={seq_len}; got k={k}")
        self.dim, self.seq_len, self.k, self.heads, self.dim_head = dim, seq_len, k, heads, dim_head
        self.share_kv, self.sharing, self.projection = share_kv, sharing, projection
        self.exact_dropout = exact_dropout
        kv_heads = 1 if one_kv_head else heads
        self.kv_heads = kv_heads
        per_head = heads if sharing == "none" else None

        # creation order matches the reference, so a seed gives the same weights
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_k = nn.Linear(dim, kv_heads * dim_head, bias=False)
        self._add_projection("proj_k", init_projection(projection, seq_len, k, per_head))
        if not share_kv:
            self.to_v = nn.Linear(dim, kv_heads * dim_head, bias=False)
        own_f = not share_kv and sharing in ("none", "headwise")
        self._add_projection("proj_v", init_projection(projection, seq_len, k, per_head) if own_f else None)
        self.dropout = nn.Dropout(dropout)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def _add_projection(self, name, tensor):
        if self.projection in TRAINED:
            self.register_parameter(name, None if tensor is None else nn.Parameter(tensor))
        else:
            self.register_buffer(name, tensor)

    def projections(self, m):
        """E and F for m keys: each (m, k), or (heads, m, k) with sharing='none'. F is E when shared."""
        E = projection_matrix(self.projection, self.proj_k, m, self.k)
        F = E if self.proj_v is None else projection_matrix(self.projection, self.proj_v, m, self.k)
        return E, F

    def forward(self, x, context=None, mask=None):
        """x (b, n, dim); context (b, m, dim) for cross-attention; mask (b, m) bool, True = keep."""
        q, k, v = self._qkv(x, context, mask)                          # (b, h, n, d), (b, h, k, d) ×2
        out = attend(q, k, v, dropout=self.dropout, exact_dropout=self.exact_dropout)   # (b, h, n, d)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))    # (b, n, dim)

    def attention_maps(self, x, context=None, mask=None):
        """The maps this layer applies to x: P̄ (b, h, n, k) and P̄·F (b, h, n, m). Not used by forward."""
        q, k, _ = self._qkv(x, context, mask)
        p_bar = attention_weights(q, k)                                # (b, h, n, k)
        m = x.shape[1] if context is None else context.shape[1]
        F = self.projections(m)[1]                                     # (m, k) or (h, m, k)
        effective = p_bar @ F.transpose(-1, -2)                        # (b, h, n, m)
        if mask is not None:   # padded positions carry zero values: they receive no weight
            effective = effective * rearrange(mask, "b m -> b 1 1 m")
        return AttentionMaps(p_bar, effective)

    def _qkv(self, x, context, mask):
        dtype = self.to_q.weight.dtype
        check_last_dim("x", x, self.dim, dtype)
        check_length("x", x.shape[1], self.seq_len)
        kv_input = x if context is None else check_context(context, x, self.dim, dtype)
        b, m = kv_input.shape[:2]
        check_length("context", m, self.seq_len)
        if mask is not None:   # padded positions become zero rows, so no key or value can depend on them
            kv_input = kv_input * check_mask(mask, b, m).unsqueeze(-1).to(kv_input.dtype)  # (b, m, dim)
        E, F = self.projections(m)
        to_v = self.to_k if self.share_kv else self.to_v
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)                   # (b, h, n, d)

        if E.dim() == 2:
            # One E, F for all heads. (Eᵀ X) W = Eᵀ (X W): projecting the m inputs down to k rows *before*
            # the key/value maps gives the same keys and values with the big matmuls on k rows, not m.
            if F is E:
                xe = xf = E.transpose(0, 1) @ kv_input                                       # (b, k, dim)
            else:
                xe, xf = (torch.cat([E, F], dim=1).transpose(0, 1) @ kv_input).split(self.k, dim=1)  # (b, k, dim) ×2
            keys = self.to_k(xe)                                                             # (b, k, kv·d)
            values = keys if (self.share_kv and F is E) else to_v(xf)                        # (b, k, kv·d)
        else:
            # A projection per head: map features first, then project each head along the sequence.
            keys, values = self.to_k(kv_input), to_v(kv_input)                                # (b, m, kv·d)
            per_head = lambda t, P: P.transpose(-1, -2) @ rearrange(t, "b m (h d) -> b h m d", h=self.kv_heads)
            keys, values = per_head(keys, E), per_head(values, F)                            # (b, h, k, d)
            return q, keys, values

        split = lambda t: rearrange(t, "b k (h d) -> b h k d", h=self.kv_heads).expand(-1, self.heads, -1, -1)
        return q, split(keys), split(values)                                                # (b, h, k, d)


class FeedForward(nn.Module):
    """Position-wise MLP: w2(act(w1 x)), or the gated form w2(act(a) · v) with [a, v] = w1 x when glu=True."""

    def __init__(self, dim, mult=4, dropout=0., activation=None, glu=False):
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("mult", mult)
        check_dropout(dropout)
        self.glu = check_bool("glu", glu)
        self.w1 = nn.Linear(dim, dim * mult * (2 if glu else 1))
        self.act = (activation or nn.GELU)()
        self.dropout = nn.Dropout(dropout)
        self.w2 = nn.Linear(dim * mult, dim)

    def forward(self, x):
        if self.glu:
            a, v = self.w1(x).chunk(2, dim=-1)   # (b, n, mult·dim) each
            h = self.act(a) * v
        else:
            h = self.act(self.w1(x))             # (b, n, mult·dim)
        return self.w2(self.dropout(h))         # (b, n, dim)


class PreNorm(nn.Module):
    """fn(LayerNorm(x)); keyword arguments go to fn."""

    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, **fn_kwargs):
        return self.fn(self.norm(x), **fn_kwargs)


class Residual(nn.Module):
    """x + fn(x); keyword arguments go to fn."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, **fn_kwargs):
        return x + self.fn(x, **fn_kwargs)


def per_layer_k(k, depth, seq_len, bounded=False):
    """One k for every layer, or a list with one k per layer (the paper's nonuniform k).

    bounded: k <= seq_len required (the causal Linformer); otherwise a k above seq_len is allowed, as in the
    reference (`LinformerSelfAttention` explains what it means).
    """
    def check(value, name):
        return check_k(value, seq_len, name) if bounded else check_positive_int(name, value)

    if isinstance(k, (list, tuple)):
        if len(k) != depth:
            raise ValueError(f"k: got a list of {len(k)} values for depth={depth}; give one k per layer")
        return [check(layer_k, f"k[{i}]") for i, layer_k in enumerate(k)]
    return [check(k, "k")] * depth


def check_projection_options(attention, causal, **options):
    """Full attention has no projection, and the causal Linformer one learned projection per layer (see
    linformer_edu.causal): a projection option that would be ignored there is an error, not a silent no-op."""
    defaults = dict(one_kv_head=False, share_kv=False, sharing="headwise", projection="learned")
    mode = "attention='full' (no projection)" if attention == "full" else \
        "causal=True (one learned projection per layer)" if causal else None
    for name, value in options.items():
        if mode and value != defaults[name]:
            raise ValueError(f"{name}: {value!r} has no effect with {mode}; leave it at {defaults[name]!r}")


class Linformer(nn.Module):
    """A stack of `depth` pre-norm layers, each attention then feed-forward, on (b, n, dim) inputs.

    Beyond the reference (keyword-only): sharing, projection, a list k (one per layer),
    attention='full' (the softmax baseline), causal=True (see linformer_edu.causal), exact_dropout
    (reference-exact dropout masks, see `LinformerSelfAttention`; not for the causal Linformer, which has no
    reference to match). Every model reads at most seq_len positions, attention='full' included.
    """

    def __init__(self, dim, seq_len, depth, k=256, heads=8, dim_head=None, one_kv_head=False, share_kv=False,
                 reversible=False, dropout=0., *, sharing="headwise", projection="learned",
                 attention="linformer", causal=False, exact_dropout=False):
        super().__init__()
        check_positive_int("dim", dim)
        check_positive_int("seq_len", seq_len)
        check_positive_int("depth", depth)
        for name, flag in (("one_kv_head", one_kv_head), ("share_kv", share_kv), ("reversible", reversible),
                           ("causal", causal), ("exact_dropout", exact_dropout)):
            check_bool(name, flag)
        check_choice("attention", attention, ATTENTION)
        check_choice("sharing", sharing, SHARING)
        check_projection_options(attention, causal, one_kv_head=one_kv_head, share_kv=share_kv, sharing=sharing,
                                 projection=projection)
        if exact_dropout and causal and attention == "linformer":
            raise ValueError("exact_dropout: True has no effect with causal=True (the causal Linformer has no "
                             "reference whose dropout masks it could match); leave it at False")
        ks = per_layer_k(k, depth, seq_len, bounded=causal) if attention == "linformer" else [None] * depth
        if sharing == "layerwise" and len(set(ks)) > 1:
            raise ValueError(f"k: sharing='layerwise' uses one projection for all layers, so k must be the "
                             f"same in every layer; got {list(k)}")
        self.dim, self.seq_len = dim, seq_len

        layers = nn.ModuleList([])
        for layer_k in ks:
            if attention == "full":
                attn = FullSelfAttention(dim, heads=heads, dim_head=dim_head, causal=causal, dropout=dropout,
                                         exact_dropout=exact_dropout)
            elif causal:
                attn = CausalLinformerSelfAttention(dim, seq_len, k=layer_k, heads=heads, dim_head=dim_head,
                                                    dropout=dropout)
            else:
                attn = LinformerSelfAttention(dim, seq_len, k=layer_k, heads=heads, dim_head=dim_head,
                                              one_kv_head=one_kv_head, share_kv=share_kv, dropout=dropout,
                                              sharing=sharing, projection=projection, exact_dropout=exact_dropout)
            ff = FeedForward(dim, dropout=dropout)
            layers.append(nn.ModuleList([PreNorm(dim, attn), PreNorm(dim, ff)]))

        if sharing == "layerwise" and attention == "linformer" and not causal:
            for f, _ in layers[1:]:   # every layer uses the first layer's projection (one E for the stack)
                f.fn.proj_k = layers[0][0].fn.proj_k
        self.net = ReversibleSequence(layers) if reversible else SequentialSequence(layers)

    def forward(self, x, mask=None):
        """x (b, n, dim) with n <= seq_len; mask (b, n) bool, True = keep."""
        check_last_dim("x", x, self.dim, next(self.parameters()).dtype)
        check_length("x", x.shape[1], self.seq_len)
        if mask is not None:
            check_mask(mask, *x.shape[:2])
        return self.net(x, mask=mask)   # (b, n, dim)


class LinformerLM(nn.Module):
    """Token and position embeddings, a `Linformer` stack, and a linear map to logits over the vocabulary."""

    def __init__(self, num_tokens, dim, seq_len, depth, k=256, heads=8, dim_head=None, one_kv_head=False,
                 share_kv=False, reversible=False, dropout=0., *, sharing="headwise", projection="learned",
                 attention="linformer", causal=False, exact_dropout=False):
        super().__init__()
        check_positive_int("num_tokens", num_tokens)
        check_positive_int("dim", dim)
        check_positive_int("seq_len", seq_len)
        self.num_tokens, self.seq_len = num_tokens, seq_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(seq_len, dim)
        self.linformer = Linformer(dim, seq_len, depth, k=k, heads=heads, dim_head=dim_head,
                                   one_kv_head=one_kv_head, share_kv=share_kv, reversible=reversible,
                                   dropout=dropout, sharing=sharing, projection=projection,
                                   attention=attention, causal=causal, exact_dropout=exact_dropout)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, x, mask=None):
        """x (b, n) token ids in [0, num_tokens); mask (b, n) bool, True = keep. Returns (b, n, num_tokens)."""
        check_token_ids("x", x, self.num_tokens)
        check_length("x", x.shape[1], self.seq_len)
        positions = torch.arange(x.shape[1], device=x.device)        # (n,)
        h = self.token_emb(x) + self.pos_emb(positions)              # (b, n, dim)
        h = self.linformer(h, mask=mask)                             # (b, n, dim)
        return self.to_logits(h)                                     # (b, n, num_tokens)


@torch.no_grad()
def collect_attention_maps(model, *args, **kwargs):
    """Run `model(*args, **kwargs)` once and return every LinformerSelfAttention's `AttentionMaps`, in order.

    Works for a single layer, a `Linformer` stack (sequential or reversible) or a `LinformerLM`: a forward hook
    on each attention layer recomputes its maps from the input it received, so the default forward path
    stays untouched.
    """
    maps = []
    record = lambda layer, inputs, kw, out: maps.append(layer.attention_maps(*inputs, **kw))
    layers = [m for m in model.modules() if isinstance(m, LinformerSelfAttention)]
    hooks = [layer.register_forward_hook(record, with_kwargs=True) for layer in layers]
    try:
        model(*args, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return maps
