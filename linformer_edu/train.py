"""Train a tiny character-level language model: the loop, one small step at a time, and its command line.

    config = preset("cpu", model="linformer", k=32)       # a TrainConfig; preset("gpu") is sized for a Colab T4
    result = train(config)                                 # -> TrainResult: model, vocab, history, metrics
    model, vocab, config = load_checkpoint("runs/cpu-linformer-k32/ckpt.pt")

or from a shell (writes DIR/ckpt.pt and DIR/metrics.json):

    python -m linformer_edu.train --preset cpu --model linformer --k 32 --minutes 2 --out runs/lin32
    python -m linformer_edu.train --out runs/lin32 --resume --minutes 4          # continue where it stopped

One training step, as the notebook builds it by hand (`train_step` does exactly this, in this order):

    lr = lr_at(step, config)                               # linear warmup, then cosine decay to min_lr
    x, y = get_batch(train_ids, batch_size, seq_len)       # (b, n) windows of text, y = x shifted by one
    loss = cross_entropy(model(x), y)                      # nats per character; bits per char = loss / ln 2
    loss.backward(); clip_grad_norm_(grad_clip); AdamW step; zero the gradients

Around it: a validation loss every `eval_interval` steps (on the same fixed windows each time, so curves and
models compare fairly), a checkpoint then too when there is an out_dir, a `tqdm` progress bar, an optional callback
(`LiveLossPlot` redraws the curves in a notebook), and a stop at `max_steps` or when the `minutes` run out, whichever
comes first (under a time budget the cosine decay follows the clock). Resuming continues *exactly*: N steps, resume,
N more give the weights of 2N in one go (under a step budget: a clock never repeats). Ctrl-C stops at once, saves
and returns what was trained so far; a NaN loss raises `NonFiniteLossError` and keeps the last good checkpoint.
The settings (`config`), checkpoints (`checkpoint`), device and mixed precision (`device`) and the live plot
(`plots`) live beside this module, and are importable from it as well.
"""
import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import mlm
from ._files import write_atomically
from ._state import eval_mode
from .data import CharVocab, corpus_names, get_batch, load_corpus, split
from .sample import generate
# The pieces that live beside the loop, re-exported: `from linformer_edu.train import preset, load_checkpoint` works.
from .checkpoint import (CHECKPOINT, FIXED_ON_RESUME, FORMAT, VERSION, CheckpointError, capture_rng,  # noqa: F401
                         check_resumable, load_checkpoint, load_weights, read_checkpoint, restore_rng,
                         save_checkpoint)
from .config import MODELS, OBJECTIVES, PRESETS, TrainConfig, build_model, num_tokens_for, preset  # noqa: F401
from .device import AmpSettings, amp_settings, pick_device  # noqa: F401
from .plots import LiveLossPlot  # noqa: F401

METRICS = "metrics.json"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


# ----------------------------------------------------------------------------------------------------------------
# Pieces of the loop: optimizer, learning rate, loss

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
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    with eval_mode(model):
        for _ in range(config.eval_iters):
            x, y = get_batch(ids, config.batch_size, config.seq_len, generator=generator, device=device)  # (b, n)
            with torch.autocast(device.type, dtype=amp.dtype, enabled=amp.dtype is not None):
                total += batch_loss(model, x, y, config, collator, generator).item()
    return total / config.eval_iters


# ----------------------------------------------------------------------------------------------------------------
# A run: set up (or resumed), evaluated, stepped, saved

@dataclass
class Run:
    """One run's moving parts: what `start_run` sets up, `train_step` trains and `train`'s loop counts on."""
    config: TrainConfig
    device: torch.device
    amp: AmpSettings
    vocab: CharVocab
    train_ids: torch.Tensor          # (N_train,) character ids, on the device
    val_ids: torch.Tensor            # (N_val,)
    collator: mlm.MaskingCollator | None
    model: torch.nn.Module           # the weights: saved and returned
    step_model: torch.nn.Module      # what runs them: the model, or its torch.compile'd wrapper
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: torch.Generator         # draws the training batches (and their masks under mlm)
    path: Path | None                # out_dir/ckpt.pt, or None to keep nothing on disk
    history: dict
    step: int = 0
    elapsed: float = 0.0             # seconds of training and evaluation, over every resume
    tokens: int = 0                  # characters trained on, over every resume
    train_seconds: float = 0.0       # seconds in training steps since this call started (for tokens per second)
    tokens_now: int = 0              # characters trained on since this call started


