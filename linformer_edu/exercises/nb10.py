"""Exercises for notebook 10, the Linformer on its home turf: a step-time ratio that a busy machine cannot bend,
and reading a learning curve at equal time. Each `check_*` takes the learner's function; each `solution_*` is the
worked solution.
"""
import random
import statistics

from ._feedback import Mistake, call, checker, expect, is_close


SEEDS = (0, 3, 7)   # rounds in which every wrong answer below is at least 0.02 away from the right one


def _rounds(seed=0):
    """Step times of a model and of the reference, timed in the same rounds. The machine's load changes from round
    to round and slows both (×1 to ×4); twice a spike hits one side's step only, as a burst of another program
    would."""
    rng = random.Random(seed)
    load = [1, 1, 3, 3, 1, 2, 1, 1, 4]
    rng.shuffle(load)
    model = [0.4 * slow * (1 + 0.03 * rng.random()) for slow in load]
    reference = [1.0 * slow * (1 + 0.03 * rng.random()) for slow in load]
    model[rng.randrange(len(load))] *= 2.3
    reference[rng.randrange(len(load))] *= 2.3
    return model, reference


def _number(got, what):
    if hasattr(got, "item") and getattr(got, "numel", lambda: 0)() == 1:
        got = got.item()
    expect(isinstance(got, (int, float)) and not isinstance(got, bool),
           f"{what} should return one number, got a value of type {type(got).__name__}")
    return float(got)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the step-time ratio from interleaved rounds

def solution_step_ratio(times, reference_times):
    """The median over rounds of (this model's step time / the reference's step time in the same round)."""
    return statistics.median(t / r for t, r in zip(times, reference_times))


@checker("Exercise 1 - a step-time ratio a busy machine cannot bend")
def check_step_ratio(step_ratio):
    """`step_ratio(times, reference_times)`: the median of the per-round ratios."""
    for seed in SEEDS:
        times, reference = _rounds(seed)
        got = _number(call(step_ratio, list(times), list(reference)), "step_ratio")
        want = solution_step_ratio(times, reference)
        if is_close(got, want, rtol=1e-6, atol=1e-9):
            continue
        wrong = {
            "that is the reference's time over the model's: divide the model's time by the reference's":
                statistics.median(r / t for t, r in zip(times, reference)),
            "that is the ratio of the two medians: a busy round can then count for one model and not the other; "
            "take the ratio within each round first, then the median":
                statistics.median(times) / statistics.median(reference),
            "that is a mean of the ratios: one odd round moves a mean; take the median":
                statistics.mean(t / r for t, r in zip(times, reference)),
            "that is the ratio of the total times: the slow rounds dominate it; take the ratio within each round, "
            "then the median": sum(times) / sum(reference),
        }
        for message, value in wrong.items():
            if is_close(got, value, rtol=1e-6, atol=1e-9):
                raise Mistake(message)
        raise Mistake(f"for these rounds the ratio is {want:.4f}, got {got:.4f}")
    return "the busy rounds slowed both models, and the per-round ratio cancelled it."


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: a learning curve read at equal time

def solution_bits_at_time(history, seconds):
    """Validation bits at `seconds`, interpolated linearly between the two validations around it.

    history: a list of {"step", "seconds", "bits"}, in order, starting at 0 seconds; seconds within the run.
    """
    for before, after in zip(history, history[1:]):
        if before["seconds"] <= seconds <= after["seconds"]:
            span = after["seconds"] - before["seconds"]
            share = (seconds - before["seconds"]) / span if span else 0.0
            return before["bits"] + share * (after["bits"] - before["bits"])
    return history[-1]["bits"]


def _history():
    bits = [6.8, 4.1, 3.6, 3.3, 3.2]
    return [{"step": 20 * i, "seconds": 20 * i * 0.35, "bits": b} for i, b in enumerate(bits)]


@checker("Exercise 2 - read a curve at equal time")
def check_bits_at_time(bits_at_time):
    """`bits_at_time(history, seconds)`: linear interpolation between validations, on the seconds axis."""
    history = _history()
    queries = [0.0, 7.0, 10.5, 14.0, 17.5, 26.6, 28.0]     # on validations and between them
    got = [_number(call(bits_at_time, [dict(h) for h in history], s), "bits_at_time") for s in queries]
    want = [solution_bits_at_time(history, s) for s in queries]
    if all(is_close(g, w) for g, w in zip(got, want)):
        return "between validations the curve is read on a straight line, so runs of different speeds meet " \
               "at the same second."
    by_steps = [{**h, "seconds": h["step"]} for h in history]
    last_before = [max((h for h in history if h["seconds"] <= s), key=lambda h: h["seconds"])["bits"] for s in queries]
    wrong = {
        "that reads the curve on the steps axis: look up `seconds`, not `step`":
            [solution_bits_at_time(by_steps, s) for s in queries],
        "that takes the last validation before the time; between validations draw the straight line to the next":
            last_before,
    }
    for message, values in wrong.items():
        if all(is_close(g, v) for g, v in zip(got, values)):
            raise Mistake(message)
    worst = max(range(len(queries)), key=lambda i: abs(got[i] - want[i]))
    raise Mistake(f"at {queries[worst]} s the curve reads {want[worst]:.3f} bits, got {got[worst]:.3f}")


__all__ = ["check_bits_at_time", "check_step_ratio", "solution_bits_at_time", "solution_step_ratio"]
