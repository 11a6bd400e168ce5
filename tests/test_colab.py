"""The notebooks' first cell installs the course in Colab without touching what Colab has preinstalled.

Colab ships its own torch (a CUDA build), ipywidgets 7.7.1 (its front end has repeatedly failed to render 8),
matplotlib, tqdm and einops. The cell installs the package at the pinned ref with `pip install --no-deps`, then
only the dependencies that are missing (issue 13).

- The cell's logic, in this environment, with a recording `%pip`: nothing outside Colab; in Colab exactly the
  pinned --no-deps install, plus `pip install NAME` for a dependency that is absent.
- The real thing (marker `colab`), in .venv-colab, an environment holding Colab's versions (`make colab-env`;
  .venv's torch stands in for Colab's CUDA build): the notebook's own first cell runs under IPython with
  `google.colab` faked, its real pip installs from a local git repository standing in for GitHub (git's
  `insteadOf`, so the cell's URL is used as written, and PIP_NO_INDEX: no network), and afterwards every
  preinstalled distribution has the version it had, the explorer builds and updates under ipywidgets 7.7.1, and
  tests/test_explore.py and tests/test_explore_views.py pass there.

`make test` sets LINFORMER_EDU_COLAB_VENV, which turns a missing .venv-colab into a failure instead of a skip.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_exploring_low_rank_attention.ipynb"   # the explorer's notebook
TABLE = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["linformer_edu"]
REPO, REF = TABLE["repo"], TABLE["ref"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
# What Colab has preinstalled, from issue 13: .venv-colab must hold these or it does not stand in for Colab.
COLAB = {"ipywidgets": r"7\.7\.1", "widgetsnbextension": r"3\.6\.\d+", "matplotlib": r"3\.10\.\d+",
         "einops": r"0\.8\.\d+", "tqdm": r"4\.67\.\d+"}
URL = f"linformer_edu @ git+https://github.com/{REPO}@{REF}"


def first_cell(path=NOTEBOOK):
    nb = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


# ----------------------------------------------------------------------------------------------------------------
# The cell's logic, here and quickly: which pip commands it gives in each situation

RECORD_PIP = r"""
import importlib.util, json, sys, types
from IPython.core.interactiveshell import InteractiveShell

source, scenarios = sys.argv[1], json.loads(sys.argv[2])
shell = InteractiveShell.instance()
real_find_spec = importlib.util.find_spec
results = []
for in_colab, missing in scenarios:
    calls = []
    shell.register_magic_function(calls.append, "line", "pip")          # %pip LINE records LINE, installs nothing
    if in_colab:
        sys.modules["google.colab"] = types.ModuleType("google.colab")
    else:
        sys.modules.pop("google.colab", None)
    importlib.util.find_spec = lambda name, *a, _m=set(missing): None if name in _m else real_find_spec(name, *a)
    result = shell.run_cell(source)
    importlib.util.find_spec = real_find_spec
    results.append({"calls": calls, "ok": result.success})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def pip_commands():
    """{scenario: the %pip lines the notebook's first cell runs}, for: outside Colab; in Colab with every
    dependency present; in Colab without einops; in Colab without einops and tqdm."""
    scenarios = {"jupyter": (False, []), "colab": (True, []), "colab, no einops": (True, ["einops"]),
                 "colab, no einops or tqdm": (True, ["einops", "tqdm"])}
    run = subprocess.run([sys.executable, "-c", RECORD_PIP, first_cell(), json.dumps(list(scenarios.values()))],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.splitlines()[-1])
    assert all(r["ok"] for r in results), results
    return dict(zip(scenarios, (r["calls"] for r in results)))


def test_outside_colab_the_cell_installs_nothing(pip_commands):
    assert pip_commands["jupyter"] == []


def test_in_colab_it_installs_the_pinned_ref_without_dependencies(pip_commands):
    assert pip_commands["colab"] == [f'install -q --no-deps "{URL}"']


def test_in_colab_it_installs_only_the_missing_dependencies(pip_commands):
    assert pip_commands["colab, no einops"] == [f'install -q --no-deps "{URL}"', "install -q einops"]
    assert pip_commands["colab, no einops or tqdm"] == [f'install -q --no-deps "{URL}"', "install -q einops tqdm"]


def test_the_cell_checks_every_dependency_it_may_lack():
    """Each dependency is checked by the cell, but pillow (matplotlib requires it) and ipython (the kernel)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() for d in deps}
    checked = set(re.search(r"needed = \(([^)]*)\)", first_cell())[1].replace('"', "").replace(" ", "").split(","))
    assert checked == names - {"pillow", "ipython"}


# ----------------------------------------------------------------------------------------------------------------
# The real thing, in an environment holding Colab's versions

def colab_venv():
    wanted = os.environ.get("LINFORMER_EDU_COLAB_VENV")
    venv = ROOT / (wanted or ".venv-colab")
    if not (venv / ".installed").exists():
        if wanted:
            pytest.fail(f"{venv} is missing or unfinished: `make colab-env` builds it")
        pytest.skip(".venv-colab is not built: `make colab-env` (make test does it)")
    return venv


VERSIONS = """
import importlib.metadata, json, re
print(json.dumps({re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
                  for d in importlib.metadata.distributions()}))