def start_run(config: TrainConfig, resume: bool = False) -> Run:
    """Load the text, build model, optimizer, scaler and batch generator, and continue the checkpoint if `resume`.

    Seeding, in order (a hand-written loop that follows it gets the same numbers): torch.manual_seed(seed),
    build the model, then draw training batches from torch.Generator().manual_seed(seed).
    """
    device = pick_device(config.device)   # a named CUDA or MPS device that is not there is a ValueError
    amp = amp_settings(device, enabled=config.amp)

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
    step, elapsed, tokens, history = 0, 0.0, 0, {"loss": [], "seconds": [], "evals": []}

    path = None if config.out_dir is None else Path(config.out_dir) / CHECKPOINT
    if resume:
        if not path.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {path}; train once without resume first")
        state = read_checkpoint(path)
        check_resumable(state, config, vocab)
        load_weights(model, state["model"], path)
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and amp.use_scaler:
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"], batches)
        step, elapsed, tokens, history = state["step"], state["elapsed"], state["tokens"], state["history"]

    step_model = torch.compile(model) if config.compile else model
    return Run(config, device, amp, vocab, train_ids, val_ids, collator, model, step_model, optimizer, scaler,
               batches, path, history, step, elapsed, tokens)


def evaluate(run: Run) -> dict:
    """The validation and training losses now, each on its fixed evaluation windows: a row for history["evals"]."""
    config = run.config
    val = estimate_loss(run.step_model, run.val_ids, config, run.device, run.amp, seed=config.seed + 1,
                        collator=run.collator)
    trn = estimate_loss(run.step_model, run.train_ids, config, run.device, run.amp, seed=config.seed + 2,
                        collator=run.collator)
    if not math.isfinite(val):
        raise NonFiniteLossError(f"the validation loss is {val} at step {run.step}: {_nan_advice(run.path)}")
    if not math.isfinite(trn):
        raise NonFiniteLossError(f"the training loss, estimated on {config.eval_iters} batches, is {trn} at "
                                 f"step {run.step}: {_nan_advice(run.path)}")
    return {"step": run.step, "seconds": round(run.elapsed, 3), "train_loss": trn, "val_loss": val,
            "val_bpc": val / math.log(2)}


def train_step(run: Run, lr: float) -> float:
    """One optimisation step, in nanoGPT's order: get a batch, forward under autocast, backward through the grad
    scaler, unscale and clip the gradients, step the optimizer, zero the gradients. Returns the batch's loss.

    A NaN or infinite loss raises NonFiniteLossError before the weights change.
    """
    config, optimizer, scaler = run.config, run.optimizer, run.scaler
    for group in optimizer.param_groups:
        group["lr"] = lr
    x, y = get_batch(run.train_ids, config.batch_size, config.seq_len, generator=run.batches,
                     device=run.device)                                        # (b, n), (b, n)
    with torch.autocast(run.device.type, dtype=run.amp.dtype, enabled=run.amp.dtype is not None):
        loss = batch_loss(run.step_model, x, y, config, run.collator, run.batches)
    loss_value = loss.item()
    if not math.isfinite(loss_value):
        raise NonFiniteLossError(f"the training loss is {loss_value} at step {run.step} (lr {lr:.3g}): "
                                 f"{_nan_advice(run.path)}")
    scaler.scale(loss).backward()
    if config.grad_clip:
        scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    scaler.step(optimizer)           # skipped by the scaler when fp16 gradients overflowed
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss_value


def metrics_of(run: Run, stopped: str | None) -> dict:
    """What metrics.json says about the run so far: the latest losses, speed, setup and why it stopped."""
    config, last = run.config, (run.history["evals"][-1] if run.history["evals"] else {})
    return {
        "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"), "val_bpc": last.get("val_bpc"),
        "steps": run.step, "tokens_per_s": run.tokens_now / run.train_seconds if run.train_seconds else None,
        "device": str(run.device), "model": config.model, "k": config.k if config.model == "linformer" else None,
        "objective": config.objective, "causal": config.causal, "corpus": config.corpus,
        "seconds": round(run.elapsed, 1), "params": sum(p.numel() for p in run.model.parameters()),
        "amp": str(run.amp.dtype).replace("torch.", "") if run.amp.dtype else "float32", "stopped": stopped,
    }


