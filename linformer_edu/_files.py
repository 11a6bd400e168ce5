"""Files written whole or not at all: write a temporary file beside the destination, then rename it onto it.

The temporary file's name is chosen *before* the file is created, so whatever interrupts the write — an error,
Ctrl-C, SIGTERM turned into an exception, even one landing the instant after the file appears — the code that
cleans up knows which file to remove. It is created with the mode `open()` gives a new file: 0o666 less the umask.
"""
import contextlib
import functools
import os
import secrets
from pathlib import Path


@functools.cache
def file_mode() -> int:
    """0o666 less the umask: the mode open() gives a new file. Read once: the umask can only be read by setting
    it, and for that moment another thread's new file would get the wrong mode."""
    mask = os.umask(0)
    os.umask(mask)   # put it straight back
    return 0o666 & ~mask


def temp_path_beside(path: Path, suffix: str) -> Path:
    """A fresh name for a temporary file in path's folder, '.NAME.<16 random hex digits>SUFFIX'; not created."""
    return path.parent / f".{path.name}.{secrets.token_hex(8)}{suffix}"


def create_new(tmp: Path) -> int:
    """Create the file `tmp` (an error if it exists) with the usual mode, open for writing; return its fd."""
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), file_mode())


def sync_to_disk(path) -> None:
    """Ask the OS to put `path`'s bytes on disk, so a crash after the rename cannot leave it empty."""
    with open(path, "rb+") as f:   # opened for writing: Windows cannot sync a read-only handle
        os.fsync(f.fileno())


def write_atomically(path, write) -> Path:
    """write(temporary path), then rename it onto `path`: readers see the old file or the new one, never half.

    The file gets the usual mode (0o666 less the umask), and its bytes are on disk before the rename; on any error
    (KeyboardInterrupt included) the temporary file is removed and `path` is left as it was. Returns `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(path, ".tmp")   # named before it exists: the cleanup below always knows it
    try:
        os.close(create_new(tmp))
        write(tmp)
        sync_to_disk(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable(folder, name: str = "out_dir") -> Path:
    """Whether `folder` takes files, found by creating it (and its missing parents) and a probe file in it, then
    removing them all again: a folder that cannot be written to fails now, not at the first save, and a check
    leaves no trace. The OSError (of the kind the OS gave) names `name` and the folder. Returns it as a Path."""
    folder = Path(folder)
    made = [path for path in (folder, *folder.parents) if not path.exists()]   # deepest first
    probe = temp_path_beside(folder / "write-probe", ".tmp")
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            os.close(create_new(probe))
        finally:
            probe.unlink(missing_ok=True)
            for path in made:
                with contextlib.suppress(OSError):   # not made after all, or someone wrote into it meanwhile
                    path.rmdir()
    except OSError as err:
        raise type(err)(f"{name}: cannot write to {folder} ({err.strerror or err}); choose another folder") \
            from None
    return folder