"""

RUN_CELL = r"""
import json, sys
sys.path.insert(0, sys.argv[1])   # a google/colab/ package: Colab's kernel has imported google.colab at start
import google.colab
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
result = shell.run_cell(open(sys.argv[2], encoding="utf-8").read())
print("RESULT " + json.dumps({"ok": result.success, "pip_exit_code": shell.user_ns.get("_exit_code")}))
"""

EXPLORE = r"""
import json, ipywidgets, linformer_edu
from linformer_edu.explore import AttentionExplorer
explorer = AttentionExplorer(n=32, k=4)
before = (explorer.result.k, explorer.image, explorer.status.value)
explorer.set(k=8)
print(json.dumps({"ipywidgets": ipywidgets.__version__, "package": linformer_edu.__file__,
                  "k": [before[0], explorer.result.k], "image_changed": explorer.image != before[1],
                  "jpeg": explorer.picture.value[:2] == b"\xff\xd8", "shown": explorer.picture.value == explorer.image,
                  "status": explorer.status.value, "errors": list(explorer.log.outputs)}))
"""


SCRIPTS = {"versions": VERSIONS, "run-cell": RUN_CELL, "explorer": EXPLORE,
           "site": "import sysconfig; print(sysconfig.get_path('purelib'))"}


def fake_github(tmp_path):
    """A git repository holding this checkout's package at a tag named REF, standing in for github.com/REPO."""
    remote = tmp_path / "remote"
    remote.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, remote / name)
    shutil.copytree(ROOT / "linformer_edu", remote / "linformer_edu", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(remote), "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the package"], ["tag", REF]):
        subprocess.run(git + args, check=True, capture_output=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return remote, commit


@pytest.mark.colab
def test_colab_install_cell_keeps_colab_versions_and_the_explorer_works(tmp_path):
    venv = colab_venv()
    python = str(venv / "bin" / "python")
    source = first_cell()
    remote, commit = fake_github(tmp_path)
    if re.fullmatch(r"[0-9a-f]{40}", REF):   # a pinned commit cannot be reproduced: pin the stand-in's instead
        source = source.replace(f"@{REF}", f"@{commit}")
    (tmp_path / "fake" / "google" / "colab").mkdir(parents=True)
    (tmp_path / "fake" / "google" / "colab" / "__init__.py").write_text('"""Stands in for Colab\'s module."""\n')
    (tmp_path / "cell.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "GIT_", "VIRTUAL_ENV"))}
    env.update(PYTHONNOUSERSITE="1", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(venv / "wheels"),
               PIP_CACHE_DIR=str(tmp_path / "pip-cache"), PIP_DISABLE_PIP_VERSION_CHECK="1",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{remote.as_uri()}.insteadOf",
               GIT_CONFIG_VALUE_0=f"https://github.com/{REPO}")

    def run(*args, timeout=300):
        done = subprocess.run([python, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
        script = {code: name for name, code in SCRIPTS.items()}.get(args[1])
        what = f"the {script} script" if script else " ".join(args)
        assert done.returncode == 0, f"{what}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run("-m", "pip", "uninstall", "-q", "-y", "linformer_edu")   # from an earlier run; none: a warning only
    before = json.loads(run("-c", VERSIONS))
    colab_versions = {name: before.get(name) for name in COLAB}
    assert all(re.fullmatch(COLAB[name], v or "") for name, v in colab_versions.items()), colab_versions
    assert "torch" in before and "linformer-edu" not in before

    out = run("-c", RUN_CELL, str(tmp_path / "fake"), str(tmp_path / "cell.py"))
    result = json.loads(out.split("RESULT ")[-1])
    assert result == {"ok": True, "pip_exit_code": 0}, out

    after = json.loads(run("-c", VERSIONS))
    assert after.pop("linformer-edu") == VERSION
    assert after == before   # nothing preinstalled changed version, nothing else was added
    site = Path(run("-c", SCRIPTS["site"]).strip())
    direct_url = json.loads((site / f"linformer_edu-{VERSION}.dist-info" / "direct_url.json").read_text())
    assert direct_url["url"] == f"https://github.com/{REPO}"   # the cell's URL, as written
    assert direct_url["vcs_info"]["commit_id"] == commit
    assert direct_url["vcs_info"].get("requested_revision") in (REF, commit)

    shown = json.loads(run("-c", EXPLORE).splitlines()[-1])
    assert shown["ipywidgets"] == "7.7.1"
    assert Path(shown["package"]).is_relative_to(site)   # the installed package, not this checkout
    assert shown["errors"] == [], shown["errors"]
    assert shown["k"] == [4, 8] and shown["image_changed"] and shown["jpeg"] and shown["shown"]
    assert "k = 8" in shown["status"], shown["status"]

    # the explorer's own tests, under ipywidgets 7.7.1 (this checkout's code: the same as installed above)
    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                            "-W", "ignore::DeprecationWarning", "tests/test_explore.py",
                            "tests/test_explore_views.py"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", tests.stdout) and " failed" not in tests.stdout
