"""Long-context runs (linformer_edu.longrun, longrun_plan, longrun_plots) and benchmarks/long_context.py.

No timed asserts: step times are measured and reported, never tested; the tests check what is computed from them.
"""
import json
import math
import os
import pathlib
import subprocess
import sys

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from linformer_edu import longrun_plots  # noqa: E402
from linformer_edu.data import CharVocab, split  # noqa: E402
from linformer_edu.longrun import (Data, Recipe, Run, Spec, best_until, compare, load_results,  # noqa: E402
                                   measure_step_times, steps_in_budget, train, value_at)
from linformer_edu.longrun_plan import make_plan, read_experiments, seed_noise, speed_map, verdicts  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = Recipe(dim=16, depth=1, heads=2, tokens_per_step=64, lr=1e-2, warmup=2, eval_every=2, eval_tokens=512)


@pytest.fixture(scope="module")
def data():
    text = "the quick brown fox jumps over the lazy dog; " * 40
    train_ids, val_ids = split(CharVocab(text).encode(text))
    return Data(train_ids, val_ids, len(CharVocab(text)))


# ----------------------------------------------------------------------------------------------------------------
# Specs and budgets

def test_spec_labels_name_what_differs():
    assert Spec(1024, "full").label == "full n=1024"
    assert Spec(1024, k=64).label == "k=64 n=1024"
    assert Spec(512, k=32, sharing="layerwise").label == "k=32 layerwise n=512"
    assert Spec(2048, k=64, causal=True).label == "causal k=64 n=2048"
    assert Spec(2048, "full", causal=True).objective == "next-char"
    assert Spec(2048, k=64).objective == "masked-LM"


@pytest.mark.parametrize("options, error", [
    (dict(attention="full", k=64), "full attention has no projection"),
    (dict(attention="full", sharing="kv"), "full attention has no projection"),
    (dict(k=64, causal=True, sharing="kv"), "the causal Linformer has one projection per layer"),
    (dict(k=64, sharing="none"), "sharing: got 'none'"),
    (dict(attention="sparse"), "attention: got 'sparse'"),
])
def test_spec_refuses_what_would_be_ignored(options, error):
    with pytest.raises(ValueError, match=error):
        Spec(256, **options)


def test_a_linformer_spec_needs_k():
    with pytest.raises(TypeError, match="k: expected a positive int, got None"):
        Spec(256)


@pytest.mark.parametrize("budget, ratio, every, steps", [
    (100, 1.0, 10, 100), (100, 0.3, 10, 330), (100, 2.0, 10, 50), (100, 0.37, 10, 270), (100, 50.0, 10, 10)])
def test_steps_in_budget_round_down_to_whole_validation_intervals(budget, ratio, every, steps):
    assert steps_in_budget(budget, ratio, every) == steps


# ----------------------------------------------------------------------------------------------------------------
# Runs

