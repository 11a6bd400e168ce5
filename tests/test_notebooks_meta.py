"""Every committed notebook follows the course conventions (see the project's notebook rules):

- an "Open in Colab" badge for the repository named in pyproject.toml and the notebook's own path,
  before the first code cell;
- the first code cell is exactly the guarded Colab install of that repository at the pinned ref (see
  tools/set_repo.py; tests/test_colab.py runs it in an environment holding Colab's versions);
- kernelspec python3; outputs from one clean top-to-bottom run (execution counts 1, 2, 3, …) with no errors;
- no absolute paths (/root, /home, /tmp, /work, /Users) in sources or text outputs; each PNG under 200 KB;
- at least one `# NBVAL_CHECK_OUTPUT` cell (what nbval compares);
- it ends with a recap and 2–3 exercises, each with a checker from `linformer_edu.exercises`.

Also: tools/set_repo.py rewrites every notebook for a new repository, and back, leaving them identical.
"""
import base64
import importlib.util
import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/(?:root|home|tmp|work|Users)(?=/|\b)")
TEXT_MIME = ("text/plain", "text/html", "text/markdown", "text/latex", "application/javascript")
MAX_PNG_BYTES = 200 * 1024


def load_tool():
    spec = importlib.util.spec_from_file_location("set_repo", ROOT / "tools" / "set_repo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


set_repo = load_tool()


def source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def badge(repo, path):
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{repo}/blob/main/{path})")


def install_cell(repo, ref):
    """Written out here, not taken from tools/set_repo.py, so a change to the tool's cell shows up as a failure."""
    return ('import sys\n'
            'if "google.colab" in sys.modules:  # Colab only: install the course package at a fixed release\n'
            "    # --no-deps: keep Colab's own torch, ipywidgets, matplotlib and tqdm; then install only what is missing\n"
            f'    %pip install -q --no-deps "linformer_edu @ git+https://github.com/{repo}@{ref}"\n'
            '    from importlib.util import find_spec\n'
            '    needed = ("torch", "einops", "numpy", "matplotlib", "ipywidgets", "tqdm")\n'
            '    missing = " ".join(name for name in needed if find_spec(name) is None)\n'
            '    if missing:\n'
            '        %pip install -q {missing}')


def problems_with_links(nb, path, repo, ref):
    """What is wrong with a notebook's badge and install cell, for the repository `repo` at `ref`."""
    cells = nb["cells"]
    first_code = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), None)
    problems = []
    if first_code is None:
        return ["no code cell"]
    want = badge(repo, path)
    if not any(want in source(c) for c in cells[:first_code] if c["cell_type"] == "markdown"):
        problems.append(f"no Colab badge before the first code cell; expected {want}")
    if source(cells[first_code]) != install_cell(repo, ref):
        problems.append(f"first code cell is not the guarded Colab install of {repo}@{ref} (run "
                        f"`python tools/set_repo.py {repo}`):\n{source(cells[first_code])}")
    return problems


def text_outputs(cell):
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            yield "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
        elif out["output_type"] == "error":
            yield "\n".join(out.get("traceback", []))
        else:
            for mime in TEXT_MIME:
                data = out.get("data", {}).get(mime)
                if data is not None:
                    yield "".join(data) if isinstance(data, list) else data


@pytest.fixture(scope="module")
def repo():
    return set_repo.read_repo(ROOT)


@pytest.fixture(scope="module")
def ref():
    return set_repo.read_ref(ROOT)


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    return path.relative_to(ROOT).as_posix(), json.loads(path.read_text(encoding="utf-8"))


def test_badge_and_install_cell_point_at_the_repository(notebook, repo, ref):
    path, nb = notebook
    assert problems_with_links(nb, path, repo, ref) == []


def test_the_tool_writes_the_cell_this_test_expects(repo, ref):
    assert set_repo.install_cell(repo, ref) == install_cell(repo, ref)


def test_kernelspec_is_python3(notebook):
    _, nb = notebook
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"


def test_outputs_come_from_one_clean_run(notebook):
    _, nb = notebook
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), "execution counts are not 1, 2, 3, …: re-run top to bottom " \
                                                    "with tools/run_notebooks.py"
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(nb["cells"])
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []


def test_no_absolute_paths(notebook):
    _, nb = notebook
    found = []
    for i, cell in enumerate(nb["cells"]):
        for text in [source(cell), *text_outputs(cell)]:
            found += [(i, m.group(0), text[max(0, m.start() - 40):m.end() + 40])
                      for m in ABSOLUTE_PATH.finditer(text)]
    assert found == []


