"""What every notebook does first: seed, pick a device, and know whether it runs at full or test size.

The tests set ``LINFORMER_EDU_QUICK=1``; notebooks then shrink their heavy parts with ``pick(full, quick)``
instead of anyone editing cells.
"""
import os
import random

import torch

QUICK = os.environ.get("LINFORMER_EDU_QUICK", "").strip() not in ("", "0")


def pick(full, quick):
    """``quick`` under the tests (LINFORMER_EDU_QUICK=1), else ``full``."""
    return quick if QUICK else full


def pick_device(device: str = "auto") -> torch.device:
    """CUDA if present, then Apple MPS, then CPU; or the device named."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS


def setup(seed: int = 0, device: str = "auto") -> torch.device:
    """Seed everything and return the device this notebook will use."""
    seed_everything(seed)
    return pick_device(device)
