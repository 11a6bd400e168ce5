"""Keep the notebooks' worked-solution cells in the course's form, so that "Run all" never overwrites a learner:

    python tools/solution_cells.py notebooks/*.ipynb            # list the cells out of form; exit 1 if any
    python tools/solution_cells.py --fix notebooks/10_*.ipynb   # put them in form, then list what is left

A worked-solution cell is a code cell with a "Worked solution" comment line, or one hidden by metadata that runs a
checker. In form it
- is hidden in JupyterLab (`"jupyter": {"source_hidden": true}`) and in Colab (`"cellView": "form"`, which shows
  the cell's first line, TITLE, in place of the code);
- carries `# NBVAL_CHECK_OUTPUT` (nbval reads the marker on any comment line), so its ✓ line is compared;
- binds no name that an earlier ordinary code cell binds, so the learner's answer stays theirs, and hands
  `nbNN.check_NAME` a function of its own named `solution_NAME`, as the worked solution in nbNN.py is;
- `assert`s its checker, so that a failing solution fails the cell and no `True` is displayed beside the ✓ line.

--fix sets the metadata, the title, the marker and the `assert`, drops a bare "# Worked solution" line (the title
says it) and renames a clashing function in that cell's code, not in its comments or strings: the one the cell
checks with `nbNN.check_NAME` becomes `solution_NAME`, any other `f` becomes `solution_f`. Other clashes are
listed, to rename by hand. Only solution cells change, and not their output: it stays valid without a re-run.
"""
import argparse
import ast
import io
import json
import re
import sys
import tokenize
from pathlib import Path

TITLE = "# @title Worked solution (double-click to show)"
MARKER = "# NBVAL_CHECK_OUTPUT"
WORKED = re.compile(r"^#\s*(@title\s+)?Worked solution", re.MULTILINE)
BARE_HEADING = re.compile(r"#\s*(Worked solution|Solution)\s*")     # a heading line that TITLE replaces
MAGIC = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)                  # IPython magics and shell lines


def source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def is_solution(cell) -> bool:
    """A worked-solution cell: headed "Worked solution", or hidden by either front end and running a checker (a
    hidden set-up cell, such as Colab's install cell, is not one)."""
    if cell["cell_type"] != "code":
        return False
    meta, code = cell.get("metadata", {}), source(cell)
    if WORKED.search(code):
        return True
    hidden = meta.get("jupyter", {}).get("source_hidden") or meta.get("cellView") == "form"
    try:
        return bool(hidden and checker_calls(parse(code)))
    except SyntaxError:
        return False


def parse(code: str) -> ast.Module:
    return ast.parse(MAGIC.sub(r"\1pass", code))


class _Bindings(ast.NodeVisitor):
    """The names a cell binds at its top level: what it leaves behind in the notebook's namespace."""

    def __init__(self):
        self.names = set()

    def visit_FunctionDef(self, node):   # its own name; its parameters and body are local
        self.names.add(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):        # parameters are local
        pass

    def visit_ListComp(self, node):      # comprehension variables are local
        pass

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Store):
            self.names.add(node.id)

    def visit_alias(self, node):         # import a.b as c -> c; import a.b -> a
        self.names.add(node.asname or node.name.split(".")[0])

    def visit_ExceptHandler(self, node):
        if node.name:
            self.names.add(node.name)
        self.generic_visit(node)


def bound_names(tree: ast.Module) -> set:
    visitor = _Bindings()
    visitor.visit(tree)
    return visitor.names


def checker_calls(tree: ast.Module) -> list:
    """Every `nbNN.check_*(answer)` call in a cell, in order."""
    return [call for call in ast.walk(tree) if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr.startswith("check_") and call.args]


def bare_checks(tree: ast.Module) -> list:
    """Top-level statements that only call a checker: their True would be displayed (unless IPython honours a
    trailing `;`), and a failing solution would not fail its cell."""
    return [node for node in tree.body if isinstance(node, ast.Expr) and node.value in checker_calls(tree)]


def solution_name(call: ast.Call) -> str:
    """What the course calls the function that `nbNN.check_NAME(...)` checks: solution_NAME, as in nbNN.py."""
    return "solution_" + call.func.attr.removeprefix("check_")


