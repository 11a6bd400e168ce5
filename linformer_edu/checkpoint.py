"""Training checkpoints: everything a run needs to continue exactly, written whole or not at all, and read back checked.

    save_checkpoint("runs/lin32/ckpt.pt", model=..., optimizer=..., scaler=..., config=..., vocab=..., step=...,
                    rng=capture_rng(batches), history=..., elapsed=..., tokens=...)
    state = read_checkpoint("runs/lin32")              # the dict, config and vocab rebuilt, checked to be ours
    model, vocab, config = load_checkpoint("runs/lin32")   # the trained model, in eval mode

A checkpoint holds the model, optimizer and grad scaler, the config and vocabulary, the step, clock and token
count, the history, and the random states: Python's, torch's CPU generator, the batch generator, and the CUDA or
MPS generators in use. It is written to a temporary file, synced to disk and renamed, so a crash never leaves
half a file. A corrupt, foreign or mismatched checkpoint raises `CheckpointError` saying what is wrong.
"""
import dataclasses
import random
from pathlib import Path

import torch

from ._files import write_atomically
from ._state import device_rng_states, set_device_rng_states
from .config import TrainConfig, build_model, num_tokens_for
from .data import CharVocab
from .device import pick_device

CHECKPOINT = "ckpt.pt"   # the file's name in a run folder
FORMAT = "linformer_edu.train checkpoint"
VERSION = 1
KEYS = ("config", "vocab", "model", "optimizer", "scaler", "step", "elapsed", "tokens", "rng", "history")

# Changing these when resuming would change what is trained; the rest (budget, evaluation, device) may change.
FIXED_ON_RESUME = ("corpus", "val_fraction", "model", "k", "dim", "depth", "heads", "seq_len", "dropout",
                   "objective", "causal", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay", "beta2",
                   "grad_clip", "seed")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not ours, or not matching the model or run it should fit."""


# ----------------------------------------------------------------------------------------------------------------
# Random states: what a resumed run must draw from to draw what the uninterrupted run would have

def capture_rng(batch_generator: torch.Generator) -> dict:
    """Python's random state, the batch generator's, and every device's (torch CPU, and CUDA / MPS in use)."""
    return {"python": random.getstate(), "batches": batch_generator.get_state(), **device_rng_states()}


def restore_rng(states: dict, batch_generator: torch.Generator) -> None:
    """Put back what `capture_rng` captured; a device the checkpoint or this machine lacks is left alone."""
    random.setstate(states["python"])
    batch_generator.set_state(states["batches"])
    set_device_rng_states(states)


# ----------------------------------------------------------------------------------------------------------------
# Writing and reading

def save_checkpoint(path, *, model, optimizer, scaler, config: TrainConfig, vocab: CharVocab, step: int,
                    rng: dict, history: dict, elapsed: float, tokens: int) -> Path:
    """Write everything needed to resume (or to load the model) to `path`, atomically. Returns the path."""
    state = {
        "format": FORMAT, "version": VERSION,
        "config": dataclasses.asdict(config), "vocab": vocab.to_dict(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "step": step, "elapsed": elapsed, "tokens": tokens, "rng": rng, "history": history,
    }
    return write_atomically(path, lambda tmp: torch.save(state, tmp))


def read_checkpoint(path) -> dict:
    """The checkpoint's contents (tensors on the CPU) as a dict, checked to be a linformer_edu training checkpoint.

    `path` is the file or the run folder holding ckpt.pt. "config" and "vocab" come back as a TrainConfig and a
    CharVocab; "path" is the file read.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as err:  # torch raises many kinds for a truncated or foreign file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'no detail'}); it may be truncated "
                              f"or corrupt: delete it and train again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a linformer_edu.train checkpoint (it has no "
                              f"'format': {FORMAT!r} entry); load other weights with model.load_state_dict")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')!r}; this linformer_edu "
                              f"reads version {VERSION}")
    missing = [key for key in KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete: it lacks {', '.join(missing)}")
    try:
        state["config"] = TrainConfig(**state["config"])
        state["vocab"] = CharVocab.from_dict(state["vocab"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds a config or vocabulary this version cannot use: {err}") from None
    state["path"] = path
    return state


def load_weights(model, weights: dict, path) -> None:
    """model.load_state_dict(weights), with a CheckpointError naming `path` when they do not fit."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:   # missing or unexpected keys, wrong shapes
        detail = " ".join(str(err).split())
        raise CheckpointError(f"{path}: its weights do not fit the model its config describes ({detail[:400]})") \
            from None


def load_checkpoint(path, device="cpu"):
    """(model, vocab, config) from a checkpoint file or its folder; the model in eval mode on `device`.

    The model is a `LinformerLM` built from the stored config (`build_model`), so `model.seq_len`, `vocab.encode`
    and `config.objective` / `config.causal` tell what it reads and predicts. Raises FileNotFoundError when there
    is no file, CheckpointError when it is unreadable, not a training checkpoint, or its weights do not fit.
    """
    device = pick_device(device) if isinstance(device, str) else torch.device(device)
    state = read_checkpoint(path)
    config, vocab = state["config"], state["vocab"]
    model = build_model(config, num_tokens_for(config, vocab))
    load_weights(model, state["model"], state["path"])
    return model.to(device).eval(), vocab, config


# ----------------------------------------------------------------------------------------------------------------
# Resuming: the checkpoint must belong to the run that asks to continue it

def check_resumable(state: dict, config: TrainConfig, vocab: CharVocab) -> None:
    """CheckpointError unless `state` (from read_checkpoint) was trained with `config`'s setup on `vocab`'s text."""
    old, path = state["config"], state["path"]
    changed = [f"{name}: checkpoint {getattr(old, name)!r}, now {getattr(config, name)!r}"
               for name in FIXED_ON_RESUME if getattr(old, name) != getattr(config, name)]
    if changed:
        raise CheckpointError(f"{path} was trained with a different setup; resuming would not continue that run. "
                              f"Differences: {'; '.join(changed)}. Start a new run in another out_dir, or resume "
                              f"with the checkpoint's settings")
    if state["vocab"] != vocab:
        raise CheckpointError(f"{path} was trained on a text with other characters ({len(state['vocab'])} "
                              f"vs {len(vocab)} now): is corpus {config.corpus!r} the same file?")
