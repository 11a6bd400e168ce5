"""Every formula in the notebooks' markdown renders (issue 14, "Guards").

JupyterLab renders markdown math with MathJax. Offline, each formula is checked in two steps:

1. Delimiters. After removing fenced code blocks, code spans and escaped `\\$`, every paragraph (text between
   blank lines) must pair its `$$ … $$` and `$ … $` exactly: a stray `$` either shows as a literal dollar or,
   in renderers that pair across paragraphs, swallows the text up to the next formula.
2. Parsing. Each formula goes through matplotlib's mathtext parser (matplotlib is already a dependency), which
   rejects unknown or misspelt macros, unbalanced braces and `\\left` without `\\right`. Mathtext knows less
   than MathJax, so a formula is first normalised: each MathJax-ism below becomes its mathtext equivalent,
   and nothing else is touched, so an unknown macro still fails. Valid MathJax that fails here means a row is
   missing from NORMALISE (or from ENVIRONMENTS), not that the notebook must change.
"""
import functools
import json
import re
from pathlib import Path

import pytest
from matplotlib.mathtext import MathTextParser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

FENCED_CODE = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1", re.M | re.S)
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
FORMULA = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
PLAIN = re.compile(r"[\w .,;:!?'+\-*/=<>|()\[\]]*")   # no macro, brace, ^ or _: nothing to reject
NOT_A_LETTER = r"(?![A-Za-z])"   # ends a control word: \le is not the start of \left

# MathJax-ism -> mathtext. (pattern, replacement), applied in order.
NORMALISE = [
    (r"\s+", " "),                                                  # mathtext reads one line
    (r"\\[Bb]igg?[lrm]?" + NOT_A_LETTER, ""),                       # \big( \Big( \Bigl( ...: sizes only
    (r"\\(?:display|text|script|scriptscript)style" + NOT_A_LETTER, ""),
    (r"\\(?:under|over)brace" + NOT_A_LETTER, ""),                  # \underbrace{x}_{y} -> {x}_{y}
    (r"\\le" + NOT_A_LETTER, r"\\leq"),
    (r"\\ge" + NOT_A_LETTER, r"\\geq"),
    (r"\\lt" + NOT_A_LETTER, "<"),
    (r"\\gt" + NOT_A_LETTER, ">"),
    (r"\\[lr]Vert" + NOT_A_LETTER, r"\\Vert"),
    (r"\\[lr]vert" + NOT_A_LETTER, "|"),
    (r"\\[tc]frac" + NOT_A_LETTER, r"\\frac"),
    (r"\\operatorname\*", r"\\operatorname"),
    (r"\\text(bf|it|rm|sf|tt)" + NOT_A_LETTER, r"\\math\1"),
]
# Macros whose arguments MathJax also takes as one bare token (\sqrt k, \mathbb R, \frac12): mathtext needs braces.
ARITY = {"sqrt": 1, "frac": 2, "dfrac": 2, "mathbb": 1, "mathcal": 1, "mathrm": 1, "mathbf": 1, "mathit": 1,
         "mathsf": 1, "mathtt": 1, "mathfrak": 1, "boldsymbol": 1, "text": 1, "operatorname": 1}
# \begin{env} ... \end{env}: each cell (split on & and \\) is checked as a formula of its own.
ENVIRONMENTS = {"matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "cases",
                "array", "aligned", "align", "align*", "gathered", "gather", "gather*", "split"}
ENVIRONMENT = re.compile(r"\\begin\{([^}]*)\}((?:(?!\\begin\{).)*?)\\end\{([^}]*)\}", re.S)

_parser = MathTextParser("path")


