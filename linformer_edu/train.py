"""Train a tiny character-level language model: the loop, one small step at a time.

    config = preset("cpu", model="linformer", k=32, out_dir="runs/lin32")   # preset("gpu") is sized for a Colab T4
    result = train(config)                                 # -> TrainResult: model, vocab, history, metrics
    model, vocab, config = load_checkpoint("runs/lin32")   # or from a shell: python -m linformer_edu.train --help

One training step, as the notebook builds it by hand (`train_step` does exactly this, in this order):

    lr = lr_at(step, config)                               # linear warmup, then cosine decay to min_lr
    x, y = get_batch(train_ids, batch_size, seq_len)       # (b, n) windows of text, y = x shifted by one
    loss = cross_entropy(model(x), y)                      # nats per character; bits per char = loss / ln 2
    loss.backward(); clip_grad_norm_(grad_clip); AdamW step; zero the gradients

Around it: a validation loss every `eval_interval` steps (on the same fixed windows each time, so curves and
models compare fairly), a checkpoint then too when there is an out_dir, a `tqdm` progress bar, an optional callback
(`LiveLossPlot` redraws the curves in a notebook), and a stop at `max_steps` or when the `minutes` run out, whichever
comes first (under a time budget the cosine decay follows the clock). Resuming continues *exactly*: N steps, resume,
N more give the weights of 2N in one go (under a step budget: a clock never repeats). A run already in out_dir is
continued (resume) or replaced (overwrite), never silently written over. Ctrl-C, Jupyter's interrupt and SIGTERM
let the running step finish, then save and return: a stop never lands inside a step. A NaN loss raises
`NonFiniteLossError` and keeps the last good checkpoint. The settings (`config`), checkpoints (`checkpoint`), device
(`device`) and live plot (`plots`) live beside this module and are importable from it; the command line is `cli`.
"""
import json
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import cli, mlm
from ._files import write_atomically
from ._signals import StopSignals, Terminated
from ._state import eval_mode
from .data import CharVocab, get_batch, load_corpus, split
# The pieces that live beside the loop, re-exported: `from linformer_edu.train import preset, load_checkpoint` works.
from .checkpoint import (CHECKPOINT, FIXED_ON_RESUME, FORMAT, METRICS, VERSION, CheckpointError,  # noqa: F401
                         capture_rng, check_resumable, check_run_folder, load_checkpoint, load_weights,
                         read_checkpoint, restore_rng, save_checkpoint, text_sha256)
from .config import MODELS, OBJECTIVES, PRESETS, TrainConfig, build_model, num_tokens_for, preset  # noqa: F401
from .device import AmpSettings, amp_settings, pick_device  # noqa: F401
from .plots import LiveLossPlot  # noqa: F401

STOPPED_BY = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}   # TrainResult.stopped, per signal


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
    corpus_sha256: str               # the SHA-256 of the text: how a checkpoint knows which text it continues
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
    saved_step: int | None = None    # the step of this run's checkpoint in `path` (resumed or written), if any
    stop: StopSignals = field(default_factory=StopSignals)   # Ctrl-C / SIGTERM: `train` installs it


def start_run(config: TrainConfig, resume: bool = False) -> Run:
    """Load the text, build model, optimizer, scaler and batch generator, and continue the checkpoint if `resume`.

    Seeding, in order (a hand-written loop that follows it gets the same numbers): torch.manual_seed(seed),
    build the model, then draw training batches from torch.Generator().manual_seed(seed).
    """
    device = pick_device(config.device)   # a named CUDA or MPS device that is not there is a ValueError
    amp = amp_settings(device, enabled=config.amp)

    # data: text -> vocabulary -> ids -> split, kept on the training device
    text = load_corpus(config.corpus, config.data_dir, progress=config.progress)
    vocab, corpus_sha256 = CharVocab(text), text_sha256(text)
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
        state = read_checkpoint(path)
        check_resumable(state, config, vocab, corpus_sha256)
        load_weights(model, state["model"], path)
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and amp.use_scaler:
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"], batches)
        step, elapsed, tokens, history = state["step"], state["elapsed"], state["tokens"], state["history"]

    step_model = torch.compile(model) if config.compile else model
    return Run(config, device, amp, vocab, corpus_sha256, train_ids, val_ids, collator, model, step_model,
               optimizer, scaler, batches, path, history, step, elapsed, tokens,
               saved_step=step if resume else None)


def evaluate(run: Run) -> dict:
    """The validation and training losses now, each on its fixed evaluation windows: a row for history["evals"]."""
    config = run.config
    val = estimate_loss(run.step_model, run.val_ids, config, run.device, run.amp, seed=config.seed + 1,
                        collator=run.collator)
    trn = estimate_loss(run.step_model, run.train_ids, config, run.device, run.amp, seed=config.seed + 2,
                        collator=run.collator)
    if not math.isfinite(val):
        raise NonFiniteLossError(f"the validation loss is {val} at step {run.step}: {_nan_advice(run)}")
    if not math.isfinite(trn):
        raise NonFiniteLossError(f"the training loss, estimated on {config.eval_iters} batches, is {trn} at "
                                 f"step {run.step}: {_nan_advice(run)}")
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
                                 f"{_nan_advice(run)}")
    scaler.scale(loss).backward()
    if config.grad_clip:
        scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.stop.shielded = True         # from here the weights change: Ctrl-C waits until `train` has counted the step
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