def problems(nb) -> list:
    """What keeps each worked-solution cell of notebook `nb` (parsed JSON) out of form: '(cell index) what'."""
    found, earlier = [], {}   # earlier: name -> index of the last ordinary code cell that bound it
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        try:
            tree = parse(source(cell))
        except SyntaxError as error:
            found.append(f"cell {i}: does not parse ({error.msg}, line {error.lineno})")
            continue
        if not is_solution(cell):
            earlier.update(dict.fromkeys(bound_names(tree), i))
            continue
        meta, lines = cell.get("metadata", {}), source(cell).splitlines()
        if meta.get("jupyter", {}).get("source_hidden") is not True:
            found.append(f"cell {i}: not hidden in JupyterLab (metadata jupyter.source_hidden)")
        if meta.get("cellView") != "form":
            found.append(f"cell {i}: not hidden in Colab (metadata cellView: form)")
        if not lines or lines[0] != TITLE:
            found.append(f"cell {i}: the first line is not {TITLE!r}")
        if MARKER not in (line.strip() for line in lines):
            found.append(f"cell {i}: no {MARKER!r} line, so nbval does not compare its ✓ line")
        for name in sorted(bound_names(tree) & earlier.keys()):
            found.append(f"cell {i}: binds {name!r}, which cell {earlier[name]} binds too: running all cells "
                         f"overwrites it")
        own = bound_names(tree)
        for call in checker_calls(tree):
            answer, name = call.args[0], solution_name(call)
            if not (isinstance(answer, ast.Name) and answer.id in own):
                found.append(f"cell {i}: checks {ast.unparse(answer)!r}, which the cell does not define")
            elif answer.id != name:
                found.append(f"cell {i}: checks {answer.id!r}: name it {name!r}, as the package does")
        if not checker_calls(tree):
            found.append(f"cell {i}: calls no checker (nbNN.check_*) on its solution")
        for node in bare_checks(tree):
            found.append(f"cell {i}: line {node.lineno} calls its checker without `assert`: a failing solution "
                         f"would pass, and IPython may display the True beside the ✓ line")
    return found


def assert_checks(code: str) -> str:
    """`code` with every bare checker call made an `assert` (and its trailing `;`, if any, dropped)."""
    lines = code.splitlines()
    for node in bare_checks(parse(code)):
        lines[node.lineno - 1] = "assert " + lines[node.lineno - 1]
        lines[node.end_lineno - 1] = lines[node.end_lineno - 1].rstrip().removesuffix(";")
    return "\n".join(lines)


def rename(code: str, renames: dict) -> str:
    """`code` with every name in `renames` replaced; comments, strings and attributes (`x.name`) keep theirs."""
    lines = code.splitlines(keepends=True)
    every = [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
             if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    tokens = [t for before, t in zip([None, *every], every)
              if t.type == tokenize.NAME and t.string in renames and getattr(before, "string", None) != "."]
    for t in reversed(tokens):   # right to left, so earlier columns stay valid
        row, col = t.start[0] - 1, t.start[1]
        lines[row] = lines[row][:col] + renames[t.string] + lines[row][col + len(t.string):]
    return "".join(lines)


def fix(nb) -> int:
    """Put every worked-solution cell of `nb` in form, in place; the number of cells changed."""
    changed, earlier = 0, set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        code = source(cell)
        if not is_solution(cell):
            earlier |= bound_names(parse(code))
            continue
        tree = parse(code)
        checked = {call.args[0].id: solution_name(call) for call in checker_calls(tree)
                   if isinstance(call.args[0], ast.Name)}
        clashing = {node.name: checked.get(node.name, f"solution_{node.name}") for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name in earlier}
        code = assert_checks(rename(code, clashing))
        body = [line for line in code.splitlines() if line not in (TITLE, MARKER) and not BARE_HEADING.fullmatch(line)]
        code = "\n".join([TITLE, MARKER, *body])
        meta = {**cell.get("metadata", {}), "cellView": "form"}
        meta["jupyter"] = {**meta.get("jupyter", {}), "source_hidden": True}
        meta = dict(sorted(meta.items()))
        if code != source(cell) or meta != cell.get("metadata", {}):
            cell["source"], cell["metadata"] = code.splitlines(keepends=True), meta
            changed += 1
    return changed


def dumps(nb) -> str:
    """The notebook as nbformat writes it, so `git diff` shows only what changed."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--fix", action="store_true", help="put the cells in form (rewrites the notebooks)")
    args = parser.parse_args(argv)
    left = 0
    for path in args.notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if args.fix and fix(nb):
            from linformer_edu._files import write_atomically
            write_atomically(path, lambda tmp: tmp.write_text(dumps(nb), encoding="utf-8"))
            print(f"{path}: fixed")
        for problem in problems(nb):
            print(f"{path}: {problem}")
            left += 1
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
