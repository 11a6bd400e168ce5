"""Exercises for notebook 06, what "linear" buys: count the FLOPs of full attention, find where the Linformer
starts doing less work, and size the attention map in bytes. Each `check_*` takes the learner's function; each
`solution_*` is the worked solution.
"""
import torch

from ..measure import attention_flops
from ._feedback import call, checker, diagnose, expect, expect_close

SIZES = [(1, 512, 256, 4), (2, 1024, 128, 8), (4, 64, 512, 16)]   # (batch, n, dim, heads)


def _numbers(fn, cases):
    """The answer on every case, as a float64 tensor (so `diagnose` can compare it with wrong answers)."""
    got = [call(fn, *case) for case in cases]
    for value in got:
        expect(isinstance(value, (int, float)) and not isinstance(value, bool),
               f"your function should return a number, got a value of type {type(value).__name__}")
    return torch.tensor(got, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the FLOPs of full attention

def solution_full_attention_flops(batch, n, dim, heads):
    """Matmul FLOPs of one full self-attention layer's forward (2 per multiply-add, dim_head = dim / heads)."""
    dim_head = dim // heads
    linear = 2 * batch * n * dim * dim                        # one of the q, k, v and output maps
    scores = 2 * batch * heads * n * n * dim_head            # Q Kᵀ: (n, d) @ (d, n) per head
    weighted = 2 * batch * heads * n * n * dim_head          # P V:  (n, n) @ (n, d) per head
    return 4 * linear + scores + weighted


@checker("Exercise 1 - FLOPs of full attention")
def check_full_attention_flops(full_attention_flops):
    """`full_attention_flops(batch, n, dim, heads)`: matmul FLOPs of one full attention layer's forward."""
    got = _numbers(full_attention_flops, SIZES)
    want = torch.tensor([attention_flops("sdpa", batch=b, n=n, dim=d, heads=h) for b, n, d, h in SIZES],
                        dtype=torch.float64)
    linear = torch.tensor([2 * b * n * d * d for b, n, d, h in SIZES], dtype=torch.float64)
    maps = want - 4 * linear                                  # the two n×n products
    diagnose(got, {
        "half the expected count: a multiply-add is 2 FLOPs (one multiply, one add)": want / 2,
        "only three linear maps: the output projection to_out is a (dim, dim) matmul too": want - linear,
        "the attention products are missing: Q Kᵀ and P V cost 2·n·n·dim_head each, per head": 4 * linear,
        "only one of the two n×n products: Q Kᵀ makes the map, P V applies it — both cost the same": want - maps / 2,
        "the attention products were multiplied by the number of heads once too often: each head works on "
        "dim_head = dim / heads features, so all heads together cost 2·n·n·dim per product":
            4 * linear + maps * torch.tensor([h for *_, h in SIZES], dtype=torch.float64),
    })
    expect_close(got, want, rtol=1e-9, atol=0)
    return "the n² term is 4·b·n²·dim: it overtakes the 8·b·n·dim² of the linear maps once n > 2·dim."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: where the Linformer starts to do less work

def solution_flop_crossover(k, dim=256, heads=4):
    """The smallest n at which the reference Linformer needs fewer matmul FLOPs than full attention."""
    n = 1
    while attention_flops("reference", batch=1, n=n, dim=dim, heads=heads, k=k) >= \
            attention_flops("sdpa", batch=1, n=n, dim=dim, heads=heads):
        n += 1
    return n   # = 2k + 1: full − Linformer = 4·n·dim·(n − 2k)


@checker("Exercise 2 - the FLOP crossover")
def check_flop_crossover(flop_crossover):
    """`flop_crossover(k)`: the smallest n where the Linformer (k projected rows) does fewer FLOPs than full."""
    ks = [16, 64, 128, 256]
    got = _numbers(flop_crossover, [(k,) for k in ks])
    want = torch.tensor([2 * k + 1 for k in ks], dtype=torch.float64)
    diagnose(got, {
        "at n = 2k the two counts are equal — the question asks for the first n where the Linformer does "
        "strictly fewer FLOPs": want - 1,
        "n = k + 1 leaves out the projections themselves: projecting the keys (E K) and the values (F V) "
        "costs 2·k·n·dim each, on top of the two n×k products": want - torch.tensor(ks, dtype=torch.float64),
        "n = 1.5k + 1 counts one projection only: the keys (E K) and the values (F V) are both projected, "
        "2·k·n·dim each": want - torch.tensor(ks, dtype=torch.float64) / 2,
        "n = k: at n = k the projection saves nothing and costs two extra matmuls": want - 1 - torch.tensor(
            ks, dtype=torch.float64),
    })
    expect_close(got, want, rtol=0, atol=0)
    return "the answer is 2k + 1 whatever dim is — compare it with the measured crossover of section 4."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: the bytes of the attention map

def solution_map_bytes(batch, heads, n):
    """Bytes of one float32 attention map for every head of a batch: (b, h, n, n) entries, 4 bytes each."""
    return 4 * batch * heads * n * n


@checker("Exercise 3 - bytes of the attention map")
def check_map_bytes(map_bytes):
    """`map_bytes(batch, heads, n)`: bytes of the float32 (batch, heads, n, n) attention map."""
    cases = [(1, 4, 1024), (8, 12, 512), (2, 1, 8192)]
    got = _numbers(map_bytes, cases)
    want = torch.tensor([solution_map_bytes(*c) for c in cases], dtype=torch.float64)
    column = lambda i: torch.tensor([c[i] for c in cases], dtype=torch.float64)
    diagnose(got, {
        "that is the number of entries, not bytes: a float32 takes 4 bytes": want / 4,
        "8 bytes per entry is float64; PyTorch's default (and the benchmark's) is float32, 4 bytes": want * 2,
        "2 bytes per entry is float16 or bfloat16; the map here is float32, 4 bytes": want / 2,
        "that is in gigabytes (10⁹ bytes): return the number of bytes itself": want / 1e9,
        "that is in gibibytes (2³⁰ bytes): return the number of bytes itself": want / 2 ** 30,
        "every head has its own map: multiply by heads": want / column(1),
        "every sequence in the batch has its own maps: multiply by batch": want / column(0),
        "the map is n×n — one weight for every (query, key) pair: square n": want / column(2),
    })
    expect_close(got, want, rtol=1e-9, atol=0)
    return f"at n = 8192 with 4 heads one map is {solution_map_bytes(1, 4, 8192) / 2 ** 30:.0f} GiB."


__all__ = ["check_flop_crossover", "check_full_attention_flops", "check_map_bytes", "solution_flop_crossover",
           "solution_full_attention_flops", "solution_map_bytes"]
