"""The package's metadata says what the code needs and what it is: pyproject.toml against the code and LICENSE.

- PEP 639 license metadata (an SPDX expression and the license file), built by setuptools >= 77;
- the dependency floors the code runs on (Colab's preinstalled versions must satisfy them: tests/test_colab.py),
  and every third-party module the package imports is declared;
- the console scripts resolve to the callables they name;
- project URLs and the Colab ref follow [tool.linformer_edu];
- the sdist and wheel build offline without a warning, and the sdist ships no tests (they need the notebooks,
  tools and dev environment, which it does not carry).
"""
import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
# import name -> distribution name, where they differ
DISTRIBUTION = {"PIL": "pillow", "IPython": "ipython"}
# imported by the package but not a dependency: the reference implementation, imported lazily by bench.py and
# only as a test oracle (the dev extra)
ORACLE = "linformer"


def name_of(spec):
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def floors(specs):
    """{name: floor version} for each `name>=X` requirement."""
    found = {}
    for spec in specs:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*", spec.split(";")[0])
        if match:
            found[name_of(match[1])] = tuple(int(p) for p in match[2].split("."))
    return found


def test_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert re.search(r"^Copyright \(c\) 2026 linformer_edu contributors$", text, re.M)
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    # PEP 639: with a license expression, License :: classifiers are an error
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]


def test_built_by_a_setuptools_that_reads_pep_639():
    assert PYPROJECT["build-system"]["build-backend"] == "setuptools.build_meta"
    assert floors(PYPROJECT["build-system"]["requires"])["setuptools"] >= (77,)


def test_dependency_floors_are_the_ones_the_code_runs_on():
    deps = PROJECT["dependencies"]
    assert floors(deps) == {"torch": (2, 3), "einops": (0, 7), "numpy": (1, 23), "matplotlib": (3, 7),
                            "pillow": (8,), "ipython": (7, 23), "ipywidgets": (7, 7), "tqdm": (4, 64)}
    # floors only: an upper bound or a pin would make pip replace a preinstalled torch or ipywidgets
    assert [d for d in deps if re.search(r"<|==|~=|!=", d)] == []


def imported_modules(package=ROOT / "linformer_edu"):
    """{top-level module: [file:line, …]} for every absolute import in the package, at any depth in a file."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_third_party_import_is_declared():
    imports = imported_modules()
    assert {"torch", "numpy", "ipywidgets", "PIL"} <= set(imports)   # the scan sees the package's imports
    third_party = {DISTRIBUTION.get(m, m).lower() for m in imports
                   if m not in sys.stdlib_module_names and m != "linformer_edu"}
    declared = {name_of(d) for d in PROJECT["dependencies"]}
    undeclared = third_party - declared - {ORACLE}
    assert not undeclared, f"imported but not declared in [project] dependencies: {sorted(undeclared)}"
    assert ORACLE in {name_of(d) for d in PROJECT["optional-dependencies"]["dev"]}


def test_requires_python_and_classifiers_agree():
    low = tuple(int(p) for p in re.fullmatch(r">=\s*(3\.\d+)", PROJECT["requires-python"])[1].split("."))
    versions = sorted(tuple(int(p) for p in c.rsplit(" ", 1)[1].split("."))
                      for c in PROJECT["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert versions and versions[0] == low


@pytest.mark.parametrize("script, target", [("linformer-edu-train", "linformer_edu.train:main"),
                                            ("linformer-edu-sample", "linformer_edu.sample:main")])
def test_console_scripts_resolve_to_callables(script, target, capsys):
    assert PROJECT["scripts"][script] == target
    module, attribute = target.split(":")
    main = getattr(importlib.import_module(module), attribute)
    assert callable(main)
    with pytest.raises(SystemExit) as exit:   # an entry point takes argv: its --help prints usage and exits 0
        main(["--help"])
    assert exit.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_urls_and_colab_ref_follow_the_repository():
    table = PYPROJECT["tool"]["linformer_edu"]
    repo, ref = table["repo"], table["ref"]
    urls = PROJECT["urls"]
    assert urls["Source"] == f"https://github.com/{repo}"
    assert all(url.startswith(f"https://github.com/{repo}") for url in urls.values()), urls
    # pinned: the release tag of this version, or a full commit; never a branch that moves under a learner
    assert ref == f"v{PROJECT['version']}" or re.fullmatch(r"[0-9a-f]{40}", ref), ref


def test_version_matches_the_package():
    source = (ROOT / "linformer_edu" / "__init__.py").read_text(encoding="utf-8")
    assert re.search(r'^__version__ = "([^"]+)"', source, re.M)[1] == PROJECT["version"]


def test_sdist_and_wheel_build_offline_without_warnings_and_ship_no_tests(tmp_path):
    src = tmp_path / "src"   # a copy, so the build's egg-info and build/ stay out of the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("linformer_edu", "tests"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}   # else setuptools warns
    run = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                          str(src)], capture_output=True, text=True, env=env, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert [line for line in output.splitlines() if re.search(r"warning|deprecat", line, re.I)] == []

    sdist, = (tmp_path / "dist").glob("linformer_edu-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        pkg_info = tar.extractfile(f"linformer_edu-{PROJECT['version']}/PKG-INFO").read().decode()
    assert {"LICENSE", "README.md", "pyproject.toml", "linformer_edu/__init__.py",
            "linformer_edu/corpora/pydoc_topics.txt"} <= names
    assert [n for n in names if n.startswith("tests")] == []
    assert "License-Expression: MIT" in pkg_info.splitlines()
    assert "License-File: LICENSE" in pkg_info.splitlines()

    wheel, = (tmp_path / "dist").glob("linformer_edu-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        entry_points = whl.read(f"linformer_edu-{PROJECT['version']}.dist-info/entry_points.txt").decode()
    assert f"linformer_edu-{PROJECT['version']}.dist-info/licenses/LICENSE" in names
    assert "linformer_edu/corpora/pydoc_topics.txt" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert "linformer-edu-train = linformer_edu.train:main" in entry_points