def _token(tex, i):
    """The end of the TeX argument starting at tex[i] (spaces skipped): a {group}, a control word or one char.
    Returns (start, end), or None when there is no argument or its braces do not close."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex) or tex[i] in "}^_&":
        return None
    if tex[i] == "{":
        depth = 0
        for j in range(i, len(tex)):
            depth += {"{": 1, "}": -1}.get(tex[j], 0) * (tex[j - 1] != "\\" or j == i)
            if depth == 0:
                return i, j + 1
        return None
    if tex[i] == "\\":
        word = re.match(r"\\(?:[A-Za-z]+|.)", tex[i:])
        return i, i + len(word.group(0))
    return i, i + 1


def brace_arguments(tex):
    """`\\sqrt k` -> `\\sqrt{k}`, `\\frac12` -> `\\frac{1}{2}`: bare one-token arguments get braces."""
    out, i = [], 0
    for m in re.finditer(r"\\(" + "|".join(ARITY) + r")" + NOT_A_LETTER, tex):
        if m.start() < i:
            continue
        out.append(tex[i:m.end()])
        i = m.end()
        if m.group(1) == "sqrt" and tex[i:].lstrip().startswith("["):   # \sqrt[3]{x}: keep the index as is
            close = tex.find("]", i)
            if close < 0:
                break
            out.append(tex[i:close + 1])
            i = close + 1
        for _ in range(ARITY[m.group(1)]):
            span = _token(tex, i)
            if span is None:
                break
            arg = tex[span[0]:span[1]]
            out.append("{" + (brace_arguments(arg[1:-1]) if arg.startswith("{") else arg) + "}")
            i = span[1]
    return "".join(out) + tex[i:]


def normalise(tex):
    for pattern, replacement in NORMALISE:
        tex = re.sub(pattern, replacement, tex)
    return brace_arguments(tex).strip()


@functools.lru_cache(maxsize=None)   # $k$, $n$, ... recur hundreds of times; parsing is the slow part
def formula_error(tex):
    """None if the formula parses, else the reason (one line)."""
    if PLAIN.fullmatch(tex):
        return None
    depth = 0
    for brace in re.findall(r"\\[{}]|[{}]", tex):                          # \{ and \} are literal braces
        depth += {"{": 1, "}": -1}.get(brace, 0)
        if depth < 0:
            break
    if depth != 0:
        return "unbalanced braces { }"
    while (m := ENVIRONMENT.search(tex)) is not None:
        begin, body, end = m.groups()
        if begin != end:
            return f"\\begin{{{begin}}} is closed by \\end{{{end}}}"
        if begin not in ENVIRONMENTS:
            return f"unknown environment {begin}"
        if begin == "array":
            body = re.sub(r"^\s*\{[^}]*\}", "", body)                   # the column spec
        for cell in re.split(r"\\\\|&", body):
            if cell.strip() and (error := formula_error(cell)) is not None:
                return error
        tex = tex[:m.start()] + "{x}" + tex[m.end():]
    if re.search(r"\\(?:begin|end)" + NOT_A_LETTER, tex):
        return "\\begin without \\end (or the reverse)"
    for line in re.split(r"\\\\", tex):                                 # \\ breaks a display formula's lines
        if not line.strip():
            continue
        try:
            _parser.parse("$" + normalise(line) + "$")
        except Exception as error:   # mathtext raises pyparsing's exceptions, and ValueError for some
            return str(error).strip().splitlines()[-1]
    return None


def math_problems(markdown):
    """What is wrong with the math of one markdown text: a list of (formula or excerpt, reason)."""
    text = CODE_SPAN.sub("", FENCED_CODE.sub("", markdown)).replace("\\$", "")
    problems = []
    for paragraph in PARAGRAPH_BREAK.split(text):
        formulas = [(m.group(0), m.group(1) or m.group(2)) for m in FORMULA.finditer(paragraph)]
        rest = FORMULA.sub("", paragraph)
        if "$" in rest:
            problems.append((paragraph.strip()[:200], "unbalanced $ in this paragraph (a stray or missing $)"))
            continue
        for written, tex in formulas:
            if (error := formula_error(tex)) is not None:
                problems.append((written, error))
    return problems


def source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_markdown_formula_renders(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = [f"{path.name} cell {i}: {reason}\n    " + written.replace("\n", "\n    ")
             for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
             for written, reason in math_problems(source(cell))]
    if found:
        pytest.fail("markdown math that will not render (cell indices are 0-based):\n" + "\n".join(found), False)


# The checker itself: it must accept the MathJax the course writes and reject what MathJax cannot render.

@pytest.mark.parametrize("tex", [
    r"\sqrt d", r"1/\sqrt k", r"\sqrt[3]{x}", r"\mathbb R^{k \times n}", r"\mathcal N(0, 1/k)", r"\mathbb E\,[x]",
    r"\le", r"a \ge b", r"\lVert A - \bar P F \rVert_F", r"\lvert x \rvert", r"\operatorname{softmax}\!\Big(x\Big)",
    r"\text{head}_i", r"\tfrac12 (a + b)", r"\frac{s+1}{W}", r"\text{lr}_\min",
    r"\underbrace{F_i V W_i^V}_{k \times d}", r"\left(\frac{a}{b}\right)", "a +\n b",
    r"\begin{pmatrix} 1 & 2 \\ 3 & \sqrt k \end{pmatrix}", r"x = \begin{cases} 0 & x \le 0 \\ 1 \end{cases}",
])
def test_the_checker_accepts_valid_mathjax(tex):
    assert formula_error(tex) is None


@pytest.mark.parametrize("tex, reason", [
    (r"\lamda", "Unknown symbol"),                       # misspelt macro
    (r"\sqrtk", "Unknown symbol|sqrt"),                 # a control word is not \sqrt plus a letter
    (r"\lefttt( x \right)", "Unknown symbol|delimiter"),
    (r"\frac{a}{b", "unbalanced braces"),
    (r"a}", "unbalanced braces"),
    (r"\left( x", "right"),                              # \left without \right
    (r"\begin{pmatrix} 1 \end{bmatrix}", "closed by"),
    (r"\begin{pmatrix} \lamda \end{pmatrix}", "Unknown symbol"),
    (r"\begin{tabular} 1 \end{tabular}", "unknown environment"),
])
def test_the_checker_rejects_broken_math(tex, reason):
    error = formula_error(tex)
    assert error is not None and re.search(reason, error)


def test_a_stray_dollar_is_found_in_its_paragraph_only():
    # Notebook 05 cell 35 once read "below it for\n \le 32$)": one $ too few garbled the recap after it.
    problems = math_problems("below it for \\le 32$), and $k$.\n\n## Recap\n\n- the same $Q$, $K$\n")
    assert [reason for _, reason in problems] == ["unbalanced $ in this paragraph (a stray or missing $)"]
    assert problems[0][0].startswith("below it for")
    assert math_problems("price \\$5, `a $ in code`, and\n```\n$ echo\n```\n$x$ and $$y$$") == []
    assert math_problems("$x\n\n$") != []                       # a formula cannot cross a blank line