def _nan_advice(run):
    kept = f"the last good checkpoint, {run.path}, was kept" if run.saved_step is not None \
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
    stopped: "steps" or "time" (budget reached), "interrupted" (Ctrl-C), "terminated" (SIGTERM), or None while
             running.
    """
    model: torch.nn.Module
    vocab: CharVocab
    config: TrainConfig
    history: dict
    metrics: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    stopped: str | None = None
    step: int = 0


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False, callback=None) -> TrainResult:
    """Train the model `config` describes on its corpus and return a `TrainResult`.

    resume:    continue from out_dir/ckpt.pt (the budget, evaluation and device settings may differ; a different
               model, text or optimizer setting raises CheckpointError).
    overwrite: replace the run in out_dir. Without resume or overwrite, an out_dir that holds a run (ckpt.pt or
               metrics.json) is refused with FileExistsError; a folder that cannot be written to, with OSError.
    callback:  called as callback(result) after every evaluation, e.g. `LiveLossPlot()`.
    The model is built and seeded as `start_run` says, so a hand-written loop that follows it matches.

    Ctrl-C (SIGINT; Jupyter's "interrupt kernel" sends it too) or SIGTERM while it trains: the step that is running
    finishes, the run is saved (with an out_dir) and returned, stopped "interrupted" or "terminated". A second one
    stops at once and drops the unfinished step, except inside the weight update, which always finishes; while the
    text is loaded, before the first step, they stop at once. (Main thread only; the old handlers come back.)
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig (e.g. preset('cpu')), got {type(config).__name__}")
    for name, value in (("resume", resume), ("overwrite", overwrite)):
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected True or False, got {value!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a function of the TrainResult, got {callback!r}")
    if resume and overwrite:
        raise ValueError("overwrite: resume=True continues the run in out_dir, overwrite=True replaces it; "
                         "pass one of them")
    if resume and config.out_dir is None:
        raise ValueError("resume: needs config.out_dir, the folder holding the checkpoint to continue")
    if config.out_dir is not None:
        check_run_folder(Path(config.out_dir), resume, overwrite)

    stop = StopSignals()
    with stop:   # Ctrl-C and SIGTERM stop the set-up at once (nothing to save yet; a download removes its file)
        run = start_run(config, resume)
        run.stop = stop
        result = TrainResult(run.model, run.vocab, config, run.history, checkpoint=run.path, step=run.step)
        budget = None if config.minutes is None else 60.0 * config.minutes
        bar = ProgressBar(config, run.step, run.elapsed)
        rng_at_step_start = None   # set while a step runs: a step cut off before its update is redone from here
        start = time.perf_counter() - run.elapsed
        stop.deferring = True      # from here a signal waits for the step to end, and is answered between steps
        try:
            while True:
                done = run.step >= config.max_steps or (budget is not None and run.elapsed >= budget)
                if done or run.step % config.eval_interval == 0:
                    row = evaluate(run)
                    if run.history["evals"] and run.history["evals"][-1]["step"] == run.step:
                        run.history["evals"][-1] = row   # evaluated here before an interruption: replace it
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
                if stop.received is not None:   # Ctrl-C or SIGTERM came during the last step or evaluation
                    _stop(result, run, STOPPED_BY[stop.received], capture_rng(run.batches))
                    break

                rng_at_step_start = capture_rng(run.batches)
                progress = run.step / config.max_steps
                if budget is not None:
                    progress = max(progress, run.elapsed / budget)
                t0 = time.perf_counter()
                loss = train_step(run, lr_at(run.step, config, progress))   # shields itself once weights change
                run.step += 1
                now = time.perf_counter()
                run.train_seconds += now - t0
                run.elapsed = now - start
                run.tokens += config.batch_size * config.seq_len
                run.tokens_now += config.batch_size * config.seq_len
                run.history["loss"].append(loss)
                run.history["seconds"].append(round(run.elapsed, 3))
                rng_at_step_start, stop.shielded = None, False   # the step is whole: updated, counted, logged
                if run.step % 10 == 0:
                    bar.show(run.step, run.elapsed, run.history)
        except (KeyboardInterrupt, Terminated) as interrupt:   # raised, not waited for: a second signal, a hook
            if stop.shielded:   # inside the weight update: half the weights are new, no state to save is whole
                kept = f"; {run.path} keeps step {run.saved_step}" if run.saved_step is not None else ""
                tqdm.write(f"Interrupted inside the weight update of step {run.step + 1}: not saved{kept}")
                raise
            # A step cut off before its update is dropped: its batch is drawn again on resume (RNG from its start).
            _stop(result, run, "terminated" if isinstance(interrupt, Terminated) else "interrupted",
                  rng_at_step_start or capture_rng(run.batches))
        finally:
            bar.bar.close()
    if result.stopped in STOPPED_BY.values():
        where = f"; saved {run.path} — continue with resume=True (--resume)" if run.path is not None else ""
        tqdm.write(f"{result.stopped.capitalize()} at step {run.step}{where}")
    elif callback is not None:
        callback(result)
    return result


def _stop(result: TrainResult, run: Run, stopped: str | None, rng: dict) -> None:
    """Bring `result` up to date (metrics, step, why it stopped: None at a mid-run checkpoint); with an out_dir,
    write ckpt.pt (with the RNG states `rng`) and metrics.json, each atomically."""
    result.metrics = metrics_of(run, stopped)
    result.stopped, result.step = stopped, run.step
    if run.path is not None:
        save_checkpoint(run.path, model=run.model, optimizer=run.optimizer, scaler=run.scaler, config=run.config,
                        vocab=run.vocab, corpus_sha256=run.corpus_sha256, step=run.step, rng=rng,
                        history=run.history, elapsed=run.elapsed, tokens=run.tokens)
        run.saved_step = run.step
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


def main(argv=None) -> int:
    """The command line (`python -m linformer_edu.train --help`; its flags are made in `cli`): the exit status."""
    return cli.run(argv, train)


if __name__ == "__main__":
    sys.exit(main())
