"""Full attention beside the Linformer's, for one input and one head: the numbers behind the explorer.

For an input x (n, dim) and the same queries and keys (the same to_q, to_k) a `Comparison` holds

    full map        A   = softmax(Q Kᵀ / √d)           (n, n)   what full attention applies to the values
    Linformer map   P̄   = softmax(Q (E K)ᵀ / √d)       (n, k)   attention over k projected keys (paper, eq. 7)
    effective map   P̄·F                             (n, n)   what the Linformer applies to the values
    spectrum        σ₁ ≥ σ₂ ≥ … of A

and the relative error ‖A − P̄F‖_F / ‖A‖_F beside the best any rank-k map can do (`linformer_edu.lowrank`), and the
error on the outputs ‖A V − P̄F V‖_F / ‖A V‖_F (V: the head's values), which is what the paper's theorems bound.
P̄ and P̄F come from `LinformerSelfAttention.attention_maps`, the package's own layer.

A causal model is shown as what it computes: A is causal, and its causal Linformer layers
(`CausalLinformerSelfAttention`: an exact local window plus a projected memory of the finished prefix) give each
query's weights over the real keys, the window's plus the memory's spread back through F — zero above the diagonal.
Other projections on a causal model go through the same causal construction, never a bidirectional P̄F.

Inputs ("sources"): random vectors; a text sentence (a random vector per character plus a sinusoidal position
code); or every attention layer of a model run on tokens — any module whose attention layers have `to_q`/`to_k`
(`LinformerLM`, `Linformer`, full or causal). Random and text inputs get fresh weights from the seed
(`fresh_layer`); a model's layers keep theirs. A source's `labels(n)` are its positions' characters, if text.

What varies (`Settings`): k, heads, the projection kind (learned and conv as initialised, random Gaussian, mean
pooling over windows of about n/k positions, identity = keep the first k keys; a Linformer model's own trained
E, F; a causal Linformer's own window and memory), the sharing level, `sharpness` β (scales the queries: β > 1,
peakier attention, higher rank) and `fit_f` (F replaced by the least-squares best F for this E). `Computer` caches the full map and its SVD per input, so a
change of k or projection recomputes only the Linformer side.

    c = compare(Sentence(64), n=128, k=16, projection="mean")     # a Comparison
    c.error, c.best_error                                         # ‖A − P̄F‖/‖A‖ and the rank-k floor
"""
import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_bool, check_choice, check_count, check_number, check_type
from ._state import eval_mode, one_thread
from .attention import FullSelfAttention
from .causal import CausalLinformerSelfAttention
from .linformer import LinformerSelfAttention
from .lowrank import (best_rank_error, divisors, fit_values, full_maps, head_values, mean_pooling, output_error,
                      relative_error, usable_k)
from .projections import SHARING, init_projection, projection_matrix

PROJECTIONS = ("learned", "random", "mean", "conv", "identity")   # "model" too, for a Linformer model's layers
CAUSAL_SHARING = ("headwise", "kv")   # a causal Linformer has one E, F per layer (kv: F = E)
SENTENCE = ("attention is all you need, but the attention map is nearly low rank: a few directions carry "
            "most of its weight, so k mixtures of the n keys can stand in for all of them. ")
MAX_LEN = 256   # longest input for random vectors and text


# ----------------------------------------------------------------------------------------------------------------
# Sources: where x, and the weights that turn it into queries and keys, come from

class RandomVectors:
    """x: n independent standard-normal vectors. Weights: fresh, from the seed."""
    label, layers, fixed_heads = "random vectors", 1, None

    def __init__(self, dim):
        self.dim, self.max_len = dim, MAX_LEN

    def labels(self, n):
        return ()

    def inputs(self, n, seed, layer=0):
        g = torch.Generator().manual_seed(2 * seed)   # fresh weights draw from 2·seed + 1: independent
        return torch.randn(1, n, self.dim, generator=g), None                    # (1, n, dim)


