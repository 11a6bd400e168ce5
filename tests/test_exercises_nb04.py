"""Notebook 04's exercise checkers: typical wrong answers get the right feedback."""
import pytest
import torch

from linformer_edu import Linformer
from linformer_edu.exercises import nb04


@pytest.mark.parametrize("sharing, paper", [("none", 288), ("headwise", 24), ("kv", 12), ("layerwise", 1)])
def test_distinct_projections_match_the_paper_and_the_package(sharing, paper):
    assert nb04.solution_distinct_projections(12, 12, sharing) == paper
    model = Linformer(dim=24, seq_len=16, depth=3, k=4, heads=4, sharing=sharing)
    tensors = {id(p): p for name, p in model.named_parameters() if "proj" in name}   # shared tensors once
    matrices = sum(p.numel() // (16 * 4) for p in tensors.values())
    assert matrices == nb04.solution_distinct_projections(3, 4, sharing)


def count_with(layers, heads, sharing, *, forget_f=False, share_means_two=False):
    rules = {"none": 2 * layers * heads, "headwise": 2 * layers, "kv": layers, "layerwise": 1}
    if forget_f and sharing in ("none", "headwise"):
        return rules[sharing] // 2
    if share_means_two and sharing == "kv":
        return 2 * layers
    return rules[sharing]


@pytest.mark.parametrize("answer, message", [
    (lambda L, H, s: count_with(L, H, s, forget_f=True), "for 12 layers × 12 heads, sharing='none' you said 144, "
                                                         "expected 288 — did you count E but not F?"),
    (lambda L, H, s: count_with(L, H, s, share_means_two=True), "sharing='kv' you said 24, expected 12 — shared "
                                                                "means one matrix serves both keys and values"),
    (lambda L, H, s: L if s == "layerwise" else count_with(L, H, s), "sharing='layerwise' you said 12, expected 1: "
                                                                      "layerwise sharing keeps one single matrix"),
    (lambda L, H, s: 2 * L * H if s == "headwise" else count_with(L, H, s),
     "you said 288, expected 24: headwise sharing gives each layer one E and one F"),
    (lambda L, H, s: None, "is None — did you forget to `return` it?"),
    (lambda L, H, s: 2.5, "a count of matrices or parameters is a whole number"),
])
def test_distinct_projections_mistakes(answer, message, feedback):
    ok, out = feedback(nb04.check_distinct_projections, answer)
    assert not ok and out.startswith("✗ Exercise 1 - distinct projection matrices: ") and message in out


def params_with(dim, seq_len, k, heads, dim_head=None, one_kv_head=False, share_kv=False, *, bias_out=True,
                bias_in=False, projections=True, ignore_share=False, ignore_one_kv=False, ignore_dim_head=False):
    dh = dim // heads if (dim_head is None or ignore_dim_head) else dim_head
    inner = heads * dh
    kv = dh if (one_kv_head and not ignore_one_kv) else inner
    shared = share_kv and not ignore_share
    total = dim * inner + dim * kv * (1 if shared else 2) + inner * dim
    total += dim * bias_out + (inner + kv * (1 if shared else 2)) * bias_in
    total += seq_len * k * (1 if shared else 2) * projections
    return total


@pytest.mark.parametrize("options, message", [
    (dict(bias_out=False), "the output map to_out has a bias (dim numbers) that you left out"),
    (dict(bias_in=True), "to_q, to_k and to_v have no bias"),
    (dict(projections=False), "the projections are parameters too"),
    (dict(ignore_dim_head=True), "dim_head was given: each head is dim_head wide"),
    (dict(ignore_one_kv=True), "with one_kv_head=True the keys (and values) are one head wide"),
    (dict(ignore_share=True), "with share_kv=True there is no to_v and no proj_v"),
])
def test_attention_parameters_mistakes(options, message, feedback):
    ok, out = feedback(nb04.check_attention_parameters, lambda *a, **kw: params_with(*a, **kw, **options))
    assert not ok and out.startswith("✗ Exercise 2 - parameters of one attention layer: for (dim=") and message in out


def test_attention_parameters_unknown_slip_names_the_parts(feedback):
    ok, out = feedback(nb04.check_attention_parameters, lambda *a, **kw: params_with(*a, **kw) + 7)
    assert not ok and "you said 32,839, expected 32,832: count to_q, to_k, to_v (no biases)" in out


def test_attention_parameters_wrong_signature(feedback):
    def without_options(dim, seq_len, k, heads):   # right for the first configuration, which has no options
        return nb04.solution_attention_parameters(dim, seq_len, k, heads)
    ok, out = feedback(nb04.check_attention_parameters, without_options)
    assert not ok and "your function raised TypeError" in out and "dim_head" in out


@pytest.mark.parametrize("answer, message", [
    (lambda lengths, n: torch.arange(n)[None, :] >= lengths[:, None], "the mask is inverted: the package's "
                                                                      "convention is True = keep"),
    (lambda lengths, n: torch.arange(n)[None, :] <= lengths[:, None], "off by one"),
    (lambda lengths, n: (torch.arange(n)[None, :] < lengths[:, None]).long(), "the mask must be a bool tensor "
                                                                              "(the layer refuses torch.int64) — "
                                                                              "your values are right"),
    (lambda lengths, n: (torch.arange(n)[:, None] < lengths[None, :]), "wrong shape: expected (4, 8) = (batch, n), "
                                                                       "got (8, 4)"),
    (lambda lengths, n: torch.ones(len(lengths), n, dtype=torch.bool), "row i should be True at positions"),
    (lambda lengths, n: None, "did you forget to `return` it?"),
])
def test_padding_mask_mistakes(answer, message, feedback):
    ok, out = feedback(nb04.check_padding_mask, answer)
    assert not ok and out.startswith("✗ Exercise 3 - a padding mask: ") and message in out


def test_padding_mask_without_axes_to_broadcast_is_named_exactly(feedback):
    assert feedback(nb04.check_padding_mask, lambda lengths, n: torch.arange(n) < lengths) == (
        False, "✗ Exercise 3 - a padding mask: your function raised RuntimeError: The size of tensor a (8) must match "
               "the size of tensor b (4) at non-singleton dimension 0 — positions (n,) and lengths (b,) do not line "
               "up: give each its own axis, positions[None, :] (1, n) against lengths[:, None] (b, 1), which "
               "broadcast to (b, n)")
