"""Character-level data for a tiny language model: text -> vocabulary -> ids -> train/val split -> batches.

    text = load_corpus("pydoc")                   # or "shakespeare", or the path of any UTF-8 text file
    vocab = CharVocab(text)                       # the sorted distinct characters; id = position in that list
    train, val = split(vocab.encode(text))        # first 90% / last 10%
    x, y = get_batch(train, batch_size=12, block_size=64, generator=g, device=device)   # y = x shifted by one

Corpora
- "pydoc" (the default, no network): the Python language reference that CPython ships as `pydoc_data.topics`,
  its topics joined in sorted order. That text changes between Python versions, so the package carries one fixed
  copy, `corpora/pydoc_topics.txt` (466,195 bytes), made once with CPython 3.11.7 by

      python -c "from linformer_edu.data import pydoc_text; open('linformer_edu/corpora/pydoc_topics.txt', 'w', encoding='utf-8', newline='\\n').write(pydoc_text())"

  and checked against its SHA-256 whenever it is loaded: every Python reads the same 465,048 characters
  (103 distinct). The text is the Python documentation, (c) Python Software Foundation, under the PSF licence.
- "shakespeare": tiny Shakespeare (Karpathy's char-rnn), downloaded once into `data_dir` and checked by SHA-256.
- any local text file, by path.

Downloads go to a temporary file beside the destination and are renamed into place only once their SHA-256 is
right, so an interrupted or corrupted download never leaves a file that looks finished.
"""
import hashlib
import http.client
import os
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ._checks import check_number, check_positive_int, check_type
from ._files import create_new, temp_path_beside
from ._signals import SigtermRaises

# ----------------------------------------------------------------------------------------------------------------
# Corpora: text by name, or from a file

PYDOC_FILE = Path(__file__).with_name("corpora") / "pydoc_topics.txt"
PYDOC_SHA256 = "2a95af4ac93f5b719944030ce3769070ddf827d847cba42192afa8da989e5dc4"


@dataclass(frozen=True)
class RemoteCorpus:
    """A text file on the web: downloaded once into the data folder as `filename`, checked by SHA-256."""
    url: str
    filename: str
    sha256: str


REMOTE_CORPORA = {
    "shakespeare": RemoteCorpus(  # 1,115,394 bytes, 65 distinct characters
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        filename="tinyshakespeare.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
}


def corpus_names():
    """The corpora `load_corpus` knows by name; the first is the default."""
    return ("pydoc", *REMOTE_CORPORA)


def pydoc_text() -> str:
    """The language reference as *this* Python ships it: `pydoc_data.topics`, joined in sorted topic order.

    This is how `corpora/pydoc_topics.txt` was made (with CPython 3.11.7); other versions give other text,
    which is why `load_corpus("pydoc")` reads the fixed copy instead.
    """
    from pydoc_data.topics import topics  # {topic name: text}
    return "\n".join(topics[name] for name in sorted(topics))


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest, sha256: str, *, timeout: float = 60.0, deadline: float = 600.0,
             progress: bool = True) -> Path:
    """Fetch `url` into `dest` unless a file with the right SHA-256 is already there; return `dest` as a Path.

    The bytes go to a temporary file in dest's folder, are hashed as they arrive, and are renamed onto `dest`
    (`os.replace`, atomic) only if the hash matches; otherwise the temporary file is deleted and a ValueError says
    what was expected and what arrived. A network or server error deletes it too and raises OSError, and so does
    a download still unfinished after `deadline` seconds (`timeout` bounds each wait for the server, so a server
    that trickles bytes is stopped by the deadline: checked between reads, it is passed by at most one wait).
    Ctrl-C and SIGTERM delete it as well. An existing `dest` with the wrong checksum is never overwritten: it may
    be someone's own file, so the error says to delete it to download again.
    """
    sha256 = str(sha256).lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256: expected 64 hexadecimal digits, got {sha256!r}")
    check_number("timeout", timeout, low=0, low_open=True)
    check_number("deadline", deadline, low=0, low_open=True)
    dest = Path(dest)
    if dest.exists():
        got = sha256_of(dest)
        if got == sha256:
            return dest  # downloaded before: nothing to do
        raise ValueError(f"{dest} exists but its SHA-256 is {got}, expected {sha256}; it was left as it is: "
                         f"delete it to download it again from {url}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(dest, ".part")   # named before it exists, so every way out below can remove it
    digest, received, start = hashlib.sha256(), 0, time.monotonic()
    with SigtermRaises():   # SIGTERM raises here, so the except clauses below run and remove the file
        try:
            with os.fdopen(create_new(tmp), "wb") as out, \
                    urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                          disable=not progress) as bar:
                    while chunk := response.read1(1 << 16):   # what has arrived, up to 64 KiB: one wait at most
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                        if time.monotonic() - start > deadline:
                            raise TimeoutError(f"the {deadline:g} s deadline passed with {received}"
                                               f"{f' of {total}' if total else ''} bytes received")
                if total is not None and received != total:
                    raise OSError(f"the connection closed after {received} of {total} bytes")
                out.flush()
                os.fsync(out.fileno())   # the bytes are on disk before the rename makes the file look finished
            got = digest.hexdigest()
            if got != sha256:
                raise ValueError(f"SHA-256 mismatch for {url}: expected {sha256}, got {got}; "
                                 f"the downloaded file was deleted and {dest} was not written")
            os.replace(tmp, dest)
        except (OSError, http.client.HTTPException) as err:  # HTTP errors, refused connections, cut-off transfers
            tmp.unlink(missing_ok=True)
            raise OSError(f"downloading {url} failed ({err}); nothing was written to {dest}") from err
        except BaseException:  # a wrong checksum, Ctrl-C and SIGTERM included: never leave a partial file behind
            tmp.unlink(missing_ok=True)
            raise
    return dest


