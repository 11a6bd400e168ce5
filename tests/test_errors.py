"""Bad input gets a ValueError/TypeError that names the argument, the value and what is allowed —
also under `python -O`, which strips asserts."""
import re
import subprocess
import sys

import pytest
import torch

import linformer_edu as le
from linformer_edu.causal import CausalLinformerSelfAttention
from linformer_edu.data import split
from linformer_edu.mlm import MaskingCollator
from linformer_edu.sample import next_char_distribution

LAYER = dict(dim=32, seq_len=64, k=16, heads=4)


def raises(exc, message, fn, *args, **kwargs):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        fn(*args, **kwargs)


def test_sequence_longer_than_seq_len():
    layer = le.LinformerSelfAttention(**LAYER)
    raises(ValueError, "x: length 65 is longer than seq_len=64; pass at most 64 positions or build the model "
           "with a larger seq_len", layer, torch.randn(1, 65, 32))
    raises(ValueError, "context: length 70 is longer than seq_len=64; pass at most 64 positions or build the "
           "model with a larger seq_len", layer, torch.randn(1, 8, 32), context=torch.randn(1, 70, 32))
    lm = le.LinformerLM(10, 32, 64, 1, k=16, heads=4)
    raises(ValueError, "x: length 80 is longer than seq_len=64; pass at most 64 positions or build the model "
           "with a larger seq_len", lm, torch.zeros(1, 80, dtype=torch.long))


@pytest.mark.parametrize("options, message", [
    (dict(causal=True, sharing="none"),
     "sharing: 'none' has no effect with causal=True (one learned projection per layer); leave it at 'headwise'"),
    (dict(causal=True, share_kv=True),
     "share_kv: True has no effect with causal=True (one learned projection per layer); leave it at False"),
    (dict(attention="full", projection="mean"),
     "projection: 'mean' has no effect with attention='full' (no projection); leave it at 'learned'"),
    (dict(attention="full", causal=True, one_kv_head=True),
     "one_kv_head: True has no effect with attention='full' (no projection); leave it at False"),
])
def test_projection_options_that_would_be_ignored(options, message):
    raises(ValueError, message, le.Linformer, 32, 64, 2, k=16, heads=4, **options)
    raises(ValueError, message, le.LinformerLM, 10, 32, 64, 2, k=16, heads=4, **options)


def test_dim_not_divisible_by_heads():
    raises(ValueError, "heads: dim=30 is not divisible by heads=4; choose heads among the divisors of 30 or pass "
           "dim_head", le.LinformerSelfAttention, 30, 64, k=16, heads=4)
    le.LinformerSelfAttention(30, 64, k=16, heads=4, dim_head=8)   # fine with an explicit dim_head


def test_k_out_of_range():
    raises(ValueError, "k: expected a positive int, got 0", le.LinformerSelfAttention, 32, 64, k=0)


@pytest.mark.parametrize("projection", ["mean", "conv"])
def test_pooling_refuses_k_above_seq_len(projection):
    # windows of seq_len/k positions: fewer than one position per window is no pooling
    raises(ValueError, f"k: projection={projection!r} pools windows of seq_len/k positions, so k must divide "
           f"seq_len=64; got k=128", le.LinformerSelfAttention, 32, 64, k=128, projection=projection)


def test_the_causal_linformer_keeps_k_at_most_seq_len():
    # its memory holds k slots of the prefix: more than seq_len slots only cost memory (issue 12, item 9)
    raises(ValueError, "k: got 65, expected 1 <= k <= seq_len=64", le.Linformer, 32, 64, 2, k=65, heads=4,
           causal=True)
    raises(ValueError, "k: got 65, expected 1 <= k <= seq_len=64", CausalLinformerSelfAttention, 32, 64, k=65)


def test_k_of_the_wrong_type():
    raises(TypeError, "k: expected a positive int, got 16.0 of type float", le.LinformerSelfAttention, 32, 64, k=16.0)


