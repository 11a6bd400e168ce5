"""linformer_edu.data: vocabulary, corpora, downloads (against a local server, never the internet), split, batches."""
import hashlib
import http.server
import platform
import re
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
import torch

from linformer_edu import data
from linformer_edu._files import write_atomically
from linformer_edu.data import CharVocab, download, get_batch, load_corpus, split

SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def exactly(message):
    """A `pytest.raises(match=...)` pattern that accepts this message and nothing else."""
    return "^" + re.escape(message) + "$"


# ---------------------------------------------------------------------------------------------------------------
# Vocabulary


def test_vocab_is_sorted_distinct_characters():
    vocab = CharVocab("hello world")
    assert vocab.chars == " dehlorw"
    assert len(vocab) == 8
    assert vocab.stoi["d"] == 1
    assert CharVocab("world hello") == vocab  # order of the text does not matter


def test_vocab_round_trip():
    text = "To be, or not to be:\nthat is the question."
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.tolist()) == text
    assert vocab.decode(torch.tensor(3)) == vocab.chars[3]


def test_vocab_unknown_characters_are_listed():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=exactly(
            "prompt: got characters not in the vocabulary: 'é', '€'; "
            "the vocabulary has 3 characters: 'abc'")):
        vocab.encode("a€béa", what="prompt")
    with pytest.raises(ValueError, match=exactly(
            "text: got characters not in the vocabulary: '\\n', 'd'; the vocabulary has 3 characters: 'abc'")):
        vocab.encode("ad\n")


def test_vocab_lists_at_most_twenty_unknown_characters():
    vocab = CharVocab("a")
    with pytest.raises(ValueError, match=re.escape("'t', 'u' and 5 more; the vocabulary has 1 characters: 'a'")):
        vocab.encode("bcdefghijklmnopqrstuvwxyz")


def test_vocab_bad_input():
    with pytest.raises(ValueError, match=exactly(
            "text: expected at least one character to build a vocabulary from, got ''")):
        CharVocab("")
    with pytest.raises(TypeError, match=exactly("text: expected a str, got list")):
        CharVocab(["a", "b"])
    vocab = CharVocab("abc")
    with pytest.raises(TypeError, match=exactly("prompt: expected a str, got bytes")):
        vocab.encode(b"abc", what="prompt")
    with pytest.raises(ValueError, match=exactly(
            "ids: expected ids in [0, 3) for this 3-character vocabulary, got -1, 3, 7")):
        vocab.decode([0, 7, 3, -1, 3])
    with pytest.raises(ValueError, match=exactly("ids: expected one sequence (a 1-D tensor), got shape (2, 2)")):
        vocab.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=exactly("ids: expected an integer tensor, got dtype torch.float32")):
        vocab.decode(torch.zeros(2))
    with pytest.raises(TypeError, match=exactly("ids: expected ints, got 1.0 of type float")):
        vocab.decode([0, 1.0])


def test_vocab_dict_round_trip_and_checks():
    vocab = CharVocab("the quick brown fox")
    state = vocab.to_dict()
    assert state == {"chars": " bcefhiknoqrtuwx"}
    assert CharVocab.from_dict(state) == vocab
    with pytest.raises(ValueError, match=exactly(
            "state['chars']: expected distinct characters in sorted order (from CharVocab.to_dict()), got 'ba'")):
        CharVocab.from_dict({"chars": "ba"})
    with pytest.raises(ValueError, match=exactly(
            "state: expected a dict with the one key 'chars' (from CharVocab.to_dict()), got ['chars', 'extra']")):
        CharVocab.from_dict({"chars": "ab", "extra": 1})


# ---------------------------------------------------------------------------------------------------------------
# Corpora that need no network


def test_default_corpus_is_the_fixed_pydoc_text():
    text = load_corpus()
    assert text == load_corpus("pydoc")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == data.PYDOC_SHA256
    assert len(text) == 465_048
    assert len(CharVocab(text)) == 103
    assert text.startswith('The "assert" statement\n')