def load_corpus(name_or_path="pydoc", data_dir="data", *, url: str | None = None, progress: bool = True) -> str:
    """The text of a corpus: "pydoc" (default, offline), "shakespeare" (downloaded once), or a text file's path.

    data_dir: where downloaded corpora are kept (relative paths are relative to the working directory).
    url:      download a remote corpus from here instead (a mirror, or a local server in the tests);
              the SHA-256 is checked all the same.
    A known name wins over a file of the same name; write "./pydoc" to mean the file.
    Line endings are normalised to "\\n", and a UTF-8 byte-order mark (U+FEFF) that starts a file is dropped
    here: it marks the encoding, it is not text, so it never becomes a vocabulary character.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"corpus: expected a corpus name or a file path, got {type(name_or_path).__name__}")
    if name_or_path == "pydoc":
        if url is not None:
            raise ValueError(f"url: the 'pydoc' corpus ships with the package and is never downloaded; got {url!r}")
        return _read_checked(PYDOC_FILE, PYDOC_SHA256)
    if name_or_path in REMOTE_CORPORA:
        corpus = REMOTE_CORPORA[name_or_path]
        path = download(url or corpus.url, Path(data_dir) / corpus.filename, corpus.sha256, progress=progress)
        return _read_text(path)
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(repr(name) for name in corpus_names())
        raise ValueError(f"corpus: {str(name_or_path)!r} is neither a known corpus ({known}) "
                         f"nor an existing text file")
    if url is not None:
        raise ValueError(f"url: only corpora known by name are downloaded, and {str(path)!r} is a local file; "
                         f"got url={url!r}")
    return _read_text(path)


def _read_checked(path: Path, sha256: str) -> str:
    """A packaged text file, verified. CRLF is read as LF first, so a Windows checkout still matches."""
    data = path.read_bytes().replace(b"\r\n", b"\n")
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ValueError(f"{path} is damaged: its SHA-256 is {got}, expected {sha256}; reinstall linformer_edu")
    return data.decode("utf-8")


def _read_text(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8-sig")   # utf-8, and a leading byte-order mark dropped
    except UnicodeDecodeError as err:
        raise ValueError(f"corpus: {str(path)!r} is not UTF-8 text ({err})") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise ValueError(f"corpus: {str(path)!r} is empty")
    return text


# ----------------------------------------------------------------------------------------------------------------
# Vocabulary: characters <-> integer ids


class CharVocab:
    """The distinct characters of a text, sorted; a character's id is its position in that order.

    Sorting makes the ids depend only on *which* characters occur, so the same text always gives the same
    vocabulary. `to_dict()` / `from_dict()` carry it inside checkpoints.
    """

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text: expected at least one character to build a vocabulary from, got ''")
        self.chars = "".join(sorted(set(text)))                  # id -> character
        self.stoi = {c: i for i, c in enumerate(self.chars)}     # character -> id

    def __len__(self):
        return len(self.chars)

    def __contains__(self, char):
        return char in self.stoi

    def __eq__(self, other):
        return isinstance(other, CharVocab) and self.chars == other.chars

    def __hash__(self):
        return hash(self.chars)

    def __repr__(self):
        return f"CharVocab({len(self)} characters: {self.chars!r})"

    def encode(self, text: str, *, what: str = "text") -> torch.Tensor:
        """The ids of `text`'s characters, a LongTensor of shape (len(text),).

        Characters outside the vocabulary raise a ValueError that lists them; `what` names the input in that
        message (e.g. "prompt").
        """
        if not isinstance(text, str):
            raise TypeError(f"{what}: expected a str, got {type(text).__name__}")
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:20])
            more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
            raise ValueError(f"{what}: got characters not in the vocabulary: {shown}{more}; "
                             f"the vocabulary has {len(self)} characters: {self.chars!r}")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)  # (n,)

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (a tensor or a list of ints)."""
        if isinstance(ids, torch.Tensor):
            if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
                raise TypeError(f"ids: expected an integer tensor, got dtype {ids.dtype}")
            if ids.dim() > 1:
                raise ValueError(f"ids: expected one sequence (a 1-D tensor), got shape {tuple(ids.shape)}")
            ids = ids.reshape(-1).tolist()
        else:
            ids = list(ids)
            wrong = [i for i in ids if isinstance(i, bool) or not isinstance(i, int)]
            if wrong:
                raise TypeError(f"ids: expected ints, got {wrong[0]!r} of type {type(wrong[0]).__name__}")
        bad = sorted({i for i in ids if not 0 <= i < len(self)})
        if bad:
            raise ValueError(f"ids: expected ids in [0, {len(self)}) for this {len(self)}-character vocabulary, "
                             f"got {', '.join(map(str, bad[:20]))}")
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"chars": self.chars}

    @classmethod
    def from_dict(cls, state: dict) -> "CharVocab":
        """The vocabulary `to_dict()` described. The characters must be distinct and sorted, exactly as stored:
        any other order would silently give every id a different character."""
        allowed = "a dict with the one key 'chars' (from CharVocab.to_dict())"
        if set(check_type("state", state, dict, allowed)) != {"chars"}:
            raise ValueError(f"state: expected {allowed}, got {sorted(state)}")
        allowed = "distinct characters in sorted order (from CharVocab.to_dict())"
        chars = check_type("state['chars']", state["chars"], str, allowed)
        if not chars or chars != "".join(sorted(set(chars))):
            raise ValueError(f"state['chars']: expected {allowed}, got {chars!r}")
        return cls(chars)


