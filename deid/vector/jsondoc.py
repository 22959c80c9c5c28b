"""JSON documents as the `json` transformer's SQL form reads and writes them: parsed into Python values,
walked by path, and printed in the server's normal form of binary JSON. The json vector form (jsonpaths.py)
is built on these; its SQL form is the oracle (tests/test_vector_json.py compares the two on a real server).

What the SQL form's document type does, and this module does alike:

- **Parsing.** RFC 8259 JSON: no NaN or Infinity, no leading zeros, no control character unescaped in a
  string. A `\\u` escape may not give U+0000 nor an unpaired surrogate. Numbers are exact decimals (the
  server's numeric): at most 131,072 digits before the point and 16,383 after, an exponent below 2^30.
- **Objects.** The last of duplicate keys wins; keys are ordered by their UTF-8 length, then byte by byte.
- **Printing.** `{"a": 1, "b": [1, 2]}`: `", "` between members and elements, `": "` after keys; strings
  escape `"`, `\\` and control characters (`\\n` ... or `\\u001f`), everything else as it is (`/`, DEL,
  non-ASCII); a number as the server prints an exact decimal: plain digits, never an exponent, with the
  scale its text gave (`1.0` stays `1.0`, `1e2` is `100`, `1.50e1` is `15.0`, `-0` is `0`).
- **Paths** (the `#>` of the SQL form): a key in an object, an index in an array (C's strtol: blanks, a
  sign; negative counts from the end), nothing through a scalar.

A Python call per document is the price of JSON (no columnar parser keeps numbers exact and duplicate keys
in order); everything around it is vectorized by jsonpaths.py.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

# the server's exact decimals: digits before the point (weight), digits after (scale), exponent literal
MAX_INTEGER_DIGITS = 131072
MAX_SCALE = 16383
MAX_EXPONENT = (2**31 - 1) // 2
_INDEX = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")  # what C's strtol reads whole (base 10)
_INT_RANGE = (-(2**31), 2**31 - 1)
_INT_DIGITS = 4000  # int() of a longer text is refused by default (sys.int_info.default_max_str_digits)
# the documents without a Number (integers are ints) are printed by json's C encoder: its escaping with
# ensure_ascii off is the server's (", \ and control characters only), members in the order they are kept
_FAST = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), allow_nan=False, check_circular=False)
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")  # what an escape may give that the server refuses
_ESCAPED = json.encoder.encode_basestring  # (the C one) escapes exactly ", \ and control characters


class Invalid(ValueError):
    """The text is not a document the SQL form's type accepts."""


class TooDeep(ValueError):
    """The document nests deeper than Python's recursion limit lets it be read (the server's limit is its
    stack: such a document may be valid there, so it is never taken for an invalid one)."""


class Number:
    """A JSON number, kept as the text the server prints for it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Number({self.text})"


def integer(literal: str) -> int | Number:
    """A JSON integer literal: a Python int, whose text is the server's (`-0` is `0`), or a Number past
    Python's digit limit for int(); Invalid past the server's."""
    if len(literal) <= _INT_DIGITS:
        return int(literal)
    return number(literal)


def number(literal: str) -> Number:
    """A JSON number literal as the server's exact decimal prints it; Invalid when it cannot hold it."""
    mantissa, _, exponent = literal.lower().partition("e")
    if exponent and abs(int(exponent)) >= MAX_EXPONENT:
        raise Invalid("number out of range")
    value = Decimal(literal)
    sign, digits, power = value.as_tuple()
    assert isinstance(power, int)  # JSON has no NaN or Infinity
    scale = max(0, -power)
    if scale > MAX_SCALE:
        raise Invalid("number out of range")
    if not any(digits):  # zero: no sign, and the scale its text gave
        return Number("0." + "0" * scale if scale else "0")
    if len(digits) + power > MAX_INTEGER_DIGITS:
        raise Invalid("number out of range")
    return Number(format(value, "f"))


