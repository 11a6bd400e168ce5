"""What every notebook does first: seed, pick a device, and know whether it runs at full or test size.

The tests set ``LINFORMER_EDU_QUICK=1``; notebooks then shrink their heavy parts with ``pick(full, quick)``
instead of anyone editing cells.
"""
import os
import random

import torch

QUICK = os.environ.get("LINFORMER_EDU_QUICK", "").strip().lower() not in ("", "0", "false", "no", "off")


def pick(full, quick):
    """``quick`` under the tests (LINFORMER_EDU_QUICK=1), else ``full``."""
    return quick if QUICK else full


def _mps_available():
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(device: str = "auto") -> torch.device:
    """CUDA if present, then Apple MPS, then CPU; or the device named (a ValueError when it is not there)."""
    if device != "auto":
        try:
            named = torch.device(device)
        except RuntimeError:   # torch's message lists two dozen backends; name the ones that make sense here
            raise ValueError(f"device: got {device!r}, expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
        if named.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: got {device!r}, but this PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")
        if named.type == "mps" and not _mps_available():
            raise ValueError(f"device: got {device!r}, but this PyTorch sees no Apple GPU (MPS); use 'auto' or 'cpu'")
        return named
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS


def setup(seed: int = 0, device: str = "auto") -> torch.device:
    """Seed everything and return the device this notebook will use."""
    seed_everything(seed)
    return pick_device(device)
