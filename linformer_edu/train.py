"""Train a tiny character-level language model: the whole loop in one file, with checkpoints you can resume.

    config = preset("cpu", model="linformer", k=32)       # a TrainConfig; preset("gpu") is sized for a Colab T4
    result = train(config)                                 # -> TrainResult: model, vocab, history, metrics
    model, vocab, config = load_checkpoint("runs/cpu-linformer-k32/ckpt.pt")

or from a shell (writes DIR/ckpt.pt and DIR/metrics.json):

    python -m linformer_edu.train --preset cpu --model linformer --k 32 --minutes 2 --out runs/lin32
    python -m linformer_edu.train --out runs/lin32 --resume --minutes 4          # continue where it stopped

One training step, as the notebook builds it by hand (`train` does exactly this, in this order):

    lr = lr_at(step, config)                               # linear warmup, then cosine decay to min_lr
    x, y = get_batch(train_ids, batch_size, seq_len)       # (b, n) windows of text, y = x shifted by one
    loss = cross_entropy(model(x), y)                      # nats per character; bits per char = loss / ln 2
    loss.backward(); clip_grad_norm_(grad_clip); AdamW step

Around it: a validation loss every `eval_interval` steps (on the same fixed windows each time, so curves and
models compare fairly), a `tqdm` progress bar, an optional callback (`LiveLossPlot` redraws the curves in a
notebook), and a stop when `max_steps` or the `minutes` budget is reached, whichever comes first. Under a time
budget the cosine decay follows the clock, so the learning rate reaches min_lr when the time runs out.

Objectives:
- "next" (default): predict each next character. The model must be causal. A bidirectional model, such as the
  paper's Linformer, projects keys along the sequence and so reads the future (notebook 08, `linformer_edu.leak`):
  its training loss would fall far below what is possible. `TrainConfig(causal=False)` with this objective is
  refused unless `allow_leaky=True` (`--allow-leaky`), which exists only to demonstrate that leak.
- "mlm": the paper's own objective, masked characters (`linformer_edu.mlm`), with a bidirectional model.

Safety:
- Checkpoints hold the model, optimizer, grad scaler, config, vocabulary, the RNG states (Python, torch's CPU
  generator, the batch generator, and the CUDA or MPS generators when there are any), the step and the history.
  They are written to a temporary file, synced to disk and renamed (`os.replace`), so a crash never leaves half
  a file; the file gets the usual permissions (0o666 less the umask).
  Resuming continues *exactly*: N steps, resume, N more steps give the same weights as 2N steps in one go
  (under a step budget; under a time budget the learning rate follows the clock, which never repeats exactly).
- Ctrl-C (KeyboardInterrupt) stops at once, saves a checkpoint and returns what was trained so far.
- A NaN or infinite loss stops training with `NonFiniteLossError`; the last good checkpoint is kept.
- A corrupt, foreign or mismatched checkpoint raises `CheckpointError` saying what is wrong.
- On CUDA: mixed precision, bf16 where the GPU supports it, else fp16 with a GradScaler (`amp_settings`).
"""
import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import mlm
from ._checks import check_positive_int
from ._files import sync_to_disk, temp_file_beside
from .data import CharVocab, corpus_names, get_batch, load_corpus, split
from .linformer import LinformerLM
from .notebook import pick_device

MODELS = ("linformer", "full")
OBJECTIVES = ("next", "mlm")
CHECKPOINT = "ckpt.pt"
METRICS = "metrics.json"
FORMAT = "linformer_edu.train checkpoint"
VERSION = 1


# ----------------------------------------------------------------------------------------------------------------
# Configuration

