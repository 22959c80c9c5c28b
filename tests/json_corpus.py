"""JSON documents for comparing the json transformer's vector form with its SQL form: hand-picked edges
(numbers, escapes, duplicate keys, key order by byte length, paths through scalars and arrays, invalid
text) and seeded random documents written with random spacing, escapes and number spellings."""

from __future__ import annotations

import json
import random

# paths the documents are written for: nested keys, array indexes from both ends, a key that is not an
# identifier, numbers, containers and JSON null at a path
PATHS = {
    "$.contact.email": "fake.email",
    "$.contact.phone": {"transformer": "fake.phone"},
    "$.ssn": "null",
    "$.items[0].id": {"transformer": "hash", "params": {"format": "hex", "length": 32}},
    "$.items[-1]": "hash",
    '$["odd key"]': {"transformer": "redact", "params": {"keep_start": 1, "keep_end": 1}},
    "$.n": "hash",
    '$.arr["1"]': {"transformer": "constant", "params": {"value": "C"}},
    "$.deep.a.b": "generalize_zip",
}
# two paths naming one element (an index from each end): the SQL form applies them in order, the second
# reading the first's result; and a path through an element the first turns into a string
ALIASED = {"$.al[0]": "hash", "$.al[-1]": {"transformer": "constant", "params": {"value": "last"}},
           "$.al2[0]": "null", "$.al2[-1].x": "hash"}  # fmt: skip

EDGES = (
    '{"contact": {"email": "a@corp.io", "phone": "617-555-1234"}, "ssn": "123-45-6789", '
    '"keep": [1, 2], "items": [{"id": "x1"}, {"id": "x2"}]}',
    '{"contact":{"email":"b@corp.io","phone":null},"items":[{"id":"y1"},5]}',
    '{"contact": {"email": 42}, "items": [], "n": 1.0}',
    '{"contact": "not an object", "items": {"0": {"id": "keyed, not indexed"}}}',
    '{"items": [[1, 2], {"id": null}], "n": -0, "arr": [true, false, null]}',
    '{"n": 1e2, "m": 1E+2, "k": 1.50e1, "j": -1e-5, "i": 0.000, "h": 12345678901234567890123456789}',
    '{"n": 123.4567890123456789012345678901234567890, "x": [1e0, 1E-0, 10e-1, 0.1e1, -0.0, 0e5]}',
    '{"b": 1, "a": 2, "aa": 3, "a": 4, "é": 5, "z": 6, "zz": 7, "\u00e9\u00e9": 8, "\U0001f600": 9}',
    '{"ssn": "first", "ssn": "second", "contact": {"email": "x@y.z"}, "contact": {"email": "last@y.z"}}',
    '{"odd key": "Zoë 東京", "odd  key": "spaces", "deep": {"a": {"b": "02139-1234"}}}',
    '{"odd key": "\\u00e9\\u4e2d\\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u001f \\u007f"}',
    '{"odd key": "a\u2028b\u2029c\x7fd", "n": "\\u0041"}',
    '{"deep": {"a": {"b": {"c": 1}}}, "n": {"x": [1, {"y": "z"}]}}',
    '{"deep": {"a": [1]}, "arr": [0, {"k": "v"}, 2]}',
    '{"deep": {"a": "scalar"}, "arr": "a string has no elements"}',
    '[{"contact": {"email": "in an array"}}]',
    '"just a string"',
    "5",
    "-0.50",
    "null",
    "true",
    "[]",
    "{}",
    '""',
    ' \t\n\r{ "n" : [ ] , "items" : [ 1 ] }\n ',
    '{"al": ["one"], "al2": [{"x": "only"}]}',
    '{"al": ["first", 2, "third"], "al2": [{"x": "a"}, {"x": "b"}]}',
    '{"al": [], "al2": [1]}',
    '{"": "empty key", "contact": {"": 1, "email": ""}}',
    '{"items": [{"id": "' + "x" * 300 + '"}], "n": "' + "é" * 40 + '"}',
    '{"n": -' + "9" * 5000 + ', "items": [{"id": 1' + "0" * 4100 + "}]}",  # past Python's int() digits
)

