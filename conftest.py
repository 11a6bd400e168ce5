"""Session-wide test settings, read before any notebook kernel starts (kernels inherit the environment)."""
import os

# Notebooks shrink their heavy parts under test (see linformer_edu/notebook.py).
os.environ.setdefault("LINFORMER_EDU_QUICK", "1")
