"""linformer_edu.notebook: what every notebook does first. pick (full or quick size), pick_device (CUDA, then MPS,
then CPU, or the device named), setup (seed and device), and how LINFORMER_EDU_QUICK turns the quick size on.

No GPU is needed: which accelerators PyTorch sees is monkeypatched.
"""
import importlib
import random
import re
import types

import pytest
import torch

from linformer_edu import notebook as NB

QUICK_VARIABLE = "LINFORMER_EDU_QUICK"


def exactly(message):
    return "^" + re.escape(message) + "$"


def sees(monkeypatch, *, cuda, mps):
    """Make PyTorch report CUDA and MPS as available or not."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


# ----------------------------------------------------------------------------------------------------------------
# pick


@pytest.mark.parametrize("quick, expected", [(True, "small"), (False, "big")])
def test_pick_gives_the_quick_value_only_under_quick(monkeypatch, quick, expected):
    monkeypatch.setattr(NB, "QUICK", quick)
    assert NB.pick("big", "small") == expected
    assert NB.pick(full=2000, quick=20) == (20 if quick else 2000)


# ----------------------------------------------------------------------------------------------------------------
# pick_device


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"),      # CUDA first, even where MPS is there too
    (True, False, "cuda"),
    (False, True, "mps"),      # then Apple's GPU
    (False, False, "cpu"),     # then the CPU
])
def test_auto_takes_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    sees(monkeypatch, cuda=cuda, mps=mps)
    assert NB.pick_device() == NB.pick_device("auto") == torch.device(expected)


def test_auto_without_an_mps_backend_falls_back_to_the_cpu(monkeypatch):
    """An older PyTorch has no torch.backends.mps at all."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "backends", types.SimpleNamespace())   # torch.backends without an mps entry
    assert NB.pick_device() == torch.device("cpu")


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:1", "mps"])
def test_a_named_device_is_taken_as_named(monkeypatch, name):
    sees(monkeypatch, cuda=True, mps=True)            # a named device wins over what auto would choose
    assert NB.pick_device(name) == torch.device(name)


@pytest.mark.parametrize("name, message", [
    ("cuda", "device: got 'cuda', but this PyTorch sees no CUDA GPU; use 'auto' or 'cpu'"),
    ("cuda:1", "device: got 'cuda:1', but this PyTorch sees no CUDA GPU; use 'auto' or 'cpu'"),
    ("mps", "device: got 'mps', but this PyTorch sees no Apple GPU (MPS); use 'auto' or 'cpu'"),
])
def test_a_named_device_that_is_not_there_is_refused(monkeypatch, name, message):
    sees(monkeypatch, cuda=False, mps=False)
    with pytest.raises(ValueError, match=exactly(message)):
        NB.pick_device(name)
    assert NB.pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "Auto", "", "cuda:x"])
def test_a_bad_device_name_says_what_is_allowed(name):
    with pytest.raises(ValueError, match=exactly(
            f"device: got {name!r}, expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")):
        NB.pick_device(name)


# ----------------------------------------------------------------------------------------------------------------
# setup


def test_setup_seeds_python_and_torch():
    NB.setup(seed=0, device="cpu")
    first = (torch.rand(3), random.random())
    NB.setup(seed=0, device="cpu")
    again = (torch.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and first[1] == again[1]
    NB.setup(seed=1, device="cpu")
    other = (torch.rand(3), random.random())
    assert not torch.equal(first[0], other[0]) and first[1] != other[1]


def test_setup_returns_the_device(monkeypatch):
    assert NB.setup(device="cpu") == torch.device("cpu")
    sees(monkeypatch, cuda=False, mps=True)
    assert NB.setup() == torch.device("mps")                   # default "auto"
    with pytest.raises(ValueError, match=exactly(
            "device: got 'tpu', expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")):
        NB.setup(device="tpu")


# ----------------------------------------------------------------------------------------------------------------
# QUICK, from the environment when the module is imported


@pytest.fixture
def reimport(monkeypatch):
    """reimport(value): QUICK after importing linformer_edu.notebook afresh with LINFORMER_EDU_QUICK=value (None:
    unset). Afterwards the environment is restored and the module imported once more, as it was."""
    def quick_with(value):
        if value is None:
            monkeypatch.delenv(QUICK_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(QUICK_VARIABLE, value)
        return importlib.reload(NB).QUICK

    before = NB.QUICK
    yield quick_with
    monkeypatch.undo()
    assert importlib.reload(NB).QUICK == before


@pytest.mark.parametrize("value, quick", [
    (None, False), ("", False), ("0", False), ("  ", False), (" 0\n", False),   # unset, empty or 0: full size
    ("false", False), ("No", False), ("OFF", False),                            # and the usual words for no
    ("1", True), ("yes", True), ("true", True), (" 1 ", True),                 # anything else: quick
])
def test_quick_comes_from_the_environment(reimport, value, quick):
    assert reimport(value) is quick
    assert NB.pick("full", "quick") == ("quick" if quick else "full")