# ----------------------------------------------------------------------------------------------------------------
# Train/validation split and batches


def split(ids, val_fraction: float = 0.1):
    """(train, val): the first (1 - val_fraction) of `ids` and the rest, in order. No shuffling, so the
    validation text is a stretch the model never saw, and the split is the same every time."""
    check_number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True,
                 what="a number strictly between 0 and 1")
    n_train = int(len(ids) * (1 - val_fraction))
    if n_train < 1 or n_train == len(ids):
        raise ValueError(f"val_fraction: {val_fraction} of {len(ids)} tokens leaves {n_train} for training and "
                         f"{len(ids) - n_train} for validation; both need at least one")
    return ids[:n_train], ids[n_train:]


def get_batch(ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
              device=None):
    """(x, y), each (batch_size, block_size): random windows of `ids`, and the same windows one step later.

    y[b, t] is the character that follows x[b, t], the target of next-character prediction.
    The window starts come from `generator` (the global RNG if None), drawn on the generator's device, so a seeded
    generator gives the same batches on every device. Keep `ids` on the training device to gather there; CPU ids
    are copied to a CUDA `device` through pinned memory, without blocking.
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        got = f"dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"ids: expected a LongTensor (from CharVocab.encode), got {got}")
    if ids.dim() != 1:
        raise ValueError(f"ids: expected a 1-D tensor, got shape {tuple(ids.shape)}")
    check_positive_int("batch_size", batch_size)
    check_positive_int("block_size", block_size)
    if block_size >= len(ids):
        raise ValueError(f"block_size: expected less than len(ids) = {len(ids)} (a window needs block_size + 1 "
                         f"tokens), got {block_size}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    device = ids.device if device is None else torch.device(device)

    rng_device = generator.device if generator is not None else "cpu"
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator, device=rng_device)  # (b,)
    index = starts.to(ids.device)[:, None] + torch.arange(block_size + 1, device=ids.device)  # (b, t + 1)
    window = ids[index]                                                                        # (b, t + 1)
    x = window[:, :-1].contiguous()                                                            # (b, t)
    y = window[:, 1:].contiguous()                                                             # (b, t)
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)
