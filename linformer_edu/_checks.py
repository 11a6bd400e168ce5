"""Checks of user input, shared by the modules. Each error names the argument, the value and what is allowed.

A wrong type is a `TypeError`, a wrong value a `ValueError`, never an `assert`: `python -O` strips asserts, and
users deserve the message.
"""
import math

import torch


def check_positive_int(name, value):
    check_type(name, value, int, "a positive int")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return value


def check_sampling(temperature, top_k):
    """The options for drawing a character: temperature >= 0 (0 = the most likely; NaN refused), top_k None or >= 1."""
    check_number("temperature", temperature, low=0, what="a number >= 0 (0 = always the most likely character)")
    if top_k is not None and check_type("top_k", top_k, int, "None or a positive int") < 1:
        raise ValueError(f"top_k: expected None or a positive int, got {top_k!r}")


def check_bool(name, value):
    """A flag: True or False, nothing that merely looks like one ('no' is truthy, so it would turn the flag on)."""
    return check_type(name, value, bool, "True or False")


def check_dropout(dropout):
    """A dropout probability: a number in [0, 1) (1 would drop everything)."""
    return check_number("dropout", dropout, low=0, high=1, high_open=True)


def check_choice(name, value, allowed):
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}: got {value!r}, expected one of {choices}")
    return value


def check_clock(clock, device):
    """A stopwatch's clock: 'wall' (elapsed time), or 'thread' (CPU time of the calling thread), which measures
    the whole work only when it all runs on that thread: on the CPU, with torch.set_num_threads(1)."""
    check_choice("clock", clock, ("wall", "thread"))
    if clock == "thread" and torch.device(device).type != "cpu":
        raise ValueError(f"clock: got 'thread' with device={str(device)!r}, expected device 'cpu' (a GPU's work "
                         "is not CPU time; use clock='wall' there)")
    if clock == "thread" and torch.get_num_threads() != 1:
        raise ValueError(f"clock: got 'thread' with {torch.get_num_threads()} torch threads, expected 1 (call "
                         "torch.set_num_threads(1) first: the other threads' work is not on this thread's clock)")
    return clock


def check_heads(dim, heads, dim_head, *, dim_head_option=True):
    """The per-head width: dim_head if given, else dim // heads (which must divide evenly).

    dim_head_option: whether the caller takes a dim_head, so the error may suggest passing one.
    """
    check_positive_int("dim", dim)
    check_positive_int("heads", heads)
    if dim_head is not None:
        return check_positive_int("dim_head", dim_head)
    if dim % heads:
        raise ValueError(f"heads: dim={dim} is not divisible by heads={heads}; choose heads among the divisors of "
                         f"{dim}" + (" or pass dim_head" if dim_head_option else ""))
    return dim // heads


def check_last_dim(name, x, dim, dtype=None):
    """x: a floating-point tensor (batch, length, dim). With `dtype` (the layer's weights'), x must have it too,
    unless torch.autocast is on for x's device (then the layers cast their inputs themselves)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point() or (dtype is not None and x.dtype != dtype and not autocast_on(x.device.type)):
        want = "a floating-point tensor" if dtype is None else f"a tensor of {dtype} (the dtype of the weights)"
        raise TypeError(f"{name}: expected {want}, got {x.dtype}")
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"{name}: expected shape (batch, length, {dim}), got {tuple(x.shape)}")
    return x


def check_context(context, x, dim, dtype=None):
    """Keys and values for cross-attention: like x (batch, m, dim), with x's batch size; m may differ from x's n."""
    check_last_dim("context", context, dim, dtype)
    if context.shape[0] != x.shape[0]:
        raise ValueError(f"context: expected batch size {x.shape[0]} (that of x), got {context.shape[0]}")
    return context


def autocast_on(device_type):
    """Whether torch.autocast is on for this device type (then a layer's inputs may differ from its weights' dtype)."""
    if hasattr(torch, "get_autocast_dtype"):                          # torch >= 2.4
        return torch.is_autocast_enabled(device_type)
    return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def check_length(name, length, seq_len):
    if length > seq_len:
        raise ValueError(f"{name}: length {length} is longer than seq_len={seq_len}; "
                         f"pass at most {seq_len} positions or build the model with a larger seq_len")


def check_mask(mask, batch, length):
    """A padding mask: bool of shape (batch, length), True = keep."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"mask: expected a bool tensor (True = keep), got {got}")
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"mask: expected shape ({batch}, {length}) = (batch, length of keys), "
                         f"got {tuple(mask.shape)}")
    return mask


# Numbers with bounds, and counts that may be zero (the trainer's settings, the sampler's lengths).

def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False, what=None):
    """A finite int or float in [low, high] (an open end excludes its bound; None = unbounded), returned as given.

    TypeError for a non-number (a bool included), ValueError for NaN, infinity or a value out of range. `what`
    describes what is allowed in the message; by default it is built from the bounds: "a number >= 0 and < 1".
    """
    if what is None:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        what = "a number " + " and ".join(part for part in (lo, hi) if part)
    check_type(name, value, (int, float), what)
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return value


def check_count(name, value):
    """An int >= 0 (a number of steps or characters, a seed): TypeError for a non-int or bool, ValueError below 0."""
    check_type(name, value, int, "an int >= 0")
    if value < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------------------------
# Types, projected lengths and token ids: shared by the model, causal, masked-LM, data and explorer modules

def check_type(name, value, types, allowed):
    """`value` must be an instance of `types` (a bool is no int or float unless bool is listed), else TypeError.

    `allowed` says what is expected, in words ("a positive int"): the same words the caller's ValueError uses.
    """
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise TypeError(f"{name}: expected {allowed}, got {value!r} of type {type(value).__name__}")
    return value


def check_k(k, seq_len, name="k"):
    """A number of positions bounded by seq_len — the projected length k, a per-layer k[i], a chunk size."""
    check_positive_int(name, k)
    if k > seq_len:
        symbol = name.split("[")[0]   # k[1] is bounded as k is
        raise ValueError(f"{name}: got {k}, expected 1 <= {symbol} <= seq_len={seq_len}")
    return k


def check_token_ids(name, ids, num_tokens, bound="num_tokens"):
    """Token ids: an integer tensor (batch, length), every id in [0, num_tokens); `bound` names that limit."""
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype == torch.bool \
            or ids.is_complex():
        got = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"{name}: expected a tensor of integer token ids, got {got}")
    if ids.dtype not in (torch.int64, torch.int32):   # nn.Embedding takes no other (nor does the reference)
        raise TypeError(f"{name}: expected token ids of torch.int64 or torch.int32, got {ids.dtype}; "
                        f"convert them with .long()")
    if ids.dim() != 2:
        raise ValueError(f"{name}: expected shape (batch, length), got {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_tokens):
        raise ValueError(f"{name}: token ids must lie in [0, {num_tokens}) = [0, {bound}); "
                         f"got values from {int(ids.min())} to {int(ids.max())}")
    return ids
