"""The set-up files agree: environment.yml lists what pyproject.toml asks for, and CI runs the README's command."""
import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}   # conda's name -> PyPI's name


def requirement_name(spec):
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [s for extra in ("lab", "dev") for s in project["optional-dependencies"][extra]]
    return {requirement_name(s): s.replace(" ", "") for s in specs}


def environment_yml_requirements():
    """Every `- name spec` line of environment.yml (conda and pip sections), but python, pip and the project."""
    found = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:"):].splitlines():
        match = re.match(r"^\s*-\s+([A-Za-z][\w.-]*)(.*)$", line)
        if not match or line.strip().startswith("- -e"):
            continue
        name = CONDA_NAMES.get(match[1].lower(), match[1].lower())
        if name not in ("python", "pip"):
            found[name] = name + match[2].replace(" ", "")
    return found


def test_environment_yml_agrees_with_pyproject():
    assert environment_yml_requirements() == pyproject_requirements()


def test_environment_yml_installs_the_project_itself():
    assert re.search(r"^\s*-\s+-e\s+\.\s*$", (ROOT / "environment.yml").read_text(), re.M)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.M)
    commands = [line for line in (ROOT / ".ci/run").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert commands == ["make test"]