@pytest.mark.skipif(platform.python_version() != "3.11.7", reason="the packaged copy was made with CPython 3.11.7")
def test_packaged_pydoc_text_is_what_python_3_11_7_ships():
    assert data.pydoc_text() == load_corpus("pydoc")


def test_damaged_pydoc_file_is_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "pydoc_topics.txt"
    damaged.write_bytes(data.PYDOC_FILE.read_bytes()[:-1])
    got = hashlib.sha256(damaged.read_bytes()).hexdigest()
    monkeypatch.setattr(data, "PYDOC_FILE", damaged)
    with pytest.raises(ValueError, match=exactly(
            f"{damaged} is damaged: its SHA-256 is {got}, expected {data.PYDOC_SHA256}; reinstall linformer_edu")):
        load_corpus("pydoc")


def test_pydoc_file_with_windows_line_endings_still_loads(tmp_path, monkeypatch):
    crlf = tmp_path / "pydoc_topics.txt"
    crlf.write_bytes(data.PYDOC_FILE.read_bytes().replace(b"\n", b"\r\n"))
    monkeypatch.setattr(data, "PYDOC_FILE", crlf)
    assert hashlib.sha256(load_corpus().encode("utf-8")).hexdigest() == data.PYDOC_SHA256


def test_local_text_file(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_bytes("Ünïcode line one\r\nline two\rline three\n".encode("utf-8"))
    assert load_corpus(path) == "Ünïcode line one\nline two\nline three\n"
    assert load_corpus(str(path)) == load_corpus(path)


def test_a_byte_order_mark_is_no_character_of_the_corpus(tmp_path):
    # Windows editors start UTF-8 files with U+FEFF (bytes EF BB BF): it became a vocabulary character
    # (issue 12, item 10). Only the leading mark goes: inside the text, U+FEFF is text.
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffab\ufeff".encode("utf-8"))
    assert load_corpus(path) == "ab\ufeff"
    path.write_bytes("\ufeffab".encode("utf-8"))
    assert CharVocab(load_corpus(path)).chars == "ab"


def test_local_file_errors(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=re.escape(f"corpus: {str(latin1)!r} is not UTF-8 text (")):
        load_corpus(latin1)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=exactly(f"corpus: {str(empty)!r} is empty")):
        load_corpus(empty)
    text = tmp_path / "t.txt"
    text.write_text("abc", encoding="utf-8")
    with pytest.raises(ValueError, match=exactly(
            f"url: only corpora known by name are downloaded, and {str(text)!r} is a local file; "
            f"got url='http://127.0.0.1:1/x'")):
        load_corpus(text, url="http://127.0.0.1:1/x")
    with pytest.raises(ValueError, match=exactly(
            "url: the 'pydoc' corpus ships with the package and is never downloaded; got 'http://127.0.0.1:1/x'")):
        load_corpus("pydoc", url="http://127.0.0.1:1/x")


def test_corpus_name_must_be_a_name_or_path():
    with pytest.raises(TypeError, match=exactly("corpus: expected a corpus name or a file path, got int")):
        load_corpus(3)


@pytest.mark.parametrize("name", ["shakespear", "no/such/file.txt", "."])
def test_unknown_corpus_lists_the_known_names(name):
    with pytest.raises(ValueError, match=exactly(
            f"corpus: {name!r} is neither a known corpus ('pydoc', 'shakespeare') nor an existing text file")):
        load_corpus(name)


# ---------------------------------------------------------------------------------------------------------------
# Downloads, from a local HTTP server on 127.0.0.1


