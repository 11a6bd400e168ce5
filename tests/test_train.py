"""linformer_edu.train: exact resume, Ctrl-C, NaN, checkpoint errors, mixed-precision choice, the CLI.

Every run here is a tiny model for a few steps on a small text in tmp_path; nothing touches the network.
Interrupts at every point of a step: test_interrupt.py; checksums and the corpus's identity: test_checkpoint.py;
the command line's flags: test_cli.py.
"""
import json
import math
import os
import re
import stat

import pytest
import torch
import torch.nn.functional as F

from linformer_edu import cli
from linformer_edu import train as T
from linformer_edu.checkpoint import content_sha256
from linformer_edu.data import CharVocab, get_batch, load_corpus, split
from linformer_edu.train import (CheckpointError, NonFiniteLossError, TrainConfig, amp_settings, load_checkpoint,
                                 lr_at, preset, read_checkpoint)

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity.\n") * 30


def exactly(message):
    return "^" + re.escape(message) + "$"


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tiny(text_file, **changes):
    base = dict(corpus=str(text_file), dim=16, depth=1, heads=2, seq_len=16, k=4, batch_size=4, max_steps=8,
                warmup_steps=2, eval_interval=4, eval_iters=2, progress=False, device="cpu")
    return TrainConfig(**{**base, **changes})


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[name], sb[name]) for name in sa)


# ----------------------------------------------------------------------------------------------------------------
# Pure pieces: mixed precision, learning rate, config checks


def test_amp_settings(monkeypatch):
    # which GPU gets which precision (a T4, an A100, ...) is tests/test_device.py's; here the trainer's import works
    assert amp_settings("cpu") == amp_settings(torch.device("mps")) == (None, False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))   # a T4
    assert amp_settings(torch.device("cuda")) == (torch.float16, True)   # fp16 needs loss scaling
    assert amp_settings(torch.device("cuda"), enabled=False) == (None, False)


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=100)
    assert lr_at(0, cfg) == pytest.approx(1e-3 * 1 / 10, rel=1e-3)
    warm = [lr_at(s, cfg) for s in range(10)]
    assert warm == sorted(warm)                                          # rises during warmup
    decay = [lr_at(s, cfg) for s in range(10, 101)]
    assert decay == sorted(decay, reverse=True)                          # then only falls
    assert lr_at(100, cfg) == pytest.approx(1e-4)                        # ends at min_lr
    assert lr_at(50, cfg, progress=1.0) == pytest.approx(1e-4)           # a spent time budget ends it too
    assert lr_at(50, cfg) == pytest.approx(1e-4 + 0.45e-3 * (1 + math.cos(math.pi / 2)))