@dataclass
class TrainConfig:
    """Everything that defines a training run. Start from `preset("cpu")` or `preset("gpu")` and change fields."""
    # data
    corpus: str = "pydoc"            # a corpus name (linformer_edu.data.corpus_names()) or a text file's path
    data_dir: str = "data"           # where downloaded corpora are kept
    val_fraction: float = 0.1        # the last 10% of the text is the validation set
    # model: LinformerLM(len(vocab), dim, seq_len, depth, k=k, heads=heads, attention=model, causal=causal)
    model: str = "linformer"         # "linformer" or "full" (softmax attention, the baseline)
    k: int = 32                      # projected length (Linformer only)
    dim: int = 128
    depth: int = 4
    heads: int = 4
    seq_len: int = 128               # characters of context = training window
    dropout: float = 0.0
    objective: str = "next"          # "next" character, or "mlm" (masked characters, the paper's objective)
    causal: bool | None = None       # None: causal for "next", bidirectional for "mlm"
    allow_leaky: bool = False        # let a bidirectional model train on "next" (notebook 08's demonstration)
    # optimisation: AdamW, linear warmup, cosine decay to min_lr, gradient clipping
    batch_size: int = 16
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0           # max gradient norm; 0 turns clipping off
    # budget: whichever comes first
    max_steps: int = 2000
    minutes: float | None = None     # wall-clock budget (training + evaluation), None = no limit
    # evaluation
    eval_interval: int = 250         # steps between validation losses (and checkpoints)
    eval_iters: int = 20             # batches per validation estimate
    # system
    device: str = "auto"             # "auto" = CUDA, then MPS, then CPU; or "cpu", "cuda", "cuda:1", "mps"
    amp: bool = True                 # mixed precision on CUDA (see amp_settings); ignored elsewhere
    compile: bool = False            # torch.compile the model (minutes of compiling: worth it for long runs)
    seed: int = 0
    progress: bool = True            # show a tqdm progress bar
    out_dir: str | None = None       # where ckpt.pt and metrics.json go; None = keep nothing on disk

    def __post_init__(self):
        for name in ("corpus", "data_dir", "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name}: expected a str, got {getattr(self, name)!r}")
        _choice("model", self.model, MODELS)
        _choice("objective", self.objective, OBJECTIVES)
        for name in ("k", "dim", "depth", "heads", "seq_len", "batch_size", "max_steps", "eval_interval",
                     "eval_iters"):
            check_positive_int(name, getattr(self, name))   # TypeError for a non-int, ValueError below 1
        for name in ("warmup_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name}: expected an int >= 0, got {value!r} of type {type(value).__name__}")
            if value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        if self.model == "linformer" and self.k > self.seq_len:
            raise ValueError(f"k: got {self.k}, expected 1 <= k <= seq_len={self.seq_len}")
        if self.dim % self.heads:
            raise ValueError(f"heads: dim={self.dim} is not divisible by heads={self.heads}")
        _number("lr", self.lr, low=0, low_open=True)
        _number("min_lr", self.min_lr, low=0, high=self.lr, what=f"0 <= min_lr <= lr={self.lr}")
        _number("weight_decay", self.weight_decay, low=0)
        _number("grad_clip", self.grad_clip, low=0)
        _number("beta2", self.beta2, low=0, high=1, high_open=True)
        _number("dropout", self.dropout, low=0, high=1, high_open=True)
        _number("val_fraction", self.val_fraction, low=0, high=1, low_open=True, high_open=True)
        if self.minutes is not None:
            _number("minutes", self.minutes, low=0, low_open=True, what="a number > 0, or None for no limit")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise ValueError(f"device: got {self.device!r}, expected 'auto', 'cpu', 'cuda', 'cuda:N' "
                                 f"or 'mps'") from None
        for name in ("allow_leaky", "amp", "compile", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        if self.causal is None:
            self.causal = self.objective == "next"
        if not isinstance(self.causal, bool):
            raise TypeError(f"causal: expected True, False or None, got {self.causal!r}")
        if self.objective == "next" and not self.causal and not self.allow_leaky:
            raise ValueError("causal: a bidirectional model (causal=False) trained on next-character prediction "
                             "reads the character it should predict (see notebook 08); use causal=True, or "
                             "objective='mlm', or pass allow_leaky=True (--allow-leaky) to demonstrate the leak")
        if self.out_dir is not None and not isinstance(self.out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir: expected a path or None, got {self.out_dir!r}")
        if self.out_dir is not None:
            self.out_dir = os.fspath(self.out_dir)

    @property
    def label(self) -> str:
        """A short name for plots and folders: 'full', 'linformer k=32', with ' (mlm)' or ' (leaky)'."""
        name = "full" if self.model == "full" else f"linformer k={self.k}"
        if self.objective == "mlm":
            return name + " (mlm)"
        return name + (" (leaky)" if not self.causal else "")


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}: got {value!r}, expected one of {', '.join(map(repr, allowed))}")


def _number(name, value, *, low=None, high=None, low_open=False, high_open=False, what=None):
    """TypeError unless `value` is an int or float (not a bool); ValueError unless finite and in range."""
    if what is None:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        what = "a number " + " and ".join(part for part in (lo, hi) if part)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected {what}, got {value!r} of type {type(value).__name__}")
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f"{name}: expected {what}, got {value!r}")


