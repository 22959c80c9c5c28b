"""Read the CHECK constraints PostgreSQL prints (pg_get_constraintdef) into engine-neutral terms.

PostgreSQL normalises what users wrote: `rate BETWEEN 6.50 AND 200.00` reads back as
`CHECK (((rate >= 6.50) AND (rate <= 200.00)))`, `status IN ('a', 'b')` as
`CHECK ((status = ANY (ARRAY['a'::text, 'b'::text])))`. So a handful of patterns cover the common forms;
every top-level conjunct that matches none is returned as an "other" term, which lint cannot prove safe.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

from deid.backends.postgresql.quoting import QUOTING
from deid.schema import CheckTerm

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_CAST = r'(?:::[A-Za-z_][\w ."]*(?:\(\d+(?:,\d+)?\))?(?:\[\])?)'
_COL = rf"\(?({_IDENT})\)?{_CAST}?"
_LIT = rf"(?:\(?'((?:[^']|'')*)'{_CAST}?\)?{_CAST}?|\(?(-?\d+(?:\.\d+)?){_CAST}?\)?{_CAST}?)"
_OPS = r"(>=|<=|<>|!=|>|<|=)"
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "=": "=", "<>": "<>", "!=": "<>"}

_COMPARE = re.compile(rf"{_COL} {_OPS} {_LIT}")
_COMPARE_REVERSED = re.compile(rf"{_LIT} {_OPS} {_COL}")
_ANY = re.compile(rf"{_COL} = ANY \(\(?ARRAY\[(.*)\]\)?{_CAST}?\)")
_LENGTH = re.compile(rf"(?:char_length|character_length|length)\({_COL}\) (<=|<|=) (\d+)")
_REGEX = re.compile(rf"{_COL} ~ {_LIT}")
_NOT_NULL = re.compile(rf"{_COL} IS NOT NULL")
_ANY_LITERAL = re.compile(_LIT)


def terms(definition: str, columns: tuple[str, ...]) -> tuple[CheckTerm, ...]:
    """The top-level conjuncts of a CHECK definition; `columns` are those it reads (from the catalog)."""
    text = definition.strip()
    text = text.removesuffix(" NOT VALID").removeprefix("CHECK ").strip()
    return tuple(_term(part, columns) for part in _split_and(_unwrap(text)))


def _term(text: str, columns: tuple[str, ...]) -> CheckTerm:
    text = _unwrap(text)
    if m := _COMPARE.fullmatch(text):
        return CheckTerm(text, _ident(m[1]), "!=" if m[2] == "!=" else m[2], _value(m[3], m[4]))
    if m := _COMPARE_REVERSED.fullmatch(text):
        return CheckTerm(text, _ident(m[4]), _FLIP[m[3]], _value(m[1], m[2]))
    if m := _ANY.fullmatch(text):
        items = tuple(_value(s, n) for s, n in _ANY_LITERAL.findall(m[2]))
        return CheckTerm(text, _ident(m[1]), "in", items)
    if m := _LENGTH.fullmatch(text):
        return CheckTerm(text, _ident(m[1]), "length" + m[2], int(m[3]))
    if m := _REGEX.fullmatch(text):
        return CheckTerm(text, _ident(m[1]), "~", _unquote(m[2] or ""))
    if m := _NOT_NULL.fullmatch(text):
        return CheckTerm(text, _ident(m[1]), "not null", None)
    found = tuple(c for c in columns if re.search(rf'(?<![\w"]){re.escape(_quoted(c))}(?![\w"])', text))
    return CheckTerm(text, None, "other", found or columns)


def _unwrap(text: str) -> str:
    """Strip parentheses that enclose the whole text."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _outside_quotes(text: str):
    """(index, character, depth) of every character outside '...' literals; depth counts the parentheses
    open before it (a closing one already counted)."""
    depth, quoted = 0, False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
            continue
        if quoted:
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        yield i, ch, depth


def _closing(text: str, start: int) -> int:
    """The index of the parenthesis closing the one at `start`, or -1."""
    closing = (i for i, ch, depth in _outside_quotes(text[start:]) if ch == ")" and depth == 0)
    found = next(closing, None)
    return -1 if found is None else start + found


def _split_and(text: str) -> list[str]:
    """The terms of a top-level AND chain."""
    cuts = [i for i, _, depth in _outside_quotes(text) if depth == 0 and text.startswith(" AND ", i)]
    bounds = [0, *(c + 5 for c in cuts)]
    return [text[a : (cuts[n] if n < len(cuts) else len(text))] for n, a in enumerate(bounds)]


def _ident(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _quoted(name: str) -> str:
    return QUOTING.identifier_if_needed(name)  # as the server prints a name in a definition


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _value(quoted: str | None, number: str | None):
    """A literal: a Decimal for numbers (quoted or not), a date for ISO dates, else the string."""
    text = _unquote(quoted) if quoted else (number or "")
    try:
        return Decimal(text)
    except InvalidOperation:
        pass
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return text
