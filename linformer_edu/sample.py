"""Text from a trained character model: next-character sampling, or filling gaps for a masked-LM model.

    model, vocab, config = load_checkpoint("runs/cpu-linformer-k32")
    generate(model, vocab, "def ", 300, temperature=0.8, top_k=20)     # prompt + 300 new characters
    fill(model, vocab, "The q█ick br█wn f█x")                           # masked-LM models: fill each █

or from a shell:

    python -m linformer_edu.sample --ckpt runs/cpu-linformer-k32 --prompt "def " --chars 300 --temperature 0.8

Generating one character: run the model on the last seq_len characters, take the logits at the last position,
divide them by the temperature (below 1 sharpens the distribution, above 1 flattens it; 0 always takes the most
likely character), keep only the top_k most likely if asked, and draw from the softmax. Append, repeat.
This is only meaningful for a causal model: a bidirectional one learned to read the next character from its
input, and here that character is not there yet (notebook 08 shows the garbage that comes out).
"""
import argparse
import sys

import torch

from ._checks import check_count, check_sampling
from ._state import eval_mode
from .checkpoint import CheckpointError, load_checkpoint
from .data import CharVocab
from .mlm import fill_in

MASK_CHAR = "█"   # marks a gap in `fill`; chosen because no corpus here uses it


def next_char_distribution(logits, temperature=1.0, top_k=None):
    """Probabilities (..., V) to draw the next character from: softmax(logits / temperature) over the top_k.

    temperature 0 puts all the mass on the most likely character.
    """
    check_sampling(temperature, top_k)
    logits = logits.float()
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]                  # (..., 1) the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()  # (..., V)
    return (logits / temperature).softmax(dim=-1)                          # (..., V)


@torch.no_grad()
def generate(model, vocab: CharVocab, prompt: str = "\n", max_new_chars: int = 200, *, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> str:
    """The prompt followed by `max_new_chars` characters drawn one at a time from a causal character model.

    generator: a CPU torch.Generator for reproducible samples (the global RNG if None).
    Characters of the prompt outside the vocabulary raise a ValueError that lists them.
    """
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"vocab: expected a CharVocab, got {type(vocab).__name__}")
    check_count("max_new_chars", max_new_chars)
    check_sampling(temperature, top_k)
    if not isinstance(prompt, str):
        raise TypeError(f"prompt: expected a str to start from (e.g. '\\n'), got {prompt!r} of type "
                        f"{type(prompt).__name__}")
    if not prompt:
        raise ValueError(f"prompt: expected at least one character to start from (e.g. '\\n'), got {prompt!r}")
    device = next(model.parameters()).device
    ids = vocab.encode(prompt, what="prompt").to(device)[None]             # (1, t)
    with eval_mode(model):
        for _ in range(max_new_chars):
            context = ids[:, -model.seq_len:]                               # (1, <= seq_len)
            logits = model(context)[:, -1, :len(vocab)]                     # (1, V) ([MASK] excluded, if any)
            probs = next_char_distribution(logits, temperature, top_k).cpu()  # (1, V)
            next_id = torch.multinomial(probs, 1, generator=generator)       # (1, 1)
            ids = torch.cat([ids, next_id.to(device)], dim=1)               # (1, t + 1)
    return vocab.decode(ids[0].cpu())


@torch.no_grad()
def fill(model, vocab: CharVocab, text: str, *, mask_char: str = MASK_CHAR, temperature: float = 0.0,
         top_k: int | None = None, steps: int | None = None, generator: torch.Generator | None = None) -> str:
    """`text` with every `mask_char` replaced by the masked-LM model's choice, most confident gaps first
    (`linformer_edu.mlm.fill_in`). The model must have been trained with objective='mlm' ([MASK] = len(vocab))."""
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"vocab: expected a CharVocab, got {type(vocab).__name__}")
    if not isinstance(mask_char, str):
        raise TypeError(f"mask_char: expected one character, got {mask_char!r} of type {type(mask_char).__name__}")
    if len(mask_char) != 1:
        raise ValueError(f"mask_char: expected one character, got {mask_char!r}")
    if mask_char in vocab:
        raise ValueError(f"mask_char: {mask_char!r} is a character of the vocabulary, so a gap could not be told "
                         f"from text; choose another, e.g. {MASK_CHAR!r}")
    check_sampling(temperature, top_k)
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str with gaps marked {mask_char!r}, got {text!r} of type "
                        f"{type(text).__name__}")
    if mask_char not in text:
        raise ValueError(f"text: mark the characters to fill with {mask_char!r}; got {text!r}")
    if len(text) > model.seq_len:
        raise ValueError(f"text: {len(text)} characters, but the model reads at most seq_len={model.seq_len}")
    if model.num_tokens != len(vocab) + 1:
        raise ValueError(f"model: expected a masked-LM model with {len(vocab) + 1} token ids (the characters and "
                         f"[MASK]), got one with {model.num_tokens}; train it with objective='mlm'")
    mask_id = len(vocab)
    known = vocab.encode(text.replace(mask_char, ""), what="text").tolist()
    ids = iter(known)
    tokens = torch.tensor([mask_id if c == mask_char else next(ids) for c in text])      # (n,)
    device = next(model.parameters()).device
    filled = fill_in(model, tokens[None].to(device), mask_id=mask_id, steps=steps, temperature=temperature,
                     top_k=top_k, generator=generator)                                    # (1, n)
    return vocab.decode(filled[0].cpu())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m linformer_edu.sample",
                                     description="Sample text from a checkpoint written by linformer_edu.train.")
    parser.add_argument("--ckpt", required=True, help="the checkpoint file, or the run folder holding ckpt.pt")
    parser.add_argument("--prompt", help="text to continue (default: a newline); for a masked-LM checkpoint, "
                                         f"text with gaps marked {MASK_CHAR}")
    parser.add_argument("--chars", type=int, default=300, help="characters to generate (default 300)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; default 0.8")
    parser.add_argument("--top-k", type=int, help="sample among the k most likely characters only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--mask-char", default=MASK_CHAR, help=f"gap marker for masked-LM checkpoints ({MASK_CHAR})")
    args = parser.parse_args(argv)
    try:
        model, vocab, config = load_checkpoint(args.ckpt, device=args.device)
        generator = torch.Generator().manual_seed(args.seed)
        if config.objective == "mlm":
            text = fill(model, vocab, args.prompt or "", mask_char=args.mask_char, temperature=args.temperature,
                        top_k=args.top_k, generator=generator)
        else:
            if not config.causal:
                print("warning: this model is bidirectional (trained with --allow-leaky): it learned to read the "
                      "next character, so its samples show the leak, not language", file=sys.stderr)
            text = generate(model, vocab, args.prompt or "\n", args.chars, temperature=args.temperature,
                            top_k=args.top_k, generator=generator)
    except (ValueError, FileNotFoundError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