class Sentence:
    """x: a random vector per character (the same character gives the same vector) plus a sinusoidal position
    code (Vaswani et al. 2017), for the text repeated to length n, then normalised per position as the LayerNorm
    of a pre-norm Transformer would. Weights: fresh, from the seed."""
    label, layers, fixed_heads = "text sentence", 1, None

    def __init__(self, dim, text=SENTENCE):
        if not check_type("text", text, str, "a non-empty string"):
            raise ValueError(f"text: expected a non-empty string, got {text!r}")
        self.dim, self.text, self.max_len = dim, text, MAX_LEN
        self.chars = sorted(set(text))

    def labels(self, n):
        """Each position's character: the text repeated to length n."""
        return tuple((self.text * math.ceil(n / len(self.text)))[:n])

    def inputs(self, n, seed, layer=0):
        text = "".join(self.labels(n))
        ids = torch.tensor([self.chars.index(c) for c in text])                  # (n,)
        g = torch.Generator().manual_seed(2 * seed)
        table = torch.randn(len(self.chars), self.dim, generator=g)             # (chars, dim)
        x = table[ids] + sinusoids(n, self.dim)                                  # (n, dim)
        return F.layer_norm(x, (self.dim,))[None], None                         # (1, n, dim)


def sinusoids(n, dim):
    """The sinusoidal position code: (n, dim), sines in the even features and cosines in the odd ones."""
    position = torch.arange(n)[:, None]                                          # (n, 1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2) / dim)         # (ceil(dim/2),)
    angle = position * freq                                                      # (n, ceil(dim/2))
    code = torch.zeros(n, dim)
    code[:, 0::2], code[:, 1::2] = angle.sin(), angle.cos()[:, :dim // 2]
    return code                                                                  # (n, dim)


def attention_layers(model):
    """The attention layers of a model, in order: every submodule (or the model) with to_q, to_k and heads."""
    return [m for m in model.modules() if all(hasattr(m, a) for a in ("to_q", "to_k", "heads"))]


class ModelLayers:
    """x: the input each attention layer of `model` receives when the model runs on `tokens` (after its norm).
    Weights: that layer's own to_q, to_k, to_v (and E, F for a Linformer layer). vocab (optional, a `CharVocab`):
    labels each position with its character."""
    label = "model"

    def __init__(self, model, tokens, vocab=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module such as a LinformerLM, got {type(model).__name__}")
        self.model, self.attn = model, attention_layers(model)
        if not self.attn:
            raise ValueError(f"model: found no attention layer (a submodule with to_q, to_k and heads) in "
                             f"{type(model).__name__}")
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 2 and tokens.shape[0] == 1:
            tokens = tokens[0]
        message = (f"tokens: expected a non-empty 1-D sequence of integer token ids, got {tuple(tokens.shape)} "
                   f"of {tokens.dtype}")
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool or tokens.is_complex():
            raise TypeError(message)
        if tokens.dim() != 1 or not len(tokens):
            raise ValueError(message)
        self.tokens, self.layers = tokens.long(), len(self.attn)
        self.dim = self.attn[0].to_q.in_features
        self.fixed_heads = self.attn[0].heads
        self.max_len = min(len(tokens), getattr(model, "seq_len", len(tokens)))
        self._seen = (None, None)   # (n, [x per layer])
        if vocab is not None and not callable(getattr(vocab, "decode", None)):
            raise TypeError(f"vocab: expected a CharVocab (with decode), got {type(vocab).__name__}")
        self.vocab = vocab

    def labels(self, n):
        return tuple(self.vocab.decode(self.tokens[:n])) if self.vocab is not None else ()

    @torch.no_grad()
    def inputs(self, n, seed=0, layer=0):
        if self._seen[0] != n:
            xs = [None] * self.layers
            record = lambda i: lambda module, args, kwargs: xs.__setitem__(i, args[0] if args else kwargs["x"])
            hooks = [m.register_forward_pre_hook(record(i), with_kwargs=True) for i, m in enumerate(self.attn)]
            try:
                with eval_mode(self.model):
                    device = next(self.model.parameters()).device
                    self.model(self.tokens[None, :n].to(device))
            finally:
                for hook in hooks:
                    hook.remove()
            self._seen = (n, [x.detach().float() for x in xs])
        return self._seen[1][layer], self.attn[layer]                            # (1, n, dim), the layer


def is_causal(layer):
    """Whether a model's attention layer (None: a fresh one) lets each position see only itself and the past."""
    return isinstance(layer, CausalLinformerSelfAttention) or bool(getattr(layer, "causal", False))


def has_own_projection(layer):
    """Whether a model's attention layer has its own E, F (a Linformer layer, bidirectional or causal)."""
    return isinstance(layer, (LinformerSelfAttention, CausalLinformerSelfAttention))


def fresh_layer(dim, heads, seed, sharpness=1.0):
    """An untrained attention layer whose W_Q, W_K have N(0, 1/dim) entries: for inputs of unit variance the
    queries and keys have unit variance too, so the scores Q Kᵀ/√d have a standard deviation of about β.
    W_V is drawn the same way, after them (the values of the output error)."""
    layer = FullSelfAttention(dim, heads=heads).requires_grad_(False)
    g = torch.Generator().manual_seed(2 * seed + 1)   # inputs draw from 2·seed: independent of these
    for linear, scale in ((layer.to_q, sharpness), (layer.to_k, 1.0), (layer.to_v, 1.0)):
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=g) * scale / math.sqrt(dim))
    return layer


