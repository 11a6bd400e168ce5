"""Session-wide test settings, read before any notebook kernel starts (kernels inherit the environment)."""
import os

import pytest

# Notebooks shrink their heavy parts under test (see linformer_edu/notebook.py).
os.environ.setdefault("LINFORMER_EDU_QUICK", "1")
# One CPU thread per process: the tiny models under test gain nothing from more, and on a 2-core machine
# shared with JupyterLab or other jobs, threads fighting for cores made notebooks up to 10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def umask_027():
    """Run with umask 0o027, so files written "with the usual mode" must be 0o640 (the value yielded): unlike the
    common 0o644 and unlike the 0o600 of a bare tempfile.mkstemp, so a wrong mode cannot pass by chance."""
    from linformer_edu._files import file_mode
    old = os.umask(0o027)
    file_mode.cache_clear()
    try:
        yield 0o640
    finally:
        os.umask(old)
        file_mode.cache_clear()