@pytest.mark.parametrize("changes, error, message", [
    ({"model": "lstm"}, ValueError, "model: got 'lstm', expected one of 'linformer', 'full'"),
    ({"k": 200}, ValueError, "k: got 200, expected 1 <= k <= seq_len=128"),
    ({"heads": 3}, ValueError, "heads: dim=128 is not divisible by heads=3; choose heads among the divisors of 128"),
    ({"lr": 0}, ValueError, "lr: expected a number > 0, got 0"),
    ({"min_lr": 1.0}, ValueError, "min_lr: expected 0 <= min_lr <= lr=0.002, got 1.0"),
    ({"minutes": -1}, ValueError, "minutes: expected a number > 0, or None for no limit, got -1"),
    ({"batch_size": 0}, ValueError, "batch_size: expected a positive int, got 0"),
    # a wrong type is a TypeError (bool included: True is not a count); a wrong value of the right type, ValueError
    ({"k": "32"}, TypeError, "k: expected a positive int, got '32' of type str"),
    ({"max_steps": True}, TypeError, "max_steps: expected a positive int, got True of type bool"),
    ({"lr": "0.001"}, TypeError, "lr: expected a number > 0, got '0.001' of type str"),
    ({"dropout": True}, TypeError, "dropout: expected a number >= 0 and < 1, got True of type bool"),
    ({"minutes": "5"}, TypeError, "minutes: expected a number > 0, or None for no limit, got '5' of type str"),
    ({"lr": float("nan")}, ValueError, "lr: expected a number > 0, got nan"),
    ({"seed": 1.5}, TypeError, "seed: expected an int >= 0, got 1.5 of type float"),
    ({"warmup_steps": -1}, ValueError, "warmup_steps: expected an int >= 0, got -1"),
    ({"device": "gpu"}, ValueError, "device: got 'gpu', expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ({"objective": "clm"}, ValueError, "objective: got 'clm', expected one of 'next', 'mlm'"),
    ({"causal": False}, ValueError,
     "causal: a bidirectional model (causal=False) trained on next-character prediction reads the character it "
     "should predict (see notebook 08); use causal=True, or objective='mlm', or pass allow_leaky=True "
     "(--allow-leaky) to demonstrate the leak"),
])
def test_config_errors(changes, error, message):
    with pytest.raises(error, match=exactly(message)):
        TrainConfig(**changes)


def test_presets_and_objectives():
    cpu, gpu = preset("cpu"), preset("gpu")
    assert cpu.causal and cpu.objective == "next" and cpu.minutes and gpu.dropout > 0
    assert preset("cpu", objective="mlm").causal is False                 # masked LM: bidirectional
    assert preset("cpu", causal=False, allow_leaky=True).causal is False  # the leaky demonstration, explicitly
    with pytest.raises(ValueError, match=exactly("name: got 'tpu', expected one of 'cpu', 'gpu'")):
        preset("tpu")
    with pytest.raises(TypeError, match=r"^preset: unknown TrainConfig field\(s\) steps; the fields are corpus, "):
        preset("cpu", steps=10)


def test_train_checks_its_arguments(text_file):
    with pytest.raises(TypeError, match=exactly("config: expected a TrainConfig (e.g. preset('cpu')), got dict")):
        T.train({"corpus": str(text_file)})
    with pytest.raises(TypeError, match=exactly("callback: expected a function of the TrainResult, got 5")):
        T.train(tiny(text_file), callback=5)
    with pytest.raises(ValueError, match=exactly(
            "resume: needs config.out_dir, the folder holding the checkpoint to continue")):
        T.train(tiny(text_file), resume=True)
    with pytest.raises(TypeError, match=exactly("overwrite: expected True or False, got 'yes'")):
        T.train(tiny(text_file), overwrite="yes")
    with pytest.raises(ValueError, match=exactly(
            "overwrite: resume=True continues the run in out_dir, overwrite=True replaces it; pass one of them")):
        T.train(tiny(text_file), resume=True, overwrite=True)


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_cuda_device_without_a_gpu_is_refused(text_file, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)      # this machine, as PyTorch sees it
    with pytest.raises(ValueError, match=exactly(
            f"device: got {device!r}, but this PyTorch sees no CUDA GPU; use 'auto' or 'cpu'")):
        T.train(tiny(text_file, device=device))


def test_seq_len_must_leave_a_window_in_both_splits(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("abcdefghij" * 10, encoding="utf-8")                # 90 training, 10 validation characters
    with pytest.raises(ValueError, match=exactly(
            "seq_len: 10 does not fit the corpus: 90 training and 10 validation characters; use a shorter "
            "seq_len or a longer text")):
        T.train(tiny(path, seq_len=10))
    result = T.train(tiny(path, seq_len=9, max_steps=1))                # 10 characters: one window of 9 and its next
    assert result.step == 1 and result.stopped == "steps"


# ----------------------------------------------------------------------------------------------------------------
# The loop


def test_train_matches_the_hand_written_loop(text_file):
    """train() is the loop notebook 07 writes by hand, seeded in the documented order: same weights."""
    cfg = tiny(text_file, eval_interval=3, max_steps=6)
    result = T.train(cfg)
    text = load_corpus(cfg.corpus)
    vocab = CharVocab(text)
    train_ids, _ = split(vocab.encode(text), cfg.val_fraction)
    torch.manual_seed(cfg.seed)
    model = T.build_model(cfg, len(vocab))
    optimizer = T.make_optimizer(model, cfg)
    batches = torch.Generator().manual_seed(cfg.seed)
    for step in range(cfg.max_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        x, y = get_batch(train_ids, cfg.batch_size, cfg.seq_len, generator=batches)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
    assert same_weights(model, result.model)
    assert result.stopped == "steps" and result.step == 6 and len(result.history["loss"]) == 6
    assert [e["step"] for e in result.history["evals"]] == [0, 3, 6]
    assert result.history["evals"][0]["val_loss"] == pytest.approx(math.log(len(vocab)), rel=0.2)  # ~uniform


def test_loss_falls_and_metrics_are_written(text_file, tmp_path):
    cfg = tiny(text_file, max_steps=30, eval_interval=10, lr=1e-2, out_dir=str(tmp_path / "run"))
    result = T.train(cfg)
    evals = result.history["evals"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.5
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {"train_loss", "val_loss", "val_bpc", "steps", "tokens_per_s", "device", "model", "k"} <= set(metrics)
    assert metrics["steps"] == 30 and metrics["model"] == "linformer" and metrics["k"] == 4
    assert metrics["device"] == "cpu" and metrics["tokens_per_s"] > 0
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss"] / math.log(2))
    assert metrics == result.metrics
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["ckpt.pt", "metrics.json"]  # no temp files


def test_time_budget_stops_training(text_file):
    result = T.train(tiny(text_file, minutes=1e-6, max_steps=50))   # 60 µs: spent after the first step
    assert result.stopped == "time" and 1 <= result.step < 50


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints: exact resume, Ctrl-C, NaN


def stop_at(step):
    """A callback that presses Ctrl-C at the evaluation of `step`."""
    def callback(result):
        if result.step == step:
            raise KeyboardInterrupt
    return callback


def test_resume_continues_exactly(text_file, tmp_path, capsys):
    straight = T.train(tiny(text_file, max_steps=8, dropout=0.1))       # dropout: the RNG state must resume too
    cfg = tiny(text_file, max_steps=8, dropout=0.1, out_dir=str(tmp_path / "run"))
    first = T.train(cfg, callback=stop_at(4))
    assert first.stopped == "interrupted" and first.step == 4
    assert "Interrupted at step 4; saved" in capsys.readouterr().out
    assert read_checkpoint(tmp_path / "run")["step"] == 4
    resumed = T.train(cfg, resume=True)
    assert resumed.step == 8 and resumed.stopped == "steps"
    assert same_weights(straight.model, resumed.model)
    assert resumed.history["loss"] == straight.history["loss"]
    assert [e["step"] for e in resumed.history["evals"]] == [0, 4, 8]
    for name in ("val_loss", "train_loss"):              # evaluated on the same windows as if never stopped
        assert [e[name] for e in resumed.history["evals"]] == [e[name] for e in straight.history["evals"]]


def test_ctrl_c_in_the_middle_of_a_step_resumes_exactly(text_file, tmp_path, monkeypatch):
    """Ctrl-C after the batch was drawn but before the update: that step is redone from its own RNG state."""
    straight = T.train(tiny(text_file, max_steps=8))
    calls = {"n": 0}

    def interrupting_get_batch(*args, **kwargs):
        batch = get_batch(*args, **kwargs)   # the batch generator has moved on ...
        if torch.is_grad_enabled():          # a training batch (evaluation runs under no_grad)
            calls["n"] += 1
            if calls["n"] == 6:
                raise KeyboardInterrupt      # ... when Ctrl-C arrives
        return batch

    cfg = tiny(text_file, max_steps=8, out_dir=str(tmp_path / "run"))
    monkeypatch.setattr(T, "get_batch", interrupting_get_batch)
    first = T.train(cfg)
    assert first.stopped == "interrupted" and first.step == 5
    monkeypatch.setattr(T, "get_batch", get_batch)
    resumed = T.train(cfg, resume=True)
    assert same_weights(straight.model, resumed.model)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(text_file, tmp_path):
    def poison(result):                      # after the checkpoint of step 4, break the model
        if result.step == 4:
            with torch.no_grad():
                result.model.to_logits.bias.fill_(float("nan"))

    cfg = tiny(text_file, out_dir=str(tmp_path / "run"))
    path = tmp_path / "run" / "ckpt.pt"
    with pytest.raises(NonFiniteLossError, match=exactly(
            f"the training loss is nan at step 4 (lr 0.00105): training stopped and the last good checkpoint, "
            f"{path}, was kept. Try a lower learning rate (lr), gradient clipping (grad_clip=1.0), or float32 "
            f"(amp=False)")):
        T.train(cfg, callback=poison)
    model, _, _ = load_checkpoint(path)
    assert read_checkpoint(path)["step"] == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def nan_estimate_at(split_name, evaluation, monkeypatch):
    """Make the loss estimate on the `split_name` split ("val" or "train") NaN at its `evaluation`-th (0-based)
    evaluation. The split is told by the ids estimate_loss is given, not by the order of the calls."""
    _, val_ids = split(CharVocab(TEXT).encode(TEXT), 0.1)
    calls = {"val": 0, "train": 0}
    real = T.estimate_loss

    def estimate(model, ids, *args, **kwargs):
        name = "val" if torch.equal(ids.cpu(), val_ids) else "train"
        calls[name] += 1
        return float("nan") if name == split_name and calls[name] - 1 == evaluation else \
            real(model, ids, *args, **kwargs)

    monkeypatch.setattr(T, "estimate_loss", estimate)


def test_nan_validation_loss_stops_and_keeps_the_last_good_checkpoint(text_file, tmp_path, monkeypatch):
    nan_estimate_at("val", 2, monkeypatch)               # the validation loss of the third evaluation, at step 8
    cfg = tiny(text_file, max_steps=12, out_dir=str(tmp_path / "run"))
    path = tmp_path / "run" / "ckpt.pt"
    with pytest.raises(NonFiniteLossError, match=exactly(
            f"the validation loss is nan at step 8: training stopped and the last good checkpoint, {path}, was "
            f"kept. Try a lower learning rate (lr), gradient clipping (grad_clip=1.0), or float32 (amp=False)")):
        T.train(cfg)
    assert read_checkpoint(path)["step"] == 4
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 4


def test_a_nan_training_loss_estimate_is_named_as_such(text_file, monkeypatch):
    nan_estimate_at("train", 0, monkeypatch)             # the first evaluation: validation fine, training NaN
    with pytest.raises(NonFiniteLossError, match=exactly(
            "the training loss, estimated on 2 batches, is nan at step 0: training stopped and no checkpoint was "
            "written. Try a lower learning rate (lr), gradient clipping (grad_clip=1.0), or float32 (amp=False)")):
        T.train(tiny(text_file))


def test_load_checkpoint_gives_the_trained_model(text_file, tmp_path):
    result = T.train(tiny(text_file, out_dir=str(tmp_path / "run")))
    model, vocab, config = load_checkpoint(tmp_path / "run")                  # the folder or the file
    assert vocab == result.vocab and config == result.config and not model.training
    x = vocab.encode("it was the age ")[None]
    torch.testing.assert_close(model(x), result.model.eval()(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------------
# Bad checkpoints


@pytest.fixture
def trained_run(text_file, tmp_path):
    cfg = tiny(text_file, max_steps=4, out_dir=str(tmp_path / "run"))
    T.train(cfg)
    return cfg, tmp_path / "run" / "ckpt.pt"


def test_missing_checkpoint(tmp_path, text_file):
    with pytest.raises(FileNotFoundError, match=exactly(f"no checkpoint at {tmp_path / 'nothing.pt'}")):
        load_checkpoint(tmp_path / "nothing.pt")
    cfg = tiny(text_file, out_dir=str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=exactly(
            f"resume: no checkpoint at {tmp_path / 'empty' / 'ckpt.pt'}; train once without resume first")):
        T.train(cfg, resume=True)


def test_corrupt_checkpoint(trained_run):
    _, path = trained_run
    path.write_bytes(path.read_bytes()[:1000])                              # a cut-off copy
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))} is not a readable checkpoint \(.*\); "
                                              r"it may be truncated or corrupt: delete it and train again$"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=exactly(
            f"{path} is not a linformer_edu.train checkpoint (it has no 'format': 'linformer_edu.train "
            f"checkpoint' entry); load other weights with model.load_state_dict")):
        load_checkpoint(path)


def edit_checkpoint(path, change):
    """Change a checkpoint's contents and stamp it with the checksum of what it now holds, as a program would that
    wrote it so: the checks after the checksum's are the ones tested."""
    state = torch.load(path, weights_only=True)
    state.pop("sha256")
    change(state)
    state["sha256"] = content_sha256(state)
    torch.save(state, path)


@pytest.mark.parametrize("version", [3, 0, None, True])
def test_checkpoint_of_another_version(trained_run, version):
    _, path = trained_run
    edit_checkpoint(path, lambda state: state.update(version=version))
    with pytest.raises(CheckpointError, match=exactly(
            f"{path} has checkpoint version {version!r}; this linformer_edu reads versions 1 and 2")):
        read_checkpoint(path)
    edit_checkpoint(path, lambda state: state.pop("version"))
    with pytest.raises(CheckpointError, match=exactly(
            f"{path} has checkpoint version None; this linformer_edu reads versions 1 and 2")):
        load_checkpoint(path)


def test_incomplete_checkpoint(trained_run):
    _, path = trained_run
    edit_checkpoint(path, lambda state: [state.pop(key) for key in ("rng", "optimizer", "elapsed")])
    with pytest.raises(CheckpointError, match=exactly(f"{path} is incomplete: it lacks optimizer, elapsed, rng")):
        read_checkpoint(path)


@pytest.mark.parametrize("key, value, detail", [
    ("config", {"model": "lstm"}, "model: got 'lstm', expected one of 'linformer', 'full'"),
    ("config", {"heads": 3}, "heads: dim=16 is not divisible by heads=3; choose heads among the divisors of 16"),
    ("vocab", {"chars": "ba"}, "state['chars']: expected distinct characters in sorted order (from "
                               "CharVocab.to_dict()), got 'ba'"),
    ("vocab", {"chars": "ab", "size": 2}, "state: expected a dict with the one key 'chars' (from "
                                          "CharVocab.to_dict()), got ['chars', 'size']"),
])
def test_checkpoint_with_a_config_or_vocabulary_this_version_cannot_use(trained_run, key, value, detail):
    _, path = trained_run
    edit_checkpoint(path, lambda state: state[key].update(value))
    with pytest.raises(CheckpointError, match=exactly(
            f"{path} holds a config or vocabulary this version cannot use: {detail}")):
        load_checkpoint(path)


def test_resume_on_a_text_with_other_characters_is_refused(trained_run, text_file):
    cfg, path = trained_run
    assert "b" in TEXT and "B" not in TEXT
    text_file.write_text(TEXT.replace("b", "B"), encoding="utf-8")    # as many characters, but not the same ones
    n = len(CharVocab(TEXT))
    with pytest.raises(CheckpointError, match=exactly(
            f"{path} was trained on a text with other characters ({n} vs {n} now): is corpus "
            f"{str(text_file)!r} the same file?")):
        T.train(cfg, resume=True)
    text_file.write_text(TEXT + "ZZZ", encoding="utf-8")              # one character more
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))} was trained on a text with other "
                                              rf"characters \({n} vs {n + 1} now\): "):
        T.train(cfg, resume=True)
    assert read_checkpoint(path)["step"] == 4                         # the checkpoint was left as it was


