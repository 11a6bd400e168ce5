"""Session-wide test settings, read before any notebook kernel starts (kernels inherit the environment)."""
import os

# Notebooks shrink their heavy parts under test (see linformer_edu/notebook.py).
os.environ.setdefault("LINFORMER_EDU_QUICK", "1")
# One CPU thread per process: the tiny models under test gain nothing from more, and on a 2-core machine
# shared with JupyterLab or other jobs, threads fighting for cores made notebooks up to 10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
