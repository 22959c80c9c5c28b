"""Row conditions in rule files (`keep_rows_where:`), parsed with sqlglot and checked against a tiny grammar.

A condition is data written by a data owner, so it is never pasted into SQL. It is parsed, every node is
checked against the allowed set (column names, literals, comparisons, AND/OR/NOT, IS [NOT] NULL, IS [NOT]
TRUE/FALSE, IN with a list of literals, a column [NOT] LIKE / ILIKE a quoted pattern), and the SQL is rendered
again from the tree, in the engine's spelling (Backend.quote_identifier, quote_literal, like_ignoring_case;
names and literals by deid.backends.quoting, the one quoter), with every identifier quoted. Anything else
(subqueries, function calls, casts, several statements, comments) is refused.

A condition selects static test rows (`is_test_account = true`), so it is short. Its size is bounded before
sqlglot reads it, because sqlglot's parser and the rendering below recurse once per nesting level (about 21
Python frames per parenthesis, 10 per NOT): without bounds, 50 parentheses exhaust the interpreter's stack.
Within the bounds the deepest condition needs about 600 frames of the default 1000; a RecursionError is
caught all the same and told as too deep.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.simplify import simplify
from sqlglot.tokens import TokenType


class _Checking:
    """The spelling used while checking a condition against the grammar: its text is thrown away."""

    def quote_identifier(self, name: str) -> str:
        return name

    def quote_literal(self, text: str) -> str:
        return text

    def like_ignoring_case(self, column_sql: str, pattern_sql: str, negate: bool) -> str:
        return column_sql


_CHECKING = _Checking()

# The grammar's notation is one sqlglot reader's (IS NOT NULL, ILIKE, "quoted names"): a notation for rule
# files, whatever engine the database runs; each engine renders the checked tree its own way.
_READER = "postgres"
MAX_CHARACTERS = 2000
MAX_PARENTHESES = 10  # nesting depth
MAX_OPERATORS = 32  # AND, OR, NOT, unary minus and plus: each nests the tree one level deeper
_NESTING = {TokenType.AND, TokenType.OR, TokenType.NOT, TokenType.DASH, TokenType.PLUS}
_SHORT = "keep the condition short: a flag such as is_test_account, or a list with IN (...)"

_COMPARISONS = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_LIKES = {exp.Like: "LIKE", exp.ILike: "ILIKE"}
ALLOWED = (
    "column names, literals, = <> < <= > >=, AND, OR, NOT, IS [NOT] NULL, IS [NOT] TRUE/FALSE, "
    "IN (literals), column [NOT] LIKE / ILIKE 'pattern'"
)


class ConditionError(ValueError):
    """The condition is outside the grammar; the message says which part."""


class SqlSpelling(Protocol):
    """How an engine writes the parts of a condition (a Backend is one)."""

    def quote_identifier(self, name: str) -> str: ...
    def quote_literal(self, text: str) -> str: ...
    def like_ignoring_case(self, column_sql: str, pattern_sql: str, negate: bool) -> str: ...


@dataclass(frozen=True)
class Condition:
    text: str  # as written in the rule file
    columns: tuple[str, ...]  # every column it reads, for checking against the schema
    tree: exp.Expression = field(compare=False, repr=False)  # checked against the grammar

    def render(self, spelling: SqlSpelling) -> str:
        """The condition as SQL of the engine `spelling` speaks, every identifier quoted."""
        return _render(self.tree, [], spelling)


def parse_condition(text: str) -> Condition:
    if not isinstance(text, str):
        raise ConditionError(f"a condition is text, such as is_test_account = true, not {_kind(text)}")
    if not text.strip():
        raise ConditionError("the condition is empty")
    if len(text) > MAX_CHARACTERS:
        raise ConditionError(f"the condition has {len(text)} characters (at most {MAX_CHARACTERS}): {_SHORT}")
    _check_tokens(text)
    try:
        tree = sqlglot.parse_one(text, read=_READER)
        columns: list[str] = []
        _render(tree, columns, _CHECKING)
    except (ParseError, TokenError) as exc:
        raise ConditionError(f"cannot parse the condition: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConditionError(f"the condition is too deeply nested to read: {_SHORT}") from None
    if always_true(tree):
        raise ConditionError(
            "the condition is true for every row, so every row would be kept unscrubbed as static test data"
        )
    return Condition(text=text, columns=tuple(dict.fromkeys(columns)), tree=tree)


def _check_tokens(text: str) -> None:
    """One statement, no comments, and nesting within the bounds, from the tokens alone (no recursion)."""
    try:
        tokens = sqlglot.tokenize(text, read=_READER)
    except TokenError as exc:
        raise ConditionError(f"cannot read the condition: {str(exc).splitlines()[0]}") from None
    depth = deepest = operators = 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            raise ConditionError("a condition is one expression: ';' (several statements) is not allowed")
        if token.comments:
            raise ConditionError("comments are not allowed in a condition")
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        operators += token.token_type in _NESTING
    if deepest > MAX_PARENTHESES:
        raise ConditionError(f"parentheses are nested {deepest} deep (at most {MAX_PARENTHESES}): {_SHORT}")
    if operators > MAX_OPERATORS:
        raise ConditionError(
            f"the condition has {operators} operators (AND, OR, NOT, -; at most {MAX_OPERATORS}): {_SHORT}"
        )


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return "a number" if isinstance(value, int | float) else "a value of another kind"


def _render(node: exp.Expression, columns: list[str], spelling: SqlSpelling) -> str:
    def left() -> str:
        return _render(node.this, columns, spelling)

    def right() -> str:
        return _render(node.expression, columns, spelling)

    if isinstance(node, exp.Paren):
        return f"({left()})"
    if isinstance(node, exp.Column):
        if node.table or node.args.get("db"):
            raise ConditionError(f"use a bare column name, not '{node.sql()}'")
        columns.append(node.name)
        return spelling.quote_identifier(node.name)
    if isinstance(node, exp.Literal):
        return spelling.quote_literal(node.this) if node.is_string else _number(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return "-" + _number(node.this.this)
    if isinstance(node, exp.Boolean):
        return "TRUE" if node.this else "FALSE"
    if isinstance(node, exp.Null):
        return "NULL"
    if type(node) in _COMPARISONS:
        return f"{left()} {_COMPARISONS[type(node)]} {right()}"
    if isinstance(node, exp.And | exp.Or):
        word = "AND" if isinstance(node, exp.And) else "OR"
        return f"({left()} {word} {right()})"
    if isinstance(node, exp.Not):
        return f"NOT ({left()})"
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null | exp.Boolean):
            raise ConditionError("IS may only be followed by NULL, TRUE or FALSE")
        negate = " NOT" if node.args.get("negate") else ""
        return f"{left()} IS{negate} {right()}"
    if isinstance(node, exp.In):
        # anything but the left side and the list (a subquery, a set-returning call, a field) is refused,
        # including forms a later sqlglot may add
        if any(value for name, value in node.args.items() if name not in ("this", "expressions")):
            raise ConditionError("IN takes a list of literals, not a subquery")
        items = node.expressions
        if not items or not all(_is_literal(i) for i in items):
            raise ConditionError("IN takes a list of literals, for example status IN ('fake', 'qa')")
        rendered = ", ".join(_render(i, columns, spelling) for i in items)
        return f"{left()} IN ({rendered})"
    if type(node) in _LIKES:
        return _like(node, columns, spelling)
    if isinstance(node, exp.Escape):
        raise ConditionError("LIKE takes no ESCAPE clause: escape % and _ with a backslash, as in 'qa\\_%'")
    raise ConditionError(f"'{_describe(node)}' is not allowed in a condition (allowed: {ALLOWED})")


def _like(node: exp.Expression, columns: list[str], spelling: SqlSpelling) -> str:
    """`column [NOT] LIKE 'pattern'` (and ILIKE): a column on the left, a string literal on the right, so the
    pattern is data of the rule file, rendered as a quoted literal (its % reaches the server untouched: the
    statements that read conditions go through rawsql or text(), never a driver's placeholders)."""
    word = _LIKES[type(node)]
    pattern = node.expression
    if not isinstance(node.this, exp.Column) or not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise ConditionError(
            f"{word} compares a column with a quoted pattern, for example email {word} 'qa+%'"
        )
    _check_pattern(pattern.this, word)
    column_sql, pattern_sql = _render(node.this, columns, spelling), spelling.quote_literal(pattern.this)
    if word == "ILIKE":
        return spelling.like_ignoring_case(column_sql, pattern_sql, bool(node.args.get("negate")))
    negate = "NOT " if node.args.get("negate") else ""
    return f"{column_sql} {negate}LIKE {pattern_sql}"


def _check_pattern(pattern: str, word: str) -> None:
    """A pattern must hold a literal character: one made of % and _ only matches (nearly) every value, so
    as a static-rows condition it would keep every row that has one (`email LIKE '%'` is `email IS NOT
    NULL`). A backslash escapes the next character (as the engines do by default), and may not end the
    pattern."""
    literal, at = False, 0
    while at < len(pattern):
        if pattern[at] == "\\":
            if at + 1 == len(pattern):
                raise ConditionError(f"the {word} pattern {pattern!r} ends with the escape character \\")
            literal, at = True, at + 2
            continue
        literal = literal or pattern[at] not in "%_"
        at += 1
    if not literal:
        raise ConditionError(
            f"the {word} pattern {pattern!r} has no literal character, so it matches (nearly) every value: "
            "name the test rows, for example email LIKE 'qa+%@test.example'"
        )


def _is_literal(node: exp.Expression) -> bool:
    if isinstance(node, exp.Neg):
        node = node.this
    return isinstance(node, exp.Literal | exp.Boolean | exp.Null)


def _number(text: str) -> str:
    float(text)  # sqlglot already tokenised it as a number; this guards the rendering all the same
    return text


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Subquery | exp.Select):
        return "subquery"
    if isinstance(node, exp.Func):
        return f"function call {node.sql_name() if hasattr(node, 'sql_name') else type(node).__name__}"
    return node.sql()[:60] or type(node).__name__