def test_checkpoint_whose_weights_do_not_fit_its_config(trained_run):
    _, path = trained_run
    edit_checkpoint(path, lambda state: state["config"].update(dim=32))     # the config now describes another model
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: its weights do not fit the model its "
                                              r"config describes \(Error\(s\) in loading state_dict"):
        load_checkpoint(path)


def test_resume_with_another_setup_is_refused(trained_run):
    cfg, path = trained_run
    other = TrainConfig(**{**cfg.__dict__, "model": "full", "k": 8})
    with pytest.raises(CheckpointError, match=exactly(
            f"{path} was trained with a different setup; resuming would not continue that run. Differences: "
            f"model: checkpoint 'linformer', now 'full'; k: checkpoint 4, now 8. Start a new run in another "
            f"out_dir, or resume with the checkpoint's settings")):
        T.train(other, resume=True)
    longer = TrainConfig(**{**cfg.__dict__, "max_steps": 6})                  # a bigger budget is fine
    assert T.train(longer, resume=True).step == 6


@pytest.mark.skipif(os.name == "nt", reason="Windows has no POSIX permission bits")
def test_checkpoint_and_metrics_get_the_usual_file_mode(text_file, tmp_path, umask_027):
    """Not mkstemp's owner-only 0o600, which os.replace would keep: 0o666 less the umask, as open() gives."""
    T.train(tiny(text_file, max_steps=2, out_dir=str(tmp_path / "run")))
    for name in ("ckpt.pt", "metrics.json"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == umask_027 == 0o640


def test_a_failed_save_leaves_the_old_checkpoint(trained_run, monkeypatch):
    _, path = trained_run
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    model, vocab, config = load_checkpoint(path)
    state = read_checkpoint(path)
    with pytest.raises(OSError, match="disk full"):
        T.save_checkpoint(path, model=model, optimizer=T.make_optimizer(model, config),
                          scaler=torch.amp.GradScaler("cpu", enabled=False), config=config, vocab=vocab,
                          corpus_sha256=state["corpus_sha256"], step=99, rng=state["rng"],
                          history=state["history"], elapsed=0.0, tokens=0)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


# ----------------------------------------------------------------------------------------------------------------
# The output folder: never written over unless asked, checked before the first step (issue 12)


def test_a_run_in_out_dir_is_continued_or_replaced_never_written_over(trained_run, tmp_path):
    cfg, path = trained_run
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=exactly(
            f"out_dir: {path.parent} already holds a run (ckpt.pt, metrics.json); continue it with resume=True "
            f"(--resume), or replace it with overwrite=True (--overwrite)")):
        T.train(cfg)
    assert path.read_bytes() == before
    other = TrainConfig(**{**cfg.__dict__, "seed": 1})
    assert T.train(other, overwrite=True).stopped == "steps"
    assert read_checkpoint(path)["config"].seed == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own file")           # a folder without a run is fine
    T.train(TrainConfig(**{**cfg.__dict__, "out_dir": str(tmp_path / "mine")}))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my own file"


