"""Point the course at another GitHub repository, or another release of it, everywhere at once:

    python tools/set_repo.py OWNER/NAME [--ref REF]

The slug and the ref (a tag such as v0.1.0, or a full commit) live in one place, `[tool.linformer_edu]` in
pyproject.toml. This rewrites them there and in every link that uses the slug: pyproject's project URLs, each
notebook's "Open in Colab" badge, and the README's GitHub and Colab links (github.com/…,
colab.research.google.com/github/…, raw.githubusercontent.com/…). It also writes every notebook's first code
cell, the Colab install cell, for that slug and ref (`install_cell`); only that cell's source changes, its
outputs and the rest of the notebook stay as they are, so nothing needs a re-run. Without --ref the ref stays.
tests/test_notebooks_meta.py checks that every notebook agrees with pyproject.toml.
"""
import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# a tag or branch-like name git accepts (no "..", no leading "-" or "/"), or a commit
REF = re.compile(r"(?!.*\.\.)(?!.*\.lock$)[A-Za-z0-9_][A-Za-z0-9._/+-]{0,99}(?<![./])")
# `key = "…"` in the [tool.linformer_edu] table: the lines after its header, up to the next table's
TABLE = r'(?m)^(\[tool\.linformer_edu\][ \t]*\n(?:(?!\[).*\n)*?{key}[ \t]*=[ \t]*")([^"\n]*)(")'
REPO_LINE = re.compile(TABLE.format(key="repo"))
REF_LINE = re.compile(TABLE.format(key="ref"))
# What Colab has preinstalled and the install cell checks for, by import name. The package's other two
# dependencies are there wherever this cell runs: pillow (matplotlib requires it) and ipython (the kernel).
CHECKED = ("torch", "einops", "numpy", "matplotlib", "ipywidgets", "tqdm")


def install_cell(repo: str, ref: str) -> str:
    """The first code cell of every notebook: in Colab only, install the package at `ref` without its
    dependencies, so Colab's own torch (its CUDA build), ipywidgets 7 (what its front end renders), matplotlib
    and tqdm are never replaced; then install whichever dependency is missing (einops, if Colab drops it)."""
    needed = ", ".join(f'"{name}"' for name in CHECKED)
    return (
        'import sys\n'
        'if "google.colab" in sys.modules:  # Colab only: install the course package at a fixed release\n'
        '    # --no-deps: keep Colab\'s own torch, ipywidgets, matplotlib and tqdm; then install only what is missing\n'
        f'    %pip install -q --no-deps "linformer_edu @ git+https://github.com/{repo}@{ref}"\n'
        '    from importlib.util import find_spec\n'
        f'    needed = ({needed})\n'
        '    missing = " ".join(name for name in needed if find_spec(name) is None)\n'
        '    if missing:\n'
        '        %pip install -q {missing}')
HOSTS = r"(?<=github\.com/)|(?<=colab\.research\.google\.com/github/)|(?<=raw\.githubusercontent\.com/)"


def read_repo(root=ROOT) -> str:
    """The OWNER/NAME in pyproject.toml's [tool.linformer_edu] table."""
    match = REPO_LINE.search((Path(root) / "pyproject.toml").read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{Path(root) / 'pyproject.toml'}: no `repo = \"OWNER/NAME\"` in [tool.linformer_edu]")
    return match.group(2)


def read_ref(root=ROOT) -> str:
    """The tag or commit in pyproject.toml's [tool.linformer_edu] table that Colab installs."""
    match = REF_LINE.search((Path(root) / "pyproject.toml").read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{Path(root) / 'pyproject.toml'}: no `ref = \"TAG-OR-COMMIT\"` in [tool.linformer_edu]")
    return match.group(2)


def notebooks(root=ROOT):
    return [p for p in sorted((Path(root) / "notebooks").rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]


def with_install_cell(text: str, repo: str, ref: str) -> str:
    """A notebook's JSON text with its first code cell's source set to `install_cell(repo, ref)`.

    Written back as Jupyter writes notebooks (one-space indent, UTF-8 as is), which reproduces a saved notebook
    byte for byte, so only that cell's source differs."""
    nb = json.loads(text)
    cell = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
    if cell is None:
        return text
    cell["source"] = install_cell(repo, ref).splitlines(keepends=True)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def files_to_rewrite(root=ROOT):
    """The README and every notebook: the files whose links carry the slug (pyproject.toml is handled apart)."""
    return [p for p in [Path(root) / "README.md", *notebooks(root)] if p.is_file()]


def rewrite_links(text: str, old: str, new: str) -> tuple[str, int]:
    """Replace the slug `old` by `new` in GitHub / Colab / raw links; (new text, number of links changed)."""
    pattern = re.compile(f"(?:{HOSTS}){re.escape(old)}" + r"""(?=[/"'\\\s)#?.\]@]|$)""")   # a whole slug only
    return pattern.subn(new, text)


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def set_repo(new: str, root=ROOT, ref=None) -> dict:
    """Rewrite pyproject.toml, the README and every notebook for the slug `new` and the ref `ref` (None: keep
    it); {file: places changed}, a notebook's install cell counting as one."""
    if not isinstance(new, str) or not SLUG.fullmatch(new):
        raise ValueError(f"OWNER/NAME: got {new!r}, expected a GitHub slug such as 'linformer-edu/linformer_edu'")
    if ref is not None and (not isinstance(ref, str) or not REF.fullmatch(ref)):
        raise ValueError(f"--ref: got {ref!r}, expected a tag such as 'v0.1.0' or a full commit hash")
    root = Path(root)
    old, old_ref = read_repo(root), read_ref(root)
    ref = old_ref if ref is None else ref
    changed = {}
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    updated, count = rewrite_links(text, old, new)                       # [project.urls]
    count *= old != new
    updated = REPO_LINE.sub(lambda m: m.group(1) + new + m.group(3), updated, count=1)
    updated = REF_LINE.sub(lambda m: m.group(1) + ref + m.group(3), updated, count=1)
    if updated != text:
        write_atomically(pyproject, updated)
        changed["pyproject.toml"] = count + (old != new) + (old_ref != ref)
    for path in files_to_rewrite(root):
        text = path.read_text(encoding="utf-8")
        updated, count = rewrite_links(text, old, new)
        count *= old != new
        if path.suffix == ".ipynb":
            with_cell = with_install_cell(updated, new, ref)
            count += with_cell != updated
            updated = with_cell
        if updated != text:
            write_atomically(path, updated)
            changed[str(path.relative_to(root))] = count
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", metavar="OWNER/NAME", help="the GitHub repository the course is published at")
    parser.add_argument("--ref", help="the tag (or full commit) Colab installs, e.g. v0.1.0; default: keep it")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        old, old_ref = read_repo(args.root), read_ref(args.root)
        changed = set_repo(args.repo, args.root, args.ref)
        ref = read_ref(args.root)
    except ValueError as error:
        parser.error(str(error))
    for name, count in changed.items():
        print(f"{name}: {count} change{'s' * (count != 1)} {old}@{old_ref} -> {args.repo}@{ref}")
    if not changed:
        print(f"nothing to change: everything already points at {args.repo}@{ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
