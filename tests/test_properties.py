"""Property-based tests (hypothesis): random constructor arguments and inputs, good and bad, for the public API.

Every call either raises a ValueError/TypeError whose message starts with the name of an argument it was given
("k: ...", "k[1]: ...", "model, tokens: ...": the convention of linformer_edu/_checks.py), or returns finite
outputs of the documented shape, with finite gradients in training mode; a causal model leaks exactly 0
(`leaks_future`). Covered: LinformerSelfAttention, Linformer, LinformerLM (causal and not, every option),
TrainConfig, and generate.

Profiles (registered in tests/conftest.py, chosen with the HYPOTHESIS_PROFILE environment variable):
    ci    (default) a few dozen examples per test, derandomized: the same examples on every run and machine
    long  many more examples, randomized; for a local hunt:
          HYPOTHESIS_PROFILE=long python -m pytest -p no:cacheprovider tests/test_properties.py
A failure prints the smallest example hypothesis found; add it as a regular test beside the fix.
"""
import inspect
import math
import re

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

import linformer_edu as le
from linformer_edu.config import TrainConfig, build_model
from linformer_edu.data import CharVocab
from linformer_edu.leak import leaks_future
from linformer_edu.linformer import ATTENTION
from linformer_edu.projections import KINDS, SHARING
from linformer_edu.sample import generate

# "k:", "beta2:", "k[1]:", "model, tokens:", "random_prob + keep_prob:"
NAMES = re.compile(r"^([a-z_][a-z0-9_]*)(\[\d+\])?((, | \+ )([a-z_][a-z0-9_]*))*:")


def names_an_argument(error, arguments):
    """The error is a ValueError/TypeError whose message starts with the name of one of `arguments`."""
    message = str(error)
    assert type(error) in (ValueError, TypeError), f"{type(error).__name__}: {message}"
    match = NAMES.match(message)
    assert match, f"the message does not start with an argument's name: {message!r}"
    named = re.split(r", | \+ ", re.sub(r"\[\d+\]", "", match.group(0)[:-1]))
    assert set(named) <= set(arguments), f"{named} are not among the arguments {sorted(arguments)}: {message!r}"


def parameters(fn):
    return set(inspect.signature(fn).parameters)


FLOATS = st.sampled_from([torch.float32] * 6 + [torch.float64, torch.int64])   # x's dtype: the model's, mostly
BAD_INT = st.sampled_from([0, -1, 2.0, "4", True, None])
BAD_FLAG = st.sampled_from(["no", 1, None, 0.0])
# wrong values, and values right for another kind of model (sharing="none" is wrong for a causal one)
BAD = dict(num_tokens=BAD_INT, dim=BAD_INT, seq_len=BAD_INT, depth=BAD_INT, heads=st.sampled_from([0, 3, 2.0, None]),
           dim_head=BAD_INT, dropout=st.sampled_from([1.0, -0.1, "0.1", None]),
           k=st.sampled_from([0, -1, 2.0, "4", True, None, [1, 1, 1], [2, 0], 13]),
           one_kv_head=st.sampled_from(["no", 1, None, True]), share_kv=st.sampled_from(["yes", 0, True]),
           exact_dropout=st.sampled_from(["no", 1, True]), reversible=st.sampled_from(["no", 1]),
           causal=st.sampled_from(["yes", 1, None]), attention=st.sampled_from(["flash", None, "full"]),
           sharing=st.sampled_from(["heads", None, "none", "layerwise"]),
           projection=st.sampled_from(["pool", 1, "conv", "mean"]))


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def layer_options(draw, stack, lm=False):
    """Constructor arguments of a model that should work — for a layer, or a stack of one of the four kinds
    (Linformer or full attention, causal or not) — then, a third of the time, one of them made wrong."""
    seq_len = draw(st.integers(1, 12))
    attention = draw(st.sampled_from(ATTENTION)) if stack else "linformer"
    causal = draw(st.booleans()) if stack else False
    options = dict(dim=draw(st.sampled_from([4, 8, 12])), seq_len=seq_len, heads=draw(st.sampled_from([1, 2, 4])),
                   dropout=draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])))
    if draw(st.booleans()):
        options["dim_head"] = draw(st.sampled_from([None, 2, 4]))
    projected = attention == "linformer" and not causal
    if projected:   # the projection options, each left at the reference's default now and then
        projection = draw(st.sampled_from(KINDS))
        pooled = projection in ("mean", "conv")
        drawn = dict(projection=projection, sharing=draw(st.sampled_from(SHARING)),
                     one_kv_head=draw(st.booleans()), share_kv=draw(st.booleans()))
        options.update({name: value for name, value in drawn.items() if draw(st.booleans()) or name == "projection"})
    if attention == "linformer":
        if causal:
            one_k = st.integers(1, seq_len)                  # the causal memory: k <= seq_len
        elif pooled:
            one_k = st.sampled_from(divisors(seq_len))       # pooling windows: k divides seq_len
        else:
            one_k = st.integers(1, 16)                       # above seq_len too, as the reference allows
        options["k"] = draw(one_k)
    if stack:
        options.update(depth=draw(st.integers(1, 2)), reversible=draw(st.booleans()), attention=attention,
                       causal=causal)
        if attention == "linformer" and options.get("sharing") != "layerwise" and draw(st.booleans()):
            options["k"] = [draw(one_k) for _ in range(options["depth"])]   # the paper's nonuniform k
    if not (attention == "linformer" and causal):
        options["exact_dropout"] = draw(st.booleans())
    if lm:
        options["num_tokens"] = draw(st.integers(2, 9))   # one token: tests/test_leak.py
    if draw(st.integers(0, 2)) == 0:   # a third of the examples
        cls = le.LinformerLM if lm else le.Linformer if stack else le.LinformerSelfAttention
        name = draw(st.sampled_from(sorted(set(BAD) & parameters(cls))))
        options[name] = draw(BAD[name])
    return options


