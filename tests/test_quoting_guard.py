"""One way to write SQL names and literals: deid.backends.quoting. No other quoting helper may come back.

A quoter is found by what it does, read from the syntax tree of every module of deid/, dags/ and plugins/:
a quote character replaced by itself doubled (`.replace("'", "''")`, `'"'` to `'""'`, a backquote to two),
in Python or in an Arrow kernel (`pc.replace_substring`), and SQLAlchemy's IdentifierPreparer reached
anywhere but the one module. Each exception is listed by file and function with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCOPE = ("deid", "dags", "plugins")
THE_ONE = "deid/backends/quoting.py"
QUOTES = ("'", '"', "`")

# (file, function) -> why it quotes by itself. Keep this short: a new entry needs a reason as good.
ALLOWED = {
    ("deid/names.py", "part"): 'deid\'s own key spelling (public."a.b"), not SQL: it names objects in '
    "rule files, plans and records whatever the engine",
    ("deid/backends/mysql/cloners/dump.py", "_option_value"): "a value of the client's option file (the "
    "dump's connection settings), not SQL",
    ("deid/backends/mysql/validation/shapes.py", "json_path"): 'a member name in a JSON path ($."a b"), '
    "not SQL: the path itself is then written as a literal",
}


def _modules() -> list[Path]:
    return [p for scope in SCOPE for p in sorted((ROOT / scope).rglob("*.py"))]


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _quoting_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, enclosing function) of every call that doubles a quote, and of every IdentifierPreparer use."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            args = [_text(a) for a in node.args]
            if node.func.attr == "replace" and len(args) >= 2:
                old, new = args[0], args[1]
            elif node.func.attr == "replace_substring" and len(args) >= 3:
                old, new = args[1], args[2]
            else:
                old = new = None
            if old in QUOTES and new in (old * 2, "\\" + old):
                found.append((node.lineno, function))
        if isinstance(node, ast.Attribute) and node.attr == "identifier_preparer":
            found.append((node.lineno, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def test_no_quoting_helper_but_the_one():
    offenders = []
    for path in _modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative == THE_ONE:
            continue
        for line, function in _quoting_calls(ast.parse(path.read_text(), filename=relative)):
            if (relative, function) not in ALLOWED:
                offenders.append(f"{relative}:{line} (in {function})")
    assert offenders == [], (
        "quote names and literals with the backend (Backend.quote_identifier, quote_table, quote_literal, or "
        "deid/backends/<engine>/quoting.py), not by hand: " + ", ".join(offenders)
    )


def test_every_allowed_exception_still_exists():
    """An exception whose code is gone is removed from ALLOWED, so the list cannot grow stale."""
    present = {
        (path.relative_to(ROOT).as_posix(), function)
        for path in _modules()
        for _, function in _quoting_calls(ast.parse(path.read_text()))
    }
    assert set(ALLOWED) <= present


@pytest.mark.parametrize(
    "source",
    [
        "def q(n):\n    return '\"' + n.replace('\"', '\"\"') + '\"'\n",
        'def q(n):\n    return "\'" + n.replace("\'", "\'\'") + "\'"\n',
        "def q(n):\n    return '`' + n.replace('`', '``') + '`'\n",
        'def q(t):\n    return pc.replace_substring(t, "\'", "\\\\\'")\n',
        "def q(c, n):\n    return c.dialect.identifier_preparer.quote_identifier(n)\n",
    ],
)
def test_the_guard_sees_a_quoter_in_every_spelling(source):
    assert _quoting_calls(ast.parse(source)) == [(2, "q")]
