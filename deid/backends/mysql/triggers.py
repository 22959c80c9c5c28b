"""What a MySQL or MariaDB trigger does to the row it fires on, read from its body
(TRIGGERS.ACTION_STATEMENT): which columns it sets, from which columns of the row, and whether it writes
elsewhere.

The same question as deid.backends.postgresql.triggers answers for PL/pgSQL, for the same reason: the scrub
silences triggers, so a column a BEFORE trigger derives from a scrubbed column would keep what production's
trigger computed from the real value, and lint must ask for a rule. A MySQL trigger body is one SQL
statement or a BEGIN ... END block. Assignments to the row are `SET NEW.x = expr` (several per SET,
comma-separated) and `SELECT ... INTO NEW.x`; a local or user variable assigned from the row and then
assigned to NEW carries its sources along. A CALL may set the row through an OUT parameter (`CALL p(NEW.x)`)
and its procedure may write anything, so a body with a CALL is unknown (None), never "derives nothing".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from deid.schema import Derivation

_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
# strings and comments in one pass, whichever starts first: `'--'` is a string, `-- it's` a comment
_STRINGS_AND_COMMENTS = re.compile(
    r"(?P<string>'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\"\"|\\.)*\")|(?:--\s|#)[^\n]*|/\*.*?\*/", re.S
)
_ROW_COLUMN = re.compile(rf"\b(NEW|OLD)\s*\.\s*({_IDENT})", re.I)
_STATEMENT_KEYWORDS = re.compile(r"\b(?:BEGIN|THEN|ELSE|DO|LOOP|REPEAT)\b", re.I)
_SET = re.compile(r"^\s*SET\s+(?!(?:SESSION|GLOBAL|LOCAL|TRANSACTION|NAMES)\b)(.*)$", re.I | re.S)
_ASSIGNMENT = re.compile(rf"^\s*((?:NEW\s*\.\s*)?@?{_IDENT})\s*:?=\s*(.*)$", re.I | re.S)
_DECLARE = re.compile(r"^\s*DECLARE\s+(.+?)\s+\w+.*?\bDEFAULT\b(.*)$", re.I | re.S)
_INTO = re.compile(rf"\bINTO\s+((?:(?:NEW\s*\.\s*)?@?{_IDENT}\s*,?\s*)+)(?:\bFROM\b|$)", re.I)
_WORD = re.compile(rf"@?{_IDENT}")
_WRITES = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE|CALL|LOAD\s+DATA)\b", re.I)
_UNKNOWN = re.compile(r"\bCALL\b", re.I)
_ANY_ROW_TARGET = re.compile(rf"\b(?:SET|INTO)\s+NEW\s*\.\s*({_IDENT})", re.I)


def analyse(body: str, columns: Iterable[str]) -> tuple[tuple[Derivation, ...] | None, bool]:
    """(what the body sets in NEW, or None when deid cannot tell; whether it may write other tables).

    `columns` are the table's columns, so that names come out as the catalog spells them (MySQL compares
    column names without regard to case)."""
    spelled = {c.lower(): c for c in columns}
    text = _STRINGS_AND_COMMENTS.sub(lambda m: "''" if m["string"] else " ", body)
    writes = bool(_WRITES.search(text))
    if _UNKNOWN.search(text):
        return None, writes
    variables: dict[str, set[str]] = {}  # a local or user variable -> the row's columns it was computed from
    found: dict[str, set[str]] = {}
    for statement in _statements(text):
        for target, expression in _assignments(statement):
            sources = _sources(expression, variables, spelled)
            row_target = _ROW_COLUMN.fullmatch(target.strip())
            if row_target and row_target[1].upper() == "NEW":
                found.setdefault(_column(row_target[2], spelled), set()).update(sources)
            elif not row_target:
                variables[_variable(target)] = sources
    if any(_column(name, spelled) not in found for name in _ANY_ROW_TARGET.findall(text)):
        return None, writes  # the row is set somewhere the reading above does not reach (a HANDLER's SET)
    derived = tuple(Derivation(column, tuple(sorted(s))) for column, s in sorted(found.items()))
    return derived, writes


def _statements(text: str) -> list[str]:
    """The body's simple statements: split at `;` and after the keywords that open a block or a branch."""
    return [part for chunk in text.split(";") for part in _STATEMENT_KEYWORDS.split(chunk)]


def _assignments(statement: str) -> list[tuple[str, str]]:
    """(target, expression) of each assignment the statement makes."""
    found = _SET.match(statement)
    if found:
        pairs = (_ASSIGNMENT.match(part) for part in _top_level_commas(found[1]))
        return [(pair[1], pair[2]) for pair in pairs if pair]
    declared = _DECLARE.match(statement)
    if declared:
        return [(name, declared[2]) for name in declared[1].split(",")]
    into = _INTO.search(statement)
    if into and re.match(r"\s*SELECT\b", statement, re.I):
        rest = statement[: into.start()] + statement[into.end() :]
        return [(target, rest) for target in into[1].split(",") if target.strip()]
    return []


def _top_level_commas(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _sources(expression: str, variables: dict[str, set[str]], spelled: dict[str, str]) -> set[str]:
    sources = {_column(name, spelled) for _, name in _ROW_COLUMN.findall(expression)}
    without_row = _ROW_COLUMN.sub(" ", expression)
    for word in _WORD.findall(without_row):
        sources |= variables.get(_variable(word), set())
    return sources


def _column(identifier: str, spelled: dict[str, str]) -> str:
    name = identifier[1:-1].replace("``", "`") if identifier.startswith("`") else identifier
    return spelled.get(name.lower(), name)


def _variable(identifier: str) -> str:
    name = identifier.strip()
    return (name[1:-1].replace("``", "`") if name.startswith("`") else name).lower()