PRESETS = {
    # ~2-3 minutes on a 2-core CPU; nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, no dropout) at n = 128.
    "cpu": TrainConfig(dim=128, depth=4, heads=4, seq_len=128, k=32, batch_size=16, lr=2e-3, min_lr=1e-4,
                       warmup_steps=100, max_steps=2000, minutes=2.5, eval_interval=250, eval_iters=20),
    # ~5 minutes on a Colab T4 (fp16 + GradScaler there); nanoGPT's shakespeare_char shape at n = 256.
    "gpu": TrainConfig(dim=384, depth=6, heads=6, seq_len=256, k=64, batch_size=64, lr=1e-3, min_lr=1e-4,
                       warmup_steps=200, dropout=0.2, max_steps=5000, minutes=5.0, eval_interval=250,
                       eval_iters=40),
}


def preset(name: str = "cpu", **changes) -> TrainConfig:
    """The named preset ("cpu" or "gpu") with some fields changed: preset("cpu", model="full", minutes=1)."""
    _choice("name", name, tuple(PRESETS))
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise TypeError(f"preset: unknown TrainConfig field(s) {', '.join(unknown)}; the fields are "
                        f"{', '.join(f.name for f in dataclasses.fields(TrainConfig))}")
    base = dataclasses.asdict(PRESETS[name])
    if "objective" in changes or "allow_leaky" in changes:
        base["causal"] = None   # let the objective choose again, unless causal is given too
    return TrainConfig(**{**base, **changes})


# ----------------------------------------------------------------------------------------------------------------
# Pieces of the loop: model, optimizer, learning rate, mixed precision, loss

def build_model(config: TrainConfig, num_tokens: int) -> LinformerLM:
    """The LinformerLM that `config` describes, for `num_tokens` token ids (characters, plus [MASK] for mlm)."""
    return LinformerLM(num_tokens, config.dim, config.seq_len, config.depth, k=config.k, heads=config.heads,
                       dropout=config.dropout, attention=config.model, causal=config.causal)


def num_tokens_for(config: TrainConfig, vocab: CharVocab) -> int:
    """Embedding size: one id per character, and one more for [MASK] under the masked-LM objective."""
    return len(vocab) + 1 if config.objective == "mlm" else len(vocab)


def make_optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (weights, embeddings, projections), none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = next(model.parameters()).device.type == "cuda"   # one kernel for all parameters on a GPU
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, config.beta2), fused=fused)


def lr_at(step: int, config: TrainConfig, progress: float | None = None) -> float:
    """The learning rate at `step`: a linear warmup over warmup_steps times a cosine from lr down to min_lr.

    progress: the fraction of the run done, in [0, 1]; default step / max_steps. Under a time budget the trainer
    passes max(step / max_steps, elapsed / budget), so the decay ends when the time does.
    """
    progress = min(1.0, step / config.max_steps if progress is None else progress)
    cosine = config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    return warmup * cosine


class AmpSettings(NamedTuple):
    """How to run the forward pass: autocast to `dtype` (None = full float32), and whether to scale the loss."""
    dtype: torch.dtype | None
    use_scaler: bool


