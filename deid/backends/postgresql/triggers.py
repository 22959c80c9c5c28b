"""What a PostgreSQL trigger does to the row it fires on, read from its function: which columns it sets, from
which columns, and whether it writes elsewhere.

The scrub silences triggers, so a column a BEFORE trigger derives from a scrubbed column (a tsvector built
from a name, a lower-cased copy of an email) would keep what production's trigger computed from the real
value. deid must know such columns to ask for a rule (deid.rules.coverage). It reads PL/pgSQL bodies for
assignments to NEW (`NEW.x := expr`, `NEW.x = expr` as a statement, `SELECT ... INTO NEW.x`) and the
columns of NEW and OLD each expression reads, and knows PostgreSQL's own trigger functions
(tsvector_update_trigger). Anything it cannot read with confidence (another language, dynamic SQL, the whole
NEW replaced) is reported as unknown (None), never as "derives nothing": the rule file must then say what
to do with the trigger.
"""

from __future__ import annotations

import re

from deid.schema import Derivation

# tgtype bits (pg_trigger.h)
ROW, BEFORE, INSERT, DELETE, UPDATE, TRUNCATE, INSTEAD = 1, 2, 4, 8, 16, 32, 64
ENABLED = {"O": "origin", "D": "disabled", "R": "replica", "A": "always"}

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^']|'')*'")
_STATEMENT_START = r"(?:^|;|\bTHEN\b|\bELSE\b|\bBEGIN\b|\bLOOP\b)"
_ASSIGN = re.compile(
    rf"(?:(?:{_STATEMENT_START})\s*NEW\s*\.\s*({_IDENT})\s*(?::=|=)|NEW\s*\.\s*({_IDENT})\s*:=)([^;]*)",
    re.I,
)
_INTO = re.compile(rf"\bINTO\s+(?:STRICT\s+)?((?:NEW\s*\.\s*{_IDENT}\s*,?\s*)+)", re.I)
_NEW_COLUMN = re.compile(rf"\b(?:NEW|OLD)\s*\.\s*({_IDENT})", re.I)
_WHOLE_ROW = re.compile(r"\bNEW\s*(?::=|=)(?!=)|\bEXECUTE\b|\bjsonb?_populate_record\s*\(\s*NEW\b", re.I)
_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|MERGE\s+INTO|COPY|EXECUTE|PERFORM)\b", re.I
)

# PostgreSQL's built-in trigger functions: (target column, source columns) from the trigger's arguments
_TSVECTOR = ("tsvector_update_trigger", "tsvector_update_trigger_column")
_HARMLESS = ("suppress_redundant_updates_trigger",)


def events(tgtype: int) -> tuple[str, ...]:
    bits = ((INSERT, "insert"), (UPDATE, "update"), (DELETE, "delete"), (TRUNCATE, "truncate"))
    return tuple(name for bit, name in bits if tgtype & bit)


def timing(tgtype: int) -> str:
    return "instead" if tgtype & INSTEAD else "before" if tgtype & BEFORE else "after"


def analyse(
    language: str, schema: str, function: str, source: str | None, arguments: list[str]
) -> tuple[tuple[Derivation, ...] | None, bool]:
    """(what the function sets in NEW, or None when unknown; whether it may write other tables)."""
    if schema == "pg_catalog" and function in _TSVECTOR:
        if function == "tsvector_update_trigger" and len(arguments) >= 3:
            return (Derivation(arguments[0], tuple(arguments[2:])),), False
        if len(arguments) >= 3:  # tsvector_update_trigger_column(target, config_column, sources...)
            return (Derivation(arguments[0], (arguments[1], *arguments[2:])),), False
        return None, False
    if schema == "pg_catalog" and function in _HARMLESS:
        return (), False
    if language != "plpgsql" or source is None:
        return None, True
    body = _STRINGS.sub("''", _COMMENTS.sub(" ", source))
    writes = bool(_WRITES.search(body))
    if _WHOLE_ROW.search(body):
        return None, writes
    found: dict[str, set[str]] = {}
    for match in _ASSIGN.finditer(body):
        target = _name(match[1] or match[2])
        found.setdefault(target, set()).update(_name(c) for c in _NEW_COLUMN.findall(match[3]))
    for statement in body.split(";"):
        into = _INTO.search(statement)
        if into:
            rest = statement[: into.start()] + statement[into.end() :]
            read = {_name(c) for c in _NEW_COLUMN.findall(rest)}
            for target in _NEW_COLUMN.findall(into[1]):
                found.setdefault(_name(target), set()).update(read)
    derived = tuple(Derivation(column, tuple(sorted(sources))) for column, sources in sorted(found.items()))
    return derived, writes


def _name(identifier: str) -> str:
    """A PL/pgSQL identifier as the catalog spells it: quoted as written, unquoted folded to lower case."""
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()