def _nan_advice(path):
    kept = f"the last good checkpoint, {path}, was kept" if path is not None and path.is_file() \
        else "no checkpoint was written"
    return (f"training stopped and {kept}. Try a lower learning rate (lr), gradient clipping (grad_clip=1.0), "
            f"or float32 (amp=False)")


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
    The model is built and seeded as `start_run` says, so a hand-written loop that follows it matches.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig (e.g. preset('cpu')), got {type(config).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a function of the TrainResult, got {callback!r}")
    if resume and config.out_dir is None:
        raise ValueError("resume: needs config.out_dir, the folder holding the checkpoint to continue")
    run = start_run(config, resume)
    result = TrainResult(run.model, run.vocab, config, run.history, checkpoint=run.path, step=run.step)
    budget = None if config.minutes is None else 60.0 * config.minutes
    bar = ProgressBar(config, run.step, run.elapsed)
    rng_at_step_start = None   # set while a step runs: a step cut off by Ctrl-C is redone from its start
    start = time.perf_counter() - run.elapsed
    try:
        while True:
            done = run.step >= config.max_steps or (budget is not None and run.elapsed >= budget)
            if done or run.step % config.eval_interval == 0:
                row = evaluate(run)
                if run.history["evals"] and run.history["evals"][-1]["step"] == run.step:
                    run.history["evals"][-1] = row   # evaluated here before an interruption: replace, don't repeat
                else:
                    run.history["evals"].append(row)
                bar.show(run.step, run.elapsed, run.history, done=done)
                if done:
                    stopped = "steps" if run.step >= config.max_steps else "time"
                    _stop(result, run, stopped, capture_rng(run.batches))
                    break
                if run.path is not None and run.step > 0:   # a good checkpoint to fall back on
                    _stop(result, run, None, capture_rng(run.batches))
                if callback is not None:
                    result.step = run.step
                    callback(result)

            rng_at_step_start = capture_rng(run.batches)
            progress = run.step / config.max_steps
            if budget is not None:
                progress = max(progress, run.elapsed / budget)
            t0 = time.perf_counter()
            loss = train_step(run, lr_at(run.step, config, progress))
            run.step += 1
            rng_at_step_start = None
            now = time.perf_counter()
            run.train_seconds += now - t0
            run.elapsed = now - start
            run.tokens += config.batch_size * config.seq_len
            run.tokens_now += config.batch_size * config.seq_len
            run.history["loss"].append(loss)
            run.history["seconds"].append(round(run.elapsed, 3))
            if run.step % 10 == 0:
                bar.show(run.step, run.elapsed, run.history)
    except KeyboardInterrupt:
        # A step cut off half-way is dropped: its batch is drawn again on resume (RNG from the step's start).
        _stop(result, run, "interrupted", rng_at_step_start or capture_rng(run.batches))
        where = f"; saved {run.path} — continue with resume=True (--resume)" if run.path is not None else ""
        tqdm.write(f"Interrupted at step {run.step}{where}")
    finally:
        bar.bar.close()
    if callback is not None and result.stopped != "interrupted":
        callback(result)
    return result


def _stop(result: TrainResult, run: Run, stopped: str | None, rng: dict) -> None:
    """Bring `result` up to date (metrics, step, why it stopped: None at a mid-run checkpoint); with an out_dir,
    write ckpt.pt (with the RNG states `rng`) and metrics.json, each atomically."""
    result.metrics = metrics_of(run, stopped)
    result.stopped, result.step = stopped, run.step
    if run.path is not None:
        save_checkpoint(run.path, model=run.model, optimizer=run.optimizer, scaler=run.scaler, config=run.config,
                        vocab=run.vocab, step=run.step, rng=rng, history=run.history, elapsed=run.elapsed,
                        tokens=run.tokens)
        text = json.dumps(result.metrics, indent=2) + "\n"
        write_atomically(run.path.parent / METRICS, lambda tmp: Path(tmp).write_text(text))


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
        print("-" * 40)
        print(generate(result.model, result.vocab, "\n", args.sample, temperature=0.8, top_k=None,
                       generator=torch.Generator().manual_seed(0)))
    return 130 if result.stopped == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
