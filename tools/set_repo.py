"""Point the course at another GitHub repository, everywhere at once:

    python tools/set_repo.py OWNER/NAME

The slug lives in one place, `[tool.linformer_edu] repo` in pyproject.toml. This rewrites it there and in every
link that uses it: each notebook's "Open in Colab" badge and Colab install cell, and the README's GitHub and
Colab links (github.com/…, colab.research.google.com/github/…, raw.githubusercontent.com/…). Nothing else
changes, so outputs need no re-run. tests/test_notebooks_meta.py checks that every notebook agrees with
pyproject.toml.
"""
import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
REPO_LINE = re.compile(r'(?m)^(\[tool\.linformer_edu\][^\[]*?^repo\s*=\s*")([^"]*)(")')
HOSTS = r"(?<=github\.com/)|(?<=colab\.research\.google\.com/github/)|(?<=raw\.githubusercontent\.com/)"


def read_repo(root=ROOT) -> str:
    """The OWNER/NAME in pyproject.toml's [tool.linformer_edu] table."""
    match = REPO_LINE.search((Path(root) / "pyproject.toml").read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{Path(root) / 'pyproject.toml'}: no `repo = \"OWNER/NAME\"` in [tool.linformer_edu]")
    return match.group(2)


def files_to_rewrite(root=ROOT):
    """The README and every notebook: the files whose links carry the slug (pyproject.toml is handled apart)."""
    root = Path(root)
    return [p for p in [root / "README.md", *sorted((root / "notebooks").rglob("*.ipynb"))]
            if p.is_file() and ".ipynb_checkpoints" not in p.parts]


def rewrite_links(text: str, old: str, new: str) -> tuple[str, int]:
    """Replace the slug `old` by `new` in GitHub / Colab / raw links; (new text, number of links changed)."""
    pattern = re.compile(f"(?:{HOSTS}){re.escape(old)}" + r"""(?=[/"'\\\s)#?.\]]|$)""")   # a whole slug only
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


def set_repo(new: str, root=ROOT) -> dict:
    """Rewrite pyproject.toml, the README and every notebook for the slug `new`; {file: links changed}."""
    if not isinstance(new, str) or not SLUG.fullmatch(new):
        raise ValueError(f"OWNER/NAME: got {new!r}, expected a GitHub slug such as 'linformer-edu/linformer_edu'")
    root = Path(root)
    old = read_repo(root)
    changed = {}
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    if old != new:
        write_atomically(pyproject, REPO_LINE.sub(lambda m: m.group(1) + new + m.group(3), text, count=1))
        changed["pyproject.toml"] = 1
    for path in files_to_rewrite(root):
        text = path.read_text(encoding="utf-8")
        updated, count = rewrite_links(text, old, new)
        if count and updated != text:
            write_atomically(path, updated)
            changed[str(path.relative_to(root))] = count
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", metavar="OWNER/NAME", help="the GitHub repository the course is published at")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project folder (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        old = read_repo(args.root)
        changed = set_repo(args.repo, args.root)
    except ValueError as error:
        parser.error(str(error))
    for name, count in changed.items():
        print(f"{name}: {count} link{'s' * (count != 1)} {old} -> {args.repo}")
    if not changed:
        print(f"nothing to change: everything already points at {args.repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