MAX_ATOMS = 12  # 4,096 assignments at most: a row condition is a handful of comparisons


def always_true(tree: exp.Expression) -> bool:
    """Whether the condition holds for every row whatever its values: a constant that folds to TRUE
    (`1 = 1`, `NOT FALSE`), or a formula that is true under every assignment of its comparisons (`a OR
    NOT a`, `x IS NULL OR x IS NOT NULL`), a comparison of an expression with itself counting as true.
    NULLs only make the scrub's `IS NOT TRUE` scrub more rows, so this never calls a useful condition
    always true."""
    folded = simplify(tree.copy())
    if isinstance(folded, exp.Boolean):
        return bool(folded.this)
    atoms: list[exp.Expression] = []
    _collect(folded, atoms)
    if len(atoms) > MAX_ATOMS:
        return False
    return all(
        _truth(folded, atoms, {i: bool(bits >> i & 1) for i in range(len(atoms))})
        for bits in range(2 ** len(atoms))
    )


def _collect(node: exp.Expression, atoms: list[exp.Expression]) -> None:
    if isinstance(node, exp.Paren):
        _collect(node.this, atoms)
    elif isinstance(node, exp.And | exp.Or):
        _collect(node.this, atoms)
        _collect(node.expression, atoms)
    elif isinstance(node, exp.Not):
        _collect(node.this, atoms)
    elif not isinstance(node, exp.Boolean) and _self_comparison(node) is None:
        base, _ = _positive(node)
        if base not in atoms:
            atoms.append(base)


