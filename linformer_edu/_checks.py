"""Checks of user input, shared by the modules. Each error names the argument, the value and what is allowed.

These are `ValueError`/`TypeError`, never `assert`: `python -O` strips asserts, and users deserve the message.
"""
import torch


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a positive int, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return value


def check_sampling(temperature, top_k):
    """The options for drawing a character: temperature >= 0 (0 = the most likely; NaN refused), top_k None or >= 1."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"temperature: expected a number >= 0 (0 = always the most likely character), "
                         f"got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k: expected None or a positive int, got {top_k!r}")


def check_choice(name, value, allowed):
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}: got {value!r}, expected one of {choices}")
    return value


def check_heads(dim, heads, dim_head):
    """The per-head width: dim_head if given, else dim // heads (which must divide evenly)."""
    check_positive_int("dim", dim)
    check_positive_int("heads", heads)
    if dim_head is not None:
        return check_positive_int("dim_head", dim_head)
    if dim % heads:
        raise ValueError(f"heads: dim={dim} is not divisible by heads={heads}; "
                         f"choose heads among the divisors of {dim} or pass dim_head")
    return dim // heads


def check_last_dim(name, x, dim):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"{name}: expected shape (batch, length, {dim}), got {tuple(x.shape)}")
    return x


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
