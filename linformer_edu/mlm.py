"""Masked language modelling: the objective the Linformer paper pretrained with (RoBERTa's recipe), for characters.

A bidirectional model may look at the whole sequence, so it cannot be trained to predict the next character:
it would just read it (see ``linformer_edu.leak``). Instead, hide some characters and ask for them back:

    tokens   T h e _ c a t _ s a t        ids in [0, vocab_size)
    inputs   T h [M] _ c a t _ s o t      15% of positions chosen; of those 80% -> [MASK], 10% -> a random
    targets  . . e  . . . . . . a .       character, 10% kept as they are (BERT); targets only at chosen ones

The [MASK] symbol gets the one id no character has, ``mask_id = vocab_size``, so the model is built with
``num_tokens = vocab_size + 1``. The loss is cross-entropy at the chosen positions only; we report it as bits
per masked character (loss / ln 2) next to masked-character accuracy.

To *generate* with such a model, fill the gaps iteratively: predict every masked position, keep the most
confident few, and predict the rest again with those in place (as in Mask-Predict, Ghazvininejad et al. 2019).

    collate = MaskingCollator(vocab_size=len(vocab))
    inputs, targets = collate(x, generator=g)                  # (b, n), (b, n) with -100 where not chosen
    loss = masked_lm_loss(model(inputs), targets)
    filled = fill_in(model, inputs_with_masks, mask_id=collate.mask_id)
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import check_positive_int, check_sampling, check_token_ids, check_type
from ._state import eval_mode
from .data import get_batch

IGNORE = -100  # the target at positions that are not scored (cross_entropy's default ignore_index)


def _random(shape, generator, device):
    """Uniform [0, 1) numbers drawn with ``generator`` (on its device) and moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


@dataclass
class MaskingCollator:
    """Turns a batch of character ids into (inputs, targets) for masked language modelling.

    vocab_size:  characters have ids 0..vocab_size-1; [MASK] is ``vocab_size``.
    mask_prob:   share of positions chosen for prediction (BERT/RoBERTa: 0.15). Every sequence gets at least
                 one, so a batch always has something to score.
    random_prob, keep_prob: of the chosen positions, the shares given a random character or left unchanged
                 (BERT: 0.1 and 0.1); the rest (0.8) become [MASK]. Set both to 0 for the simplest variant,
                 [MASK] everywhere chosen. A random character may by chance equal the original, as in BERT.
    """
    vocab_size: int
    mask_prob: float = 0.15
    random_prob: float = 0.1
    keep_prob: float = 0.1

    def __post_init__(self):
        check_positive_int("vocab_size", self.vocab_size)
        if not 0 < check_type("mask_prob", self.mask_prob, (int, float), "0 < mask_prob <= 1") <= 1:
            raise ValueError(f"mask_prob: got {self.mask_prob}, expected 0 < mask_prob <= 1")
        for name in ("random_prob", "keep_prob"):
            if not 0 <= check_type(name, getattr(self, name), (int, float), f"0 <= {name} <= 1") <= 1:
                raise ValueError(f"{name}: got {getattr(self, name)}, expected 0 <= {name} <= 1")
        if self.random_prob + self.keep_prob > 1:
            raise ValueError(f"random_prob + keep_prob: got {self.random_prob} + {self.keep_prob} = "
                             f"{self.random_prob + self.keep_prob}, expected at most 1")

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def num_tokens(self) -> int:
        """The vocabulary size the model needs: every character plus [MASK]."""
        return self.vocab_size + 1

    def __call__(self, tokens, generator=None):
        """tokens (b, n) ids in [0, vocab_size) -> inputs (b, n) ids in [0, vocab_size], targets (b, n)."""
        check_token_ids("tokens", tokens, self.vocab_size, bound="vocab_size")
        b, n = tokens.shape
        chosen = _random((b, n), generator, tokens.device) < self.mask_prob           # (b, n)
        # every row scores something: a row that drew nothing gets one random position
        fallback = _random((b, n), generator, tokens.device).argmax(dim=1)           # (b,)
        none = ~chosen.any(dim=1)                                                     # (b,)
        chosen[none, fallback[none]] = True
        targets = tokens.masked_fill(~chosen, IGNORE)                                 # (b, n)

        u = _random((b, n), generator, tokens.device)                                 # (b, n) which treatment
        to_mask = chosen & (u < 1 - self.random_prob - self.keep_prob)
        to_random = chosen & (u >= 1 - self.random_prob - self.keep_prob) & (u < 1 - self.keep_prob)
        gen_device = generator.device if generator is not None else tokens.device
        random_chars = torch.randint(0, self.vocab_size, (b, n), generator=generator,
                                     device=gen_device).to(tokens.device)            # (b, n)
        inputs = tokens.masked_fill(to_mask, self.mask_id)
        inputs = torch.where(to_random, random_chars, inputs)                         # (b, n)
        return inputs, targets


# ----------------------------------------------------------------------------------------------------------------
# Scores: only the chosen positions count

