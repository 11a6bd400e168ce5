"""Exercises for notebook 04, the Linformer layer: count the distinct projection matrices of each sharing level,
count one attention layer's parameters, and build a padding mask. Each `check_*` takes the learner's function;
each `solution_*` is the worked solution.
"""
import torch

from ..linformer import LinformerSelfAttention
from ._feedback import BROADCAST, Mistake, call, checker, expect, expect_shape

SHARING = ("none", "headwise", "kv", "layerwise")


def _count(got, what):
    """A whole number of things: an int, or an integral float / one-element tensor."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    expect(got is not None, f"{what} is None — did you forget to `return` it?")
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"{what} should be a number, got a value of type {type(got).__name__}")
    expect(float(got).is_integer(), f"{what} is {got}: a count of matrices or parameters is a whole number")
    return int(got)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: how many distinct projection matrices?

def solution_distinct_projections(layers, heads, sharing):
    """Distinct k×n projection matrices in a stack of `layers` layers of `heads` heads (paper §4)."""
    if sharing == "none":
        return 2 * layers * heads     # an E and an F for every head of every layer
    if sharing == "headwise":
        return 2 * layers             # one E and one F per layer, shared by its heads
    if sharing == "kv":
        return layers                 # one matrix per layer, E = F
    if sharing == "layerwise":
        return 1                      # one matrix for the whole stack
    raise ValueError(f"sharing: got {sharing!r}, expected one of {', '.join(map(repr, SHARING))}")


RULES = {
    "none": "with no sharing every head of every layer has its own E and its own F: 2 × layers × heads",
    "headwise": "headwise sharing gives each layer one E and one F, used by all its heads: 2 × layers",
    "kv": "key-value sharing uses one matrix per layer for both keys and values (E = F): layers",
    "layerwise": "layerwise sharing keeps one single matrix for every layer, head, key and value: 1",
}


@checker("Exercise 1 - distinct projection matrices")
def check_distinct_projections(distinct_projections):
    """`distinct_projections(layers, heads, sharing)` for sharing in none / headwise / kv / layerwise."""
    for layers, heads in [(12, 12), (6, 4), (3, 8)]:
        for sharing in SHARING:
            want = solution_distinct_projections(layers, heads, sharing)
            case = f"{layers} layers × {heads} heads, sharing={sharing!r}"
            got = _count(call(distinct_projections, layers, heads, sharing), f"your count for {case}")
            if got != want:
                hint = ""
                if got * 2 == want:
                    hint = " — did you count E but not F?"
                elif got == 2 * want:
                    hint = " — shared means one matrix serves both keys and values" if sharing in ("kv", "layerwise") \
                        else " — E and F count once each"
                raise Mistake(f"for {case} you said {got}, expected {want}{hint}: {RULES[sharing]}")
    return "for the paper's 12 layers × 12 heads: 288, 24, 12 and 1."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the parameters of one attention layer

def solution_attention_parameters(dim, seq_len, k, heads, dim_head=None, one_kv_head=False, share_kv=False):
    """Parameters of `LinformerSelfAttention` with learned projections shared headwise (the defaults)."""
    dim_head = dim // heads if dim_head is None else dim_head
    inner = heads * dim_head                          # width of all queries together
    kv = (1 if one_kv_head else heads) * dim_head     # width of the keys (and values)
    maps = dim * inner + dim * kv                     # to_q, to_k (no bias)
    projections = seq_len * k                         # proj_k: Eᵀ, (seq_len, k)
    if not share_kv:
        maps += dim * kv                              # to_v
        projections += seq_len * k                    # proj_v: Fᵀ
    out = inner * dim + dim                           # to_out, with a bias
    return maps + projections + out


CONFIGS = [
    dict(dim=64, seq_len=256, k=32, heads=4),
    dict(dim=64, seq_len=256, k=32, heads=4, dim_head=8),
    dict(dim=64, seq_len=128, k=16, heads=8, one_kv_head=True),
    dict(dim=48, seq_len=512, k=64, heads=6, share_kv=True),
    dict(dim=48, seq_len=512, k=64, heads=6, one_kv_head=True, share_kv=True),
]


def _describe(config):
    return ", ".join(f"{name}={value}" for name, value in config.items())


@checker("Exercise 2 - parameters of one attention layer")
def check_attention_parameters(attention_parameters):
    """`attention_parameters(dim, seq_len, k, heads, dim_head=None, one_kv_head=False, share_kv=False)`."""
    for config in CONFIGS:
        with torch.random.fork_rng(devices=[]):   # building a layer draws its weights: leave the learner's RNG alone
            want = sum(p.numel() for p in LinformerSelfAttention(**config).parameters())
        got = _count(call(attention_parameters, **config), f"your count for ({_describe(config)})")
        if got == want:
            continue
        full = {"dim_head": None, "one_kv_head": False, "share_kv": False, **config}
        dim, heads, seq_len, k = full["dim"], full["heads"], full["seq_len"], full["k"]
        inner = heads * (full["dim_head"] or dim // heads)                  # queries' width
        kv = inner // heads if full["one_kv_head"] else inner               # keys' (and values') width
        maps = 1 if full["share_kv"] else 2                                 # to_k and to_v, or to_k alone
        wrong = {
            want - dim: "the output map to_out has a bias (dim numbers) that you left out",
            want + inner + maps * kv: "to_q, to_k and to_v have no bias (bias=False); only to_out has one",
            want - maps * seq_len * k: "the projections are parameters too: proj_k (seq_len × k) and, unless "
                                       "share_kv, proj_v",
        }
        if full["share_kv"]:
            wrong[want + dim * kv + seq_len * k] = ("with share_kv=True there is no to_v and no proj_v: the "
                                                    "keys serve as values")
        if full["one_kv_head"]:
            wrong[want + maps * dim * (inner - kv)] = ("with one_kv_head=True the keys (and values) are one head "
                                                       "wide, dim_head, shared by all heads")
        if full["dim_head"] is not None:
            wrong[solution_attention_parameters(**{**full, "dim_head": None})] = (
                "dim_head was given: each head is dim_head wide, not dim // heads")
        message = wrong.get(got, "count to_q, to_k, to_v (no biases), proj_k and proj_v (seq_len × k each) "
                                 "and to_out (with a bias)")
        raise Mistake(f"for ({_describe(config)}) you said {got:,}, expected {want:,}: {message}")
    return "your count matches the package's layer in every configuration."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: a padding mask

def solution_padding_mask(lengths, n):
    """(b, n) bool, True = keep: row i keeps positions 0 … lengths[i] - 1 and masks the padding after them."""
    positions = torch.arange(n, device=lengths.device)       # (n,)
    return positions[None, :] < lengths[:, None]             # (b, n)


@checker("Exercise 3 - a padding mask")
def check_padding_mask(padding_mask):
    """`padding_mask(lengths, n)`: lengths (b,) long -> (b, n) bool, True where a real token sits."""
    lengths, n = torch.tensor([5, 8, 1, 3]), 8
    got = call(padding_mask, lengths, n, hints={
        BROADCAST: "positions (n,) and lengths (b,) do not line up: give each its own axis, positions[None, :] "
                   "(1, n) against lengths[:, None] (b, 1), which broadcast to (b, n)"})
    expect(got is not None, "your answer is None — did you forget to `return` it?")
    expect(isinstance(got, torch.Tensor), f"your answer should be a torch.Tensor, got {type(got).__name__}")
    want = solution_padding_mask(lengths, n)
    expect(tuple(got.shape) == tuple(want.shape),
           f"wrong shape: expected {tuple(want.shape)} = (batch, n), got {tuple(got.shape)}")
    if got.dtype != torch.bool:
        same = torch.equal(got.ne(0), want)
        raise Mistake(f"the mask must be a bool tensor (the layer refuses {got.dtype})"
                      + (" — your values are right: compare with `<` to get bools, or add .bool()" if same else ""))
    expect(not torch.equal(got, ~want), "the mask is inverted: the package's convention is True = keep (a real "
                                        "token), False = padding")
    expect(not torch.equal(got, torch.arange(n)[None, :] <= lengths[:, None]),
           "off by one: a sequence of length L has real tokens at positions 0 … L-1; position L is padding")
    expect(torch.equal(got, want), f"row i should be True at positions 0 … lengths[i]-1 and False after: for "
                                   f"lengths {lengths.tolist()} expected {want.int().tolist()}, got "
                                   f"{got.int().tolist()}")
    return "True marks real tokens; the layer zeroes the rest before projecting."


__all__ = ["Mistake", "check_attention_parameters", "check_distinct_projections", "check_padding_mask",
           "solution_attention_parameters", "solution_distinct_projections", "solution_padding_mask"]
