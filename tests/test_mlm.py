"""Masked language modelling: the collator's masking, the scores, and iterative fill-in."""
import math

import pytest
import torch
from torch import nn

from linformer_edu import LinformerLM
from linformer_edu.mlm import (IGNORE, MaskingCollator, bits_per_masked_char, evaluate_mlm, fill_in,
                               masked_accuracy, masked_lm_loss)

V = 20  # characters 0..19, [MASK] = 20


def batch(b=64, n=512, seed=0):
    return torch.randint(0, V, (b, n), generator=torch.Generator().manual_seed(seed))


def test_bert_masking_proportions():
    tokens = batch()
    collate = MaskingCollator(V)
    inputs, targets = collate(tokens, generator=torch.Generator().manual_seed(0))
    chosen = targets != IGNORE
    assert abs(chosen.float().mean().item() - 0.15) < 0.005
    masked = inputs[chosen] == collate.mask_id
    kept = inputs[chosen] == tokens[chosen]
    other = ~masked & ~kept                                      # a random character that differs
    assert abs(masked.float().mean().item() - 0.8) < 0.02
    # kept: the 10% left alone plus the random draws that hit the original (10% / V)
    assert abs(kept.float().mean().item() - (0.1 + 0.1 / V)) < 0.02
    assert abs(other.float().mean().item() - 0.1 * (V - 1) / V) < 0.02


def test_targets_and_untouched_positions():
    tokens = batch(8, 100)
    collate = MaskingCollator(V)
    inputs, targets = collate(tokens, generator=torch.Generator().manual_seed(1))
    chosen = targets != IGNORE
    assert torch.equal(targets[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen])
    assert inputs.min() >= 0 and inputs.max() <= collate.mask_id
    assert (inputs[~chosen] != collate.mask_id).all()
    assert collate.mask_id == V and collate.num_tokens == V + 1


def test_simplest_variant_masks_every_chosen_position():
    tokens = batch(4, 50)
    inputs, targets = MaskingCollator(V, mask_prob=1.0, random_prob=0., keep_prob=0.)(tokens)
    assert (inputs == V).all() and torch.equal(targets, tokens)


def test_every_row_scores_at_least_one_position():
    inputs, targets = MaskingCollator(V, mask_prob=1e-9)(batch(32, 10), generator=torch.Generator().manual_seed(0))
    assert ((targets != IGNORE).sum(dim=1) == 1).all()


def test_seeded_masking_is_reproducible():
    tokens, collate = batch(4, 64), MaskingCollator(V)
    first = collate(tokens, generator=torch.Generator().manual_seed(5))
    again = collate(tokens, generator=torch.Generator().manual_seed(5))
    other = collate(tokens, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_scores_on_known_logits():
    targets = torch.full((1, 4), IGNORE)
    targets[0, 1], targets[0, 3] = 2, 0
    logits = torch.zeros(1, 4, 3)
    assert bits_per_masked_char(logits, targets) == pytest.approx(math.log2(3))   # uniform over 3 symbols
    logits[0, 1, 2] = 10.                           # right at position 1
    logits[0, 3, 1] = 1.                            # wrong at position 3 (says 1, the answer is 0)
    logits[0, 0, 1] = 99.                           # unscored positions do not count
    assert masked_accuracy(logits, targets) == 0.5
    expected = (-torch.log_softmax(logits[0, 1], -1)[2] - torch.log_softmax(logits[0, 3], -1)[0]) / 2
    assert masked_lm_loss(logits, targets).item() == pytest.approx(expected.item())
    assert bits_per_masked_char(logits, targets) == pytest.approx(expected.item() / math.log(2))


class Knows(nn.Module):
    """A stand-in model that knows the answer; its confidence grows with the position, and it logs its inputs."""

    def __init__(self, answer, num_tokens):
        super().__init__()
        self.answer, self.num_tokens, self.seen = answer, num_tokens, []
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, tokens):
        self.seen.append(tokens.clone())
        b, n = tokens.shape
        logits = torch.zeros(b, n, self.num_tokens)
        strength = torch.linspace(1., 5., n)[None, :].expand(b, n)         # later positions: more confident
        logits.scatter_(-1, self.answer[..., None], strength[..., None])
        return logits


def test_fill_in_recovers_the_answer_most_confident_first():
    answer = batch(2, 12, seed=3)
    gaps = torch.zeros(2, 12, dtype=torch.bool)
    gaps[0, [1, 4, 9]] = True
    gaps[1, [0, 11]] = True
    model = Knows(answer, V + 1)
    filled = fill_in(model, answer.masked_fill(gaps, V), mask_id=V)
    assert torch.equal(filled, answer)
    assert len(model.seen) == 3                                         # one call per gap of the fullest row
    revealed_first = (model.seen[1] != V) & gaps                        # after the first step
    assert revealed_first[0].nonzero().flatten().tolist() == [9]        # the most confident gap of row 0
    assert revealed_first[1].nonzero().flatten().tolist() == [11]