@pytest.mark.parametrize("fn, message", [
    (lambda: CausalLinformerSelfAttention(32, 16, k=4, look_back=1.0),
     "look_back: expected an int >= 0 (the number of earlier chunks attended exactly), got 1.0 of type float"),
    (lambda: CausalLinformerSelfAttention(32, 16, k=4, chunk_size="4"),
     "chunk_size: expected a positive int, got '4' of type str"),
    (lambda: CausalLinformerSelfAttention(32, 16, k=4, fast=1), "fast: expected True or False, got 1 of type int"),
    (lambda: le.FullSelfAttention(32, heads=4, fast="no"), "fast: expected True or False, got 'no' of type str"),
    (lambda: MaskingCollator(vocab_size=20.0), "vocab_size: expected a positive int, got 20.0 of type float"),
    (lambda: MaskingCollator(20, mask_prob="0.15"), "mask_prob: expected 0 < mask_prob <= 1, got '0.15' of type str"),
    (lambda: MaskingCollator(20, keep_prob=None), "keep_prob: expected 0 <= keep_prob <= 1, got None of type NoneType"),
    (lambda: split(torch.arange(10), "0.1"),
     "val_fraction: expected a number strictly between 0 and 1, got '0.1' of type str"),
    (lambda: next_char_distribution(torch.zeros(1, 4), "1"),
     "temperature: expected a number >= 0 (0 = always the most likely character), got '1' of type str"),
    (lambda: next_char_distribution(torch.zeros(1, 4), 1.0, top_k=2.0),
     "top_k: expected None or a positive int, got 2.0 of type float"),
    (lambda: le.LinformerSelfAttention(32, 64, k=True), "k: expected a positive int, got True of type bool"),
])
def test_a_wrong_type_is_a_type_error_that_says_what_is_allowed(fn, message):
    raises(TypeError, message, fn)


def test_wrong_last_dimension():
    layer = le.LinformerSelfAttention(**LAYER)
    raises(ValueError, "x: expected shape (batch, length, 32), got (1, 10, 31)", layer, torch.randn(1, 10, 31))
    raises(ValueError, "context: expected shape (batch, length, 32), got (1, 10, 16)", layer,
           torch.randn(1, 10, 32), context=torch.randn(1, 10, 16))
    raises(TypeError, "x: expected a torch.Tensor, got list", layer, [[0.0] * 32])


def test_token_ids_out_of_range_or_not_integers():
    lm = le.LinformerLM(10, 32, 64, 1, k=16, heads=4)
    raises(ValueError, "x: token ids must lie in [0, 10) = [0, num_tokens); got values from 0 to 10", lm,
           torch.tensor([[0, 5, 10]]))
    raises(ValueError, "x: token ids must lie in [0, 10) = [0, num_tokens); got values from -1 to 3", lm,
           torch.tensor([[-1, 3]]))
    raises(TypeError, "x: expected a tensor of integer token ids, got torch.float32", lm, torch.zeros(1, 4))
    raises(ValueError, "x: expected shape (batch, length), got (4,)", lm, torch.zeros(4, dtype=torch.long))


def test_bad_masks():
    layer = le.LinformerSelfAttention(**LAYER)
    x = torch.randn(2, 10, 32)
    raises(TypeError, "mask: expected a bool tensor (True = keep), got torch.int64", layer, x,
           mask=torch.ones(2, 10, dtype=torch.long))
    raises(ValueError, "mask: expected shape (2, 10) = (batch, length of keys), got (2, 9)", layer, x,
           mask=torch.ones(2, 9, dtype=torch.bool))
    full = le.FullSelfAttention(32, heads=4)
    raises(ValueError, "mask: expected shape (2, 10) = (batch, length of keys), got (10,)", full, x,
           mask=torch.ones(10, dtype=torch.bool))


def test_unknown_sharing_or_projection():
    raises(ValueError, "sharing: got 'heads', expected one of 'none', 'headwise', 'kv', 'layerwise'",
           le.LinformerSelfAttention, 32, 64, sharing="heads", k=16)
    raises(ValueError, "projection: got 'pool', expected one of 'learned', 'random', 'mean', 'conv'",
           le.Linformer, 32, 64, 2, k=16, projection="pool")
    raises(ValueError, "attention: got 'flash', expected one of 'linformer', 'full'",
           le.LinformerLM, 10, 32, 64, 2, attention="flash")