def test_images_are_small(notebook):
    _, nb = notebook
    sizes = [(i, len(base64.b64decode(o["data"]["image/png"]))) for i, c in enumerate(nb["cells"])
             for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert [(i, size) for i, size in sizes if size >= MAX_PNG_BYTES] == []


def test_some_outputs_are_checked_by_nbval(notebook):
    _, nb = notebook
    assert any(source(c).lstrip().startswith("# NBVAL_CHECK_OUTPUT") for c in nb["cells"] if c["cell_type"] == "code")


def test_ends_with_a_recap_and_two_or_three_exercises(notebook):
    _, nb = notebook
    headings = [(i, line) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"
                for line in source(c).splitlines() if line.startswith("#")]
    recap = [i for i, line in headings if re.match(r"#+\s.*recap", line, re.I)]
    exercises = [i for i, line in headings if re.match(r"#{1,2}\s.*exercises", line, re.I)]
    assert recap and exercises and recap[0] <= exercises[-1], "needs a Recap heading, then an Exercises heading"
    start = exercises[-1]
    later_sections = [line for i, line in headings if i > start and re.match(r"#{1,2}\s", line)]
    assert later_sections == [], "the Exercises section must be the last one"
    checkers = {m for c in nb["cells"][start:] if c["cell_type"] == "code"
                for m in re.findall(r"\bnb\d+\.(check_\w+)\(", source(c))}
    assert 2 <= len(checkers) <= 3, f"expected 2-3 exercises with checkers after the heading, found {checkers}"


def without_first_code_source(nb):
    nb = json.loads(json.dumps(nb))
    next(c for c in nb["cells"] if c["cell_type"] == "code")["source"] = None
    return nb


def test_set_repo_rewrites_every_notebook_and_back(tmp_path, repo, ref):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    readme = "[GitHub](https://github.com/{0}) · [Colab](https://colab.research.google.com/github/{0}/blob/main/" \
             "notebooks/00_start_here.ipynb) · https://github.com/{0}_fork stays\n"
    (tmp_path / "README.md").write_text(readme.format(repo))
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks")
    originals = {p.name: p.read_bytes() for p in [*(tmp_path / "notebooks").iterdir(), tmp_path / "README.md",
                                                  tmp_path / "pyproject.toml"]}

    changed = set_repo.set_repo("someone-else/course.fork", tmp_path, ref="v9.9.9")
    assert (set_repo.read_repo(tmp_path), set_repo.read_ref(tmp_path)) == ("someone-else/course.fork", "v9.9.9")
    assert set(changed) == {"pyproject.toml", "README.md", *(f"notebooks/{p.name}" for p in NOTEBOOKS)}
    urls = tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]["urls"]
    assert urls and all(u.startswith("https://github.com/someone-else/course.fork") for u in urls.values())
    assert (tmp_path / "README.md").read_text() == (
        "[GitHub](https://github.com/someone-else/course.fork) · [Colab](https://colab.research.google.com/github/"
        "someone-else/course.fork/blob/main/notebooks/00_start_here.ipynb) · "
        f"https://github.com/{repo}_fork stays\n")
    for path in NOTEBOOKS:
        nb = json.loads((tmp_path / "notebooks" / path.name).read_text(encoding="utf-8"))
        assert problems_with_links(nb, f"notebooks/{path.name}", "someone-else/course.fork", "v9.9.9") == []
        # but for the slug in links: outputs, metadata, every other cell as they were
        back = json.loads((tmp_path / "notebooks" / path.name).read_text(encoding="utf-8")
                          .replace("someone-else/course.fork", repo))
        assert without_first_code_source(back) == without_first_code_source(json.loads(originals[path.name]))

    assert set_repo.set_repo("someone-else/course.fork", tmp_path) == {}   # idempotent, and keeps the ref
    assert set_repo.read_ref(tmp_path) == "v9.9.9"
    set_repo.set_repo(repo, tmp_path, ref=ref)
    assert {name: (tmp_path / ("notebooks/" + name if name.endswith(".ipynb") else name)).read_bytes()
            for name in originals} == originals


def test_set_repo_writes_a_stale_install_cell_anew(tmp_path, repo, ref):
    """Running the tool for the current repository brings an old or hand-edited first cell back to the rule."""
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first["source"] = ['import sys\n', 'if "google.colab" in sys.modules:\n',
                       f'    %pip install -q "linformer_edu @ git+https://github.com/{repo}"']
    first["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["kept\n"]}]
    (tmp_path / "notebooks" / NOTEBOOKS[0].name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    assert set_repo.set_repo(repo, tmp_path) == {f"notebooks/{NOTEBOOKS[0].name}": 1}
    nb = json.loads((tmp_path / "notebooks" / NOTEBOOKS[0].name).read_text(encoding="utf-8"))
    assert problems_with_links(nb, f"notebooks/{NOTEBOOKS[0].name}", repo, ref) == []
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert first["outputs"] == [{"name": "stdout", "output_type": "stream", "text": ["kept\n"]}]   # only source


@pytest.mark.parametrize("bad", ["no-slash", "a/b/c", "", "owner/name with space", "-owner/name"])
def test_set_repo_rejects_what_is_not_a_slug(tmp_path, bad, raises_exactly):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with raises_exactly(ValueError, f"OWNER/NAME: got {bad!r}, expected a GitHub slug such as "
                                    f"'linformer-edu/linformer_edu'"):
        set_repo.set_repo(bad, tmp_path)


@pytest.mark.parametrize("bad", ["", "v1 0", "-v1", "a..b", "v1/", "v1.lock", 'v1"', "v1\n"])
def test_set_repo_rejects_what_is_not_a_ref(tmp_path, bad, raises_exactly):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    before = (tmp_path / "pyproject.toml").read_bytes()
    with raises_exactly(ValueError, f"--ref: got {bad!r}, expected a tag such as 'v0.1.0' or a full commit hash"):
        set_repo.set_repo("someone/else", tmp_path, ref=bad)
    assert (tmp_path / "pyproject.toml").read_bytes() == before