PAYLOAD = "Tiny test corpus.\nFirst Citizen: Speak, speak.\n".encode("utf-8") * 200
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """/ok: the payload; /error: HTTP 500; /truncated: announces the full payload, sends half, hangs up;
    /trickle: announces the full payload, then sends a byte every 50 ms (each read gets an answer in time)."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            for byte in PAYLOAD[:200]:   # at most 10 s, then hang up; the client leaves long before
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:          # the client left
                    break
                time.sleep(0.05)
            self.close_connection = True
        else:
            self.send_error(500, "Internal Server Error")

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server():
    """A local HTTP server on an ephemeral port, serving `Handler` from a thread; `server.requests` logs paths."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = []
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_writes_the_file_and_no_temporary_file(server, tmp_path):
    dest = tmp_path / "sub" / "corpus.txt"  # the folder is created
    assert download(f"{server.base}/ok", dest, PAYLOAD_SHA256, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["corpus.txt"]
    assert server.requests == ["/ok"]


@pytest.mark.skipif(platform.system() == "Windows", reason="Windows has no POSIX permission bits")
def test_a_downloaded_corpus_gets_the_usual_file_mode(server, tmp_path, umask_027):
    """Not mkstemp's owner-only 0o600, which os.replace would keep: 0o666 less the umask, as open() gives."""
    dest = download(f"{server.base}/ok", tmp_path / "corpus.txt", PAYLOAD_SHA256, progress=False)
    assert stat.S_IMODE(dest.stat().st_mode) == umask_027 == 0o640


def test_existing_good_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "corpus.txt"
    download(f"{server.base}/ok", dest, PAYLOAD_SHA256, progress=False)
    download(f"{server.base}/ok", dest, PAYLOAD_SHA256.upper(), progress=False)
    assert server.requests == ["/ok"]


def test_checksum_mismatch_deletes_and_says_so(server, tmp_path):
    dest = tmp_path / "corpus.txt"
    expected = "0" * 64
    with pytest.raises(ValueError, match=exactly(
            f"SHA-256 mismatch for {server.base}/ok: expected {expected}, got {PAYLOAD_SHA256}; "
            f"the downloaded file was deleted and {dest} was not written")):
        download(f"{server.base}/ok", dest, expected, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_wrong_checksum_is_left_alone(server, tmp_path):
    dest = tmp_path / "corpus.txt"
    dest.write_bytes(b"my own notes")
    got = hashlib.sha256(b"my own notes").hexdigest()
    with pytest.raises(ValueError, match=exactly(
            f"{dest} exists but its SHA-256 is {got}, expected {PAYLOAD_SHA256}; it was left as it is: "
            f"delete it to download it again from {server.base}/ok")):
        download(f"{server.base}/ok", dest, PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == b"my own notes"
    assert server.requests == []


@pytest.mark.parametrize("path, reason", [
    ("/error", "HTTP Error 500: Internal Server Error"),
    ("/truncated", f"the connection closed after {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes"),
])
def test_server_failure_leaves_no_partial_file(server, tmp_path, path, reason):
    dest = tmp_path / "corpus.txt"
    with pytest.raises(OSError, match=exactly(
            f"downloading {server.base}{path} failed ({reason}); nothing was written to {dest}")):
        download(f"{server.base}{path}", dest, PAYLOAD_SHA256, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert server.requests == [path]


def test_refused_connection_leaves_no_partial_file(server, tmp_path):
    url = server.base + "/ok"
    server.shutdown()
    server.server_close()  # nothing listens on that port any more
    with pytest.raises(OSError, match=re.escape(f"downloading {url} failed (")):
        download(url, tmp_path / "corpus.txt", PAYLOAD_SHA256, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_server_is_stopped_by_the_deadline(server, tmp_path):
    """Every read gets a byte within `timeout`, so only an overall deadline ends it (issue 12)."""
    dest = tmp_path / "corpus.txt"
    with pytest.raises(OSError, match=rf"^downloading {re.escape(server.base)}/trickle failed \(the 0\.3 s "
                                      rf"deadline passed with \d+ of {len(PAYLOAD)} bytes received\); nothing "
                                      rf"was written to {re.escape(str(dest))}$"):
        download(f"{server.base}/trickle", dest, PAYLOAD_SHA256, timeout=5, deadline=0.3, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".part", ".tmp"])
def test_an_interrupt_the_moment_a_temporary_file_appears_leaves_nothing(server, tmp_path, monkeypatch, suffix):
    """Ctrl-C can land between creating a temporary file and keeping its name: the name is chosen first, so the
    clean-up knows it — a download's .part, and the .tmp of every checkpoint and metrics.json (issue 12)."""
    real_open = os.open

    def open_then_interrupt(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        if str(path).endswith(suffix):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        if suffix == ".part":
            download(f"{server.base}/ok", tmp_path / "corpus.txt", PAYLOAD_SHA256, progress=False)
        else:
            write_atomically(tmp_path / "ckpt.pt", lambda tmp: tmp.write_bytes(b"weights"))
    assert list(tmp_path.iterdir()) == []


SIGTERM_DURING_DOWNLOAD = """
import http.server, os, signal, sys, threading
from linformer_edu.data import download

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        os.kill(os.getpid(), signal.SIGTERM)   # as `timeout`, Slurm or Docker would, half-way through
        threading.Event().wait(10)

    def log_message(self, *args):
        pass

httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
download(f"http://127.0.0.1:{httpd.server_address[1]}/", sys.argv[1], "0" * 64, progress=False)
"""


def test_sigterm_during_a_download_leaves_no_partial_file(tmp_path):
    """SIGTERM's default ends Python without clean-up; during a download it raises, the .part file is removed,
    and Python exits with 143 (issue 12)."""
    done = subprocess.run([sys.executable, "-c", SIGTERM_DURING_DOWNLOAD, str(tmp_path / "corpus.txt")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 143, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_download_checks_its_sha256_argument(tmp_path):
    with pytest.raises(ValueError, match=exactly("sha256: expected 64 hexadecimal digits, got 'abc'")):
        download("http://127.0.0.1:1/x", tmp_path / "x", "abc")


def test_shakespeare_is_checked_against_its_real_checksum(server, tmp_path):
    with pytest.raises(ValueError, match=exactly(
            f"SHA-256 mismatch for {server.base}/ok: expected {SHAKESPEARE_SHA256}, got {PAYLOAD_SHA256}; "
            f"the downloaded file was deleted and {tmp_path / 'tinyshakespeare.txt'} was not written")):
        load_corpus("shakespeare", data_dir=tmp_path, url=f"{server.base}/ok", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_remote_corpus_is_downloaded_once_then_read_from_disk(server, tmp_path, monkeypatch):
    monkeypatch.setitem(data.REMOTE_CORPORA, "shakespeare",
                        data.RemoteCorpus(url=f"{server.base}/ok", filename="tiny.txt", sha256=PAYLOAD_SHA256))
    assert load_corpus("shakespeare", data_dir=tmp_path) == PAYLOAD.decode("utf-8")  # with a progress bar
    assert load_corpus("shakespeare", data_dir=tmp_path) == PAYLOAD.decode("utf-8")
    assert server.requests == ["/ok"]
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.txt"]


# ---------------------------------------------------------------------------------------------------------------
# Train/validation split


def test_split_is_first_part_then_last_part():
    ids = torch.arange(1000)
    train, val = split(ids)
    assert len(train) == 900 and len(val) == 100
    assert torch.equal(torch.cat([train, val]), ids)
    train2, val2 = split(ids.clone())
    assert torch.equal(train, train2) and torch.equal(val, val2)
    train, val = split(ids, val_fraction=0.25)
    assert (len(train), len(val)) == (750, 250)


def test_split_matches_nanogpt_on_shakespeare_length():
    train, val = split(torch.zeros(1_115_394, dtype=torch.long))
    assert (len(train), len(val)) == (1_003_854, 111_540)  # nanoGPT's int(0.9 * n)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match=exactly(
            f"val_fraction: expected a number strictly between 0 and 1, got {fraction!r}")):
        split(torch.arange(10), fraction)


@pytest.mark.parametrize("fraction", [True, "0.1"])
def test_split_rejects_fractions_that_are_no_number(fraction):
    with pytest.raises(TypeError, match=exactly(
            f"val_fraction: expected a number strictly between 0 and 1, got {fraction!r} of type "
            f"{type(fraction).__name__}")):
        split(torch.arange(10), fraction)


@pytest.mark.parametrize("n, fraction, n_train", [(2, 0.6, 0), (1, 0.5, 0), (10, 1e-17, 10)])
def test_split_needs_both_parts(n, fraction, n_train):
    with pytest.raises(ValueError, match=exactly(
            f"val_fraction: {fraction} of {n} tokens leaves {n_train} for training and {n - n_train} for "
            f"validation; both need at least one")):
        split(torch.arange(n), fraction)


# ---------------------------------------------------------------------------------------------------------------
# Batches


def test_batch_shapes_and_shift_by_one():
    ids = torch.arange(100)  # each window is then a run of consecutive numbers
    x, y = get_batch(ids, batch_size=6, block_size=10, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (6, 10)
    assert x.dtype == y.dtype == torch.long
    assert torch.equal(y, x + 1)                       # y is the next token of x
    assert torch.equal(x, x[:, :1] + torch.arange(10))  # a window is a contiguous stretch of ids
    assert x.is_contiguous() and y.is_contiguous()
    assert x.device == y.device == ids.device


def test_batch_windows_reach_both_ends():
    ids = torch.arange(12)
    x, y = get_batch(ids, batch_size=4, block_size=11)  # only one window fits
    assert torch.equal(x, ids[:-1].expand(4, 11)) and torch.equal(y, ids[1:].expand(4, 11))
    x, _ = get_batch(ids, batch_size=500, block_size=3, generator=torch.Generator().manual_seed(0))
    assert set(x[:, 0].tolist()) == set(range(9))      # every start 0 .. len - block_size - 1 occurs


def test_batches_are_reproducible_with_a_seeded_generator():
    ids = torch.randint(50, (1000,), generator=torch.Generator().manual_seed(1))
    a = get_batch(ids, 8, 16, torch.Generator().manual_seed(123))
    b = get_batch(ids, 8, 16, torch.Generator().manual_seed(123))
    c = get_batch(ids, 8, 16, torch.Generator().manual_seed(124))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    g = torch.Generator().manual_seed(123)
    state = g.get_state()                             # what a checkpoint stores to resume exactly
    first = get_batch(ids, 8, 16, g)
    g.set_state(state)
    assert torch.equal(get_batch(ids, 8, 16, g)[0], first[0])


def test_batch_goes_to_the_device_named():
    ids = torch.arange(50)
    x, y = get_batch(ids, 2, 5, torch.Generator().manual_seed(0), device="cpu")
    assert x.device == y.device == torch.device("cpu")
    x2, _ = get_batch(ids, 2, 5, torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert torch.equal(x, x2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_on_cuda_matches_cpu():
    ids = torch.arange(500)
    cpu = get_batch(ids, 4, 32, torch.Generator().manual_seed(0))
    for source in (ids, ids.cuda()):                  # copied from CPU, or gathered on the GPU
        x, y = get_batch(source, 4, 32, torch.Generator().manual_seed(0), device="cuda")
        assert x.device.type == y.device.type == "cuda"
        assert torch.equal(x.cpu(), cpu[0]) and torch.equal(y.cpu(), cpu[1])


def test_batch_argument_errors():
    ids = torch.arange(10)
    with pytest.raises(ValueError, match=exactly(
            "block_size: expected less than len(ids) = 10 (a window needs block_size + 1 tokens), got 10")):
        get_batch(ids, 2, 10)
    with pytest.raises(ValueError, match=exactly("batch_size: expected a positive int, got 0")):
        get_batch(ids, 0, 4)
    with pytest.raises(TypeError, match=exactly("block_size: expected a positive int, got 4.0 of type float")):
        get_batch(ids, 2, 4.0)
    with pytest.raises(TypeError, match=exactly(
            "ids: expected a LongTensor (from CharVocab.encode), got dtype torch.int32")):
        get_batch(ids.int(), 2, 4)
    with pytest.raises(TypeError, match=exactly("ids: expected a LongTensor (from CharVocab.encode), got list")):
        get_batch(list(range(10)), 2, 4)
    with pytest.raises(ValueError, match=exactly("ids: expected a 1-D tensor, got shape (2, 5)")):
        get_batch(ids.view(2, 5), 2, 4)
    with pytest.raises(TypeError, match=exactly("generator: expected a torch.Generator or None, got int")):
        get_batch(ids, 2, 4, generator=0)
