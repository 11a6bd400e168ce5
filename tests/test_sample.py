"""linformer_edu.sample: temperature and top-k, generation from a prompt, masked-LM fill-in, the CLI."""
import re

import pytest
import torch

from linformer_edu import LinformerLM
from linformer_edu import sample as S
from linformer_edu.data import CharVocab
from linformer_edu.sample import MASK_CHAR, fill, generate, next_char_distribution
from linformer_edu.train import TrainConfig, train

TEXT = "the quick brown fox jumps over the lazy dog.\n" * 40
VOCAB = CharVocab(TEXT)


def exactly(message):
    return "^" + re.escape(message) + "$"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LinformerLM(len(VOCAB), 16, 12, 1, k=4, heads=2, causal=True)


def test_temperature_and_top_k():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    plain = next_char_distribution(logits)
    torch.testing.assert_close(plain, logits.softmax(-1))
    torch.testing.assert_close(next_char_distribution(logits, 0), torch.tensor([[1.0, 0, 0, 0]]))   # greedy
    top2 = torch.cat([logits[:, :2].softmax(-1), torch.zeros(1, 2)], dim=1)   # only the two most likely
    torch.testing.assert_close(next_char_distribution(logits, 1.0, top_k=2), top2)
    hot, cold = next_char_distribution(logits, 2.0), next_char_distribution(logits, 0.5)
    assert cold[0, 0] > plain[0, 0] > hot[0, 0]                              # low temperature sharpens
    with pytest.raises(ValueError, match=exactly("temperature: expected a number >= 0 (0 = always the most likely "
                                                 "character), got -1")):
        next_char_distribution(logits, -1)
    with pytest.raises(ValueError, match=exactly("top_k: expected None or a positive int, got 0")):
        next_char_distribution(logits, 1.0, top_k=0)


def test_generate_continues_the_prompt(model):
    out = generate(model, VOCAB, "the ", 30, generator=torch.Generator().manual_seed(1))
    assert out.startswith("the ") and len(out) == 34 and set(out) <= set(VOCAB.chars)
    assert out == generate(model, VOCAB, "the ", 30, generator=torch.Generator().manual_seed(1))   # seeded
    assert out != generate(model, VOCAB, "the ", 30, generator=torch.Generator().manual_seed(2))


def test_greedy_generation_is_the_argmax_chain(model):
    model.eval()
    ids = VOCAB.encode("fox").tolist()
    for _ in range(20):                                      # longer than seq_len=12: the context is cropped
        logits = model(torch.tensor([ids[-12:]]))[0, -1]
        ids.append(int(logits.argmax()))
    assert generate(model, VOCAB, "fox", 20, temperature=0) == VOCAB.decode(ids)


def test_generate_keeps_the_training_mode(model):
    model.train()
    generate(model, VOCAB, "a", 2)
    assert model.training


def test_generate_samples_in_eval_mode(model):
    seen = []                                          # the mode of every forward call generate makes
    hook = model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    model.train()
    generate(model, VOCAB, "a", 3)
    hook.remove()
    assert seen == [False] * 3 and model.training      # dropout off while sampling, the mode given back after


def test_generate_errors(model):
    with pytest.raises(ValueError, match=r"^prompt: got characters not in the vocabulary: 'Q', 'Z'; "):
        generate(model, VOCAB, "QZ the", 5)
    with pytest.raises(ValueError, match=exactly("prompt: expected at least one character to start from "
                                                 "(e.g. '\\n'), got ''")):
        generate(model, VOCAB, "", 5)
    with pytest.raises(ValueError, match=exactly("max_new_chars: expected an int >= 0, got -3")):
        generate(model, VOCAB, "a", -3)


@pytest.fixture
def mlm_model():
    """An untrained masked-LM model: the characters of VOCAB and [MASK], bidirectional, seq_len 12."""
    torch.manual_seed(0)
    return LinformerLM(len(VOCAB) + 1, 16, 12, 1, k=4, heads=2)


@pytest.mark.parametrize("vocab", [{"a": 0, "b": 1}, VOCAB.chars], ids=["dict", "str"])
def test_generate_and_fill_need_a_char_vocab(model, mlm_model, vocab):
    with pytest.raises(TypeError, match=exactly(f"vocab: expected a CharVocab, got {type(vocab).__name__}")):
        generate(model, vocab, "the ", 5)
    with pytest.raises(TypeError, match=exactly(f"vocab: expected a CharVocab, got {type(vocab).__name__}")):
        fill(mlm_model, vocab, f"the {MASK_CHAR}")


@pytest.mark.parametrize("mask_char", ["##", ""])
def test_fill_mask_char_is_one_character(mlm_model, mask_char):
    with pytest.raises(ValueError, match=exactly(f"mask_char: expected one character, got {mask_char!r}")):
        fill(mlm_model, VOCAB, f"the {MASK_CHAR}", mask_char=mask_char)


@pytest.mark.parametrize("mask_char", [5, None])
def test_fill_mask_char_of_another_type_is_a_type_error(mlm_model, mask_char):
    with pytest.raises(TypeError, match=exactly(
            f"mask_char: expected one character, got {mask_char!r} of type {type(mask_char).__name__}")):
        fill(mlm_model, VOCAB, f"the {MASK_CHAR}", mask_char=mask_char)