def amp_settings(device_type: str, bf16_supported: bool | None = None, enabled: bool = True) -> AmpSettings:
    """Mixed precision for a device: bf16 on CUDA GPUs that support it (Ampere and later), else fp16 with a
    GradScaler (a T4: fast fp16, no fast bf16; fp16's small range needs the loss scaled up so small gradients do
    not underflow to zero). CPU and MPS train in float32.

    bf16_supported: None asks `torch.cuda.is_bf16_supported()`; pass True/False to decide for another GPU.
    """
    if not enabled or device_type != "cuda":
        return AmpSettings(None, False)
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return AmpSettings(torch.bfloat16, False) if bf16_supported else AmpSettings(torch.float16, True)


def batch_loss(model, x, y, config: TrainConfig, collator=None, generator=None):
    """The training loss of one batch x, y (b, n), in nats per predicted character."""
    if config.objective == "mlm":   # hide some characters of x and score the model on those only
        inputs, targets = collator(x, generator=generator)                   # (b, n), (b, n)
        return mlm.masked_lm_loss(model(inputs).float(), targets)
    logits = model(x)                                                          # (b, n, V)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())          # mean over b·n characters


@torch.no_grad()
def estimate_loss(model, ids, config: TrainConfig, device, amp: AmpSettings, *, seed: int, collator=None):
    """Mean loss over `eval_iters` batches of `ids`, drawn from `seed`: the same windows every time it is called."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    try:
        for _ in range(config.eval_iters):
            x, y = get_batch(ids, config.batch_size, config.seq_len, generator=generator, device=device)
            with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
                total += batch_loss(model, x, y, config, collator, generator).item()
    finally:
        model.train(was_training)
    return total / config.eval_iters


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints

class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not ours, or not matching the model or run it should fit."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


# Changing these when resuming would change what is trained; the rest (budget, evaluation, device) may change.
FIXED_ON_RESUME = ("corpus", "val_fraction", "model", "k", "dim", "depth", "heads", "seq_len", "dropout",
                   "objective", "causal", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay", "beta2",
                   "grad_clip", "seed")


def _atomic_write(path: Path, write) -> None:
    """write(temporary path), then rename it onto `path`: readers see the old file or the new one, never half.

    The file gets the usual mode (0o666 less the umask), and its bytes are on disk before the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path, ".tmp")
    os.close(fd)
    try:
        write(tmp)
        sync_to_disk(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rng_states(batch_generator) -> dict:
    states = {"python": random.getstate(), "torch": torch.get_rng_state(), "batches": batch_generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()   # dropout on an Apple GPU draws from this one
    return states


def _set_rng_states(states: dict, batch_generator) -> None:
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    batch_generator.set_state(states["batches"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    if "mps" in states and torch.backends.mps.is_available():   # absent from checkpoints written without MPS
        torch.mps.set_rng_state(states["mps"])


def save_checkpoint(path, *, model, optimizer, scaler, config: TrainConfig, vocab: CharVocab, step: int,
                    rng: dict, history: dict, elapsed: float, tokens: int) -> Path:
    """Write everything needed to resume (or to load the model) to `path`, atomically. Returns the path."""
    state = {
        "format": FORMAT, "version": VERSION,
        "config": dataclasses.asdict(config), "vocab": vocab.to_dict(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "step": step, "elapsed": elapsed, "tokens": tokens, "rng": rng, "history": history,
    }
    path = Path(path)
    _atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


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
    missing = [key for key in ("config", "vocab", "model", "optimizer", "scaler", "step", "elapsed", "tokens",
                               "rng", "history") if key not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete: it lacks {', '.join(missing)}")
    try:
        state["config"] = TrainConfig(**state["config"])
        state["vocab"] = CharVocab.from_dict(state["vocab"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds a config or vocabulary this version cannot use: {err}") from None
    state["path"] = path
    return state


def _load_weights(model, weights, path):
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
    _load_weights(model, state["model"], state["path"])
    return model.to(device).eval(), vocab, config


def _check_resumable(old: TrainConfig, new: TrainConfig, path) -> None:
    changed = [f"{name}: checkpoint {getattr(old, name)!r}, now {getattr(new, name)!r}"
               for name in FIXED_ON_RESUME if getattr(old, name) != getattr(new, name)]
    if changed:
        raise CheckpointError(f"{path} was trained with a different setup; resuming would not continue that run. "
                              f"Differences: {'; '.join(changed)}. Start a new run in another out_dir, or resume "
                              f"with the checkpoint's settings")


def _write_metrics(out_dir: Path, metrics: dict) -> None:
    _atomic_write(out_dir / METRICS, lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=2) + "\n"))


# ----------------------------------------------------------------------------------------------------------------
# The loop

@dataclass
class TrainResult:
    """What `train` returns (and passes to the callback while it runs).

    history: {"loss": [training loss of each step], "seconds": [clock at each step],
              "evals": [{"step", "seconds", "train_loss", "val_loss", "val_bpc"}, ...]}
    stopped: "steps" or "time" (budget reached), "interrupted" (Ctrl-C), or None while running.
    """
    model: torch.nn.Module
    vocab: CharVocab
    config: TrainConfig
    history: dict
    metrics: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    stopped: str | None = None
    step: int = 0


def train(config: TrainConfig, *, resume: bool = False, callback=None) -> TrainResult:
    """Train the model `config` describes on its corpus and return a `TrainResult`.

    resume:   continue from out_dir/ckpt.pt (the budget, evaluation and device settings may differ; a different
              model, data or optimizer setting raises CheckpointError).
    callback: called as callback(result) after every evaluation, e.g. `LiveLossPlot()`.

    Seeding, in order (a hand-written loop that follows it gets the same numbers): torch.manual_seed(seed),
    build the model, then draw training batches from torch.Generator().manual_seed(seed).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig (e.g. preset('cpu')), got {type(config).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a function of the TrainResult, got {callback!r}")
    out_dir = None if config.out_dir is None else Path(config.out_dir)
    if resume and out_dir is None:
        raise ValueError("resume: needs config.out_dir, the folder holding the checkpoint to continue")
    device = pick_device(config.device)   # a named CUDA or MPS device that is not there is a ValueError
    amp = amp_settings(device.type, enabled=config.amp)

    # data: text -> vocabulary -> ids -> split, kept on the training device
    text = load_corpus(config.corpus, config.data_dir, progress=config.progress)
    vocab = CharVocab(text)
    train_ids, val_ids = (ids.to(device) for ids in split(vocab.encode(text), config.val_fraction))
    if config.seq_len >= min(len(train_ids), len(val_ids)):
        raise ValueError(f"seq_len: {config.seq_len} does not fit the corpus: {len(train_ids)} training and "
                         f"{len(val_ids)} validation characters; use a shorter seq_len or a longer text")
    collator = mlm.MaskingCollator(vocab_size=len(vocab)) if config.objective == "mlm" else None

    # model, optimizer, scaler, batch generator, seeded in the documented order
    torch.manual_seed(config.seed)
    model = build_model(config, num_tokens_for(config, vocab)).to(device)
    optimizer = make_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=amp.use_scaler)
    batches = torch.Generator().manual_seed(config.seed)
    step, elapsed, tokens = 0, 0.0, 0
    history = {"loss": [], "seconds": [], "evals": []}

    path = None if out_dir is None else out_dir / CHECKPOINT
    if resume:
        if not path.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {path}; train once without resume first")
        state = read_checkpoint(path)
        _check_resumable(state["config"], config, path)
        if state["vocab"] != vocab:
            raise CheckpointError(f"{path} was trained on a text with other characters ({len(state['vocab'])} "
                                  f"vs {len(vocab)} now): is corpus {config.corpus!r} the same file?")
        _load_weights(model, state["model"], path)
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and amp.use_scaler:
            scaler.load_state_dict(state["scaler"])
        _set_rng_states(state["rng"], batches)
        step, elapsed, tokens, history = state["step"], state["elapsed"], state["tokens"], state["history"]

    step_model = torch.compile(model) if config.compile else model
    result = TrainResult(model, vocab, config, history, checkpoint=path, step=step)
    budget = None if config.minutes is None else 60.0 * config.minutes
    train_seconds = 0.0   # time spent in training steps, for tokens per second

    def evaluate():
        val = estimate_loss(step_model, val_ids, config, device, amp, seed=config.seed + 1, collator=collator)
        trn = estimate_loss(step_model, train_ids, config, device, amp, seed=config.seed + 2, collator=collator)
        if not math.isfinite(val):
            raise NonFiniteLossError(f"the validation loss is {val} at step {step}: {_nan_advice(path)}")
        if not math.isfinite(trn):
            raise NonFiniteLossError(f"the training loss, estimated on {config.eval_iters} batches, is {trn} at "
                                     f"step {step}: {_nan_advice(path)}")
        row = {"step": step, "seconds": round(elapsed, 3), "train_loss": trn, "val_loss": val,
               "val_bpc": val / math.log(2)}
        if history["evals"] and history["evals"][-1]["step"] == step:
            history["evals"][-1] = row       # evaluated here before an interruption: replace, don't repeat
        else:
            history["evals"].append(row)

    def finish(stopped, rng):
        last = history["evals"][-1] if history["evals"] else {}
        result.metrics = {
            "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"), "val_bpc": last.get("val_bpc"),
            "steps": step, "tokens_per_s": tokens_this_run / train_seconds if train_seconds else None,
            "device": str(device), "model": config.model, "k": config.k if config.model == "linformer" else None,
            "objective": config.objective, "causal": config.causal, "corpus": config.corpus,
            "seconds": round(elapsed, 1), "params": sum(p.numel() for p in model.parameters()),
            "amp": str(amp.dtype).replace("torch.", "") if amp.dtype else "float32", "stopped": stopped,
        }
        result.stopped, result.step = stopped, step
        if out_dir is not None:
            save_checkpoint(path, model=model, optimizer=optimizer, scaler=scaler, config=config, vocab=vocab,
                            step=step, rng=rng, history=history, elapsed=elapsed, tokens=tokens)
            _write_metrics(out_dir, result.metrics)

    bar = ProgressBar(config, step, elapsed)
    tokens_this_run = 0
    in_step, rng_at_step_start = False, None
    start = time.perf_counter() - elapsed
    try:
        while True:
            out_of_time = budget is not None and elapsed >= budget
            done = step >= config.max_steps or out_of_time
            if done or step % config.eval_interval == 0:
                evaluate()
                bar.show(step, elapsed, history, done=done)
                if done:
                    finish("steps" if step >= config.max_steps else "time", _rng_states(batches))
                    break
                if out_dir is not None and step > 0:   # a good checkpoint to fall back on
                    finish(None, _rng_states(batches))
                if callback is not None:
                    result.step = step
                    callback(result)

            # one training step
            rng_at_step_start, in_step = _rng_states(batches), True
            progress = step / config.max_steps if budget is None else max(step / config.max_steps, elapsed / budget)
            lr = lr_at(step, config, progress)
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            x, y = get_batch(train_ids, config.batch_size, config.seq_len, generator=batches, device=device)
            with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
                loss = batch_loss(step_model, x, y, config, collator, batches)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(f"the training loss is {loss_value} at step {step} (lr {lr:.3g}): "
                                         f"{_nan_advice(path)}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            in_step = False
            now = time.perf_counter()
            train_seconds += now - t0
            elapsed = now - start
            tokens += x.numel()
            tokens_this_run += x.numel()
            history["loss"].append(loss_value)
            history["seconds"].append(round(elapsed, 3))
            if step % 10 == 0:
                bar.show(step, elapsed, history)
    except KeyboardInterrupt:
        # A step cut off half-way is dropped: its batch is drawn again on resume (RNG from the step's start).
        finish("interrupted", rng_at_step_start if in_step else _rng_states(batches))
        where = f"; saved {path} — continue with resume=True (--resume)" if path is not None else ""
        tqdm.write(f"Interrupted at step {step}{where}")
    finally:
        bar.bar.close()
    if callback is not None and result.stopped != "interrupted":
        callback(result)
    return result


class ProgressBar:
    """A tqdm bar over the steps, or over the seconds when a time budget is set (then the clock usually ends the
    run), showing the step, the latest training loss and the latest validation loss and bits per char."""

    def __init__(self, config: TrainConfig, step: int, elapsed: float):
        self.by_time = config.minutes is not None
        total = round(60 * config.minutes) if self.by_time else config.max_steps
        self.bar = tqdm(total=total, initial=min(round(elapsed), total) if self.by_time else step,
                        desc=config.label, unit="s" if self.by_time else "step", disable=not config.progress,
                        dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} {unit} [{elapsed}{postfix}]")

    def show(self, step, elapsed, history, done=False):
        last = history["evals"][-1] if history["evals"] else None
        self.bar.set_postfix({"step": step, "loss": f"{history['loss'][-1]:.3f}" if history["loss"] else "-",
                              "val": f"{last['val_loss']:.3f}" if last else "-",
                              "bits/char": f"{last['val_bpc']:.3f}" if last else "-"}, refresh=False)
        position = min(elapsed, self.bar.total) if self.by_time else step
        if done and self.by_time and elapsed >= self.bar.total:
            position = self.bar.total
        self.bar.update(position - self.bar.n)


def _nan_advice(path):
    kept = f"the last good checkpoint, {path}, was kept" if path is not None and path.is_file() \
        else "no checkpoint was written"
    return (f"training stopped and {kept}. Try a lower learning rate (lr), gradient clipping (grad_clip=1.0), "
            f"or float32 (amp=False)")


# ----------------------------------------------------------------------------------------------------------------
# A live loss plot for notebooks

class LiveLossPlot:
    """A callback for `train` that redraws the loss curves in one notebook figure while training runs.

        plot = LiveLossPlot()
        result = train(config, callback=plot)                  # one run
        for cfg in configs: train(cfg, callback=plot)          # or several: every run it saw, one colour each

    Each run shows its training loss (running mean over `smooth` steps, thin) and its validation loss at each
    evaluation (dots). x="step", or x="seconds" to compare runs under one time budget. Outside IPython it only
    records; `figure()` draws the same picture on demand.
    """

    def __init__(self, x: str = "step", smooth: int = 20, title: str | None = None):
        _choice("x", x, ("step", "seconds"))
        self.x, self.smooth, self.title = x, smooth, title
        self.runs, self.handle = {}, None    # label -> history (the live dict, so it grows as training runs)

    def __call__(self, result: TrainResult):
        self.runs[result.config.label] = result.history
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        import matplotlib.pyplot as plt
        fig = self.figure()
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)

    def figure(self):
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        for i, (label, history) in enumerate(self.runs.items()):
            color = f"C{i}"
            losses = torch.tensor(history["loss"])                            # (steps,)
            xs = torch.arange(1, len(losses) + 1) if self.x == "step" else torch.tensor(history["seconds"])
            w = min(self.smooth, len(losses))
            if w:
                mean = losses.unfold(0, w, 1).mean(1)                          # (steps - w + 1,) running mean
                ax.plot(xs[w - 1:].numpy(), mean.numpy(), color=color, lw=0.9, alpha=0.6)
            evals = history["evals"]
            if evals:
                ax.plot([e[self.x] for e in evals], [e["val_loss"] for e in evals], "o-", color=color, ms=3,
                        label=f"{label}: val {evals[-1]['val_bpc']:.3f} bits/char")
        ax.set_xlabel("step" if self.x == "step" else "seconds of training")
        ax.set_ylabel("loss (nats/char)")
        ax.set_title(self.title or "training (thin: running mean) and validation loss (dots)", fontsize=10)
        ax.grid(True, alpha=0.3)
        if self.runs:
            ax.legend(fontsize=8)
        fig.tight_layout()
        return fig


# ----------------------------------------------------------------------------------------------------------------
# Command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m linformer_edu.train",
        description="Train a character-level LinformerLM; writes OUT/ckpt.pt and OUT/metrics.json.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--corpus", help=f"a corpus name ({', '.join(corpus_names())}); default pydoc")
    source.add_argument("--text", metavar="FILE", help="train on a local UTF-8 text file instead")
    parser.add_argument("--preset", choices=tuple(PRESETS), help="cpu (~2-3 min on a laptop CPU; the default) or "
                                                               "gpu (~5 min on a Colab T4)")
    parser.add_argument("--model", choices=MODELS, help="linformer (default) or full softmax attention")
    parser.add_argument("--k", type=int, help="projected length of the Linformer (preset: cpu 32, gpu 64)")
    parser.add_argument("--minutes", type=float, help="time budget in minutes; 0 = no limit (preset: cpu 2.5, gpu 5)")
    parser.add_argument("--steps", type=int, help="maximum number of steps (preset: cpu 2000, gpu 5000)")
    parser.add_argument("--device", help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--out", metavar="DIR", help="output folder (default runs/PRESET-MODEL[-kK])")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    parser.add_argument("--objective", choices=OBJECTIVES, help="next character (default) or mlm")
    parser.add_argument("--allow-leaky", action="store_true",
                        help="train a bidirectional model on next-character prediction: it reads the future, so "
                             "its loss means nothing (notebook 08's demonstration only)")
    for name, kind in (("seq-len", int), ("dim", int), ("depth", int), ("heads", int), ("batch-size", int),
                       ("lr", float), ("dropout", float), ("eval-interval", int), ("seed", int)):
        parser.add_argument(f"--{name}", type=kind, help="override the preset's value")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA too")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--sample", type=int, default=200, metavar="CHARS",
                        help="print a sample of this many characters at the end (0 = none; default 200)")
    return parser.parse_args(argv)


def config_from_args(args) -> tuple[TrainConfig, bool]:
    """The TrainConfig the command line asks for, and whether to resume."""
    changes = {name: value for name, value in (
        ("corpus", args.corpus or args.text), ("model", args.model), ("k", args.k), ("max_steps", args.steps),
        ("device", args.device), ("objective", args.objective), ("seq_len", args.seq_len), ("dim", args.dim),
        ("depth", args.depth), ("heads", args.heads), ("batch_size", args.batch_size), ("lr", args.lr),
        ("dropout", args.dropout), ("eval_interval", args.eval_interval), ("seed", args.seed),
    ) if value is not None}
    if args.minutes is not None:
        changes["minutes"] = args.minutes or None
    if args.allow_leaky:
        changes.update(causal=False, allow_leaky=True)
    for flag, name, value in ((args.no_amp, "amp", False), (args.compile, "compile", True),
                              (args.no_progress, "progress", False)):
        if flag:
            changes[name] = value
    if args.resume:
        if args.out is None:
            raise ValueError("--resume: give --out DIR, the folder of the run to continue")
        base = dataclasses.asdict(read_checkpoint(Path(args.out) / CHECKPOINT)["config"]) if args.preset is None \
            else dataclasses.asdict(PRESETS[args.preset])
        return TrainConfig(**{**base, **changes, "out_dir": args.out}), True
    config = preset(args.preset or "cpu", **changes)
    if args.out is None:
        suffix = f"-k{config.k}" if config.model == "linformer" else ""
        objective = "-mlm" if config.objective == "mlm" else ("-leaky" if not config.causal else "")
        args.out = os.path.join("runs", f"{args.preset or 'cpu'}-{config.model}{suffix}{objective}")
    return dataclasses.replace(config, out_dir=args.out), False


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        config, resume = config_from_args(args)
        result = train(config, resume=resume)
    except (ValueError, FileNotFoundError, NonFiniteLossError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if not isinstance(err, NonFiniteLossError) else 3
    m = result.metrics
    k = f" k={m['k']}" if m["k"] else ""
    print(f"{m['model']}{k}: {m['steps']} steps in {m['seconds']:.0f} s on {m['device']}, "
          f"{m['tokens_per_s'] or 0:,.0f} tokens/s; train loss {m['train_loss']:.4f}, val loss {m['val_loss']:.4f} "
          f"nats/char = {m['val_bpc']:.4f} bits/char")
    print(f"wrote {Path(config.out_dir) / CHECKPOINT} and {Path(config.out_dir) / METRICS}")
    if args.sample and config.objective == "next" and result.stopped != "interrupted":
        from .sample import generate
        print("-" * 40)
        print(generate(result.model, result.vocab, "\n", args.sample, temperature=0.8, top_k=None,
                       generator=torch.Generator().manual_seed(0)))
    return 130 if result.stopped == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