# ----------------------------------------------------------------------------------------------------------------
# The comparison: full map, Linformer maps, spectrum, errors

@dataclass(frozen=True)
class Settings:
    """Everything a picture depends on: one value per control."""
    source: int = 0
    layer: int = 0
    n: int = 128
    heads: int = 4
    head: int = 0
    k: int = 16
    projection: str = "mean"
    sharing: str = "headwise"
    seed: int = 0
    sharpness: float = 1.0
    fit_f: bool = False


def check_settings(s, sources):
    """Settings that these sources can show, else a ValueError/TypeError naming the setting (not an IndexError
    from deep inside the computation)."""
    def int_in(name, low, high, note=""):
        value, allowed = getattr(s, name), f"an int from {low} to {high}{note}"
        if not low <= check_type(name, value, int, allowed) <= high:
            raise ValueError(f"{name}: got {value!r}, expected {allowed}")

    int_in("source", 0, len(sources) - 1)
    source = sources[s.source]
    int_in("layer", 0, source.layers - 1)
    int_in("n", 1, source.max_len, " (the longest this input allows)")
    heads = [source.fixed_heads] if source.fixed_heads else divisors(source.dim)
    if s.heads not in heads or isinstance(s.heads, bool):
        raise ValueError(f"heads: got {s.heads!r}, expected one of {heads}" + (
            " (the model's)" if source.fixed_heads else f" (the divisors of dim={source.dim})"))
    int_in("head", 0, s.heads - 1, f" (one of heads={s.heads})")
    layer = getattr(source, "attn", [None] * (s.layer + 1))[s.layer]
    check_choice("projection", s.projection, PROJECTIONS + (("model",) if has_own_projection(layer) else ()))
    if s.projection != "model":   # the model's own projection brings its k and sharing
        int_in("k", 1, s.n, f" (at most n={s.n})")
        check_choice("sharing", s.sharing, CAUSAL_SHARING if is_causal(layer) else SHARING)
    check_count("seed", s.seed)
    check_number("sharpness", s.sharpness, low=0, low_open=True)
    check_bool("fit_f", s.fit_f)


@dataclass
class Comparison:
    """One head's maps and how far apart they are (tensors on the CPU)."""
    full: torch.Tensor               # (n, n)  A
    p_bar: torch.Tensor              # (n, k)  P̄
    effective: torch.Tensor          # (n, n)  P̄ F
    singular_values: torch.Tensor    # (n,)    of A, descending
    error: float                     # ‖A − P̄F‖_F / ‖A‖_F
    best_error: float                # √(Σ_{i>k} σᵢ²) / ‖A‖_F: the best any rank-k map can do
    k: int                           # the k used (pooling needs k to divide n: the largest such k <= asked)
    output_error: float = float("nan")   # ‖A V − P̄F V‖_F / ‖A V‖_F, V: this head's values (n, d)
    causal: bool = False             # A and P̄F let each query see only itself and earlier keys
    tokens: tuple = ()               # each position's character, when the input is text
    notes: tuple = ()


def linformer_layer(s, dim, dim_head, kv_heads, weights):
    """A fresh LinformerSelfAttention for these settings, its to_q and to_k taken from `weights`."""
    fixed = {"identity": torch.eye(s.n, s.k), "mean": mean_pooling(s.n, s.k)}.get(s.projection)   # (n, k)
    kind = "random" if fixed is not None else s.projection   # a fixed matrix is written over a random one
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        layer = LinformerSelfAttention(dim, s.n, k=s.k, heads=s.heads, dim_head=dim_head,
                                       one_kv_head=kv_heads == 1, sharing=s.sharing, projection=kind)
    layer.requires_grad_(False)
    for name in ("to_q", "to_k", "to_v"):   # the same queries, keys and values as the full map's
        getattr(layer, name).weight.copy_(getattr(weights, name).weight)
    if fixed is not None:
        for P in (layer.proj_k, layer.proj_v):
            if P is not None:
                P.copy_(fixed.expand_as(P))
    return layer


