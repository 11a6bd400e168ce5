"""leaks_future: finds a leak from the future wherever one is, and calls a causal model causal."""
import pytest
import torch
import torch.nn.functional as F
from oracle import LinformerLM as ReferenceLinformerLM
from torch import nn

from linformer_edu import LinformerLM, LinformerSelfAttention
from linformer_edu.causal import CausalLinformerSelfAttention
from linformer_edu.leak import LeakReport, leaks_future


class TinyCausalLM(nn.Module):
    """Token model with causal softmax attention: leak-free by construction."""

    def __init__(self, num_tokens=11, dim=16, heads=2, causal=True):
        super().__init__()
        self.emb, self.qkv, self.out = nn.Embedding(num_tokens, dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, num_tokens)
        self.heads, self.causal = heads, causal

    def forward(self, tokens):
        b, n = tokens.shape
        x = self.emb(tokens)                                                      # (b, n, dim)
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # (b, h, n, d) each
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)        # (b, h, n, d)
        return self.out(x + y.transpose(1, 2).reshape(b, n, -1))                  # (b, n, num_tokens)


class PeekAhead(nn.Module):
    """Causal except that position i also sees position i + 1: the smallest possible leak."""

    def __init__(self, num_tokens=11, dim=8):
        super().__init__()
        self.emb = nn.Embedding(num_tokens, dim)

    def forward(self, tokens):
        x = self.emb(tokens)                                    # (b, n, dim)
        return x + 1e-3 * F.pad(x[:, 1:], (0, 0, 0, 1))         # (b, n, dim)


class ReverseCumsum(nn.Module):
    """A float layer whose output at i sums inputs at positions >= i: leaks everywhere."""

    def __init__(self, dim=6):
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, x):
        return self.lin(x).flip(1).cumsum(1).flip(1)           # (b, n, dim)


def test_reference_linformer_leaks():
    torch.manual_seed(0)
    model = ReferenceLinformerLM(num_tokens=20, dim=32, seq_len=64, depth=2, k=8, heads=2)
    report = leaks_future(model, 64)
    assert isinstance(report, LeakReport)
    assert report.leaks and bool(report)
    assert report.positions == [0, 16, 32, 48, 62]
    assert all(change > 1e-3 for change in report.max_change.values())  # every cut point leaks, by far


def test_causal_attention_does_not_leak_and_inputs_really_change():
    torch.manual_seed(0)
    model = TinyCausalLM()
    report = leaks_future(model, 40, positions=[0, 5, 20, 38])
    assert not report.leaks and not bool(report)
    assert report.worst == 0.0
    for t, profile in report.profile.items():
        assert profile.shape == (40,)
        assert profile[: t + 1].max() == 0.0
        assert profile[t + 1:].min() > 0.0   # the perturbation did change every later output


def test_same_model_without_the_causal_mask_leaks():
    torch.manual_seed(0)
    assert leaks_future(TinyCausalLM(causal=False), 40).leaks


def test_a_one_position_peek_is_caught_at_every_cut_point():
    torch.manual_seed(0)
    report = leaks_future(PeekAhead(), 32, positions=[0, 10, 30])
    assert all(change > 1e-5 for change in report.max_change.values())
    for t, profile in report.profile.items():
        assert profile[t] > 0.0 and (profile[:t] == 0.0).all()   # only position t itself sees t + 1


def test_tolerance_decides():
    torch.manual_seed(0)
    assert leaks_future(PeekAhead(), 16).leaks
    assert not leaks_future(PeekAhead(), 16, tolerance=1.0).leaks


def test_float_layers_dim_inferred_or_given():
    torch.manual_seed(0)
    assert leaks_future(ReverseCumsum(6), 12).leaks                  # dim read from the first Linear
    assert not leaks_future(nn.Linear(6, 3), 12).leaks               # position-wise: causal
    assert not leaks_future(nn.Identity(), 12, dim=4).leaks          # no parameters: dim given


def test_a_bf16_float_layer_is_probed_in_its_own_dtype():
    # float probes are drawn in float32 and cast to the layer's dtype; a bf16 layer cannot take float32 inputs
    torch.manual_seed(0)
    seen = []
    causal = CausalLinformerSelfAttention(16, 32, k=4, heads=2).to(torch.bfloat16)
    causal.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    report = leaks_future(causal, 32)
    assert report.worst == 0.0 and not report.leaks
    assert set(seen) == {torch.bfloat16}
    assert leaks_future(LinformerSelfAttention(16, 32, k=4, heads=2).to(torch.bfloat16), 32).leaks


class SeveralOutputs(nn.Module):
    """A model that returns (output, auxiliary) as a tuple or a list, as some do: the first is its output."""

    def __init__(self, first, second, container=tuple):
        super().__init__()
        self.first, self.second, self.container = first, second, container

    def forward(self, tokens):
        return self.container((self.first(tokens), self.second(tokens)))


@pytest.mark.parametrize("container", [tuple, list])
def test_a_model_returning_several_outputs_is_judged_by_the_first(container):
    torch.manual_seed(0)
    causal, leaky = TinyCausalLM(), TinyCausalLM(causal=False)
    report = leaks_future(SeveralOutputs(causal, leaky, container), 20)
    assert not report.leaks and report.worst == 0.0                # the leaky second output is not probed
    report = leaks_future(SeveralOutputs(leaky, causal, container), 20)
    assert report.leaks and report.max_change == leaks_future(leaky, 20).max_change   # the first one is


