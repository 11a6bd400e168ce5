"""Long-context runs: the Linformer against full attention at equal training steps and at equal wall time.

The paper's Fig. 3 plots validation perplexity against *updates*. What a user pays for is *time*, so every run
here is read both ways. Each piece, in order:

    Spec, Recipe       what one model is (n, full or Linformer k, sharing, causal) and what every run shares
                       (width, depth, optimiser, tokens per step: batch = tokens_per_step // n)
    Run                one model in training: .train_step() and .evaluate() (bits per masked character for the
                       masked-LM objective, bits per character for next-character prediction when causal)
    measure_step_times the seconds one training step takes, for several models, measured in interleaved rounds
    train              a run for a number of steps, evaluated every few steps
    run_group          models that share a time budget: time them, give each the steps it can take in the
                       budget, train them all
    compare            a group's runs at equal steps and at equal time, with the spread between seeds

Wall-clock time on a shared machine is noisy: another program can slow one run and not the next. So the time
axis is not read off a clock while training. Instead every model of a group takes one training step in turn,
round after round (the order rotated each round), and the ratio of its step time to the reference model's is
taken *within* each round: a slow moment slows both sides of the ratio. The median of those per-round ratios,
times the reference's median step time, is the model's seconds per step; a run's time is steps × that.
Evaluation time is not counted. Raw clock time of each run is kept beside it (`train_wall_s`), for the record.
"""
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._checks import check_choice, check_positive_int
from .data import CharVocab, get_batch, load_corpus, split
from .linformer import LinformerLM
from .measure import interleaved, synchronize
from .mlm import MaskingCollator, evaluate_mlm, masked_lm_loss

# ----------------------------------------------------------------------------------------------------------------
# What a run is


@dataclass(frozen=True)
class Spec:
    """One model: sequence length n, full attention or a Linformer with k projected keys, its sharing level,
    and whether it is causal (trained on next characters) or bidirectional (trained as a masked LM)."""
    n: int
    attention: str = "linformer"
    k: int | None = None
    sharing: str = "headwise"
    causal: bool = False

    def __post_init__(self):
        check_positive_int("n", self.n)
        check_choice("attention", self.attention, ("linformer", "full"))
        check_choice("sharing", self.sharing, ("headwise", "kv", "layerwise"))
        if self.attention == "full" and (self.k is not None or self.sharing != "headwise"):
            raise ValueError(f"k, sharing: full attention has no projection; got k={self.k!r}, "
                             f"sharing={self.sharing!r}, expected k=None and sharing='headwise'")
        if self.attention == "linformer":
            check_positive_int("k", self.k)
        if self.causal and self.sharing != "headwise":
            raise ValueError(f"sharing: the causal Linformer has one projection per layer; got {self.sharing!r}")

    @property
    def label(self):
        """e.g. 'full n=1024', 'k=64 kv n=1024', 'causal k=64 n=2048'."""
        parts = ["causal" if self.causal else "", "full" if self.attention == "full" else f"k={self.k}",
                 "" if self.sharing == "headwise" else self.sharing, f"n={self.n}"]
        return " ".join(p for p in parts if p)

    @property
    def objective(self):
        return "next-char" if self.causal else "masked-LM"


@dataclass(frozen=True)
class Recipe:
    """What every run of a comparison shares: the model's size and the optimiser (AdamW, linear warm-up then a
    constant learning rate, so a curve means the same at every step whatever the run's length)."""
    dim: int = 64
    depth: int = 2
    heads: int = 4
    tokens_per_step: int = 2048     # batch = tokens_per_step // n
    lr: float = 2e-3
    warmup: int = 20
    weight_decay: float = 0.01
    clip: float = 1.0
    eval_every: int = 10            # steps between validations
    eval_tokens: int = 8192         # characters per validation (the same windows and masks every time)


@dataclass
class Data:
    train: torch.Tensor
    val: torch.Tensor
    vocab_size: int


def load_data(corpus="pydoc"):
    """The corpus as ids, split 90 / 10 into train and validation text."""
    text = load_corpus(corpus)
    vocab = CharVocab(text)
    train, val = split(vocab.encode(text))
    return Data(train, val, len(vocab))