@st.composite
def inputs(draw, batch_size, seq_len):
    """(n, mask, train): a length n (sometimes one too long), a padding mask or None, and the mode."""
    n = draw(st.integers(0, seq_len + 1 if draw(st.integers(0, 9)) == 0 else seq_len))
    return n, draw(padding_masks(batch_size, n)), draw(st.booleans())


@st.composite
def padding_masks(draw, batch_size, n):
    """None, or a (batch, n) keep-mask: random, with an all-padding first row, or with left padding (under causal
    attention a left-padded position sees no key)."""
    kind = draw(st.sampled_from(["none", "random", "all padding", "left padding"]))
    if kind == "none":
        return None
    mask = torch.ones(batch_size, n, dtype=torch.bool)
    if kind == "random":
        mask = torch.tensor(draw(st.lists(st.booleans(), min_size=batch_size * n, max_size=batch_size * n)),
                            dtype=torch.bool).reshape(batch_size, n)
    else:
        mask[:1, :n if kind == "all padding" else draw(st.integers(0, n))] = False
    return mask


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 5), st.integers(1, 4)),
       causal=st.booleans(), p=st.sampled_from([0.0, 0.3]), fast=st.booleans(), exact_dropout=st.booleans(),
       train=st.booleans(), data=st.data())
def test_attend(shape, causal, p, fast, exact_dropout, train, data):
    b, h, n, d = shape
    mask = data.draw(padding_masks(b, n))
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for _ in range(3))
    keep = None if mask is None else mask[:, None, None, :]                                # (b, 1, 1, n)
    out = le.attend(q, k, v, mask=keep, causal=causal, dropout=torch.nn.Dropout(p).train(train), fast=fast,
                    exact_dropout=exact_dropout)
    assert out.shape == (b, h, n, d) and torch.isfinite(out).all()
    seen = torch.ones(b, 1, n, n, dtype=torch.bool) if keep is None else keep.expand(b, 1, n, n)
    seen = seen.tril() if causal else seen                                                # (b, 1, n, n)
    assert out.masked_select(~seen.any(-1, keepdim=True)).eq(0).all()   # a query that sees no key: 0
    out.square().sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def check_outputs(model, out, shape, mask, train):
    """Finite outputs of the documented shape; in training, finite gradients of a loss over kept positions."""
    assert out.shape == shape and torch.isfinite(out).all()
    if train:
        kept = out if mask is None else out[mask]                 # (positions kept, features)
        loss = kept.square().mean() if kept.numel() else out.sum()
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def run(step, fn, arguments):
    """fn() or None if it raised an error, which must name one of `arguments`. The outcome is recorded as an
    event (pytest --hypothesis-show-statistics counts them): how many examples reached each step."""
    try:
        result = fn()
    except Exception as error:   # anything else than a named ValueError/TypeError fails here
        names_an_argument(error, arguments)
        event(f"{step}: {type(error).__name__} naming {str(error).split(':')[0]}")
        return None
    event(f"{step}: ok")
    return result