def test_device_names_where_the_probes_go():
    """device= overrides the device of the model's first parameter: here that parameter lives on the meta device
    (no data), and the model computes from its inputs alone, so only probes sent to the CPU can run."""
    class MetaParameter(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(7, 3, device="meta")          # tells the input kind: tokens 0..6
            self.seen = []

        def forward(self, tokens):
            self.seen.append(tokens.device)
            return F.one_hot(tokens, 7).float().cumsum(1)         # (b, n, 7): causal

    model = MetaParameter()
    report = leaks_future(model, 12, device="cpu")
    assert not report.leaks and report.worst == 0.0
    assert set(model.seen) == {torch.device("cpu")} and len(model.seen) == 1 + len(report.positions)
    assert leaks_future(model, 12, device=torch.device("cpu")).max_change == report.max_change
    assert leaks_future(TinyCausalLM(causal=False), 16, device="cpu").leaks


def test_probes_in_eval_mode():
    # Active dropout would move every output between the two forward passes and look like a leak.
    torch.manual_seed(0)
    model = LinformerLM(20, 16, seq_len=32, depth=1, k=4, heads=2, causal=True, dropout=0.5).train()
    report = leaks_future(model, 32)
    assert report.worst == 0.0 and model.training


def test_mode_is_restored_and_probe_is_deterministic():
    model = TinyCausalLM(causal=False).train()
    first = leaks_future(model, 20, seed=3)
    assert model.training
    second = leaks_future(model.eval(), 20, seed=3)
    assert not model.training
    assert first.max_change == second.max_change


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(seq_len=1), ValueError, "seq_len: expected an int >= 2 (a future needs two positions), got 1"),
    (dict(seq_len=10, positions=[9]), ValueError, "positions: expected cut points in [0, seq_len - 2] = [0, 8], "
                                                  "so that some future follows each, got 9"),
    (dict(seq_len=10, positions=[-1]), ValueError, "positions: expected cut points in [0, seq_len - 2] = [0, 8], "
                                                   "so that some future follows each, got -1"),
    # probing no cut point used to report "no leak" for any model (issue 12, item 5)
    (dict(seq_len=10, positions=[]), ValueError, "positions: expected at least one of the cut points in "
     "[0, seq_len - 2] = [0, 8], so that some future follows each; got [], which would probe nothing and call "
     "any model causal"),
    (dict(seq_len=10, positions=[2.5]), TypeError, "positions: expected a list of cut points in [0, seq_len - 2] = "
     "[0, 8], so that some future follows each, got 2.5 of type float"),
    (dict(seq_len=10, batch=0), ValueError, "batch: expected a positive int, got 0"),   # was torch's error
    (dict(seq_len=10, tolerance=-1), ValueError, "tolerance: expected a number >= 0, got -1"),
    (dict(seq_len=10, num_tokens="5"), TypeError, "num_tokens: expected a positive int, got '5' of type str"),
    (dict(seq_len=10, dim=0), ValueError, "dim: expected a positive int, got 0"),
    (dict(seq_len=10.0), TypeError, "seq_len: expected an int >= 2 (a future needs two positions), got 10.0 of "
                                    "type float"),
    (dict(seq_len=10, num_tokens=5, dim=3), ValueError, "num_tokens, dim: give num_tokens (token model) or dim "
                                                        "(float inputs), not both; got num_tokens=5 and dim=3"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error) as err:
        leaks_future(TinyCausalLM(), **kwargs)
    assert type(err.value) is error and str(err.value) == message


@pytest.mark.parametrize("seq_len, positions", [(2, [0]), (3, [0, 1]), (4, [0, 1, 2]), (5, [0, 1, 2, 3])])
def test_the_default_cut_points_fit_short_sequences(seq_len, positions):
    # found by tests/test_properties.py: up to seq_len=4 the default cut points included seq_len - 1 and were refused
    report = leaks_future(TinyCausalLM(), seq_len)
    assert report.positions == positions and not report.leaks
    assert leaks_future(ReverseCumsum(), seq_len).leaks


def test_an_empty_positions_list_is_refused_even_for_a_leaking_model():
    with pytest.raises(ValueError, match="^positions: expected at least one"):
        leaks_future(ReverseCumsum(), 10, positions=[])
    assert leaks_future(ReverseCumsum(), 10, positions=range(0, 9, 4)).leaks   # any iterable of ints will do


def test_a_one_token_vocabulary_leaves_nothing_to_change():
    # found by tests/test_properties.py: torch.randint(1, 1) failed inside the probe
    with pytest.raises(ValueError) as err:
        leaks_future(TinyCausalLM(num_tokens=1), 10)
    assert str(err.value) == "model: a vocabulary of 1 token id leaves no later token to change; the leak test " \
                             "needs at least 2"
    with pytest.raises(ValueError, match="^num_tokens: a vocabulary of 1 token id"):
        leaks_future(TinyCausalLM(), 10, num_tokens=1)


def test_model_of_unknown_input_kind():
    with pytest.raises(ValueError) as err:
        leaks_future(nn.Identity(), 10)
    assert str(err.value) == ("model: cannot tell what input it takes (no Embedding or Linear layer); pass "
                              "num_tokens= for a token model or dim= for float inputs of shape (batch, n, dim)")


def test_output_not_per_position():
    class Pooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 4)

        def forward(self, tokens):
            return self.emb(tokens).mean(1)  # (b, dim): no positions left

    with pytest.raises(ValueError) as err:
        leaks_future(Pooled(), 10)
    assert str(err.value) == "model: its output must start with (batch, seq_len) = (2, 10), got shape (2, 4)"
