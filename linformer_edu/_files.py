"""Files written whole or not at all: write a temporary file beside the destination, then rename it onto it.

`tempfile.mkstemp` creates its file readable by the owner only (mode 0o600), and `os.replace` keeps that mode,
so the temporary file is given the mode `open()` would give a new file: 0o666 less the umask.
"""
import functools
import os
import tempfile
from pathlib import Path


@functools.cache
def file_mode() -> int:
    """0o666 less the umask: the mode open() gives a new file. Read once: the umask can only be read by setting
    it, and for that moment another thread's new file would get the wrong mode."""
    mask = os.umask(0)
    os.umask(mask)   # put it straight back
    return 0o666 & ~mask


def temp_file_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """(open fd, path) of a new, empty file in path's folder, named '.NAME.*SUFFIX', with the usual mode."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        os.chmod(tmp, file_mode())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, Path(tmp)


def sync_to_disk(path) -> None:
    """Ask the OS to put `path`'s bytes on disk, so a crash after the rename cannot leave it empty."""
    with open(path, "rb+") as f:   # opened for writing: Windows cannot sync a read-only handle
        os.fsync(f.fileno())


def write_atomically(path, write) -> Path:
    """write(temporary path), then rename it onto `path`: readers see the old file or the new one, never half.

    The file gets the usual mode (0o666 less the umask), and its bytes are on disk before the rename; on any error
    the temporary file is removed and `path` is left as it was. Returns `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path, ".tmp")
    os.close(fd)
    try:
        write(tmp)
        sync_to_disk(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
