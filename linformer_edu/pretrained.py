"""Small trained models that ship with the package, so a notebook in a fresh runtime has one without training.

    model, vocab, config = load_pretrained("char")   # causal Linformer, next character (notebook 07's model)
    model, vocab, config = load_pretrained("mlm")    # bidirectional Linformer, masked characters (the paper's)

Both were trained on the shipped pydoc corpus by `tools/make_pretrained.py` (the command, its budget and the
validation loss it reached are written there). Each file's SHA-256 is listed in `pretrained/SHA256SUMS` and
checked before the file is read, so a changed byte is a `CheckpointError`, never a different model. The files are
ordinary checkpoints with float16 weights and no optimizer state: `load_checkpoint(pretrained_path("char"))` and
`python -m linformer_edu.sample --ckpt .../pretrained/char.pt` read them too.
"""
import hashlib
from pathlib import Path

from ._checks import check_choice, check_type
from .checkpoint import CheckpointError, load_checkpoint

FOLDER = Path(__file__).with_name("pretrained")   # the .pt files and SHA256SUMS (package data)
SUMS = "SHA256SUMS"


def shipped_sums(folder: Path = FOLDER) -> dict:
    """{name: SHA-256} from the folder's SHA256SUMS ("<hex>  <name>.pt" per line, as sha256sum writes it)."""
    sums = {}
    for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, file = line.split(maxsplit=1)
            sums[Path(file.lstrip("*")).stem] = digest.lower()
    return sums


def available() -> tuple:
    """The names `load_pretrained` knows: ('char', 'mlm')."""
    return tuple(shipped_sums())


def pretrained_path(name: str, folder: Path = FOLDER) -> Path:
    """The file of the shipped model `name`, after checking its SHA-256 against SHA256SUMS (CheckpointError)."""
    check_type("name", name, str, f"one of {', '.join(repr(n) for n in shipped_sums(folder))}")
    sums = shipped_sums(folder)
    check_choice("name", name, tuple(sums))
    path = folder / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall linformer_edu, or make it with "
                                f"python tools/make_pretrained.py --only {name}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sums[name]:
        raise CheckpointError(f"{path} is corrupt or was replaced: its SHA-256 is {digest}, {SUMS} lists "
                              f"{sums[name]}; reinstall linformer_edu, or remake both with "
                              f"python tools/make_pretrained.py")
    return path


def load_pretrained(name: str, device="cpu", *, folder: Path = FOLDER):
    """(model, vocab, config) of the shipped model `name` ("char" or "mlm"), in eval mode on `device`.

    The file's SHA-256 is checked against SHA256SUMS first; `folder` is for tests (a copy of the shipped folder).
    """
    return load_checkpoint(pretrained_path(name, folder), device=device)
