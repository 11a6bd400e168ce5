"""What a training run is: one dataclass of settings, checked when made, the named presets, and the model it builds.

    config = preset("cpu", model="linformer", k=32)       # a TrainConfig; preset("gpu") is sized for a Colab T4
    config.label                                           # 'linformer k=32', for plots and folder names
    model = build_model(config, num_tokens_for(config, vocab))

Objectives:
- "next" (default): predict each next character. The model must be causal. A bidirectional model, such as the
  paper's Linformer, projects keys along the sequence and so reads the future (notebook 08, `linformer_edu.leak`):
  its training loss would fall far below what is possible. `TrainConfig(causal=False)` with this objective is
  refused unless `allow_leaky=True` (`--allow-leaky`), which exists only to demonstrate that leak.
- "mlm": the paper's own objective, masked characters (`linformer_edu.mlm`), with a bidirectional model.
"""
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ._checks import check_choice, check_count, check_heads, check_number, check_positive_int
from .data import CharVocab, corpus_names
from .device import parse_device
from .linformer import LinformerLM

MODELS = ("linformer", "full")
OBJECTIVES = ("next", "mlm")


def setting(default, help: str, **cli):
    """A TrainConfig field: its default, and what `linformer_edu.cli` makes its flag from. help: one line for
    --help; cli: flags=(other names, e.g. today's short ones), choices, metavar, none=the word that means None."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    """Everything that defines a training run. Start from `preset("cpu")` or `preset("gpu")` and change fields.

    Each field's help text is kept beside it, and the command line has one flag per field, made from them.
    """
    # data
    corpus: str = setting("pydoc", f"a corpus name ({', '.join(corpus_names())}) or a UTF-8 text file's path",
                          flags=("--text",), metavar="NAME_OR_FILE")
    data_dir: str = setting("data", "where downloaded corpora are kept", metavar="DIR")
    val_fraction: float = setting(0.1, "the last part of the text kept for validation, as a fraction")
    # model: LinformerLM(len(vocab), dim, seq_len, depth, k=k, heads=heads, attention=model, causal=causal)
    model: str = setting("linformer", "linformer, or full softmax attention (the baseline)", choices=MODELS)
    k: int = setting(32, "projected length of the Linformer (linformer only)")
    dim: int = setting(128, "model width")
    depth: int = setting(4, "number of layers")
    heads: int = setting(4, "attention heads; they must divide dim")
    seq_len: int = setting(128, "characters of context = the training window")
    dropout: float = setting(0.0, "dropout probability")
    objective: str = setting("next", "next character, or mlm (masked characters, the paper's objective)",
                             choices=OBJECTIVES)
    causal: bool | None = setting(None, "causal attention; unset: causal for next, bidirectional for mlm")
    allow_leaky: bool = setting(False, "let a bidirectional model train on next-character prediction: it reads "
                                       "the future, so its loss means nothing (notebook 08's demonstration); on "
                                       "the command line it also makes the model bidirectional")
    # optimisation: AdamW, linear warmup, cosine decay to min_lr, gradient clipping
    batch_size: int = setting(16, "windows of text per step")
    lr: float = setting(2e-3, "peak learning rate (AdamW)")
    min_lr: float = setting(1e-4, "learning rate at the end of the cosine decay")
    warmup_steps: int = setting(100, "steps of linear warmup")
    weight_decay: float = setting(0.1, "AdamW weight decay on matrices (none on biases and norms)")
    beta2: float = setting(0.99, "AdamW's beta2")
    grad_clip: float = setting(1.0, "maximum gradient norm; 0 turns clipping off")
    # budget: whichever comes first
    max_steps: int = setting(2000, "maximum number of steps", flags=("--steps",))
    minutes: float | None = setting(None, "wall-clock budget in minutes (training + evaluation); 0 = no limit",
                                    none="0")
    # evaluation
    eval_interval: int = setting(250, "steps between validation losses (and checkpoints)")
    eval_iters: int = setting(20, "batches per validation estimate")
    # system
    device: str = setting("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    amp: bool = setting(True, "mixed precision on CUDA (see device.amp_settings); ignored elsewhere")
    compile: bool = setting(False, "torch.compile the model (minutes of compiling: worth it for long runs)")
    seed: int = setting(0, "seeds the model's initialisation and the batches")
    progress: bool = setting(True, "show a tqdm progress bar")
    out_dir: str | None = setting(None, "where ckpt.pt and metrics.json go; unset: nothing is written (the "
                                        "command line's default is runs/RUN_NAME)", flags=("--out",), metavar="DIR")

    def __post_init__(self):
        for name in ("corpus", "data_dir", "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name}: expected a str, got {getattr(self, name)!r}")
        check_choice("model", self.model, MODELS)
        check_choice("objective", self.objective, OBJECTIVES)
        for name in ("k", "dim", "depth", "heads", "seq_len", "batch_size", "max_steps", "eval_interval",
                     "eval_iters"):
            check_positive_int(name, getattr(self, name))   # TypeError for a non-int, ValueError below 1
        check_count("warmup_steps", self.warmup_steps)
        check_count("seed", self.seed)
        if self.model == "linformer" and self.k > self.seq_len:
            raise ValueError(f"k: got {self.k}, expected 1 <= k <= seq_len={self.seq_len}")
        check_heads(self.dim, self.heads, None, dim_head_option=False)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("min_lr", self.min_lr, low=0, high=self.lr, what=f"0 <= min_lr <= lr={self.lr}")
        check_number("weight_decay", self.weight_decay, low=0)
        check_number("grad_clip", self.grad_clip, low=0)
        check_number("beta2", self.beta2, low=0, high=1, high_open=True)
        check_number("dropout", self.dropout, low=0, high=1, high_open=True)
        check_number("val_fraction", self.val_fraction, low=0, high=1, low_open=True, high_open=True)
        if self.minutes is not None:
            check_number("minutes", self.minutes, low=0, low_open=True, what="a number > 0, or None for no limit")
        if self.device != "auto":
            parse_device(self.device)   # a name torch does not know; whether the device is there is train's call
        for name in ("allow_leaky", "amp", "compile", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        if self.causal is None:
            self.causal = self.objective == "next"
        if not isinstance(self.causal, bool):
            raise TypeError(f"causal: expected True, False or None, got {self.causal!r}")
        if self.objective == "next" and not self.causal and not self.allow_leaky:
            raise ValueError("causal: a bidirectional model (causal=False) trained on next-character prediction "
                             "reads the character it should predict (see notebook 08); use causal=True, or "
                             "objective='mlm', or pass allow_leaky=True (--allow-leaky) to demonstrate the leak")
        if self.out_dir is not None and not isinstance(self.out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir: expected a path or None, got {self.out_dir!r}")
        if self.out_dir is not None:
            self.out_dir = os.fspath(self.out_dir)

    @property
    def run_name(self) -> str:
        """A folder name that tells configurations apart, 'linformer-next-pydoc-d128-L4-n128-k32': model,
        objective ('leaky' for a bidirectional next-character model), corpus, width, depth, length[, k]."""
        objective = "leaky" if self.objective == "next" and not self.causal else self.objective
        corpus = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.corpus).stem).strip("._") or "text"
        k = f"-k{self.k}" if self.model == "linformer" else ""
        return f"{self.model}-{objective}-{corpus}-d{self.dim}-L{self.depth}-n{self.seq_len}{k}"

    @property
    def label(self) -> str:
        """A short name for plots and folders: 'full', 'linformer k=32', with ' (mlm)' or ' (leaky)'."""
        name = "full" if self.model == "full" else f"linformer k={self.k}"
        if self.objective == "mlm":
            return name + " (mlm)"
        return name + (" (leaky)" if not self.causal else "")


PRESETS = {
    # ~2-3 minutes on a 2-core CPU; nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, no dropout) at n = 128.
    "cpu": TrainConfig(dim=128, depth=4, heads=4, seq_len=128, k=32, batch_size=16, lr=2e-3, min_lr=1e-4,
                       warmup_steps=100, max_steps=2000, minutes=2.5, eval_interval=250, eval_iters=20),
    # ~5 minutes on a Colab T4 (fp16 + GradScaler there); nanoGPT's shakespeare_char shape at n = 256.
    "gpu": TrainConfig(dim=384, depth=6, heads=6, seq_len=256, k=64, batch_size=64, lr=1e-3, min_lr=1e-4,
                       warmup_steps=200, dropout=0.2, max_steps=5000, minutes=5.0, eval_interval=250,
                       eval_iters=40),
}


def preset(name: str = "cpu", **changes) -> TrainConfig:
    """The named preset ("cpu" or "gpu") with some fields changed: preset("cpu", model="full", minutes=1)."""
    check_choice("name", name, tuple(PRESETS))
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:   # **changes is checked against the fields, so a typo is an error, not a silent no-op
        raise TypeError(f"preset: unknown TrainConfig field(s) {', '.join(unknown)}; the fields are "
                        f"{', '.join(f.name for f in dataclasses.fields(TrainConfig))}")
    base = dataclasses.asdict(PRESETS[name])
    if "objective" in changes or "allow_leaky" in changes:
        base["causal"] = None   # let the objective choose again, unless causal is given too
    return TrainConfig(**{**base, **changes})


# ----------------------------------------------------------------------------------------------------------------
# The model a config describes (the trainer builds it to train, a checkpoint to load its weights into)

def num_tokens_for(config: TrainConfig, vocab: CharVocab) -> int:
    """Embedding size: one id per character, and one more for [MASK] under the masked-LM objective."""
    return len(vocab) + 1 if config.objective == "mlm" else len(vocab)


def build_model(config: TrainConfig, num_tokens: int) -> LinformerLM:
    """The LinformerLM that `config` describes, for `num_tokens` token ids (characters, plus [MASK] for mlm)."""
    return LinformerLM(num_tokens, config.dim, config.seq_len, config.depth, k=config.k, heads=config.heads,
                       dropout=config.dropout, attention=config.model, causal=config.causal)
