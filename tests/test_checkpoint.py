"""linformer_edu.checkpoint (issue 12): a changed bit is an error, not a different model; a run's text is known by
its content, not by the path it was given as; version 1 checkpoints still load, with a warning."""
import os
import re

import pytest
import torch

from linformer_edu import train as T
from linformer_edu.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, text_sha256

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity.\n") * 30


def exactly(message):
    return "^" + re.escape(message) + "$"


def tiny(corpus, out_dir, **changes):
    return T.TrainConfig(**{**dict(corpus=str(corpus), dim=16, depth=1, heads=2, seq_len=16, k=4, batch_size=4,
                                   max_steps=4, warmup_steps=2, eval_interval=2, eval_iters=1, progress=False,
                                   device="cpu", out_dir=str(out_dir)), **changes})


@pytest.fixture
def run(tmp_path):
    """A text file, and a 2-step run on it, saved in tmp_path / "run"."""
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    T.train(tiny(text, tmp_path / "run", max_steps=2))
    return text, tmp_path / "run"


def test_a_flipped_bit_in_the_weights_is_an_error(run):
    _, folder = run
    path = folder / "ckpt.pt"
    weight = read_checkpoint(path)["model"]["to_logits.weight"]
    data = bytearray(path.read_bytes())
    where = bytes(data).find(weight.numpy().tobytes())        # torch stores tensors uncompressed
    assert where > 0
    data[where + 5] ^= 0x10                                    # one bit of one float
    path.write_bytes(bytes(data))
    message = (f"{path} is corrupt: its contents do not match the SHA-256 saved with them (a changed bit on the "
               f"disk or in a copy); delete it and train again, or use a copy that is intact")
    with pytest.raises(CheckpointError, match=exactly(message)):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match=exactly(message)):
        T.train(tiny(folder.parent / "text.txt", folder), resume=True)


def test_the_same_text_under_another_path_resumes(run, tmp_path, monkeypatch):
    """Relative or absolute, or moved to another folder: the text is the same, so the run continues."""
    text, folder = run
    monkeypatch.chdir(tmp_path)
    assert T.train(tiny("text.txt", folder, max_steps=3), resume=True).step == 3          # relative, not absolute
    moved = tmp_path / "elsewhere" / "copy.txt"
    moved.parent.mkdir()
    text.rename(moved)
    assert T.train(tiny(moved, folder, max_steps=4), resume=True).step == 4
    assert read_checkpoint(folder)["corpus_sha256"] == text_sha256(TEXT)


def test_a_text_changed_in_place_is_refused(run):
    """The same characters in another order: the vocabulary cannot tell, the text's SHA-256 does."""
    text, folder = run
    changed = TEXT.replace("worst", "wrots", 1)
    assert sorted(set(changed)) == sorted(set(TEXT)) and changed != TEXT
    text.write_text(changed, encoding="utf-8")
    with pytest.raises(CheckpointError, match=exactly(
            f"{folder / 'ckpt.pt'} was trained on another text: corpus {str(text)!r} has SHA-256 "
            f"{text_sha256(changed)}, the checkpoint's text had {text_sha256(TEXT)} (same characters, other "
            f"content: was the file changed?); resume on that text, or start a new run")):
        T.train(tiny(text, folder), resume=True)
    assert read_checkpoint(folder)["step"] == 2                        # left as it was


def test_a_version_1_checkpoint_loads_with_a_warning_and_resumes(run):
    """Written before checksums: its contents cannot be checked, and the corpus is compared by its path, as then."""
    text, folder = run
    path = folder / "ckpt.pt"
    state = torch.load(path, weights_only=True)
    for key in ("sha256", "corpus_sha256"):
        del state[key]
    torch.save({**state, "version": 1}, path)
    warning = (f"{path} is a version 1 checkpoint, written before checkpoints carried a checksum: it is read "
               f"without checking its contents, and resuming it compares the corpus by its path")
    with pytest.warns(UserWarning, match=exactly(warning)):
        model, vocab, config = load_checkpoint(folder)
    assert config.max_steps == 2 and len(vocab) == len(set(TEXT))
    with pytest.warns(UserWarning, match=exactly(warning)), pytest.raises(CheckpointError, match=re.escape(
            f"Differences: corpus: checkpoint {str(text)!r}, now {os.path.relpath(text)!r}.")):
        T.train(tiny(os.path.relpath(text), folder), resume=True)
    with pytest.warns(UserWarning, match=exactly(warning)):
        assert T.train(tiny(text, folder, max_steps=3), resume=True).step == 3
    assert read_checkpoint(folder)["version"] == 2                     # saved again: now with its checksums
