"""linformer_edu.pretrained: the shipped models load, are what SHA256SUMS says, are trained, and are checked."""
import hashlib
import math
import re
import shutil

import pytest
import torch
import torch.nn.functional as F

from linformer_edu.checkpoint import CheckpointError
from linformer_edu.data import load_corpus
from linformer_edu.leak import leaks_future
from linformer_edu.pretrained import FOLDER, available, load_pretrained
from linformer_edu.sample import generate

VAL_TEXT = load_corpus("pydoc", progress=False)[-3000:]   # inside the validation part (the last 10%)


@pytest.fixture(scope="module")
def char():
    return load_pretrained("char")


@pytest.fixture(scope="module")
def mlm():
    return load_pretrained("mlm")


def test_both_ship_under_3_mb_with_the_listed_sha256():
    assert available() == ("char", "mlm")
    lines = (FOLDER / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        digest, name = line.split("  ")
        data = (FOLDER / name).read_bytes()
        assert len(data) <= 3_000_000, name
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_the_causal_model_is_notebook_07s_leaks_nothing_and_writes(char):
    model, vocab, config = char
    assert (config.objective, config.causal, config.model, config.k, config.seq_len) == ("next", True, "linformer",
                                                                                         32, 128)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    report = leaks_future(model, 64)
    assert set(report.max_change.values()) == {0.0}   # exactly 0, not merely small
    text = generate(model, vocab, "The ", 60, temperature=0.8, generator=torch.Generator().manual_seed(0))
    assert text.startswith("The ") and len(text) == 64 and set(text) <= set(vocab.chars)
    ids = vocab.encode(VAL_TEXT[:config.seq_len + 1])                         # (n + 1,)
    with torch.no_grad():
        loss = F.cross_entropy(model(ids[None, :-1])[0], ids[1:]).item()
    assert loss < math.log(len(vocab)) - 0.5   # trained: below the uniform guess's log V nats per character
    assert loss < 2.0   # and well trained (1000 steps: 1.32 on this window); the old 24-step file had 3.9


def test_the_masked_lm_fills_masked_characters_far_better_than_chance(mlm):
    model, vocab, config = mlm
    assert (config.objective, config.causal, model.num_tokens) == ("mlm", False, len(vocab) + 1)
    ids = vocab.encode(VAL_TEXT[:config.seq_len * 8]).view(8, config.seq_len)   # (8, n) unseen windows
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, 3::8] = True                                                         # one character in eight
    with torch.no_grad():
        guess = model(ids.masked_fill(masked, len(vocab)))[..., :len(vocab)].argmax(-1)   # (8, n)
    accuracy = (guess[masked] == ids[masked]).float().mean().item()
    assert accuracy > 0.15   # chance is 1 / len(vocab) (about 1%); the 1000-step file gets 0.20 here


def test_a_corrupted_copy_is_refused(tmp_path):
    folder = tmp_path / "pretrained"
    shutil.copytree(FOLDER, folder)
    data = bytearray((folder / "mlm.pt").read_bytes())
    data[len(data) // 2] ^= 1                                          # one bit, in the middle of the weights
    (folder / "mlm.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"mlm\.pt is corrupt or was replaced: its SHA-256 is [0-9a-f]{64}, "
                                              r"SHA256SUMS lists [0-9a-f]{64}"):
        load_pretrained("mlm", folder=folder)
    load_pretrained("char", folder=folder)   # the intact one still loads


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ValueError, match="^" + re.escape("name: got 'bert', expected one of 'char', 'mlm'") + "$"):
        load_pretrained("bert")
    with pytest.raises(TypeError, match="^" + re.escape("name: expected one of 'char', 'mlm', got 3 of type int")
                       + "$"):
        load_pretrained(3)
