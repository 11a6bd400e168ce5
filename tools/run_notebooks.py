"""Execute notebooks top to bottom in a fresh kernel and store their outputs in place.

    python tools/run_notebooks.py notebooks/*.ipynb          # full size: what GitHub and Colab show
    LINFORMER_EDU_QUICK=1 python tools/run_notebooks.py ...  # the small size the tests use

A notebook that raises stops the run with the cell's error; nothing is written for it.
"""
import argparse
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def run(path: pathlib.Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = KERNELSPEC
    start = time.perf_counter()
    # Run from the notebook's own folder, so relative paths in cells work as they do in JupyterLab.
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {run(path, args.timeout):.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
