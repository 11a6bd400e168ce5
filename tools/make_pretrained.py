"""Make the small pretrained models that ship in linformer_edu/pretrained/, and their SHA256SUMS (issue 13 §2).

    python tools/make_pretrained.py                 # both, 1000 steps each (a few minutes of CPU each)
    python tools/make_pretrained.py --steps 300     # quicker, worse
    python tools/make_pretrained.py --only char     # one of them; SHA256SUMS still lists both

Each model is trained by the package's own `train()` on the shipped pydoc corpus with seed 0, on the CPU:
- char.pt: the causal character model notebook 07 makes (`preset("cpu")`: causal Linformer, k=32, next character);
- mlm.pt:  the paper's objective, masked characters, with the bidirectional Linformer (`objective="mlm"`).
The budget is a number of steps (`--steps`, with the learning rate's cosine decay ending there), not minutes, so a
busy machine makes the run slower but not the model worse. `--minutes M` adds a time limit, whichever comes first;
a model cut short by it depends on the machine's load again.

A shipped file is an ordinary version 2 checkpoint (so `load_checkpoint`, `python -m linformer_edu.sample --ckpt`
and `linformer_edu.pretrained.load_pretrained` all read it), with two differences that keep it under 3 MB: the
weights are stored as float16 (the cpu preset's ~0.8 M parameters are 3.3 MB in float32; `load_state_dict` copies
them back into the float32 model), and there is nothing to resume: optimizer, scaler and random states are empty,
the history keeps only the evaluations. Files are written atomically (temporary file, then rename).

Last made 2026-12-02 18:52-19:12 UTC on the 2-core AMD EPYC VM shared with other jobs (load average 4.9 at the
start, 2.7 at the end), both at once, one thread each (`OMP_NUM_THREADS=1 nice -n 10 python tools/make_pretrained.py
--only char`, and `--only mlm`); what they printed:
    char.pt  1000 steps (steps), 1162 s, val_loss 1.378 nats (1.99 bits/char), 1.76 MB
    mlm.pt  1000 steps (steps), 1057 s, val_loss 2.490 nats (3.59 bits/masked char), 1.76 MB
(log V = 4.63 nats is a uniform guess; the seconds are the load's, the losses are not.)
"""
import argparse
import dataclasses
import hashlib
import sys
from pathlib import Path

import torch

from linformer_edu._files import write_atomically
from linformer_edu.checkpoint import FORMAT, VERSION, content_sha256, text_sha256
from linformer_edu.config import preset
from linformer_edu.data import load_corpus
from linformer_edu.train import train

OUT = Path(__file__).resolve().parents[1] / "linformer_edu" / "pretrained"
MODELS = {   # name -> the objective's changes to preset("cpu")
    "char": {},
    "mlm": {"objective": "mlm"},
}


def shipped_state(result) -> dict:
    """A version 2 checkpoint of `result`'s model: float16 weights, vocabulary, config, no optimizer state."""
    config = dataclasses.replace(result.config, out_dir=None, progress=False)
    weights = {name: (t.half() if t.is_floating_point() else t).cpu().clone()
               for name, t in result.model.state_dict().items()}
    state = {
        "format": FORMAT, "version": VERSION,
        "config": dataclasses.asdict(config), "vocab": result.vocab.to_dict(),
        "corpus_sha256": text_sha256(load_corpus(config.corpus, config.data_dir, progress=False)),
        "model": weights, "optimizer": {}, "scaler": {}, "step": result.step,
        "elapsed": round(result.history["seconds"][-1], 1) if result.history["seconds"] else 0.0,
        "tokens": result.step * config.batch_size * config.seq_len, "rng": {},
        "history": {"evals": result.history["evals"]},
    }
    state["sha256"] = content_sha256(state)
    return state


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each model (the budget)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="also stop each model after this many minutes (default: no time limit)")
    parser.add_argument("--only", choices=tuple(MODELS), help="make one of them (SHA256SUMS lists all)")
    args = parser.parse_args(argv)
    for name, changes in MODELS.items():
        if args.only and name != args.only:
            continue
        config = preset("cpu", device="cpu", seed=0, minutes=args.minutes, max_steps=args.steps, progress=False,
                        eval_interval=500, eval_iters=20, **changes)   # few evaluations: the CPU is shared
        result = train(config)
        if result.stopped not in ("steps", "time"):   # Ctrl-C or SIGTERM: a cut-short model is not shipped
            print(f"{name}: training {result.stopped} at step {result.step}; nothing written", file=sys.stderr)
            return 1
        last = result.history["evals"][-1]
        path = write_atomically(OUT / f"{name}.pt", lambda tmp: torch.save(shipped_state(result), tmp))
        per = "masked char" if config.objective == "mlm" else "char"
        print(f"{name}.pt  {result.step} steps ({result.stopped}), {last['seconds']:.0f} s, val_loss "
              f"{last['val_loss']:.3f} nats ({last['val_bpc']:.2f} bits/{per}), {path.stat().st_size / 1e6:.2f} MB",
              flush=True)
    sums = "".join(f"{file_sha256(OUT / f'{name}.pt')}  {name}.pt\n" for name in MODELS if (OUT / f"{name}.pt").is_file())
    write_atomically(OUT / "SHA256SUMS", lambda tmp: Path(tmp).write_text(sums))
    print(sums, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