@given(options=layer_options(stack=False), batch=st.integers(0, 2), data=st.data())
def test_linformer_self_attention(options, batch, data):
    torch.manual_seed(0)
    layer = run("build", lambda: le.LinformerSelfAttention(**options), parameters(le.LinformerSelfAttention))
    if layer is None:
        return
    n, mask, train = data.draw(inputs(batch, layer.seq_len))
    cross = data.draw(st.booleans())
    x = torch.randn(batch, n, layer.dim).to(data.draw(FLOATS))
    context = torch.randn(batch, n + 1 if n < layer.seq_len else n, layer.dim) if cross else None
    if cross and mask is not None:
        mask = torch.ones(batch, context.shape[1], dtype=torch.bool)
        mask[:1] = False                                             # an all-padding row
    out = run("forward", lambda: layer.train(train)(x, context=context, mask=mask), {"x", "context", "mask"})
    if out is not None:
        check_outputs(layer, out, (batch, n, layer.dim), None, train)


@pytest.mark.parametrize("lm", [False, True], ids=["Linformer", "LinformerLM"])
@given(data=st.data())
def test_linformer_stack_and_lm(lm, data):
    options, batch = data.draw(layer_options(stack=True, lm=lm)), data.draw(st.integers(0, 2))
    cls = le.LinformerLM if lm else le.Linformer
    torch.manual_seed(0)
    model = run("build", lambda: cls(**options), parameters(cls))
    if model is None:
        return
    n, mask, train = data.draw(inputs(batch, model.seq_len))
    if lm:
        x, features = torch.randint(0, model.num_tokens, (batch, n)), model.num_tokens
    else:
        x, features = torch.randn(batch, n, model.dim).to(data.draw(FLOATS)), model.dim
    out = run("forward", lambda: model.train(train)(x, mask=mask), {"x", "mask"})
    if out is not None:
        check_outputs(model, out, (batch, n, features), mask, train)
    if options["causal"] is True and model.seq_len >= 2:
        probe = dict() if lm else dict(dim=model.dim)
        report = run("leak test", lambda: leaks_future(model, model.seq_len, **probe), {"model"})
        one_token = lm and model.num_tokens == 1          # nothing after the cut can change: named, not probed
        assert report is None if one_token else report.worst == 0.0


CONFIG_GOOD = dict(
    model=st.sampled_from(["linformer", "full"]), dim=st.sampled_from([4, 8]), depth=st.integers(1, 2),
    heads=st.sampled_from([1, 2, 4]), seq_len=st.integers(1, 12), dropout=st.sampled_from([0.0, 0.1]),
    objective=st.sampled_from(["next", "mlm"]), batch_size=st.integers(1, 4), lr=st.sampled_from([1e-3, 2e-3]),
    min_lr=st.sampled_from([0.0, 1e-4]), warmup_steps=st.sampled_from([0, 10]),
    weight_decay=st.sampled_from([0.0, 0.1]), beta2=st.sampled_from([0.9, 0.99]), grad_clip=st.sampled_from([0.0, 1.0]), max_steps=st.integers(1, 10),
    minutes=st.sampled_from([None, 1.0]), eval_interval=st.integers(1, 5), eval_iters=st.integers(1, 5),
    val_fraction=st.sampled_from([0.1, 0.5]), amp=st.booleans(), compile=st.just(False), progress=st.booleans(),
    seed=st.sampled_from([0, 3]), device=st.sampled_from(["auto", "cpu"]), corpus=st.just("pydoc"),
    out_dir=st.just(None))
CONFIG_BAD = dict(
    model=st.sampled_from(["lin", None]), k=st.sampled_from([0, 2.0, 13, "4"]), dim=BAD_INT, depth=BAD_INT,
    heads=st.sampled_from([0, 3, "2"]), seq_len=BAD_INT, dropout=st.sampled_from([1.0, -0.1, "0.1"]),
    objective=st.sampled_from(["clm", None]), causal=st.sampled_from(["yes", 1, False]),
    allow_leaky=BAD_FLAG, batch_size=BAD_INT, lr=st.sampled_from([0.0, -1.0, math.nan, "1e-3"]),
    min_lr=st.sampled_from([1.0, -1.0, "1e-4"]), warmup_steps=st.sampled_from([-1, 1.5, None]),
    weight_decay=st.sampled_from([-0.1, None]), beta2=st.sampled_from([1.0, -0.5, "0.9"]),
    grad_clip=st.sampled_from([-1.0, math.nan, math.inf]), max_steps=BAD_INT,
    minutes=st.sampled_from([0.0, -1.0, math.inf, "1"]), eval_interval=BAD_INT, eval_iters=BAD_INT,
    val_fraction=st.sampled_from([0.0, 1.0, math.nan, "0.1"]), amp=BAD_FLAG, compile=BAD_FLAG,
    progress=BAD_FLAG, seed=st.sampled_from([-1, 1.0, True]), device=st.sampled_from(["gpu", 0, "cuda:x"]),
    corpus=st.sampled_from([7, None]), data_dir=st.sampled_from([7, None]), out_dir=st.sampled_from([5, 1.0]))


