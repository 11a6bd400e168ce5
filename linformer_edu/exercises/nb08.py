"""Exercises for notebook 08, the causal Linformer: where a query's exact window starts, and the prefix memory.
Each `check_*` takes the learner's function; each `solution_*` is the worked solution.
"""
import torch

from ._feedback import call, checker, diagnose, expect, expect_close, expect_shape


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the first position a query sees exactly

def solution_window_start(t, chunk_size, look_back):
    """Query t sits in chunk t // c; it sees chunks t//c - L .. t//c exactly, but nothing before position 0."""
    return max(0, (t // chunk_size - look_back) * chunk_size)


@checker("Exercise 1 - where the exact window starts")
def check_window_start(window_start):
    """`window_start(t, chunk_size, look_back)`: the first position that query t attends to exactly."""
    grid = [(t, c, L) for c in (1, 3, 4, 8) for L in (0, 1, 2) for t in range(0, 40, 3)]
    got = [call(window_start, t, c, L) for t, c, L in grid]
    for value in got:
        expect(value is not None, "your answer is None — did you forget to `return` it?")
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        expect(isinstance(value, int) and not isinstance(value, bool),
               f"expected a position (an int), got {value!r} of type {type(value).__name__}")
    got = torch.tensor([int(value) for value in got], dtype=torch.float32)
    start = lambda t, c, L: (t // c - L) * c
    wrong = lambda rule: torch.tensor([float(rule(t, c, L)) for t, c, L in grid])
    diagnose(got, {
        "negative positions for queries near the start: a window cannot begin before position 0 (use max(0, ...))":
            wrong(start),
        "a sliding window t - L·c: the windows are whole chunks, so start at a chunk boundary "
        "((t // c - L) · c)": wrong(lambda t, c, L: max(0, t - L * c)),
        "one chunk too far back: query t sees its own chunk plus L earlier ones, starting at chunk t // c - L":
            wrong(lambda t, c, L: max(0, (t // c - L - 1) * c)),
        "the start of query t's own chunk only: look_back earlier chunks are attended exactly too":
            wrong(lambda t, c, L: (t // c) * c),
    })
    expect_close(got, wrong(solution_window_start))
    return "everything before that position reaches query t only through the k memory slots."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the prefix memory, every chunk at once

def solution_prefix_memory(keys, E_T, chunk_size):
    """Memory of chunk j: sum over positions p < j·c of E_T[p] ⊗ keys[p], a (k, d) matrix per chunk.

    keys (n, d) and E_T (n, k), the stored Eᵀ, with n a multiple of chunk_size -> (N, k, d), N = n // chunk_size.
    """
    n, d = keys.shape
    N = n // chunk_size
    per_chunk = torch.einsum("Ncd,Nck->Nkd", keys.view(N, chunk_size, d), E_T.view(N, chunk_size, -1))   # (N, k, d)
    through = per_chunk.cumsum(dim=0)                                        # (N, k, d) chunks 0..j
    return torch.cat([torch.zeros_like(through[:1]), through[:-1]])          # (N, k, d) chunks 0..j-1


@checker("Exercise 2 - the prefix memory")
def check_prefix_memory(prefix_memory):
    """`prefix_memory(keys, E_T, chunk_size)` -> (N, k, d): chunk j's memory holds positions < j·c only."""
    g = torch.Generator().manual_seed(0)
    keys, E_T, c = torch.randn(12, 5, generator=g), torch.randn(12, 3, generator=g), 4
    got = call(prefix_memory, keys, E_T, c)
    expect(getattr(got, "shape", None) != (2, 3, 5), "you returned N - 1 = 2 memories: chunk 0 needs one too, all "
                                                     "zeros (nothing comes before it) — put a zero memory in front")
    got = expect_shape(got, (3, 3, 5))
    per_chunk = torch.einsum("Ncd,Nck->Nkd", keys.view(3, 4, 5), E_T.view(3, 4, 3))    # (N, k, d)
    diagnose(got, {
        "torch.roll wraps the last chunk's sum around to chunk 0, which must see nothing: shift with a zero "
        "memory in front (torch.cat) instead": per_chunk.cumsum(0).roll(1, 0),
        "chunk j's memory includes chunk j itself: its early queries would see later positions, a leak. "
        "Shift the cumulative sum by one chunk": per_chunk.cumsum(0),
        "each chunk holds only the chunk before it: the memory must sum over *all* earlier chunks (cumsum)":
            torch.cat([torch.zeros_like(per_chunk[:1]), per_chunk[:-1]]),
        "every chunk used the rows E_T[0:c]: each position p has its own row E_T[p] of the (n, k) "
        "matrix Eᵀ":
            torch.cat([torch.zeros(1, 3, 5), torch.einsum("Ncd,ck->Nkd", keys.view(3, 4, 5),
                                                            E_T[:4]).cumsum(0)[:-1]]),
    })
    expect(torch.equal(got[0], torch.zeros(3, 5)), "chunk 0 has no earlier positions: its memory must be zero")
    expect_close(got, solution_prefix_memory(keys, E_T, c))
    return "that cumulative sum is what makes the projection causal."