def _truth(node: exp.Expression, atoms: list[exp.Expression], values: dict[int, bool]) -> bool:
    if isinstance(node, exp.Paren):
        return _truth(node.this, atoms, values)
    if isinstance(node, exp.And):
        return _truth(node.this, atoms, values) and _truth(node.expression, atoms, values)
    if isinstance(node, exp.Or):
        return _truth(node.this, atoms, values) or _truth(node.expression, atoms, values)
    if isinstance(node, exp.Not):
        return not _truth(node.this, atoms, values)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    same = _self_comparison(node)
    if same is not None:
        return same
    base, negated = _positive(node)
    return values[atoms.index(base)] != negated


def _positive(node: exp.Expression) -> tuple[exp.Expression, bool]:
    """`x IS NOT NULL` as (`x IS NULL`, negated): the two are one fact, each the other's negation; likewise
    `x NOT LIKE p` and `x LIKE p`."""
    if isinstance(node, exp.Is | exp.Like | exp.ILike) and node.args.get("negate"):
        base = node.copy()
        base.set("negate", None)
        return base, True
    return node, False


def _self_comparison(node: exp.Expression) -> bool | None:
    """`x = x` (and <=, >=) is true, `x <> x` (and <, >) false, for any non-NULL x; None for the rest."""
    if type(node) in _COMPARISONS and node.this == node.expression:
        return isinstance(node, exp.EQ | exp.GTE | exp.LTE)
    return None