def masked_lm_loss(logits, targets):
    """Mean cross-entropy (nats) over the positions with a target. logits (b, n, V), targets (b, n)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def masked_accuracy(logits, targets):
    """Share of the scored positions where the most likely character is the right one."""
    scored = targets != IGNORE                                     # (b, n)
    return (logits.argmax(dim=-1)[scored] == targets[scored]).float().mean().item()


def bits_per_masked_char(logits, targets):
    """Cross-entropy in bits per scored character: log2(V) for a uniform guess, 0 for a perfect one."""
    return masked_lm_loss(logits, targets).item() / math.log(2)


@torch.no_grad()
def evaluate_mlm(model, ids, collator, *, batch_size=16, block_size=None, batches=10, seed=0):
    """Masked-LM loss, bits per masked char and accuracy of ``model`` on random windows of ``ids``.

    The windows and the masking are drawn from ``seed``, so two models (or two checkpoints) meet the same test.
    """
    block_size = model.seq_len if block_size is None else block_size
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    loss = correct = scored = 0.
    with eval_mode(model):
        for _ in range(batches):
            x, _ = get_batch(ids, batch_size, block_size, generator=gen)  # (b, n)
            inputs, targets = collator(x, generator=gen)                  # (b, n), (b, n)
            logits = model(inputs.to(device)).float().cpu()               # (b, n, V)
            count = (targets != IGNORE).sum().item()
            loss += masked_lm_loss(logits, targets).item() * count
            correct += masked_accuracy(logits, targets) * count
            scored += count
    return {"loss": loss / scored, "bpc": loss / scored / math.log(2), "accuracy": correct / scored}


# ----------------------------------------------------------------------------------------------------------------
# Generation: fill the gaps, most confident first

@torch.no_grad()
def fill_in(model, tokens, *, mask_id, steps=None, temperature=0., top_k=None, generator=None):
    """Replace every ``mask_id`` in ``tokens`` (b, n) by a character, a few at a time.

    Each step predicts all positions still masked, then keeps the most confident ones (their chosen character's
    probability), so that each row reveals about ``remaining / steps_left`` of its gaps per step.
    steps:       number of model calls; default one per gap (the most masked row's count).
    temperature: 0 takes the most likely character; above 0 samples from softmax(logits / temperature).
    top_k:       sample only among the k most likely characters.
    [MASK] itself is never predicted. Returns the filled (b, n) tensor; positions without a mask are unchanged.
    Raises ValueError when no position holds ``mask_id``: there is nothing to fill.
    """
    check_sampling(temperature, top_k)
    num_tokens = getattr(model, "num_tokens", None)                        # ids the model scores, [MASK] included
    allowed = f"an int in [0, {num_tokens}) (the model's num_tokens)" if num_tokens else "an int >= 0"
    if check_type("mask_id", mask_id, int, allowed) < 0 or (num_tokens and mask_id >= num_tokens):
        raise ValueError(f"mask_id: expected {allowed}, got {mask_id}")
    masked = tokens == mask_id                                              # (b, n)
    if not masked.any():
        raise ValueError(f"tokens: no position holds mask_id={mask_id}, so there is nothing to fill; "
                         f"put mask_id where a character should be filled in")
    remaining = masked.sum(dim=1)                                           # (b,)
    steps = int(remaining.max()) if steps is None else check_positive_int("steps", steps)
    tokens, masked = tokens.clone(), masked.clone()
    with eval_mode(model):
        for step in range(steps):
            if not masked.any():
                break
            logits = model(tokens).float()                                  # (b, n, V)
            logits[..., mask_id] = float("-inf")                            # never "predict" [MASK]
            chars, confidence = _choose(logits, temperature, top_k, generator)  # (b, n), (b, n)
            confidence = confidence.masked_fill(~masked, -1.)               # only gaps compete
            reveal_count = torch.ceil(remaining / (steps - step)).long()    # (b,) this step's share of each row
            rank = confidence.argsort(dim=1, descending=True).argsort(dim=1)  # (b, n) 0 = most confident
            reveal = masked & (rank < reveal_count[:, None])                # (b, n)
            tokens = torch.where(reveal, chars, tokens)
            masked &= ~reveal
            remaining = masked.sum(dim=1)
    return tokens


def _choose(logits, temperature, top_k, generator):
    """A character per position, and the probability the model gave it. logits (b, n, V)."""
    if temperature == 0:
        probs = logits.softmax(dim=-1)                                      # (b, n, V)
        confidence, chars = probs.max(dim=-1)                               # (b, n), (b, n)
        return chars, confidence
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]                   # (b, n, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)                                          # (b, n, V)
    gen_device = generator.device if generator is not None else probs.device
    flat = probs.flatten(0, 1).to(gen_device)                               # (b·n, V)
    chars = torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1]).to(probs.device)  # (b, n)
    return chars, probs.gather(-1, chars[..., None])[..., 0]
