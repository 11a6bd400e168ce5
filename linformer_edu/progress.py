"""The trainer's progress bar: tqdm over the steps, or over the seconds of a time budget (moved out of train.py)."""
from tqdm.auto import tqdm

from .config import TrainConfig


class ProgressBar:
    """A tqdm bar over the steps, or over the seconds when a time budget is set (then the clock usually ends the
    run), showing the step, the latest training loss and the latest validation loss and bits per char."""

    def __init__(self, config: TrainConfig, step: int, elapsed: float, enabled: bool = True):
        self.by_time = config.minutes is not None
        total = round(60 * config.minutes) if self.by_time else config.max_steps
        self.bar = tqdm(total=total, initial=min(round(elapsed), total) if self.by_time else step,
                        desc=config.label, unit="s" if self.by_time else "step",
                        disable=not (config.progress and enabled), dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} {unit} [{elapsed}{postfix}]")

    def show(self, step, elapsed, history, done=False):
        last = history["evals"][-1] if history["evals"] else None
        self.bar.set_postfix({"step": step, "loss": f"{history['loss'][-1]:.3f}" if history["loss"] else "-",
                              "val": f"{last['val_loss']:.3f}" if last else "-",
                              "bits/char": f"{last['val_bpc']:.3f}" if last else "-"}, refresh=False)
        position = min(elapsed, self.bar.total) if self.by_time else step
        if done and self.by_time and elapsed >= self.bar.total:
            position = self.bar.total
        self.bar.update(position - self.bar.n)
