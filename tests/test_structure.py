"""The package's shape (issue 10): one idea per module, imports flowing one way.

Read by parsing the source, not by importing it: a cycle that Python tolerates at import time is still a cycle a
reader has to untangle.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "linformer_edu"
MAX_LINES = 450   # "under ~400 lines, one sitting"; a little slack, no more


def modules():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name, path, known, *, local_only=False):
    """The package modules `name` imports (relative or absolute), at any depth or only inside functions."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree)
    if local_only:
        nodes = (node for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for node in ast.walk(fn))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for candidate in (target, *(f"{target}.{alias.name}" for alias in node.names)):
                if candidate in known and candidate != name:
                    found.add(candidate)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known and alias.name != name}
    return found


def find_cycle(graph):
    """One import cycle as a list of modules [a, b, ..., a], or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_a_long_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_cycle():
    known = modules()
    graph = {name: imports(name, path, known) - {"linformer_edu"} for name, path in known.items()}
    assert find_cycle(graph) is None


def test_no_function_local_import_of_a_package_module():
    # A local import is how a cycle hides; the package imports its own modules at the top of each file.
    known = modules()
    local = {name: sorted(imports(name, path, known, local_only=True)) for name, path in known.items()}
    assert {name: found for name, found in local.items() if found} == {}


@pytest.mark.parametrize("name", sorted(modules()))
def test_each_module_reads_in_one_sitting(name):
    path = modules()[name]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name}: {lines} lines; split it by idea (aim under ~400)"
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name}: no module docstring saying what it is"
