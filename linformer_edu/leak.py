"""Does a model peek at the future? A black-box test for causality.

A next-token model must compute its output at position ``t`` from positions ``0..t`` only. The test here
does not read the code; it runs the model twice:

    x   = a random input of length n                                  # (b, n) tokens or (b, n, dim) floats
    x'  = x with every position after t replaced by something else    # same shape, equal at positions <= t
    change(t) = max | model(x)[:, :t+1] - model(x')[:, :t+1] |         # should be exactly 0 for a causal model

and repeats it for several cut points ``t``. A causal model gives a change of exactly zero (the same numbers
go into the same arithmetic); a bidirectional one, such as the Linformer's projection of keys and values
along the sequence (``E K`` mixes *all* positions into every projected key), moves by far more than
floating-point noise.

    report = leaks_future(model, seq_len=128)    # token model: int inputs drawn from its embedding size
    report.leaks, report.max_change              # bool, {t: largest change at positions <= t}
    if leaks_future(layer, 64, dim=32): ...      # a report is truthy when it leaks
"""
import numbers
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import check_count, check_number, check_positive_int, check_type
from ._state import eval_mode


@dataclass
class LeakReport:
    """What ``leaks_future`` measured: per cut point ``t``, how far outputs at positions ``<= t`` moved."""
    positions: list          # the cut points t that were probed
    max_change: dict         # t -> largest |change| of any output at positions <= t
    profile: dict = field(repr=False)  # t -> (n,) largest |change| at each position (for plots)
    tolerance: float = 1e-5

    @property
    def leaks(self) -> bool:
        """True when some output at or before a cut point moved by more than ``tolerance``."""
        return any(change > self.tolerance for change in self.max_change.values())

    @property
    def worst(self) -> float:
        return max(self.max_change.values())

    def __bool__(self) -> bool:
        return self.leaks


def _probe_kind(model, num_tokens, dim):
    """('tokens', vocab size) or ('floats', feature size): from the arguments, else from the model's layers."""
    if num_tokens is not None and dim is not None:
        raise ValueError(f"num_tokens, dim: give num_tokens (token model) or dim (float inputs), not both; got "
                         f"num_tokens={num_tokens!r} and dim={dim!r}")
    if num_tokens is not None:
        return "tokens", check_positive_int("num_tokens", num_tokens)
    if dim is not None:
        return "floats", check_positive_int("dim", dim)
    for module in model.modules():  # the first layer that meets the input tells us what the input is
        if isinstance(module, nn.Embedding):
            return "tokens", module.num_embeddings
        if isinstance(module, nn.Linear):
            return "floats", module.in_features
    raise ValueError("model: cannot tell what input it takes (no Embedding or Linear layer); pass num_tokens= for "
                     "a token model or dim= for float inputs of shape (batch, n, dim)")


def _first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def leaks_future(model, seq_len, *, positions=None, num_tokens=None, dim=None, batch=2,
                 tolerance=1e-5, seed=0, device=None) -> LeakReport:
    """Perturb everything after position ``t`` and measure how much the outputs at positions ``<= t`` move.

    model:      maps (batch, seq_len) int tokens, or (batch, seq_len, dim) floats (given in the dtype of its
                parameters, e.g. bfloat16), to (batch, seq_len, ...).
    seq_len:    length of the probe sequences.
    positions:  cut points t to probe (default: five spread over the sequence, first and last included); an
                empty list is refused — probing nothing would call every model causal.
    num_tokens / dim: the input kind; by default read from the model's first Embedding or Linear layer.
    batch:      probe sequences per forward pass (>= 1).
    tolerance:  largest change still called "no leak" (a causal model gives exactly 0).
    The model is probed in eval mode (dropout off) and put back into the mode it was in.
    """
    allowed = "an int >= 2 (a future needs two positions)"
    if check_type("seq_len", seq_len, int, allowed) < 2:
        raise ValueError(f"seq_len: expected {allowed}, got {seq_len!r}")
    if positions is None:
        spread = (0, seq_len // 4, seq_len // 2, (3 * seq_len) // 4, seq_len - 2)
        positions = sorted({min(t, seq_len - 2) for t in spread})   # short sequences: no cut past seq_len - 2
    allowed = f"cut points in [0, seq_len - 2] = [0, {seq_len - 2}], so that some future follows each"
    if isinstance(positions, (str, bytes)) or not hasattr(positions, "__iter__"):
        raise TypeError(f"positions: expected a list of {allowed}, got {positions!r}")
    positions = list(positions)
    if not positions:
        raise ValueError(f"positions: expected at least one of the {allowed}; got [], which would probe nothing "
                         f"and call any model causal")
    positions = [int(check_type("positions", t, numbers.Integral, f"a list of {allowed}")) for t in positions]
    for t in positions:
        if not 0 <= t <= seq_len - 2:
            raise ValueError(f"positions: expected {allowed}, got {t}")
    check_positive_int("batch", batch)
    check_number("tolerance", tolerance, low=0)
    check_count("seed", seed)
    kind, size = _probe_kind(model, num_tokens, dim)
    if kind == "tokens" and size < 2:   # found by the property test: torch.randint(1, 1) failed inside
        raise ValueError(f"{'model' if num_tokens is None else 'num_tokens'}: a vocabulary of {size} token id "
                         f"leaves no later token to change; the leak test needs at least 2")
    param = next(model.parameters(), None)
    if device is None:
        device = param.device if param is not None else torch.device("cpu")
    # float inputs take the model's dtype (a bf16 layer cannot multiply float32); token ids stay integers
    dtype = param.dtype if param is not None and param.is_floating_point() and kind == "floats" else None
    gen = torch.Generator().manual_seed(seed)

    def fresh(shape_n):  # a random input of length shape_n, made on the CPU so it is the same everywhere
        if kind == "tokens":
            return torch.randint(0, size, (batch, shape_n), generator=gen)
        return torch.randn(batch, shape_n, size, generator=gen)

    with eval_mode(model):
        x = fresh(seq_len)                                        # (b, n) or (b, n, dim)
        base = _first_output(model(x.to(device, dtype))).float()  # (b, n, ...)
        if base.shape[:2] != (batch, seq_len):
            raise ValueError(f"model: its output must start with (batch, seq_len) = {(batch, seq_len)}, "
                             f"got shape {tuple(base.shape)}")
        max_change, profile = {}, {}
        for t in positions:
            other = x.clone()
            if kind == "tokens":  # shift each future token by 1..size-1: every one really changes
                shift = torch.randint(1, size, (batch, seq_len - t - 1), generator=gen)
                other[:, t + 1:] = (x[:, t + 1:] + shift) % size
            else:
                other[:, t + 1:] = fresh(seq_len - t - 1)
            out = _first_output(model(other.to(device, dtype))).float()  # (b, n, ...)
            diff = (out - base).abs().reshape(batch, seq_len, -1)  # (b, n, features)
            per_position = diff.amax(dim=(0, 2)).cpu()             # (n,)
            profile[t] = per_position
            max_change[t] = per_position[: t + 1].max().item()
    return LeakReport(positions, max_change, profile, tolerance)