class Run:
    """One model in training. Built and fed from `seed` alone (weights, batches, masks), leaving the global
    random state as it was; two runs with the same seed and n see the same characters in the same order."""

    def __init__(self, spec, recipe, data, *, seed=0, device="cpu"):
        self.batch = recipe.tokens_per_step // spec.n
        if self.batch < 1:
            raise ValueError(f"tokens_per_step: {recipe.tokens_per_step} is less than n={spec.n}; "
                             f"give at least one sequence per step")
        self.spec, self.recipe, self.data, self.device = spec, recipe, data, torch.device(device)
        self.collator = MaskingCollator(data.vocab_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            options = dict(k=spec.k) if spec.attention == "linformer" else dict(attention="full")
            self.model = LinformerLM(self.collator.num_tokens, recipe.dim, spec.n, recipe.depth, heads=recipe.heads,
                                     sharing=spec.sharing, causal=spec.causal, **options).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    def loss(self, x, y):
        """The run's objective on one batch: masked-LM loss, or next-character cross-entropy when causal."""
        if self.spec.causal:
            logits = self.model(x.to(self.device))                               # (b, n, V)
            return F.cross_entropy(logits.flatten(0, 1), y.to(self.device).flatten())
        inputs, targets = self.collator(x, generator=self.generator)             # (b, n) each
        return masked_lm_loss(self.model(inputs.to(self.device)), targets.to(self.device))

    def train_step(self):
        """One optimiser step on a fresh batch; returns its loss in nats."""
        lr = self.recipe.lr * min(1.0, (self.steps + 1) / self.recipe.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(self.data.train, self.batch, self.spec.n, generator=self.generator)
        loss = self.loss(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip)
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    def evaluate(self):
        """Validation bits per (masked) character, on the same windows every time."""
        batches = max(1, self.recipe.eval_tokens // (self.batch * self.spec.n))
        if not self.spec.causal:
            return evaluate_mlm(self.model, self.data.val, self.collator, batch_size=self.batch,
                                block_size=self.spec.n, batches=batches, seed=0)["bpc"]
        return next_char_bits(self.model, self.data.val, batch_size=self.batch, block_size=self.spec.n,
                              batches=batches)


@torch.no_grad()
def next_char_bits(model, ids, *, batch_size, block_size, batches, seed=0):
    """Next-character cross-entropy in bits per character on random windows of `ids` (drawn from `seed`)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training, total = model.training, 0.0
    model.eval()
    try:
        for _ in range(batches):
            x, y = get_batch(ids, batch_size, block_size, generator=gen)
            logits = model(x.to(device)).float()                                 # (b, n, V)
            total += F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten()).item()
    finally:
        model.train(was_training)
    return total / batches / math.log(2)


# ----------------------------------------------------------------------------------------------------------------
# Time per step, robust to a busy machine


def measure_step_times(specs, recipe, data, *, reference, rounds=7, device="cpu", progress=True):
    """Seconds per training step of each spec, from interleaved rounds (see the module's docstring).

    reference: the label of the spec every ratio is taken against. Returns a dict: `ratio` {label: median over
    rounds of (its step time / the reference's in the same round)}, `seconds_per_step` {label: ratio × the
    reference's median step time}, `raw_median` {label: median of its own times}, and every round's times.
    The models are throwaway copies (seed 0), warmed up by one step each before timing.
    """
    runs = {spec.label: Run(spec, recipe, data, seed=0, device=device) for spec in specs}
    if reference not in runs:
        raise ValueError(f"reference: {reference!r} is not among the specs {list(runs)}")
    times = interleaved({label: run.train_step for label, run in runs.items()}, rounds=rounds, warmup=1,
                        device=device, rotate=True, progress=progress)   # {label: [seconds per round]}
    labels = list(runs)
    ratio = {label: statistics.median(a / b for a, b in zip(times[label], times[reference])) for label in labels}
    ref_s = statistics.median(times[reference])
    return {"reference": reference, "rounds": rounds, "ratio": ratio,
            "seconds_per_step": {label: ref_s * ratio[label] for label in labels},
            "raw_median": {label: statistics.median(times[label]) for label in labels}, "times": times}


# ----------------------------------------------------------------------------------------------------------------
# Training


def train(spec, recipe, data, *, steps, seconds_per_step, seed=0, device="cpu", progress=True):
    """Train one run for `steps` steps; validate at step 0, every `recipe.eval_every` steps and at the end.

    Returns a record: the spec's fields, seed, steps, seconds_per_step, and `history`, a list of
    {step, seconds (= step × seconds_per_step), bits, wall (clock seconds of training so far)}.
    """
    check_positive_int("steps", steps)
    run = Run(spec, recipe, data, seed=seed, device=device)
    history = [{"step": 0, "seconds": 0.0, "bits": run.evaluate(), "wall": 0.0}]
    wall = 0.0
    for step in tqdm(range(1, steps + 1), desc=f"{spec.label} seed {seed}", disable=not progress, leave=False):
        start = time.perf_counter()
        run.train_step()
        synchronize(device)
        wall += time.perf_counter() - start
        if step % recipe.eval_every == 0 or step == steps:
            history.append({"step": step, "seconds": step * seconds_per_step, "bits": run.evaluate(), "wall": wall})
    return {"label": spec.label, **asdict(spec), "objective": spec.objective, "seed": seed, "steps": steps,
            "seconds_per_step": seconds_per_step, "train_wall_s": wall, "history": history}


def steps_in_budget(budget_steps, ratio, eval_every):
    """Steps a model `ratio` times as slow per step as the reference takes in `budget_steps` reference steps,
    rounded down to whole validation intervals (at least one)."""
    return max(eval_every, int(budget_steps / ratio / eval_every) * eval_every)


def run_group(runs, *, reference, budget_steps, recipe, data, rounds=7, device="cpu", progress=True, bar=None):
    """Models sharing one wall-time budget: `budget_steps` steps of the reference model.

    runs: [(Spec, seeds)]. Times all specs in interleaved rounds, then trains every (spec, seed) for the steps
    that fit in the budget. Progress: one bar counting runs (or `bar`, an open tqdm bar, advanced once per run).
    Returns {"reference", "budget_steps", "timing", "runs": [records]}.
    """
    specs = [spec for spec, _ in runs]
    timing = measure_step_times(specs, recipe, data, reference=reference, rounds=rounds, device=device,
                                progress=False)
    todo = [(spec, seed) for spec, seeds in runs for seed in seeds]
    own = bar is None
    bar = tqdm(total=len(todo), desc="runs", disable=not progress) if own else bar
    records = []
    for spec, seed in todo:
        bar.set_postfix_str(f"{spec.label}, seed {seed}")
        steps = steps_in_budget(budget_steps, timing["ratio"][spec.label], recipe.eval_every)
        records.append(train(spec, recipe, data, steps=steps, seconds_per_step=timing["seconds_per_step"][spec.label],
                             seed=seed, device=device, progress=False))
        bar.update()
    if own:
        bar.close()
    return {"reference": reference, "budget_steps": budget_steps, "timing": timing, "runs": records}


# ----------------------------------------------------------------------------------------------------------------
# Reading the runs


def value_at(history, x, key="seconds"):
    """Validation bits at `key` = x, interpolated linearly between validations (x within the run)."""
    points = [(h[key], h["bits"]) for h in history]
    if not points[0][0] <= x <= points[-1][0] * (1 + 1e-9):
        raise ValueError(f"x: {x} is outside this run's {key}, {points[0][0]} to {points[-1][0]}")
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def best_until(history, x, key="seconds"):
    """The lowest validation bits among validations at `key` <= x."""
    return min(h["bits"] for h in history if h[key] <= x * (1 + 1e-9))


def compare(records, labels, reference):
    """One row per label: its runs (all seeds) at equal steps and at equal time, against the reference.

    Equal steps: the fewest steps any of these runs took. Equal time: the shortest time any of them ran.
    Values are means over seeds; `seed_spread` is the largest minus the smallest final value at equal time.
    """
    chosen = [r for r in records if r["label"] in labels]
    missing = set(labels) - {r["label"] for r in chosen}
    if missing or reference not in labels:
        raise ValueError(f"labels: no runs for {sorted(missing)}" if missing else
                         f"reference: {reference!r} is not among the labels {labels}")
    steps = min(r["history"][-1]["step"] for r in chosen)
    seconds = min(r["history"][-1]["seconds"] for r in chosen)
    rows = []
    for label in labels:
        runs = [r for r in chosen if r["label"] == label]
        at_time = [value_at(r["history"], seconds) for r in runs]
        rows.append({"model": label, "seeds": len(runs), "steps": runs[0]["steps"],
                     "s_per_step": runs[0]["seconds_per_step"],
                     "bits_equal_steps": statistics.mean(value_at(r["history"], steps, "step") for r in runs),
                     "best_equal_steps": statistics.mean(best_until(r["history"], steps, "step") for r in runs),
                     "bits_equal_time": statistics.mean(at_time),
                     "best_equal_time": statistics.mean(best_until(r["history"], seconds) for r in runs),
                     "seed_spread": max(at_time) - min(at_time) if len(runs) > 1 else None})
    ref = next(row for row in rows if row["model"] == reference)
    for row in rows:
        row["speed_vs_ref"] = ref["s_per_step"] / row["s_per_step"]
        row["gap_equal_steps"] = row["bits_equal_steps"] - ref["bits_equal_steps"]
        row["gap_equal_time"] = row["bits_equal_time"] - ref["bits_equal_time"]
    return {"equal_steps": steps, "equal_seconds": seconds, "reference": reference, "rows": rows}


def load_results(path):
    """The results.json a benchmark run wrote, or None when the file is not there (e.g. in Colab)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None