@st.composite
def config_fields(draw):
    """Fields of a TrainConfig that should work (k <= seq_len, a causal model for "next"), then, half of the
    time, one field made wrong."""
    fields = {name: draw(strategy) for name, strategy in CONFIG_GOOD.items() if draw(st.booleans())}
    fields["seq_len"] = seq_len = fields.get("seq_len", 12)   # tiny, unlike the default 128
    fields["k"] = draw(st.integers(1, min(seq_len, 12)))
    fields["dim"], fields["depth"] = fields.get("dim", 8), fields.get("depth", 1)
    if draw(st.booleans()):
        fields["causal"] = fields.get("objective", "next") == "next"
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(CONFIG_BAD)))
        fields[name] = draw(CONFIG_BAD[name])
    return fields


@given(fields=config_fields())
def test_train_config(fields):
    config = run("build", lambda: TrainConfig(**fields), set(TrainConfig.__dataclass_fields__))
    if config is None:
        return
    torch.manual_seed(0)
    model = build_model(config, 5)
    n = min(config.seq_len, 6)
    check_outputs(model, model(torch.randint(0, 5, (1, n))), (1, n, 5), None, False)
    if config.causal and config.seq_len >= 2:
        assert leaks_future(model, config.seq_len).worst == 0.0


VOCAB = CharVocab("abcde\n")
_MODEL = []


def tiny_causal_lm():
    """One small causal character model for every example (built once: hypothesis reruns the test body)."""
    if not _MODEL:
        torch.manual_seed(0)
        _MODEL.append(le.LinformerLM(len(VOCAB), 8, 6, 1, k=2, heads=2, causal=True))
    return _MODEL[0]


GENERATE_GOOD = dict(prompt=st.text("abcde\n", min_size=1, max_size=8), max_new_chars=st.integers(0, 9),
                     temperature=st.sampled_from([0, 0.5, 1.0, 2.0]), top_k=st.sampled_from([None, 1, 3, 10]))
GENERATE_BAD = dict(prompt=st.one_of(st.text("abcXZ", min_size=1, max_size=3), st.sampled_from(["", None, 5, b"ab"])),
                    max_new_chars=st.sampled_from([-1, 2.0, "3", True]),
                    temperature=st.sampled_from([-1.0, math.nan, math.inf, "1", None]),
                    top_k=st.sampled_from([0, -2, 2.0, "2", True]))


@st.composite
def generate_arguments(draw):
    """Good arguments for `generate`, then, half of the time, one of them made wrong."""
    arguments = {name: draw(strategy) for name, strategy in GENERATE_GOOD.items()}
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(GENERATE_BAD)))
        arguments[name] = draw(GENERATE_BAD[name])
    return arguments


@given(arguments=generate_arguments(), seed=st.one_of(st.none(), st.integers(0, 3)))
def test_generate(arguments, seed):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    text = run("generate", lambda: generate(tiny_causal_lm(), VOCAB, **arguments, generator=generator),
               parameters(generate))
    if text is not None:
        prompt = arguments["prompt"]
        assert text.startswith(prompt) and len(text) == len(prompt) + arguments["max_new_chars"]
        assert set(text) <= set(VOCAB.chars)


def test_names_an_argument_is_strict():
    """The property's own judge: it must refuse messages that break the convention, or it proves nothing."""
    names_an_argument(ValueError("k[1]: got 0"), {"k"})
    names_an_argument(ValueError("model, tokens: give both"), {"model", "tokens"})
    names_an_argument(TypeError("beta2: expected a number"), {"beta2"})
    for error, arguments in [(ValueError("got 0 for k"), {"k"}), (ValueError("q: got 0"), {"k"}),
                             (RuntimeError("k: boom"), {"k"}), (IndexError("k: index 5"), {"k"})]:
        with pytest.raises(AssertionError):
            names_an_argument(error, arguments)