def test_fill_in_in_one_step_and_sampling():
    answer = batch(3, 16, seed=4)
    gaps = torch.rand(3, 16, generator=torch.Generator().manual_seed(0)) < 0.5
    model = Knows(answer, V + 1)
    assert torch.equal(fill_in(model, answer.masked_fill(gaps, V), mask_id=V, steps=1), answer)
    assert len(model.seen) == 1
    sampled = fill_in(model, answer.masked_fill(gaps, V), mask_id=V, temperature=1.0, top_k=1,
                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled, answer)                                 # top-1 sampling is the argmax
    sampled = fill_in(model, answer.masked_fill(gaps, V), mask_id=V, temperature=1.0,
                      generator=torch.Generator().manual_seed(0))
    assert torch.equal(sampled[~gaps], answer[~gaps]) and (sampled < V).all()


def test_fill_in_never_writes_mask_and_leaves_text_alone():
    torch.manual_seed(0)
    model = LinformerLM(V + 1, 16, 32, 1, k=8, heads=2)
    tokens = batch(2, 32).masked_fill(torch.eye(32, dtype=torch.bool)[:2], V)   # a gap in each row
    with torch.no_grad():
        model.to_logits.bias[V] = 100.                                  # the model *wants* to write [MASK]
    filled = fill_in(model, tokens, mask_id=V)
    assert (filled != V).all()
    assert torch.equal(filled[tokens != V], tokens[tokens != V])


def test_evaluate_mlm_on_a_real_model():
    torch.manual_seed(0)
    model = LinformerLM(V + 1, 16, 32, 1, k=8, heads=2)
    ids = batch(1, 2000)[0]
    collate = MaskingCollator(V)
    seen = []                                          # the mode of every forward call: dropout must be off
    model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    scores = evaluate_mlm(model, ids, collate, batch_size=4, batches=3)
    assert seen == [False] * 3
    assert scores == evaluate_mlm(model, ids, collate, batch_size=4, batches=3)   # seeded: the same test
    assert scores["bpc"] == pytest.approx(scores["loss"] / math.log(2))
    assert 0 <= scores["accuracy"] <= 1 and 3 < scores["bpc"] < 6      # untrained: near log2(21) = 4.39
    assert model.training


@pytest.mark.parametrize("kwargs, message", [
    (dict(vocab_size=0), "vocab_size: expected a positive int, got 0"),
    (dict(vocab_size=V, mask_prob=0.), "mask_prob: got 0.0, expected 0 < mask_prob <= 1"),
    (dict(vocab_size=V, random_prob=-0.1), "random_prob: got -0.1, expected 0 <= random_prob <= 1"),
    (dict(vocab_size=V, random_prob=0.6, keep_prob=0.5),
     "random_prob + keep_prob: got 0.6 + 0.5 = 1.1, expected at most 1"),
])
def test_bad_collator(kwargs, message):
    with pytest.raises(ValueError) as err:
        MaskingCollator(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("tokens, error, message", [
    (torch.full((2, 3), V), ValueError, "tokens: token ids must lie in [0, 20) = [0, vocab_size); got values from 20 "
                                        "to 20"),
    (torch.zeros(2, 3), TypeError, "tokens: expected a tensor of integer token ids, got torch.float32"),
    (torch.zeros(6, dtype=torch.long), ValueError, "tokens: expected shape (batch, length), got (6,)"),
])
def test_bad_tokens(tokens, error, message):
    with pytest.raises(error) as err:
        MaskingCollator(V)(tokens)
    assert str(err.value) == message


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(temperature=-1.), ValueError,
     "temperature: expected a number >= 0 (0 = always the most likely character), got -1.0"),
    (dict(temperature=float("nan")), ValueError,
     "temperature: expected a number >= 0 (0 = always the most likely character), got nan"),
    (dict(top_k=0), ValueError, "top_k: expected None or a positive int, got 0"),
    (dict(steps=0), ValueError, "steps: expected a positive int, got 0"),
    (dict(steps=1.5), TypeError, "steps: expected a positive int, got 1.5 of type float"),
    (dict(mask_id=V + 1), ValueError, "mask_id: expected an int in [0, 21) (the model's num_tokens), got 21"),
    (dict(mask_id=-1), ValueError, "mask_id: expected an int in [0, 21) (the model's num_tokens), got -1"),
    (dict(mask_id="20"), TypeError,
     "mask_id: expected an int in [0, 21) (the model's num_tokens), got '20' of type str"),
])
def test_bad_fill_in(kwargs, error, message):
    with pytest.raises(error) as err:
        fill_in(Knows(batch(1, 4), V + 1), torch.full((1, 4), V), **{"mask_id": V, **kwargs})
    assert str(err.value) == message


def test_fill_in_says_when_there_is_nothing_to_fill():
    with pytest.raises(ValueError) as err:   # no gap at all: not "steps: got 0"
        fill_in(Knows(batch(1, 4), V + 1), batch(1, 4), mask_id=V)
    assert str(err.value) == ("tokens: no position holds mask_id=20, so there is nothing to fill; "
                              "put mask_id where a character should be filled in")