def test_runs_with_one_seed_repeat_and_leave_the_global_random_state_alone(data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    losses = [[Run(Spec(32, k=8), TINY, data, seed=seed).train_step() for _ in range(1)] for seed in (0, 0, 1)]
    assert torch.equal(torch.rand(3), expected)
    assert losses[0] == losses[1] and losses[0] != losses[2]


@pytest.mark.parametrize("spec", [Spec(32, "full"), Spec(32, k=8), Spec(32, k=8, sharing="kv"),
                                  Spec(32, "full", causal=True), Spec(32, k=8, causal=True)])
def test_a_run_learns_and_its_evaluation_is_in_bits(spec, data):
    run = Run(spec, TINY, data, seed=0)
    before = run.evaluate()
    # an untrained model is about as good as a uniform guess over the characters and [MASK]
    assert abs(before - math.log2(data.vocab_size + 1)) < 1.5
    for _ in range(40):
        run.train_step()
    assert run.steps == 40 and run.evaluate() < before - 0.3
    assert run.evaluate() == run.evaluate()    # the same windows and masks every time


def test_tokens_per_step_must_cover_one_sequence(data):
    with pytest.raises(ValueError, match="tokens_per_step: 64 is less than n=128"):
        Run(Spec(128, "full"), TINY, data)


def test_train_validates_on_a_fixed_grid_and_counts_time_from_the_step_time(data):
    record = train(Spec(32, k=8), TINY, data, steps=5, seconds_per_step=0.25, progress=False)
    assert [h["step"] for h in record["history"]] == [0, 2, 4, 5]
    assert [h["seconds"] for h in record["history"]] == [0.0, 0.5, 1.0, 1.25]
    assert record["label"] == "k=8 n=32" and record["objective"] == "masked-LM" and record["steps"] == 5
    walls = [h["wall"] for h in record["history"]]
    assert walls == sorted(walls) and record["train_wall_s"] == walls[-1]


def test_step_times_are_ratios_to_the_reference_within_rounds(data):
    specs = [Spec(32, "full"), Spec(32, k=8), Spec(16, k=8)]
    timing = measure_step_times(specs, TINY, data, reference="full n=32", rounds=3, progress=False)
    assert timing["ratio"]["full n=32"] == 1.0
    assert set(timing["ratio"]) == set(timing["seconds_per_step"]) == {s.label for s in specs}
    assert all(len(t) == 3 for t in timing["times"].values())
    ref = timing["seconds_per_step"]["full n=32"]
    for label, ratio in timing["ratio"].items():
        assert timing["seconds_per_step"][label] == pytest.approx(ref * ratio)
        per_round = sorted(a / b for a, b in zip(timing["times"][label], timing["times"]["full n=32"]))
        assert ratio == per_round[1]            # the median of the per-round ratios
    with pytest.raises(ValueError, match="reference: 'full n=64' is not among the specs"):
        measure_step_times(specs, TINY, data, reference="full n=64", rounds=1, progress=False)


# ----------------------------------------------------------------------------------------------------------------
# Reading runs: equal steps, equal time

def record(label, seconds_per_step, bits, seed=0, every=10):
    history = [{"step": i * every, "seconds": i * every * seconds_per_step, "bits": b, "wall": 0.0}
               for i, b in enumerate(bits)]
    return {"label": label, "seed": seed, "steps": history[-1]["step"], "seconds_per_step": seconds_per_step,
            "history": history}


def test_value_at_interpolates_and_best_until_looks_back():
    h = record("x", 1.0, [5.0, 3.0, 4.0])["history"]      # steps 0, 10, 20
    assert value_at(h, 5) == 4.0 and value_at(h, 10) == 3.0 and value_at(h, 15) == 3.5
    assert best_until(h, 20) == 3.0 and best_until(h, 9) == 5.0
    with pytest.raises(ValueError, match="outside this run's seconds"):
        value_at(h, 21)


def test_compare_reads_equal_steps_and_equal_time():
    records = [record("full", 1.0, [6.0, 4.0, 3.0]),                     # 20 steps in 20 s
               record("full", 1.0, [6.0, 4.2, 3.2], seed=1),
               record("fast", 0.5, [6.0, 4.5, 3.5, 3.0, 2.5])]           # 40 steps in 20 s
    c = compare(records, ["full", "fast"], "full")
    assert c["equal_steps"] == 20 and c["equal_seconds"] == 20
    full, fast = c["rows"]
    assert full["bits_equal_steps"] == pytest.approx(3.1) and full["seed_spread"] == pytest.approx(0.2)
    assert fast["bits_equal_steps"] == 3.5 and fast["bits_equal_time"] == 2.5 and fast["seed_spread"] is None
    assert fast["speed_vs_ref"] == 2.0
    assert fast["gap_equal_steps"] == pytest.approx(0.4) and fast["gap_equal_time"] == pytest.approx(-0.6)
    with pytest.raises(ValueError, match=r"no runs for \['slow'\]"):
        compare(records, ["full", "slow"], "full")


def test_verdicts_call_a_gap_within_the_seed_spread_level():
    panel = {"comparison": compare([record("full", 1.0, [6.0, 3.0]), record("fast", 0.5, [6.0, 3.5, 2.9])],
                                   ["full", "fast"], "full")}
    assert "lower (better) than full" in verdicts(panel)[0]
    assert "2.00x the steps per second" in verdicts(panel)[0]
    assert "level with full" in verdicts(panel, noise=0.2)[0]
    assert "level" not in verdicts(panel, noise=0.05)[0]


# ----------------------------------------------------------------------------------------------------------------
# The plan of experiments

def test_the_plan_trains_shared_runs_once_and_reads_them_in_every_experiment():
    plan = make_plan(n=1024, ks=(32, 64, 128), k=64, ns=(256, 512, 1024, 2048), causal_ns=(1024, 2048))
    mlm = plan["groups"]["mlm"]
    labels = [spec.label for spec, _ in mlm["runs"]]
    assert len(labels) == len(set(labels)) == 9               # full, 3 k, 3 more n, 2 more sharing levels
    seeds = {spec.label: seeds for spec, seeds in mlm["runs"]}
    assert seeds["full n=1024"] == seeds["k=64 n=1024"] == (0, 1) and seeds["k=32 n=1024"] == (0,)
    assert set(plan["groups"]) == {"mlm", "causal n=1024", "causal n=2048"}
    for exp in plan["experiments"].values():
        for panel in exp["panels"]:
            group = [spec.label for spec, _ in plan["groups"][panel["group"]]["runs"]]
            assert set(panel["labels"]) <= set(group) and panel["reference"] in panel["labels"]
    assert "k=64 n=1024" in plan["experiments"]["a"]["panels"][0]["labels"]
    assert plan["experiments"]["b"]["panels"][0]["labels"] == [f"k=64 n={n}" for n in (256, 512, 1024, 2048)]
    assert len(plan["experiments"]["d"]["panels"]) == 2 and "Fig. 3(a,b)" in plan["experiments"]["a"]["claim"]


def test_read_experiments_and_seed_noise():
    plan = make_plan(n=32, ks=(8,), k=8, ns=(32,), causal_ns=(32,))
    groups = {"mlm": {"runs": [record("full n=32", 1.0, [6, 4]), record("full n=32", 1.0, [6, 4.3], seed=1),
                               record("k=8 n=32", 0.5, [6, 4, 3.9]), record("k=8 n=32", 0.5, [6, 4, 3.8], seed=1),
                               record("k=8 kv n=32", 0.5, [6, 4, 3.7]), record("k=8 layerwise n=32", 0.4, [6, 4, 3])]},
              "causal n=32": {"runs": [record("causal full n=32", 1.0, [6, 5]),
                                       record("causal k=8 n=32", 1.0, [6, 5.1])]}}
    experiments = read_experiments(plan["experiments"], groups)
    assert experiments["a"]["panels"][0]["comparison"]["rows"][1]["gap_equal_time"] == pytest.approx(3.85 - 4.15)
    assert seed_noise({"experiments": experiments}) == pytest.approx(0.3)


def test_speed_map_skips_k_longer_than_n(data):
    speeds = speed_map([16, 32], [8, 32], TINY, data, rounds=1, progress=False)
    assert set(speeds) == {(16, 8), (32, 8), (32, 32)} and all(v > 0 for v in speeds.values())


def test_load_results_is_none_without_a_file(tmp_path):
    assert load_results(tmp_path / "results.json") is None
    (tmp_path / "results.json").write_text('{"groups": {}}')
    assert load_results(tmp_path / "results.json") == {"groups": {}}


def test_plots_draw_every_run_and_every_cell():
    import matplotlib.pyplot as plt
    records = [record("full n=32", 1.0, [6, 4]), record("full n=32", 1.0, [6, 4.3], seed=1),
               record("k=8 n=32", 0.5, [6, 4, 3.9])]
    panel = {"group": "g", "labels": ["full n=32", "k=8 n=32"], "reference": "full n=32"}
    panel["comparison"] = compare(records, panel["labels"], panel["reference"])
    fig = longrun_plots.experiment_figure({"title": "t", "panels": [panel, panel]}, {"g": {"runs": records}})
    assert fig.axes[0].get_xlabel() == "training steps" and len(fig.axes) == 4
    assert len(fig.axes[1].lines) == 3 + 1       # three runs, one equal-time marker
    ax = longrun_plots.speed_map_plot({(16, 8): 1.5, (32, 8): 3.0, (32, 16): 2.0}, gaps={(32, 8): "+0.1 bits"})
    assert sorted(t.get_text() for t in ax.texts) == ["1.50×", "2.00×", "3.00×\n+0.1 bits"]
    plt.close("all")


# ----------------------------------------------------------------------------------------------------------------
# The benchmark script

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("long_context")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "long_context.py"), "--quick", "--threads", "1",
                           "--no-progress", "--out", str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_quick_run_writes_its_files(quick_run):
    names = {p.name for p in quick_run.iterdir()}
    assert names == {"summary.txt", "results.json", "step_times.png", "a_k.png", "b_n.png", "c_sharing.png",
                     "d_causal.png"}
    assert all((quick_run / name).read_bytes()[:4] == b"\x89PNG" for name in names if name.endswith(".png"))


