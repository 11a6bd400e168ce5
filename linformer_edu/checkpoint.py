"""Training checkpoints: everything a run needs to continue exactly, written whole or not at all, and read back checked.

    save_checkpoint("runs/lin32/ckpt.pt", model=..., optimizer=..., scaler=..., config=..., vocab=..., step=...,
                    rng=capture_rng(batches), history=..., elapsed=..., tokens=...)
    state = read_checkpoint("runs/lin32")              # the dict, config and vocab rebuilt, checked to be ours
    model, vocab, config = load_checkpoint("runs/lin32")   # the trained model, in eval mode

A checkpoint holds the model, optimizer and grad scaler, the config and vocabulary, the SHA-256 of the text it
was trained on, the step, clock and token count, the history, and the random states: Python's, torch's CPU
generator, the batch generator, and the CUDA or MPS generators in use. It is written to a temporary file, synced to
disk and renamed, so a crash never leaves half a file, and it carries the SHA-256 of its own contents (every
tensor's bytes and every other value), checked on every read, so a changed bit is an error, not a different model.
A corrupt, foreign or mismatched checkpoint raises `CheckpointError` saying what is wrong.

Version 1 checkpoints (before the checksums) are still read, with a warning that their contents cannot be
verified: they were written by the same atomic save, and refusing them would throw away trained runs. Resuming
one compares the corpus by its path, as version 1 did; the next save writes version 2.
"""
import dataclasses
import hashlib
import random
import warnings
from pathlib import Path

import torch

from ._files import check_writable, write_atomically
from ._state import device_rng_states, set_device_rng_states
from .config import TrainConfig, build_model, num_tokens_for
from .data import CharVocab
from .device import pick_device

CHECKPOINT = "ckpt.pt"   # the file's name in a run folder
METRICS = "metrics.json"   # and the summary beside it
FORMAT = "linformer_edu.train checkpoint"
VERSION = 2             # 2: with the checksum and the corpus's SHA-256; 1 is read with a warning
KEYS = ("config", "vocab", "model", "optimizer", "scaler", "step", "elapsed", "tokens", "rng", "history")
KEYS_SINCE_2 = ("sha256", "corpus_sha256")

# Changing these when resuming would change what is trained; the rest (budget, evaluation, device) may change.
# The corpus is not among them: it is compared by its text's SHA-256, so the same file under another path is fine.
FIXED_ON_RESUME = ("val_fraction", "model", "k", "dim", "depth", "heads", "seq_len", "dropout",
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

def content_sha256(state: dict) -> str:
    """SHA-256 of everything in `state`, in order: each tensor's dtype, shape and bytes, each other value's repr.

    Computed over the state before it is saved and again after it is loaded: the two agree unless a bit changed.
    """
    digest = hashlib.sha256()

    def feed(value):
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)                     # (numel,)
            digest.update(f"tensor {tensor.dtype} {tuple(value.shape)}\n".encode())
            digest.update(tensor.view(torch.uint8).numpy())                            # its bytes, any dtype
        elif isinstance(value, dict):
            digest.update(f"dict {len(value)}\n".encode())
            for key, item in value.items():
                feed(key)
                feed(item)
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__} {len(value)}\n".encode())
            for item in value:
                feed(item)
        else:   # str, int, float (repr round-trips exactly), bool, None
            digest.update(f"{type(value).__name__} {value!r}\n".encode())

    feed(state)
    return digest.hexdigest()


def save_checkpoint(path, *, model, optimizer, scaler, config: TrainConfig, vocab: CharVocab, corpus_sha256: str,
                    step: int, rng: dict, history: dict, elapsed: float, tokens: int) -> Path:
    """Write everything needed to resume (or to load the model) to `path`, atomically, with the SHA-256 of its
    contents. `corpus_sha256` is the SHA-256 of the training text (`text_sha256`). Returns the path."""
    state = {
        "format": FORMAT, "version": VERSION,
        "config": dataclasses.asdict(config), "vocab": vocab.to_dict(), "corpus_sha256": corpus_sha256,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "step": step, "elapsed": elapsed, "tokens": tokens, "rng": rng, "history": history,
    }
    state["sha256"] = content_sha256(state)   # last: it covers everything above
    return write_atomically(path, lambda tmp: torch.save(state, tmp))


def text_sha256(text: str) -> str:
    """The SHA-256 of a text's UTF-8 bytes: how a checkpoint knows the text it was trained on."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_checkpoint(path) -> dict:
    """The checkpoint's contents (tensors on the CPU) as a dict, checked to be a linformer_edu training checkpoint
    whose contents match their checksum.

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
    if type(state.get("version")) is not int or state["version"] not in (1, VERSION):
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')!r}; this linformer_edu "
                              f"reads versions 1 and {VERSION}")
    missing = [key for key in KEYS + (KEYS_SINCE_2 if state["version"] >= 2 else ()) if key not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete: it lacks {', '.join(missing)}")
    if state["version"] == 1:
        warnings.warn(f"{path} is a version 1 checkpoint, written before checkpoints carried a checksum: it is "
                      f"read without checking its contents, and resuming it compares the corpus by its path",
                      stacklevel=2)
    elif state.pop("sha256") != content_sha256(state):
        raise CheckpointError(f"{path} is corrupt: its contents do not match the SHA-256 saved with them (a "
                              f"changed bit on the disk or in a copy); delete it and train again, or use a copy "
                              f"that is intact")
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

def check_resumable(state: dict, config: TrainConfig, vocab: CharVocab, corpus_sha256: str) -> None:
    """CheckpointError unless `state` (from read_checkpoint) was trained with `config`'s setup on the same text:
    the text whose SHA-256 is `corpus_sha256` (its characters `vocab`), wherever the file is now."""
    old, path = state["config"], state["path"]
    fixed = FIXED_ON_RESUME + (("corpus",) if "corpus_sha256" not in state else ())   # version 1: by its path
    changed = [f"{name}: checkpoint {getattr(old, name)!r}, now {getattr(config, name)!r}"
               for name in fixed if getattr(old, name) != getattr(config, name)]
    if changed:
        raise CheckpointError(f"{path} was trained with a different setup; resuming would not continue that run. "
                              f"Differences: {'; '.join(changed)}. Start a new run in another out_dir, or resume "
                              f"with the checkpoint's settings")
    if state["vocab"] != vocab:
        raise CheckpointError(f"{path} was trained on a text with other characters ({len(state['vocab'])} "
                              f"vs {len(vocab)} now): is corpus {config.corpus!r} the same file?")
    if state.get("corpus_sha256", corpus_sha256) != corpus_sha256:
        raise CheckpointError(f"{path} was trained on another text: corpus {config.corpus!r} has SHA-256 "
                              f"{corpus_sha256}, the checkpoint's text had {state['corpus_sha256']} (same "
                              f"characters, other content: was the file changed?); resume on that text, or start "
                              f"a new run")


def check_run_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """Before anything is trained: the checkpoint to resume is there, a run already in `folder` is not written over
    unless `overwrite`, and the folder takes files (OSError naming it if not)."""
    if resume and not (folder / CHECKPOINT).is_file():
        raise FileNotFoundError(f"resume: no checkpoint at {folder / CHECKPOINT}; train once without resume first")
    existing = [name for name in (CHECKPOINT, METRICS) if (folder / name).exists()]
    if existing and not (resume or overwrite):
        raise FileExistsError(f"out_dir: {folder} already holds a run ({', '.join(existing)}); continue it with "
                              f"resume=True (--resume), or replace it with overwrite=True (--overwrite)")
    check_writable(folder)
