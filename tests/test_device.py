"""linformer_edu.device.amp_settings: the precision the trainer picks for each GPU generation.

No GPU is needed for most tests: what torch.cuda reports is monkeypatched, and the settings are asked for the way
start_run asks (pick_device, then amp_settings of that device). Tests marked `cuda` run only on a real GPU
(`pytest -m cuda`, or tools/gpu_check.py).
"""
import math
import re

import pytest
import torch

from linformer_edu import train as T
from linformer_edu.device import AmpSettings, amp_settings, pick_device

FP16 = AmpSettings(torch.float16, True)     # autocast to fp16, loss scaled by a GradScaler
BF16 = AmpSettings(torch.bfloat16, False)   # autocast to bf16, bf16's range needs no scaling
FLOAT32 = AmpSettings(None, False)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gpus(monkeypatch, *capabilities):
    """Make torch see CUDA GPUs 0, 1, ... of these compute capabilities; is_bf16_supported answers as torch's does
    (with its default including_emulation=True, True below 8.0 too, where bf16 is only emulated)."""
    def capability(device=None):
        index = torch.device(device).index if device is not None else None
        return capabilities[index or 0]               # 'cuda' (no index) is the current GPU, 0 here

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation or capabilities[0] >= (8, 0))


def trainer_amp(device="auto", enabled=True):
    """What start_run does: pick the device the config names, then ask amp_settings for it."""
    return amp_settings(pick_device(device), enabled=enabled)


@pytest.mark.parametrize("capability, expected", [
    ((7, 5), FP16),    # a T4: fast fp16 tensor cores, bf16 only emulated although is_bf16_supported() says True
    ((7, 0), FP16),    # a V100
    ((8, 0), BF16),    # an A100
    ((8, 9), BF16),    # an L4
    ((9, 0), BF16),    # an H100
])
def test_bf16_only_where_the_gpu_computes_it_natively(monkeypatch, capability, expected):
    gpus(monkeypatch, capability)
    assert torch.cuda.is_bf16_supported()            # the default question says yes on every one of them
    assert trainer_amp() == expected
    assert trainer_amp("cuda") == expected


def test_the_capability_asked_is_that_of_the_gpu_trained_on(monkeypatch):
    gpus(monkeypatch, (8, 0), (7, 5))                 # an A100 as cuda:0, a T4 as cuda:1
    assert trainer_amp("cuda:0") == BF16
    assert trainer_amp("cuda:1") == FP16


@pytest.mark.parametrize("device, enabled", [("cpu", True), ("cuda", False), ("cpu", False)])
def test_float32_when_amp_is_off_or_not_on_cuda(monkeypatch, device, enabled):
    gpus(monkeypatch, (9, 0))
    assert trainer_amp(device, enabled) == FLOAT32


def test_mps_trains_in_float32_without_asking_cuda(monkeypatch):
    def no_cuda(*args, **kwargs):
        raise AssertionError("torch.cuda was asked about a device that is not CUDA")

    monkeypatch.setattr(torch.cuda, "get_device_capability", no_cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", no_cuda)
    assert amp_settings(torch.device("mps")) == amp_settings("cpu") == FLOAT32


def test_amp_settings_argument_errors(monkeypatch):
    with pytest.raises(TypeError, match="^" + re.escape(
            "device: expected a torch.device or a name such as 'cuda', got None of type NoneType") + "$"):
        amp_settings(None)
    with pytest.raises(ValueError, match="^" + re.escape(
            "device: got 'gpu', expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") + "$"):
        amp_settings("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="^" + re.escape(
            "device: got 'cuda:1', but this PyTorch sees no CUDA GPU; use 'auto' or 'cpu'") + "$"):
        amp_settings(torch.device("cuda:1"))


def test_start_run_asks_for_the_device_it_trains_on(tmp_path, monkeypatch):
    # the tests above replay start_run's two lines; this one checks that start_run still makes that call
    calls = []
    monkeypatch.setattr(T, "amp_settings", lambda *args, **kwargs: calls.append((args, kwargs)) or FLOAT32)
    (tmp_path / "text.txt").write_text("abcdefgh " * 200, encoding="utf-8")
    config = T.TrainConfig(corpus=str(tmp_path / "text.txt"), dim=8, depth=1, heads=2, seq_len=8, k=4,
                           batch_size=2, max_steps=1, progress=False, device="cpu", amp=False)
    run = T.start_run(config)
    assert calls == [((torch.device("cpu"),), {"enabled": False})]
    assert run.amp == FLOAT32


# ----------------------------------------------------------------------------------------------------------------
# On a real GPU only


@pytest.mark.cuda
@needs_cuda
def test_this_gpu_gets_bf16_exactly_when_it_is_ampere_or_later():
    expected = BF16 if torch.cuda.get_device_capability() >= (8, 0) else FP16
    assert trainer_amp("cuda") == expected


@pytest.mark.cuda
@needs_cuda
def test_a_mixed_precision_run_on_this_gpu_trains_saves_and_resumes(tmp_path):
    (tmp_path / "text.txt").write_text("It was the best of times, it was the worst of times. " * 100, encoding="utf-8")
    config = T.TrainConfig(corpus=str(tmp_path / "text.txt"), dim=32, depth=2, heads=2, seq_len=32, k=8,
                           batch_size=8, max_steps=6, warmup_steps=2, eval_interval=3, eval_iters=2,
                           progress=False, device="cuda", out_dir=str(tmp_path / "run"))
    amp = trainer_amp("cuda")

    def ctrl_c_at_step_3(result):
        if result.step == 3:
            raise KeyboardInterrupt

    first = T.train(config, callback=ctrl_c_at_step_3)
    assert first.stopped == "interrupted" and first.step == 3
    scaler = T.read_checkpoint(tmp_path / "run")["scaler"]            # {} when the scaler is off
    assert bool(scaler) == amp.use_scaler and (not scaler or scaler["scale"] > 0)
    resumed = T.train(config, resume=True)
    assert resumed.step == 6 and all(map(math.isfinite, resumed.history["loss"]))
    assert resumed.metrics["amp"] == str(amp.dtype).replace("torch.", "")
    assert resumed.metrics["device"].startswith("cuda")
