"""The set-up files agree: environment.yml lists what a learner needs (pyproject.toml's dependencies and the lab
extra), environment-dev.yml adds the dev extra, both from conda-forge alone; and CI runs the README's command."""
import pathlib
import re
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch", "python-build": "build"}   # conda-forge's name -> PyPI's name
ENVIRONMENTS = {"environment.yml": ("lab",), "environment-dev.yml": ("dev",)}   # file -> extras it adds


def requirement_name(spec):
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_requirements(extras, core):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = (project["dependencies"] if core else []) + [s for extra in extras
                                                         for s in project["optional-dependencies"][extra]]
    return {requirement_name(s): s.split("#")[0].replace(" ", "") for s in specs}


def yml_section(text, key):
    """The `- item` lines under a top-level `key:` of a conda environment file, nested pip items included."""
    match = re.search(rf"^{key}:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, re.M)
    assert match, f"no `{key}:` section"
    return [line for line in match[1].splitlines() if line.strip() and not line.strip().startswith("#")]


def environment_requirements(name):
    """Every `- name spec` line of an environment file (conda and pip sections), but python, pip and the project."""
    found = {}
    for line in yml_section((ROOT / name).read_text(), "dependencies"):
        match = re.match(r"^\s*-\s+([A-Za-z][\w.-]*)(.*)$", line)
        if not match or line.strip().startswith("- -e"):
            continue
        conda_name = match[1].lower()
        name = CONDA_NAMES.get(conda_name, conda_name)
        if name not in ("python", "pip"):
            found[name] = name + match[2].split("#")[0].replace(" ", "")
    return found


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_environment_file_agrees_with_pyproject(name):
    assert environment_requirements(name) == pyproject_requirements(ENVIRONMENTS[name],
                                                                    core=name == "environment.yml")


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_conda_forge_only(name):
    """PyTorch's conda channel stopped at 2.5, and mixing it or Anaconda's defaults with conda-forge breaks MKL."""
    text = (ROOT / name).read_text()
    channels = [line.strip().removeprefix("- ").strip() for line in yml_section(text, "channels")]
    assert channels == ["conda-forge", "nodefaults"]
    assert [line for line in yml_section(text, "dependencies") if "::" in line] == []   # no channel::package


def test_learner_environment_holds_no_development_tool():
    dev = set(pyproject_requirements(("dev",), core=False)) - set(pyproject_requirements((), core=True))
    assert dev and not dev & set(environment_requirements("environment.yml"))


def test_environment_yml_installs_the_project_itself():
    assert re.search(r"^\s*-\s+-e\s+\.\s*$", (ROOT / "environment.yml").read_text(), re.M)
    assert re.search(r"name:\s*linformer_edu\s*$", (ROOT / "environment-dev.yml").read_text(), re.M)   # updates it


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.M)
    commands = [line for line in (ROOT / ".ci/run").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert commands == ["make test"]