def test_pooling_needs_k_to_divide_seq_len():
    raises(ValueError, "k: projection='mean' pools windows of seq_len/k positions, so k must divide seq_len=64; "
           "got k=24", le.LinformerSelfAttention, 32, 64, k=24, projection="mean")


def test_per_layer_k_list():
    raises(ValueError, "k: got a list of 2 values for depth=3; give one k per layer", le.Linformer, 32, 64, 3,
           k=[16, 8])
    raises(ValueError, "k[1]: got 100, expected 1 <= k <= seq_len=64", le.Linformer, 32, 64, 2, k=[16, 100],
           causal=True)
    raises(TypeError, "k[0]: expected a positive int, got 16.0 of type float", le.Linformer, 32, 64, 2,
           k=[16.0, 8])
    raises(ValueError, "k: sharing='layerwise' uses one projection for all layers, so k must be the same in "
           "every layer; got [16, 8]", le.Linformer, 32, 64, 2, k=[16, 8], sharing="layerwise")


def test_unknown_keyword_arguments_raise():
    with pytest.raises(TypeError, match="unexpected keyword argument 'head'"):
        le.LinformerSelfAttention(32, 64, head=4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'masks'"):
        le.LinformerSelfAttention(**LAYER)(torch.randn(1, 8, 32), masks=None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'mask'"):
        le.FeedForward(32)(torch.randn(1, 8, 32), mask=None)


def test_causal_full_attention_refuses_a_context():
    raises(ValueError, "context: causal attention is self-attention only; got a context, expected None",
           le.FullSelfAttention(32, heads=4, causal=True), torch.randn(1, 4, 32), context=torch.randn(1, 4, 32))


def test_errors_survive_python_dash_O():
    script = """
import torch, linformer_edu as le
checks = [
    lambda: le.LinformerSelfAttention(32, 64, k=0),
    lambda: le.LinformerSelfAttention(30, 64, k=16, heads=4),
    lambda: le.LinformerSelfAttention(32, 64, k=16)(torch.randn(1, 65, 32)),
    lambda: le.LinformerLM(10, 32, 64, 1, k=16)(torch.tensor([[11]])),
    lambda: le.LinformerSelfAttention(32, 64, k=16)(torch.randn(1, 8, 32), mask=torch.ones(1, 7).bool()),
]
for check in checks:
    try:
        check()
    except (ValueError, TypeError):
        continue
    raise SystemExit("no error under -O")
assert False, "asserts are stripped, so this line does nothing under -O"
print("ok")
"""
    result = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_full_attention_ignores_k():
    model = le.LinformerLM(10, 32, 64, 2, heads=4, attention="full")   # default k=256 > seq_len: not used
    assert model(torch.zeros(1, 64, dtype=torch.long)).shape == (1, 64, 10)


# ----------------------------------------------------------------------------------------------------------------
# Issue 12, item 10: a named TypeError/ValueError where torch would raise from deep inside

def stack(**options):
    return le.Linformer(32, 64, 2, k=16, heads=4, **options)


@pytest.mark.parametrize("make", [lambda: le.LinformerSelfAttention(**LAYER), lambda: le.FullSelfAttention(32, heads=4),
                                  lambda: CausalLinformerSelfAttention(32, 64, k=16, heads=4), stack,
                                  lambda: stack(reversible=True), lambda: stack(attention="full")],
                         ids=["linformer", "full", "causal", "stack", "reversible", "full-stack"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.float64])
def test_x_of_the_wrong_dtype(make, dtype):
    raises(TypeError, f"x: expected a tensor of torch.float32 (the dtype of the weights), got {dtype}",
           make(), torch.ones(1, 8, 32, dtype=dtype))


def test_under_autocast_the_layers_cast_their_inputs_themselves():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert stack()(torch.randn(1, 8, 32, dtype=torch.bfloat16)).shape == (1, 8, 32)
    raises(TypeError, "x: expected a tensor of torch.float32 (the dtype of the weights), got torch.bfloat16",
           stack(), torch.randn(1, 8, 32, dtype=torch.bfloat16))   # outside autocast: named, not torch's


@pytest.mark.parametrize("options", [dict(), dict(reversible=True), dict(attention="full")])
def test_the_stack_checks_its_input(options):
    raises(ValueError, "x: expected shape (batch, length, 32), got (1, 8, 31)", stack(**options),
           torch.randn(1, 8, 31))
    raises(ValueError, "x: length 65 is longer than seq_len=64; pass at most 64 positions or build the model "
           "with a larger seq_len", stack(**options), torch.randn(1, 65, 32))
    raises(ValueError, "mask: expected shape (1, 8) = (batch, length of keys), got (1, 7)", stack(**options),
           torch.randn(1, 8, 32), mask=torch.ones(1, 7, dtype=torch.bool))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int8])