def causal_layer(s, dim, dim_head, weights):
    """A fresh CausalLinformerSelfAttention for these settings: the model layer's W_Q, W_K, W_V (and its chunk size
    and look-back when it is a causal Linformer), E and F of the chosen kind (F = E for sharing="kv")."""
    chunk = min(getattr(weights, "chunk_size", s.k), s.n)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        layer = CausalLinformerSelfAttention(dim, s.n, k=s.k, heads=s.heads, dim_head=dim_head, chunk_size=chunk,
                                             look_back=getattr(weights, "look_back", 1))
        kind = "random" if s.projection in ("identity", "mean") else s.projection
        E_T, F_T = (projection_matrix(kind, init_projection(kind, s.n, s.k), s.n, s.k) for _ in "EF")  # (n, k)
    layer.requires_grad_(False)
    fixed = {"identity": torch.eye(s.n, s.k), "mean": mean_pooling(s.n, s.k)}.get(s.projection)   # (n, k)
    E_T, F_T = (E_T, F_T) if fixed is None else (fixed, fixed)
    layer.proj_k.copy_(E_T)
    layer.proj_v.copy_(E_T if s.sharing == "kv" else F_T)
    for name in ("to_q", "to_k", "to_v"):
        getattr(layer, name).weight.copy_(getattr(weights, name).weight.float())
    return layer


class Computer:
    """Settings -> Comparison, caching what a control change leaves alone (inputs, full maps and values, spectra)."""

    def __init__(self, sources):
        self.sources = sources
        self._cache = (None, None)

    def full(self, s):
        """x, the layer whose to_q/to_k/to_v make Q, K and V, A for every head (h, n, n), V (h, n, d) and A's
        singular values."""
        key = (s.source, s.layer, s.n, s.seed, s.heads, s.sharpness)
        if self._cache[0] != key:
            source = self.sources[s.source]
            x, layer = source.inputs(s.n, s.seed, s.layer)
            if layer is None:
                layer = fresh_layer(source.dim, s.heads, s.seed, s.sharpness)
            x = x.to(layer.to_q.weight.device)            # kept float32: each use casts to its layer's dtype
            A = full_maps(layer, x, is_causal(layer)).float().cpu()              # (h, n, n)
            V = head_values(layer, x).float().cpu()                              # (h, n, d)
            self._cache = (key, (x, layer, A, V, torch.linalg.svdvals(A)))       # svdvals: (h, n)
        return self._cache[1]

    def __call__(self, s):
        check_settings(s, self.sources)
        with one_thread(), torch.no_grad():
            return self._compare(s)

    def _compare(self, s):
        x, weights, A, V, sv = self.full(s)
        notes, causal = [], is_causal(weights)
        if s.projection == "model":   # the layer's own, trained E and F, on its device and in its dtype
            layer = weights
            x = x.to(layer.to_q.weight)                 # (1, n, dim) in the layer's dtype (a bf16 model)
        else:                         # a fresh layer on the CPU with the same to_q, to_k, to_v
            x = x.cpu()                                 # float32, like the fresh layer
            k = usable_k(s.projection, s.k, s.n)
            if k != s.k:
                notes.append(f"a convolution's windows need k to divide n={s.n}: using k={k}")
                s = replace(s, k=k)
            dim_head = weights.to_q.out_features // weights.heads
            if causal:                # the model is causal: so is the Linformer it is compared with
                layer = causal_layer(s, x.shape[-1], dim_head, weights)
            else:
                kv_heads = weights.to_k.out_features // dim_head
                layer = linformer_layer(s, x.shape[-1], dim_head, kv_heads, weights)
        maps = layer.attention_maps(x)
        p_bar = maps.p_bar[0, s.head].float().cpu()                             # (n, k)
        effective = maps.effective[0, s.head].float().cpu()                     # (n, n)
        if s.fit_f:
            effective = fit_values(p_bar, A[s.head])                             # (n, n)
        if causal:
            notes.append("causal: each query sees its window exactly and the earlier prefix through E, F")
        return Comparison(full=A[s.head], p_bar=p_bar, effective=effective, singular_values=sv[s.head],
                          error=relative_error(A[s.head], effective).item(),
                          best_error=best_rank_error(sv[s.head], p_bar.shape[-1]).item(),
                          k=p_bar.shape[-1], output_error=output_error(A[s.head], effective, V[s.head]).item(),
                          causal=causal, tokens=self.sources[s.source].labels(s.n), notes=tuple(notes))


def compare(source, **settings):
    """One Comparison without widgets: `compare(RandomVectors(64), n=128, k=16, projection="mean")`."""
    return Computer([source])(Settings(**settings))