@pytest.mark.parametrize("args, options, message", [
    (("a", "5"), {}, "max_new_chars: expected an int >= 0, got '5' of type str"),
    (("a", 2.0), {}, "max_new_chars: expected an int >= 0, got 2.0 of type float"),
    ((7, 5), {}, "prompt: expected a str to start from (e.g. '\\n'), got 7 of type int"),
    (("a", 5), {"temperature": "1"},
     "temperature: expected a number >= 0 (0 = always the most likely character), got '1' of type str"),
    (("a", 5), {"top_k": 2.0}, "top_k: expected None or a positive int, got 2.0 of type float"),
])
def test_generate_arguments_of_the_wrong_type_are_type_errors(model, args, options, message):
    with pytest.raises(TypeError, match=exactly(message)):
        generate(model, VOCAB, *args, **options)


def test_fill_text_of_another_type_is_a_type_error(mlm_model):
    with pytest.raises(TypeError, match=exactly(f"text: expected a str with gaps marked {MASK_CHAR!r}, got "
                                                f"['the'] of type list")):
        fill(mlm_model, VOCAB, ["the"])


def test_fill_text_must_fit_the_model(mlm_model):
    text = f"the qu{MASK_CHAR}ck br"                                      # 12 characters: seq_len, it fits
    filled = fill(mlm_model, VOCAB, text)
    assert len(filled) == 12 and filled.startswith("the qu") and filled.endswith("ck br")
    with pytest.raises(ValueError, match=exactly("text: 13 characters, but the model reads at most seq_len=12")):
        fill(mlm_model, VOCAB, text + "o")


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints: the CLI, and masked-LM fill-in


def tiny_run(tmp_path, **changes):
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    cfg = TrainConfig(corpus=str(text), dim=16, depth=1, heads=2, seq_len=16, k=4, batch_size=4, max_steps=3,
                      eval_interval=3, eval_iters=1, progress=False, device="cpu", out_dir=str(tmp_path / "run"),
                      **changes)
    return train(cfg)


def test_fill_replaces_only_the_gaps(tmp_path):
    result = tiny_run(tmp_path, objective="mlm")
    text = f"the qu{MASK_CHAR}ck br{MASK_CHAR}wn"
    filled = fill(result.model, result.vocab, text, generator=torch.Generator().manual_seed(0))
    assert len(filled) == len(text) and MASK_CHAR not in filled
    assert [a for a, b in zip(filled, text) if b != MASK_CHAR] == [c for c in text if c != MASK_CHAR]
    with pytest.raises(ValueError, match=exactly("mask_char: 'q' is a character of the vocabulary, so a gap could "
                                                 f"not be told from text; choose another, e.g. {MASK_CHAR!r}")):
        fill(result.model, result.vocab, "the quick", mask_char="q")
    with pytest.raises(ValueError, match=exactly(f"text: mark the characters to fill with {MASK_CHAR!r}; "
                                                 f"got 'the quick'")):
        fill(result.model, result.vocab, "the quick")


def test_fill_needs_a_masked_lm_model(model):
    with pytest.raises(ValueError, match=exactly(f"model: expected a masked-LM model with {len(VOCAB) + 1} token "
                                                 f"ids (the characters and [MASK]), got one with {len(VOCAB)}; "
                                                 f"train it with objective='mlm'")):
        fill(model, VOCAB, f"the {MASK_CHAR}")


def test_cli_samples_a_checkpoint(tmp_path, capsys):
    tiny_run(tmp_path)
    args = ["--ckpt", str(tmp_path / "run"), "--prompt", "the ", "--chars", "25", "--seed", "3", "--device", "cpu"]
    assert S.main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("the ") and len(first) == len("the ") + 25 + 1   # and a newline
    assert S.main(args) == 0 and capsys.readouterr().out == first           # the seed fixes the sample


def test_cli_fills_for_a_masked_lm_checkpoint(tmp_path, capsys):
    tiny_run(tmp_path, objective="mlm")
    assert S.main(["--ckpt", str(tmp_path / "run"), "--prompt", f"the {MASK_CHAR}{MASK_CHAR}ick"]) == 0
    out = capsys.readouterr().out
    assert len(out) == len("the quick\n") and out.startswith("the ") and out.endswith("ick\n")


def test_cli_errors(tmp_path, capsys):
    assert S.main(["--ckpt", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == f"error: no checkpoint at {tmp_path / 'nothing'}\n"


def test_cli_warns_that_a_bidirectional_model_samples_the_leak(tmp_path, capsys):
    (tmp_path / "leaky").mkdir()
    (tmp_path / "causal").mkdir()
    tiny_run(tmp_path / "leaky", causal=False, allow_leaky=True)
    tiny_run(tmp_path / "causal")
    args = ["--prompt", "the ", "--chars", "5", "--device", "cpu"]
    assert S.main(["--ckpt", str(tmp_path / "leaky" / "run"), *args]) == 0
    out, err = capsys.readouterr()
    assert err == ("warning: this model is bidirectional (trained with --allow-leaky): it learned to read the next "
                   "character, so its samples show the leak, not language\n")
    assert out.startswith("the ") and len(out) == len("the ") + 5 + 1                 # it still samples
    assert S.main(["--ckpt", str(tmp_path / "causal" / "run"), *args]) == 0
    assert capsys.readouterr().err == ""                                               # a causal model: no warning


def test_cli_bad_device_is_a_one_line_error(tmp_path, capsys):
    tiny_run(tmp_path)
    assert S.main(["--ckpt", str(tmp_path / "run"), "--device", "gpu"]) == 2
    assert capsys.readouterr() == ("", "error: device: got 'gpu', expected 'auto', 'cpu', 'cuda', 'cuda:N' or "
                                       "'mps'\n")
