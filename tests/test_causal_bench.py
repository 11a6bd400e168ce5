"""benchmarks/causal_step.py (issue 11): its quick mode runs and writes its table, and its FLOP count agrees
with the causal layer's own mask. No timed asserts: the times are reported, never tested."""
import importlib.util
import json
import pathlib
import subprocess

import pytest
import torch

from linformer_edu.causal import CausalLinformerSelfAttention

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def causal_step():
    spec = importlib.util.spec_from_file_location("causal_step", ROOT / "benchmarks" / "causal_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_writes_the_table_and_the_json(causal_step, tmp_path):
    threads = torch.get_num_threads()
    try:
        causal_step.main(["--quick", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    results = json.loads((tmp_path / "causal_step.json").read_text())
    assert [(r["n"], r["k"]) for r in results["rows"]] == [(32, 16), (64, 16)]
    for row in results["rows"]:
        assert len(row["ratios"]) == results["settings"]["rounds"] == 2
        assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"]
        assert row["flop_limit"] > 0
    assert set(results["saved_bytes"]) == {"32", "64"}
    text = (tmp_path / "causal_step.txt").read_text()
    assert "| 64 | 16 | 2 |" in text and "n = 64 / n = 32" in text
    assert (tmp_path / "causal_step.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob("*.tmp*"))          # written atomically: no temporary file left behind


def test_the_plot_draws_each_k_its_flop_limit_and_the_targets(causal_step, tmp_path):
    rows = [{"n": n, "k": k, "ratio": n / 512 + k / 1000, "ratio_low": 0.5, "ratio_high": 9.0, "flop_limit": n / 500}
            for k in (32, 64) for n in (256, 1024, 4096)]
    fig = causal_step.plot(rows, tmp_path / "p.png")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["target (k = 64)"].get_xdata()) == [1024, 2048, 4096]
    assert list(lines["target (k = 64)"].get_ydata()) == [1.1, 1.5, 2.4]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in dashed] == [[256 / 500, 1024 / 500, 4096 / 500]] * 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["target (k = 64)", "k = 32", "k = 64"]
    assert (tmp_path / "p.png").is_file()


def test_quick_mode_times_a_baseline_from_git_in_the_same_rounds(causal_step, tmp_path):
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    threads = torch.get_num_threads()
    try:
        rows, _ = causal_step.main(["--quick", "--out", str(tmp_path), "--baseline", "HEAD"])
    finally:
        torch.set_num_threads(threads)
    assert len(rows[0]["times"]["baseline"]) == len(rows[0]["times"]["linformer"]) == 2
    assert rows[0]["gain_low"] <= rows[0]["gain"] <= rows[0]["gain_high"]
    assert "gain over HEAD" in (tmp_path / "causal_step.txt").read_text()


@pytest.mark.parametrize("n, k, c, L", [(40, 4, 8, 1), (37, 9, 6, 2), (64, 16, 16, 0), (7, 3, 3, 1)])
def test_visible_keys_counts_what_the_layer_lets_each_query_see(causal_step, n, k, c, L):
    attn = CausalLinformerSelfAttention(8, 64, k=k, heads=1, chunk_size=c, look_back=L)
    N = -(-n // c)
    allowed = attn.window_mask(N, "cpu").reshape(N * c, -1)[:n]         # (n, k + (L+1)c) real queries only
    assert causal_step.visible_keys(n, k, c, L) == int(allowed.sum())


def test_flop_limit_is_one_where_both_algorithms_are_causal_attention(causal_step):
    kw = dict(dim=128, heads=4, depth=4)
    assert causal_step.flop_limit(128, 64, **kw) == 1.0        # n <= (look_back + 1)·c: no memory, one window
    assert causal_step.flop_limit(4096, 64, **kw) > causal_step.flop_limit(1024, 64, **kw) > 1