def test_token_ids_of_a_dtype_the_embedding_refuses(dtype):
    # the reference refuses them too (nn.Embedding takes int64 and int32 only): named here
    lm = le.LinformerLM(10, 32, 64, 1, k=16, heads=4)
    raises(TypeError, f"x: expected token ids of torch.int64 or torch.int32, got {dtype}; convert them with "
           f".long()", lm, torch.zeros(1, 8, dtype=dtype))
    assert lm(torch.zeros(1, 8, dtype=torch.int32)).shape == (1, 8, 10)   # int32 works, as in the reference


@pytest.mark.parametrize("layer", [le.LinformerSelfAttention(**LAYER), le.FullSelfAttention(32, heads=4)],
                         ids=["linformer", "full"])
def test_a_context_of_another_batch_size(layer):
    raises(ValueError, "context: expected batch size 2 (that of x), got 3", layer, torch.randn(2, 8, 32),
           context=torch.randn(3, 8, 32))
    raises(TypeError, "context: expected a tensor of torch.float32 (the dtype of the weights), got torch.int64",
           layer, torch.randn(2, 8, 32), context=torch.ones(2, 8, 32, dtype=torch.long))


BOOL_OPTIONS = [
    (le.LinformerSelfAttention, (32, 64), dict(k=16), ["one_kv_head", "share_kv", "exact_dropout"]),
    (le.FullSelfAttention, (32,), dict(), ["causal", "fast", "exact_dropout"]),
    (le.Linformer, (32, 64, 1), dict(k=16), ["one_kv_head", "share_kv", "reversible", "causal", "exact_dropout"]),
    (le.LinformerLM, (10, 32, 64, 1), dict(k=16),
     ["one_kv_head", "share_kv", "reversible", "causal", "exact_dropout"]),
    (le.FeedForward, (32,), dict(), ["glu"]),
]


@pytest.mark.parametrize("cls, args, kwargs, flag", [(c, a, kw, f) for c, a, kw, fs in BOOL_OPTIONS for f in fs],
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("value", ["no", 1, None])
def test_a_flag_that_is_not_a_bool(cls, args, kwargs, flag, value):
    # reversible='no' used to build a reversible model: any truthy value switched a flag on
    raises(TypeError, f"{flag}: expected True or False, got {value!r} of type {type(value).__name__}",
           cls, *args, **kwargs, **{flag: value})


@pytest.mark.parametrize("value, error, message", [
    ("0.1", TypeError, "dropout: expected a number >= 0 and < 1, got '0.1' of type str"),
    (1.0, ValueError, "dropout: expected a number >= 0 and < 1, got 1.0"),
    (-0.1, ValueError, "dropout: expected a number >= 0 and < 1, got -0.1"),
])
def test_dropout_out_of_range(value, error, message):
    for make in (lambda: le.LinformerLM(10, 32, 64, 1, k=16, heads=4, dropout=value),
                 lambda: le.FullSelfAttention(32, heads=4, dropout=value),
                 lambda: CausalLinformerSelfAttention(32, 64, k=16, dropout=value)):
        raises(error, message, make)


def test_exact_dropout_has_no_reference_to_match_in_the_causal_linformer():
    raises(ValueError, "exact_dropout: True has no effect with causal=True (the causal Linformer has no reference "
           "whose dropout masks it could match); leave it at False", stack, causal=True, exact_dropout=True)
    stack(causal=True, attention="full", exact_dropout=True)   # causal full attention has an explicit path
