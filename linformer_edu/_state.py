"""State that code must put back as it found it: a model's train/eval mode, the random streams of each device, and
torch's CPU thread count.

Used wherever the package briefly changes one of them: sampling, evaluation, the leak test and the explorer run a model
in eval mode; reversible layers replay a block's random draws; checkpoints save and restore every stream; the explorer
computes its small maps on one thread.
"""
from contextlib import contextmanager

import torch


def mps_available() -> bool:
    """True when this PyTorch can use an Apple GPU (MPS)."""
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


@contextmanager
def eval_mode(model):
    """Run `model` in eval mode (no dropout) inside the block, then put its previous mode back, even on error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def device_rng_states() -> dict:
    """The random states of torch's CPU generator and of every CUDA / MPS device in use (what dropout draws from)."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if mps_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def set_device_rng_states(states: dict) -> None:
    """Put back what `device_rng_states` captured; a device absent from `states` (or from this machine) is left alone."""
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states and mps_available():
        torch.mps.set_rng_state(states["mps"])


@contextmanager
def replayed_rng(states: dict):
    """Inside the block every device draws as it did when `states` was captured; afterwards, as if nothing ran."""
    saved = device_rng_states()
    set_device_rng_states(states)
    try:
        yield
    finally:
        set_device_rng_states(saved)


@contextmanager
def one_thread():
    """Run tiny tensor work on one CPU thread, then put the previous count back: many tiny ops gain nothing from
    more threads, and on a busy machine threads that wait for each other can turn a 0.02 ms matmul into 40 ms."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
