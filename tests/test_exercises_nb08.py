"""Notebook 08's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu.exercises import nb08


def test_window_start_agrees_with_the_package():
    from linformer_edu.causal import CausalLinformerSelfAttention
    attn = CausalLinformerSelfAttention(8, 24, k=4, heads=2, chunk_size=5, look_back=1)
    allowed = attn.window_mask(5, "cpu")[..., attn.k:]              # (N, c, (L+1)c) the local part
    for t in range(24):
        j, a = divmod(t, 5)
        first = int(allowed[j, a].nonzero()[0]) + (j - 1) * 5       # window offset -> position
        assert first == nb08.solution_window_start(t, 5, 1)


@pytest.mark.parametrize("answer, message", [
    (lambda t, c, L: (t // c - L) * c, "negative positions for queries near the start"),
    (lambda t, c, L: max(0, t - L * c), "a sliding window t - L·c"),
    (lambda t, c, L: max(0, (t // c - L - 1) * c), "one chunk too far back"),
    (lambda t, c, L: (t // c) * c, "the start of query t's own chunk only"),
    (lambda t, c, L: float(t), "expected a position (an int), got 0.0 of type float"),
    (lambda t, c, L: t, "the shape is right but the values differ"),
    (lambda t, c, L: None, "your answer is None — did you forget to `return` it?"),
])
def test_window_start_mistakes(answer, message, feedback):
    ok, out = feedback(nb08.check_window_start, answer)
    assert not ok and out.startswith("✗ Exercise 1 - where the exact window starts: ") and message in out


def inclusive(keys, E_T, c):
    N = keys.shape[0] // c
    return torch.einsum("Ncd,Nck->Nkd", keys.view(N, c, -1), E_T.view(N, c, -1)).cumsum(0)


@pytest.mark.parametrize("answer, message", [
    (inclusive, "chunk j's memory includes chunk j itself"),
    (lambda keys, E_T, c: torch.cat([torch.zeros_like(inclusive(keys, E_T, c)[:1]),
                                     inclusive(keys, E_T, c).diff(dim=0, prepend=torch.zeros(1, 3, 5))[:-1]]),
     "each chunk holds only the chunk before"),
    (lambda keys, E_T, c: inclusive(keys, E_T, c).transpose(1, 2), "wrong shape: expected (3, 3, 5), got (3, 5, 3)"),
    (lambda keys, E_T, c: nb08.solution_prefix_memory(keys, E_T, c) + 1, "chunk 0 has no earlier positions"),
    (lambda keys, E_T, c: torch.cat([torch.zeros(1, 3, 5), torch.einsum("Ncd,ck->Nkd", keys.view(3, c, 5),
                                                                        E_T[:c]).cumsum(0)[:-1]]),
     "every chunk used the rows E_T[0:c]: each position p has its own row E_T[p]"),
])
def test_prefix_memory_mistakes(answer, message, feedback):
    ok, out = feedback(nb08.check_prefix_memory, answer)
    assert not ok and out.startswith("✗ Exercise 2 - the prefix memory: ") and message in out


@pytest.mark.parametrize("answer, message", [
    (lambda keys, E_T, c: inclusive(keys, E_T, c)[:-1], "you returned N - 1 = 2 memories: chunk 0 needs one too, "
                                                        "all zeros (nothing comes before it) — put a zero memory in "
                                                        "front"),
    (lambda keys, E_T, c: inclusive(keys, E_T, c).roll(1, 0), "torch.roll wraps the last chunk's sum around to "
                                                              "chunk 0, which must see nothing: shift with a zero "
                                                              "memory in front (torch.cat) instead"),
], ids=["one memory short", "roll"])
def test_prefix_memory_shift_slips_are_named_exactly(answer, message, feedback):
    assert feedback(nb08.check_prefix_memory, answer) == (False, f"✗ Exercise 2 - the prefix memory: {message}")
