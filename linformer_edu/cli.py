"""The training command line, made from TrainConfig's fields: one flag per field, with the field's type, choices and
help text, so the flags and the settings cannot drift apart.

    python -m linformer_edu.train --preset cpu --model linformer --k 32 --minutes 2 --out runs/lin32
    python -m linformer_edu.train --out runs/lin32 --resume --minutes 4          # continue where it stopped
    python -m linformer_edu.train --help                                          # every flag

A field `max_steps` is the flag `--max-steps` (and `--steps`, its older name; `--out` for out_dir, `--text` for
corpus); a True/False field has `--amp` and `--no-amp`. Beside the fields: `--preset` (the settings to start from),
`--resume` or `--overwrite` (what to do with a run already in the output folder) and `--sample`. Without `--out`
a run goes to runs/<config.run_name>, e.g. runs/linformer-next-pydoc-d128-L4-n128-k32, so different settings
get different folders. Everything is checked before the first step. Exit status: 0 done, 2 bad input or a
checkpoint that does not fit, 3 a NaN loss, 130 Ctrl-C, 143 SIGTERM (the run saved first in both).

`python -m linformer_edu.train` runs `linformer_edu.train.main`, which calls `run(argv, train)` with its own
`train`: the loop's module imports this one, never the other way round.
"""
import argparse
import dataclasses
import os
import sys
import typing
from pathlib import Path

import torch

from ._signals import Terminated
from .checkpoint import CHECKPOINT, METRICS, read_checkpoint
from .config import PRESETS, TrainConfig, preset
from .sample import generate

EXIT_STATUS = {"interrupted": 130, "terminated": 143}   # 128 + the signal's number, as a shell reports it


def field_flags(field: dataclasses.Field) -> tuple[str, ...]:
    """A field's flags: --its-name, then any older names its metadata keeps ("flags")."""
    return (f"--{field.name.replace('_', '-')}", *field.metadata.get("flags", ()))


def add_field_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field. Its type comes from the field's annotation (a True/False field gets --x and
    --no-x), choices, metavar and help from its metadata, and the presets' values are added to the help. A flag
    that is not given leaves its field to the preset (argparse.SUPPRESS: it is absent from the parsed arguments)."""
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("settings (TrainConfig's fields; those not given come from the preset)")
    for field in dataclasses.fields(TrainConfig):
        kinds = [kind for kind in typing.get_args(hints[field.name]) if kind is not type(None)] or [hints[field.name]]
        cpu, gpu = (getattr(PRESETS[name], field.name) for name in ("cpu", "gpu"))
        shown = f" (presets: cpu {cpu}, gpu {gpu})" if cpu != gpu else \
            "" if field.default is None else f" (default: {field.default})"
        options = dict(dest=field.name, default=argparse.SUPPRESS,
                       help=(field.metadata["help"] + shown).replace("%", "%%"))
        if kinds == [bool]:
            group.add_argument(*field_flags(field), action=argparse.BooleanOptionalAction, **options)
        else:
            group.add_argument(*field_flags(field), type=_parser_of(kinds[0], field.metadata.get("none")),
                               choices=field.metadata.get("choices"), metavar=field.metadata.get("metavar"),
                               **options)


def _parser_of(kind, none_word):
    """kind(text), or None for the text that means None (the field's metadata "none", e.g. --minutes 0)."""
    def parse(text):
        value = kind(text)
        return None if none_word is not None and value == kind(none_word) else value
    parse.__name__ = kind.__name__   # argparse names it in "invalid int value: 'x'"
    return parse


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return int(text)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m linformer_edu.train",
        description="Train a character-level LinformerLM; writes OUT/ckpt.pt and OUT/metrics.json.")
    parser.add_argument("--preset", choices=tuple(PRESETS),
                        help="the settings to start from: cpu (~2-3 min on a laptop CPU; the default) or gpu "
                             "(~5 min on a Colab T4); with --resume the default is the checkpoint's own settings")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue the run in OUT from its ckpt.pt")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the run in OUT; without --resume or --overwrite, a folder that holds a "
                               "run is refused")
    parser.add_argument("--sample", type=_count, default=200, metavar="CHARS",
                        help="print a sample of this many characters at the end (0 = none; default 200)")
    add_field_flags(parser)
    return parser.parse_args(argv)


def config_from_args(args) -> tuple[TrainConfig, bool]:
    """The TrainConfig the command line asks for, and whether to resume."""
    changes = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)
               if hasattr(args, field.name)}
    if changes.get("allow_leaky") and "causal" not in changes:
        changes["causal"] = False   # --allow-leaky is there to train the bidirectional model (notebook 08)
    if args.resume:
        if "out_dir" not in changes:
            raise ValueError("--resume: give --out DIR, the folder of the run to continue")
        base = read_checkpoint(Path(changes["out_dir"]) / CHECKPOINT)["config"] if args.preset is None \
            else PRESETS[args.preset]
        return TrainConfig(**{**dataclasses.asdict(base), **changes}), True
    config = preset(args.preset or "cpu", **changes)
    if config.out_dir is None:
        config = dataclasses.replace(config, out_dir=os.path.join("runs", config.run_name))
    return config, False


def run(argv, train) -> int:
    """The command line `argv` (None: sys.argv), trained by `train` (linformer_edu.train.train): the exit status."""
    args = parse_args(argv)
    try:
        config, resume = config_from_args(args)
        result = train(config, resume=resume, overwrite=args.overwrite)
    except (ValueError, OSError, FloatingPointError) as err:   # CheckpointError; NonFiniteLossError, a NaN loss
        print(f"error: {err}", file=sys.stderr)
        return 3 if isinstance(err, FloatingPointError) else 2
    except (KeyboardInterrupt, Terminated) as interrupt:   # before the first step, or inside a weight update
        stopped = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
        print(f"{stopped}: nothing more was saved", file=sys.stderr)
        return EXIT_STATUS[stopped]
    m = result.metrics
    k = f" k={m['k']}" if m["k"] else ""
    print(f"{m['model']}{k}: {m['steps']} steps in {m['seconds']:.0f} s on {m['device']}, "
          f"{m['tokens_per_s'] or 0:,.0f} tokens/s; train loss {m['train_loss']:.4f}, val loss {m['val_loss']:.4f} "
          f"nats/char = {m['val_bpc']:.4f} bits/char")
    print(f"wrote {Path(config.out_dir) / CHECKPOINT} and {Path(config.out_dir) / METRICS}")
    if args.sample and config.objective == "next" and result.stopped not in EXIT_STATUS:
        print("-" * 40)
        print(generate(result.model, result.vocab, "\n", args.sample, temperature=0.8, top_k=None,
                       generator=torch.Generator().manual_seed(0)))
    return EXIT_STATUS.get(result.stopped, 0)