def _refuse_constant(name: str) -> Any:
    raise Invalid(f"{name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, the last of duplicate keys winning, ordered as the server orders keys."""
    members = dict(pairs)
    if len(members) > 1:
        if "".join(members).isascii():  # a character is a byte: by length, then code point (sorts are stable)
            order = sorted(sorted(members), key=len)
        else:  # code point order is UTF-8's byte order
            order = sorted(members, key=lambda k: (len(k.encode()), k))
        return {k: members[k] for k in order}
    return members


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=number, parse_int=integer, parse_constant=_refuse_constant
)


def parse(text: str) -> Any:
    """The document in `text`: dict, list, str, int, Number, True, False or None (JSON null). Invalid when
    the server's type refuses it."""
    try:
        document = _DECODER.decode(text)
        if "\\u" in text and _refused_escape(document):
            raise Invalid("an escape the server refuses")
    except Invalid:
        raise
    except RecursionError:
        raise TooDeep("nested too deeply") from None
    except ValueError:  # json's errors quote the text: never passed on
        raise Invalid("not JSON") from None
    return document


def _refused_escape(value: Any) -> bool:
    """Whether a string or key holds U+0000 or a lone surrogate (only an escape can put them there)."""
    if isinstance(value, str):
        return _NOT_TEXT.search(value) is not None
    if isinstance(value, dict):
        return any(_refused_escape(k) or _refused_escape(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_refused_escape(v) for v in value)
    return False


def dumps(value: Any) -> str:
    """The document's text in the server's normal form."""
    try:
        return _FAST.encode(value)
    except TypeError:  # a Number: its text is the server's, which no Python number prints
        pass
    except RecursionError:
        raise TooDeep("nested too deeply") from None
    parts: list[str] = []
    try:
        _dump(value, parts.append)
    except RecursionError:
        raise TooDeep("nested too deeply") from None
    return "".join(parts)


def _dump(value: Any, out) -> None:
    if isinstance(value, str):
        out(_ESCAPED(value))
    elif isinstance(value, Number):
        out(value.text)
    elif isinstance(value, int) and not isinstance(value, bool):
        out(str(value))
    elif isinstance(value, dict):
        out("{")
        first = True
        for key, member in value.items():
            if not first:
                out(", ")
            first = False
            out(_ESCAPED(key))
            out(": ")
            _dump(member, out)
        out("}")
    elif isinstance(value, list):
        out("[")
        for i, element in enumerate(value):
            if i:
                out(", ")
            _dump(element, out)
        out("]")
    elif value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    else:  # a value parse() never makes
        raise TypeError(f"not a parsed JSON value: {type(value).__name__}")


def as_text(value: Any) -> str | None:
    """A value at a path as the SQL form's `#>>` gives it: a string unescaped, JSON null as NULL, anything
    else as its normal text."""
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, Number):
        return value.text
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return dumps(value)


def locate(document: Any, steps: tuple[str, ...]) -> tuple[dict | list, str | int] | None:
    """The container and key (or index) of the value at `steps`, or None when the path is missing or goes
    through a scalar."""
    container: Any = document
    for depth, step in enumerate(steps):
        if isinstance(container, dict):
            if step not in container:
                return None
            place: str | int = step
        elif isinstance(container, list):
            index = array_index(step, len(container))
            if index is None:
                return None
            place = index
        else:
            return None
        if depth == len(steps) - 1:
            return container, place
        container = container[place]  # type: ignore[index]
    return None


def array_index(step: str, length: int) -> int | None:
    """The element a path step names in an array of `length`: strtol's reading of the whole step (leading
    blanks and a sign allowed), negative from the end; None for no element."""
    if not _INDEX.fullmatch(step):
        return None
    index = int(step)
    if not _INT_RANGE[0] <= index <= _INT_RANGE[1]:
        return None
    if index < 0:
        index += length
    return index if 0 <= index < length else None