# text a document column could not hold: for text columns, where `invalid` decides
INVALID = (
    "",
    "   ",
    "not json",
    '{"contact": ',
    '{"a": 1,}',
    "[1,]",
    "{'a': 1}",
    "01",
    "1.",
    ".5",
    "+1",
    "NaN",
    "Infinity",
    "-Infinity",
    "tru",
    "nul",
    '{"a": 1} x',
    '"\\x"',
    '"tab\there"',
    '"\\u12"',
    '"\\ud800"',
    '"\\udc00 low"',
    '"\\ud83d\\u0041"',
    '{"k": "\\u0000"}',
    '{"\\u0000": 1}',
    "\ufeff{}",
    "1e131072",
    "1e-16384",
    "0e-20000",
    "1e1073741823",
    "1" + "0" * 131072,
)


def random_documents(count: int, seed: int = 20261204) -> list[str]:
    """`count` documents with the paths' keys now and then, written with random spacing and spellings."""
    rng = random.Random(seed)
    return [_write(_document(rng, 0), rng) for _ in range(count)]


_KEYS = ("contact", "email", "phone", "ssn", "items", "id", "odd key", "n", "arr", "deep", "a", "b",
         "é", "zz", "k", "\u6771", "\U0001f600", "", "al", "al2", "x")  # fmt: skip
_TEXTS = ("a@corp.io", "617-555-0100", "Zoë", "東京", 'say "hi"', "back\\slash", "tab\tline\nend", "",
          "\x01\x1f\x7f", "\u2028", "\U0001f600 smile", "02139", "x" * 40)  # fmt: skip
_NUMBERS = ("0", "-0", "1", "-17", "3.14", "1.0", "1.50", "1e2", "1E-3", "-2.5e+3", "0.0001", "1e21",
            "123456789012345678901234567890", "9007199254740993", "-0.000", "5e-1", "100e-2")  # fmt: skip


def _document(rng: random.Random, depth: int):
    roll = rng.random()
    if depth < 4 and roll < 0.45:
        members = [(rng.choice(_KEYS), _document(rng, depth + 1)) for _ in range(rng.randint(0, 5))]
        if rng.random() < 0.5:
            contact = [("email", rng.choice(_TEXTS)), ("phone", rng.choice((*_TEXTS, None)))]
            members.append(("contact", contact if rng.random() < 0.8 else rng.choice(_TEXTS)))
        return ("object", members)
    if depth < 4 and roll < 0.65:
        return ("array", [_document(rng, depth + 1) for _ in range(rng.randint(0, 4))])
    if roll < 0.8:
        return ("string", rng.choice(_TEXTS))
    if roll < 0.93:
        return ("number", rng.choice(_NUMBERS))
    return ("literal", rng.choice(("true", "false", "null")))


def _write(node, rng: random.Random) -> str:
    space = lambda: rng.choice(("", "", " ", "\n  ", "\t"))  # noqa: E731
    if isinstance(node, list):  # a contact's members, written as an object
        node = ("object", [(k, ("string", v) if v is not None else ("literal", "null")) for k, v in node])
    kind, value = node if isinstance(node, tuple) else ("string", node)
    if kind == "object":
        members = [f"{space()}{_string(k, rng)}{space()}:{space()}{_write(v, rng)}" for k, v in value]
        return "{" + ",".join(members) + space() + "}"
    if kind == "array":
        return "[" + ",".join(space() + _write(v, rng) for v in value) + space() + "]"
    if kind == "string":
        return _string(value, rng)
    return value


def _string(text: str, rng: random.Random) -> str:
    """A JSON string for `text`: plain, or with every non-ASCII character (and now and then every
    character) as \\u escapes, surrogate pairs included."""
    style = rng.random()
    if style < 0.6:
        return json.dumps(text, ensure_ascii=False)
    if style < 0.9:
        return json.dumps(text, ensure_ascii=True)
    units = text.encode("utf-16-be")
    return '"' + "".join(f"\\u{units[i]:02x}{units[i + 1]:02X}" for i in range(0, len(units), 2)) + '"'