def test_an_unwritable_out_dir_fails_before_the_first_step(text_file, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(T, "train_step", lambda *args: pytest.fail("trained before checking out_dir"))
    with pytest.raises(NotADirectoryError, match=exactly(
            f"out_dir: cannot write to {blocker / 'run'} (Not a directory); choose another folder")):
        T.train(tiny(text_file, max_steps=2, eval_interval=100, out_dir=str(blocker / "run")))


def test_checking_out_dir_leaves_no_trace(text_file, tmp_path, monkeypatch):
    """The check creates the folder and a probe file to try; when the run then fails, neither is left."""
    monkeypatch.setattr(T, "load_corpus", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        T.train(tiny(text_file, out_dir=str(tmp_path / "new" / "run")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.txt"]


def test_a_nan_in_a_replacing_run_does_not_claim_the_old_checkpoint(trained_run):
    """overwrite=True: until the new run saves, the checkpoint in out_dir is the old run's, not its last good one."""
    cfg, path = trained_run

    def poison(result):
        with torch.no_grad():
            result.model.to_logits.bias.fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match="at step 0 .*: training stopped and no checkpoint was written"):
        T.train(cfg, overwrite=True, callback=poison)
    assert read_checkpoint(path)["step"] == 4                              # the old run, untouched


# ----------------------------------------------------------------------------------------------------------------
# Other objectives


def test_masked_lm_objective_trains_a_bidirectional_model(text_file, tmp_path):
    cfg = tiny(text_file, objective="mlm", out_dir=str(tmp_path / "run"))
    assert cfg.causal is False
    result = T.train(cfg)
    assert result.model.num_tokens == len(result.vocab) + 1                # characters and [MASK]
    model, vocab, config = load_checkpoint(tmp_path / "run")
    assert config.objective == "mlm" and model.num_tokens == len(vocab) + 1


def test_leaky_training_only_when_asked(text_file):
    result = T.train(tiny(text_file, causal=False, allow_leaky=True, max_steps=2))
    assert result.config.label == "linformer k=4 (leaky)" and result.metrics["causal"] is False


# ----------------------------------------------------------------------------------------------------------------
# Command line


def test_cli_trains_resumes_and_reports(text_file, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--text", str(text_file), "--preset", "cpu", "--model", "full", "--steps", "4", "--minutes", "0",
            "--seq-len", "16", "--dim", "16", "--depth", "1", "--heads", "2", "--batch-size", "4",
            "--eval-interval", "2", "--device", "cpu", "--out", str(out), "--no-progress", "--sample", "20"]
    assert T.main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("full: 4 steps in ") and f"wrote {out / 'ckpt.pt'} and {out / 'metrics.json'}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "full" and metrics["k"] is None and metrics["steps"] == 4
    assert T.main(["--out", str(out), "--resume", "--steps", "6", "--no-progress", "--sample", "0"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 6


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert T.main(["--out", str(tmp_path / "none"), "--resume"]) == 2
    assert capsys.readouterr().err == f"error: no checkpoint at {tmp_path / 'none' / 'ckpt.pt'}\n"
    assert T.main(["--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x")]) == 2
    assert "is neither a known corpus" in capsys.readouterr().err


def test_cli_resume_needs_out(capsys):
    with pytest.raises(ValueError, match=exactly("--resume: give --out DIR, the folder of the run to continue")):
        cli.config_from_args(cli.parse_args(["--resume"]))
    assert T.main(["--resume", "--steps", "4"]) == 2
    assert capsys.readouterr() == ("", "error: --resume: give --out DIR, the folder of the run to continue\n")


def test_live_loss_plot_draws_every_run_it_saw(text_file):
    import matplotlib
    matplotlib.use("Agg")
    plot = T.LiveLossPlot(x="seconds", smooth=2)
    for model in ("full", "linformer"):
        T.train(tiny(text_file, model=model, max_steps=4), callback=plot)
    assert list(plot.runs) == ["full", "linformer k=4"]
    fig = plot.figure()
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert [label.split(":")[0] for label in labels] == ["full", "linformer k=4"]
    assert all(label.endswith(" bits/char") for label in labels)
    assert len(fig.axes[0].lines) == 4                                   # a training and a validation line each
    with pytest.raises(ValueError, match=exactly("x: got 'time', expected one of 'step', 'seconds'")):
        T.LiveLossPlot(x="time")


def test_mixed_precision_with_a_grad_scaler_resumes_exactly(text_file, tmp_path, monkeypatch):
    """The CUDA fp16 path (autocast + GradScaler), run on the CPU with bf16 autocast and a CPU GradScaler: the
    scaler's state goes into the checkpoint and comes back, so resuming is still exact."""
    monkeypatch.setattr(T, "amp_settings", lambda device_type, enabled=True: T.AmpSettings(torch.bfloat16, True))
    straight = T.train(tiny(text_file, max_steps=6, eval_interval=3, out_dir=str(tmp_path / "straight")))
    cfg = tiny(text_file, max_steps=6, eval_interval=3, out_dir=str(tmp_path / "run"))
    T.train(cfg, callback=stop_at(3))
    halfway = read_checkpoint(tmp_path / "run")["scaler"]
    assert halfway["scale"] > 0                          # a scaler that is on saves its state_dict
    resumed = T.train(cfg, resume=True)
    assert same_weights(straight.model, resumed.model)
    final = read_checkpoint(tmp_path / "run")["scaler"]
    assert final == read_checkpoint(tmp_path / "straight")["scaler"]   # as if never stopped ...
    assert final != halfway                              # ... which is not the state it was stopped in
    assert resumed.metrics["amp"] == "bfloat16"
