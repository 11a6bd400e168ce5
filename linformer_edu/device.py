"""Where a model runs and in what precision: the device to pick, and the mixed-precision settings for it.

    device = pick_device()                      # CUDA if there is one, then Apple's MPS, then the CPU
    amp = amp_settings(device)                  # AmpSettings(dtype=None, use_scaler=False) on CPU and MPS
"""
from typing import NamedTuple

import torch

from ._state import mps_available

DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def parse_device(device: str) -> torch.device:
    """The torch.device a name such as 'cpu', 'cuda:1' or 'mps' stands for; a ValueError naming the choices else."""
    try:
        return torch.device(device)
    except RuntimeError:   # torch's message lists two dozen backends; name the ones that make sense here
        raise ValueError(f"device: got {device!r}, expected {DEVICES}") from None


def pick_device(device: str = "auto") -> torch.device:
    """CUDA if present, then Apple MPS, then CPU; or the device named (a ValueError when it is not there)."""
    if device != "auto":
        named = parse_device(device)
        if named.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: got {device!r}, but this PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
        if named.type == "mps" and not mps_available():
            raise ValueError(f"device: got {device!r}, but this PyTorch sees no Apple GPU (MPS); use 'auto' or 'cpu'")
        return named
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


class AmpSettings(NamedTuple):
    """How to run the forward pass: autocast to `dtype` (None = full float32), and whether to scale the loss."""
    dtype: torch.dtype | None
    use_scaler: bool


def native_bf16(device: torch.device | str = "cuda") -> bool:
    """Whether a CUDA GPU computes in bf16 natively: compute capability 8.0 (Ampere) and later.

    Not `torch.cuda.is_bf16_supported()`: by default (`including_emulation=True`) it says True on a T4 (7.5), where
    bf16 is only emulated and slow, and torch before PR #148322 has no argument to ask otherwise.
    """
    return torch.cuda.get_device_capability(device) >= (8, 0)


def amp_settings(device: torch.device | str, enabled: bool = True) -> AmpSettings:
    """Mixed precision for a device: bf16 on CUDA GPUs that compute it natively (Ampere and later), else fp16 with
    a GradScaler (a T4: fast fp16, only emulated bf16; fp16's small range needs the loss scaled up so small
    gradients do not underflow to zero). CPU and MPS train in float32.

    device: the torch.device the model runs on (or its name: 'cuda' is the current GPU, 'cuda:1' another one).
    """
    device = parse_device(device) if isinstance(device, str) else device
    if not isinstance(device, torch.device):
        raise TypeError(f"device: expected a torch.device or a name such as 'cuda', got {device!r} of type "
                        f"{type(device).__name__}")
    if not enabled or device.type != "cuda":
        return AmpSettings(None, False)
    pick_device(str(device))   # a ValueError where this PyTorch sees no CUDA GPU: there is no capability to ask
    return AmpSettings(torch.bfloat16, False) if native_bf16(device) else AmpSettings(torch.float16, True)