def test_quick_results_hold_every_run_and_the_command(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    assert results["command"] == "python benchmarks/long_context.py --quick --threads 1"
    assert set(results["experiments"]) == {"a", "b", "c", "d"}
    for group in results["groups"].values():
        for run in group["runs"]:
            assert run["history"][0]["step"] == 0 and run["history"][-1]["step"] == run["steps"]
        assert group["timing"]["ratio"][group["reference"]] == 1.0


def test_quick_summary_has_one_table_per_panel(quick_run):
    results = json.loads((quick_run / "results.json").read_text())
    lines = (quick_run / "summary.txt").read_text().splitlines()
    assert lines[0].startswith("python benchmarks/long_context.py --quick --threads 1")
    assert any(line.startswith("time axis: every model of a group takes one training step per round")
               for line in lines)
    header = [i for i, line in enumerate(lines) if line.split()[:3] == ["model", "seeds", "steps"]]
    panels = [p for exp in results["experiments"].values() for p in exp["panels"]]
    assert len(header) == len(panels) == 5
    for i, panel in zip(header, panels):
        columns = lines[i].split()
        assert columns[-2:] == ["gap_equal_time", "seed_spread"] and "bits_equal_steps" in columns
        assert all(lines[i + 2 + j].startswith(label + " ") for j, label in enumerate(panel["labels"]))
        assert lines[i - 1].startswith(f"[{panel['group']}] equal steps = ")
    for exp in results["experiments"].values():
        assert exp["title"] in lines and f"paper: {exp['claim']}" in lines
