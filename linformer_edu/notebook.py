"""What every notebook does first: seed, pick a device, and know whether it runs at full or test size.

The tests set ``LINFORMER_EDU_QUICK=1``; notebooks then shrink their heavy parts with ``pick(full, quick)``
instead of anyone editing cells.
"""
import os
import random

import torch

from .device import pick_device

QUICK = os.environ.get("LINFORMER_EDU_QUICK", "").strip().lower() not in ("", "0", "false", "no", "off")


def pick(full, quick):
    """``quick`` under the tests (LINFORMER_EDU_QUICK=1), else ``full``."""
    return quick if QUICK else full


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS


def setup(seed: int = 0, device: str = "auto") -> torch.device:
    """Seed everything and return the device this notebook will use."""
    seed_everything(seed)
    return pick_device(device)
