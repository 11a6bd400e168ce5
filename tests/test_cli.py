"""linformer_edu.cli (issues 12 and 13): one flag per TrainConfig field, made from the field; today's flag names
still work; every argument is checked, and the output folder with it, before the first step; a run already in
the folder is never written over unless asked; the default folder differs between configurations."""
import argparse
import dataclasses
import os
import re
import runpy
import typing
import warnings

import pytest

from linformer_edu import cli
from linformer_edu import train as T
from linformer_edu.config import MODELS, OBJECTIVES, TrainConfig

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom.\n" * 40
TINY = ["--steps", "2", "--minutes", "0", "--seq-len", "16", "--dim", "16", "--depth", "1", "--heads", "2",
        "--k", "4", "--batch-size", "4", "--eval-interval", "2", "--eval-iters", "1", "--warmup-steps", "1",
        "--device", "cpu", "--no-progress", "--sample", "0"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def actions():
    parser = argparse.ArgumentParser()
    cli.add_field_flags(parser)
    return {action.dest: action for action in parser._actions if action.dest != "help"}


def test_every_field_has_a_flag_made_from_the_field():
    flags, hints = actions(), typing.get_type_hints(TrainConfig)
    assert set(flags) == {field.name for field in dataclasses.fields(TrainConfig)}
    for field in dataclasses.fields(TrainConfig):
        action = flags[field.name]
        assert field.metadata["help"] and action.help.startswith(field.metadata["help"]), field.name
        assert action.option_strings[0] == "--" + field.name.replace("_", "-")
        assert action.choices == field.metadata.get("choices"), field.name
        kinds = set(typing.get_args(hints[field.name]) or [hints[field.name]]) - {type(None)}
        if kinds == {bool}:
            assert isinstance(action, argparse.BooleanOptionalAction), field.name
        else:
            assert action.type.__name__ == next(iter(kinds)).__name__, field.name
    assert flags["model"].choices == MODELS and flags["objective"].choices == OBJECTIVES


def test_todays_flags_still_work():
    """The names the README, the notebooks and earlier versions use (grep '--' there)."""
    args = cli.parse_args(["--preset", "gpu", "--model", "full", "--k", "8", "--minutes", "0", "--steps", "7",
                           "--device", "cpu", "--out", "runs/x", "--objective", "next", "--allow-leaky",
                           "--seq-len", "32", "--dim", "48", "--depth", "2", "--heads", "3", "--batch-size", "5",
                           "--lr", "0.01", "--dropout", "0.1", "--eval-interval", "3", "--seed", "4", "--no-amp",
                           "--compile", "--no-progress", "--text", "notes.txt", "--sample", "0"])
    config, resume = cli.config_from_args(args)
    assert not resume and args.sample == 0
    assert dataclasses.asdict(config) == dataclasses.asdict(T.preset(
        "gpu", model="full", k=8, minutes=None, max_steps=7, device="cpu", out_dir="runs/x", objective="next",
        allow_leaky=True, causal=False, seq_len=32, dim=48, depth=2, heads=3, batch_size=5, lr=0.01, dropout=0.1,
        eval_interval=3, seed=4, amp=False, compile=True, progress=False, corpus="notes.txt"))


def test_the_flags_missing_until_now():
    config, _ = cli.config_from_args(cli.parse_args([
        "--warmup-steps", "7", "--eval-iters", "3", "--min-lr", "0", "--weight-decay", "0.5", "--beta2", "0.9",
        "--grad-clip", "0", "--data-dir", "corpora", "--val-fraction", "0.2", "--causal", "--max-steps", "9",
        "--out-dir", "somewhere", "--corpus", "shakespeare"]))
    assert (config.warmup_steps, config.eval_iters, config.min_lr, config.weight_decay, config.beta2,
            config.grad_clip, config.data_dir, config.val_fraction, config.causal, config.max_steps,
            config.out_dir, config.corpus) == (7, 3, 0.0, 0.5, 0.9, 0.0, "corpora", 0.2, True, 9, "somewhere",
                                               "shakespeare")


@pytest.mark.parametrize("argv, message", [
    (["--sample", "-5"], "argument --sample: expected an int >= 0, got '-5'"),
    (["--eval-iters", "1.5"], "argument --eval-iters: invalid int value: '1.5'"),
    (["--model", "lstm"], "argument --model: invalid choice: 'lstm'"),   # then the choices, as Python words them
    (["--resume", "--overwrite"], "argument --overwrite: not allowed with argument --resume"),
])
def test_malformed_arguments_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.parse_args(argv)
    assert stopped.value.code == 2
    assert f"error: {message}" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "lr: expected a number > 0, got -1.0"),
    (["--minutes", "-2"], "minutes: expected a number > 0, or None for no limit, got -2.0"),
    (["--k", "64", "--seq-len", "32"], "k: got 64, expected 1 <= k <= seq_len=32"),
    (["--val-fraction", "1"], "val_fraction: expected a number > 0 and < 1, got 1.0"),
])
def test_bad_values_are_one_line_errors_before_anything_happens(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert T.main(argv) == 2
    assert capsys.readouterr() == ("", f"error: {message}\n")
    assert list(tmp_path.iterdir()) == []                              # no folder made, nothing trained


def test_the_default_folder_tells_configurations_apart():
    def out(*argv):
        return cli.config_from_args(cli.parse_args(list(argv)))[0].out_dir
    assert out() == os.path.join("runs", "linformer-next-pydoc-d128-L4-n128-k32")
    assert out("--preset", "gpu") == os.path.join("runs", "linformer-next-pydoc-d384-L6-n256-k64")
    assert out("--corpus", "shakespeare") == os.path.join("runs", "linformer-next-shakespeare-d128-L4-n128-k32")
    assert out("--text", "my notes.md", "--model", "full", "--objective", "mlm") == \
        os.path.join("runs", "full-mlm-my_notes-d128-L4-n128")
    assert out("--allow-leaky") == os.path.join("runs", "linformer-leaky-pydoc-d128-L4-n128-k32")


def test_a_run_in_the_folder_is_not_written_over(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert T.main(["--text", str(text_file), "--out", str(out)] + TINY) == 0
    before = {name: (out / name).read_bytes() for name in ("ckpt.pt", "metrics.json")}
    capsys.readouterr()
    assert T.main(["--text", str(text_file), "--out", str(out), "--seed", "1"] + TINY) == 2
    assert capsys.readouterr().err == (
        f"error: out_dir: {out} already holds a run (ckpt.pt, metrics.json); continue it with resume=True "
        f"(--resume), or replace it with overwrite=True (--overwrite)\n")
    assert {name: (out / name).read_bytes() for name in before} == before
    assert T.main(["--text", str(text_file), "--out", str(out), "--seed", "1", "--overwrite"] + TINY) == 0
    assert T.read_checkpoint(out)["config"].seed == 1


def test_an_unwritable_folder_fails_before_the_first_step(text_file, tmp_path, monkeypatch, capsys):
    """A run shorter than --eval-interval used to train to the end and then save nothing."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(T, "train_step", lambda *args: pytest.fail("trained before checking the folder"))
    assert T.main(["--text", str(text_file), "--out", str(blocker / "run")] + TINY + ["--eval-interval", "100"]) \
        == 2
    assert capsys.readouterr().err == (f"error: out_dir: cannot write to {blocker / 'run'} (Not a directory); "
                                       f"choose another folder\n")


def test_python_dash_m_linformer_edu_train_runs_the_cli(monkeypatch, capsys):
    """`python -m linformer_edu.train` (and the console script's target, linformer_edu.train:main)."""
    monkeypatch.setattr("sys.argv", ["linformer_edu.train", "--sample", "-1"])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as stopped:
        warnings.simplefilter("ignore", RuntimeWarning)   # runpy: the module is imported already (by this test)
        runpy.run_module("linformer_edu.train", run_name="__main__")
    assert stopped.value.code == 2
    assert re.search(r"usage: python -m linformer_edu\.train .*error: argument --sample", capsys.readouterr().err,
                     re.DOTALL)
