"""Hypothesis strategies that spoil deid's input files: byte by byte, in their YAML, in row conditions.

Each strategy starts from a real file and returns the spoiled bytes. They aim at what has broken readers
before: encodings and control characters, YAML's rarer features (anchors, aliases, tags, merge keys,
complex keys, several documents, directives), values of the wrong kind or of odd shapes (NaN, huge numbers,
invalid dates, deep nesting, weird Unicode), and conditions outside the grammar or at its limits.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import yaml
from hypothesis import strategies as st

# Bytes that have a meaning for a decoder or a YAML reader.
SPECIAL_BYTES = [
    b"\x00",
    b"\xff",
    b"\xfe",
    b"\xc3",  # a UTF-8 lead byte without its continuation
    b"\xe9",  # Latin-1 e-acute
    b"\xef\xbb\xbf",  # UTF-8 byte order mark
    b"\xff\xfe",  # UTF-16 LE byte order mark
    b"\xe2\x80\xae",  # U+202E RIGHT-TO-LEFT OVERRIDE
    b"\xed\xa0\x80",  # an encoded surrogate: not UTF-8
    b"\xc2\x85",  # U+0085 NEXT LINE, a YAML line break
    b"\xe2\x80\xa8",  # U+2028 LINE SEPARATOR
    b"\x07",
    b"\x1b[31m",
    b"\x7f",
    b"\r",
    b"\r\n",
    b"\t",
    b"\n",
    b" ",
    b"#",
    b":",
    b": ",
    b"- ",
    b"? ",
    b"|",
    b">",
    b"'",
    b'"',
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"&a ",
    b"*a",
    b"!!python/object/apply:os.system ",
    b"!!binary ",
    b"!!float ",
    b"!local ",
    b"! ",
    b"<<: ",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n---\n",
    b"%TAG ! tag:example.com,2000:\n---\n",
    b"[" * 100,
    b"{a: " * 40,
    b"~",
    b"null",
    b".nan",
    b"-.inf",
    b"0x_",
    b"2024-02-30",
    b"1e999",
    b"9" * 400,
]

# Scalars a data owner could write, and some no one should.
ODD_STRINGS = [
    "",
    " ",
    "keep",
    "null",
    "hash",
    "fake.email",
    "shift_date",
    "constant",
    "schema_only",
    "full",
    "email",
    "public.users",
    "public.",
    ".",
    "a.b.c",
    "users",
    "id",
    '"',
    "'",
    "\\",
    "%",
    "%s",
    "%(x)s",
    ":x",
    "a:b",
    "{",
    "{0}",
    "{batch}",
    "${HOME}",
    "../../etc/passwd",
    "/dev/zero",
    "Email Address",
    "ZipCode",
    "naïve",
    "名前",
    "\u202eevil",
    "\u200b",
    "\ufeff",
    "\U0001f600",
    "a\u0301",
    "ǅ",
    "İ",
    "ß",
    "1; DROP TABLE users",
    "is_test_account = true",
]

# Row conditions: pieces of the grammar and of what lies outside it.
COLUMNS = [
    "id",
    "is_test_account",
    "email",
    "label",
    "tier",
    "bio",
    '"Mixed Case"',
    '"a""b"',
    "users.id",
    "*",
]
LITERALS = ["1", "-1", "1.5", "1e999", "'qa'", "'O''Brien'", "''", "NULL", "TRUE", "false", "'%'", "':x'"]
TOKENS = [
    "(",
    ")",
    "AND",
    "OR",
    "NOT",
    "=",
    "<>",
    "!=",
    "<",
    ">=",
    "IS",
    "NULL",
    "IN",
    ",",
    ";",
    "--",
    "/*",
    "*/",
    "SELECT",
    "FROM",
    "::",
    "||",
    "+",
    "-",
    "LIKE",
    "ILIKE",
    "ESCAPE",
    "'qa+%'",
    "'\\'",
    "lower(",
    "$1",
    "?",
    ":name",
    "%s",
    "{",
    "'",
    '"',
    "E'\\x00'",
    "$$x$$",
    "ARRAY[",
    "]",
    "CASE",
    "WHEN",
    "END",
]


def _scalars() -> st.SearchStrategy:
    """(Built once, below: Hypothesis describes a recursive strategy anew for each copy of it.)"""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.sampled_from(ODD_STRINGS),
        st.text(max_size=30),
        st.integers(min_value=100, max_value=6000).map(lambda n: "x" * n),
        st.dates(min_value=dt.date(1, 1, 1)),
        st.binary(max_size=8),  # dumped as !!binary: a tag
    )


SCALARS = _scalars()


def values() -> st.SearchStrategy:
    """Any value YAML can hold, nested a few levels."""
    keys = st.one_of(
        st.sampled_from(ODD_STRINGS), st.text(max_size=10), st.integers(), st.booleans(), st.none()
    )
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=12,
    )


VALUES = st.deferred(values)  # deferred: a short name in reports, not the whole recursive strategy


def _positions(draw, size: int) -> int:
    return draw(st.integers(min_value=0, max_value=max(size, 0)))


@functools.cache
def _read(path: Path) -> bytes:
    return path.read_bytes()


@st.composite
def spoiled_bytes(draw, path: Path) -> bytes:
    """The file after one to four byte-level edits (strategies take paths: Hypothesis shows its arguments)."""
    raw = _read(path)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        size = len(raw)
        at = _positions(draw, size)
        edit = draw(st.sampled_from(["insert", "insert", "delete", "replace", "truncate", "copy", "utf16"]))
        if edit == "insert":
            piece = draw(st.one_of(st.sampled_from(SPECIAL_BYTES), st.binary(min_size=1, max_size=12)))
            raw = raw[:at] + piece + raw[at:]
        elif edit == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(min_value=1, max_value=40)) :]
        elif edit == "replace" and size:
            at = min(at, size - 1)
            raw = raw[:at] + bytes([draw(st.integers(min_value=0, max_value=255))]) + raw[at + 1 :]
        elif edit == "truncate":
            raw = raw[:at]
        elif edit == "copy":
            start = _positions(draw, size)
            raw = raw[:at] + raw[start : start + draw(st.integers(min_value=1, max_value=200))] + raw[at:]
        elif edit == "utf16" and draw(st.integers(min_value=0, max_value=9)) == 0:  # rare: the whole file
            raw = raw.decode("utf-8", errors="replace").encode(draw(st.sampled_from(["utf-16", "utf-16-le"])))
    return raw


def _paths(data, limit: int = 2000) -> list[tuple]:
    """Paths into a tree of dicts and lists, the root included, each container visited once: a file with
    aliases loads as a graph whose paths grow exponentially (billion_laughs.yaml: 9^9 of them)."""
    paths, seen, todo = [], set(), [((), data)]
    while todo and len(paths) < limit:
        path, node = todo.pop()
        paths.append(path)
        if isinstance(node, dict | list) and id(node) not in seen:
            seen.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            todo += [((*path, key), value) for key, value in items]
    return paths


def _at(data, path):
    for step in path:
        data = data[step]
    return data


def _spoil_tree(draw, data):
    """(A helper of the strategies below, not a strategy: a strategy would show the whole tree in reports.)
    The parsed file after one to four edits of its tree: values replaced, keys deleted, renamed or added,
    subtrees shared (dumped as an anchor and aliases) or nested deeper."""
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(data)))
        edit = draw(st.sampled_from(["replace", "replace", "delete", "rename", "add", "share", "nest"]))
        if not path:
            if edit == "replace":
                data = draw(VALUES)
            continue
        parent, last = _at(data, path[:-1]), path[-1]
        if edit == "replace":
            parent[last] = draw(VALUES)
        elif edit == "delete":
            del parent[last]
        elif edit == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(ODD_STRINGS) | st.integers())] = parent.pop(last)
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(ODD_STRINGS))] = draw(VALUES)
        elif edit == "share":
            other = draw(st.sampled_from(_paths(data)))
            if other and not _contains(parent[last], _at(data, other[:-1])):
                _at(data, other[:-1])[other[-1]] = parent[last]  # the same object twice: &id001 / *id001
        elif edit == "nest":
            depth = draw(st.integers(min_value=1, max_value=60))
            for _ in range(depth):
                parent[last] = [parent[last]] if draw(st.booleans()) else {"x": parent[last]}
    return data


def _contains(tree, node) -> bool:
    """Whether `node` is `tree` or inside it (sharing it there would make a cycle)."""
    seen, todo = set(), [tree]
    while todo:
        current = todo.pop()
        if current is node:
            return True
        if isinstance(current, dict | list) and id(current) not in seen:
            seen.add(id(current))
            todo += current.values() if isinstance(current, dict) else current
    return False


def _dump(draw, data) -> bytes:
    """A tree written out as PyYAML writes it, in one of its styles (a helper, like _spoil_tree)."""
    text = yaml.safe_dump(
        data,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, None, True])),
        sort_keys=False,
        width=draw(st.sampled_from([80, 10**6])),
    )
    return text.encode("utf-8", errors="surrogatepass")


SNIPPETS = [
    "x: &a [1, 2]\ny: *a\n",
    "x: *undefined\n",
    "<<: {columns: {id: keep}}\n",
    "? [a, b]\n: keep\n",
    "? {a: 1}\n: keep\n",
    "{a: 1}: keep\n",
    "x: !!python/object/apply:os.system [echo hi]\n",
    "x: !!set {a, b}\n",
    "x: !!omap [a: 1]\n",
    "x: !!timestamp 2024-02-30\n",
    "x: !custom 1\n",
    "--- \ny: 1\n",
    "%YAML 1.2\n",
    "x: |\n  text\n",
    "x: >-\n  folded\n",
    "x: 'unterminated\n",
    "x: [" + "[" * 200 + "]" * 200 + "]\n",
    "x: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
    "\tx: 1\n",
    "x: 1\n x: 2\n",
    "x: 0x_\n",
    "x: 1_000\n",
    "on: keep\n",
    "012: keep\n",
    "null: keep\n",
    "~: keep\n",
    ": keep\n",
]


@st.composite
def spoiled_yaml(draw, path: Path) -> bytes:
    """A YAML file after edits of its tree, or with a snippet of YAML's rarer features put in at a line,
    or with a line duplicated (duplicate keys), or all of these."""
    raw = text = _read(path)
    if draw(st.booleans()):
        try:
            data = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError):  # the broken fixtures: not YAML, not UTF-8, an invalid date
            data = None
        if data is not None:
            text = _dump(draw, _spoil_tree(draw, data))
    lines = text.splitlines(keepends=True) or [b""]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(lines)))
        if draw(st.booleans()) and lines:
            lines.insert(at, lines[min(at, len(lines) - 1)])  # a duplicated line: a key defined twice
        else:
            indent = b" " * draw(st.sampled_from([0, 2, 4, 6, 8]))
            snippet = draw(st.sampled_from(SNIPPETS)).encode()
            lines.insert(at, b"".join(indent + line for line in snippet.splitlines(keepends=True)))
    return b"".join(lines)


def _grammar(atoms: list[str], operators: list[str], extra: list) -> st.SearchStrategy[str]:
    atom = st.sampled_from(atoms)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.tuples(atom, st.sampled_from(["=", "<>", "<", ">="]), atom).map(" ".join),
            st.tuples(inner, st.sampled_from(operators), inner).map(" ".join),
            inner.map(lambda c: f"NOT {c}"),
            inner.map(lambda c: f"({c})"),
            inner.map(lambda c: f"{c} IS NOT NULL"),
            st.lists(st.sampled_from(LITERALS), min_size=1, max_size=5).map(
                lambda items: f"id IN ({', '.join(items)})"
            ),
            *[piece(inner) for piece in extra],
        ),
        max_leaves=12,
    )


def conditions() -> st.SearchStrategy[str]:
    """Row conditions: in the grammar (on `id`, which every table has), just outside it, token soup, very
    deep or long, or any text."""
    valid = _grammar(["id", *LITERALS], ["AND", "OR"], [])
    outside = _grammar(
        COLUMNS + LITERALS,
        ["AND", "OR", "LIKE", "||", "+", "::", "-", "*"],
        [
            lambda inner: inner.map(lambda c: f"lower({c})"),
            lambda inner: inner.map(lambda c: f"id IN (SELECT {c})"),
        ],
    )
    soup = st.lists(st.sampled_from(TOKENS + COLUMNS + LITERALS), max_size=40).map(" ".join)
    deep = st.tuples(
        st.integers(min_value=0, max_value=3000),
        st.sampled_from(["(", "NOT ", "- ", "NOT (", "((", "a = 1 AND "]),
        st.sampled_from(COLUMNS + LITERALS),
        st.integers(min_value=0, max_value=3000),
    ).map(lambda t: t[1] * t[0] + t[2] + ")" * t[3])
    wide = st.tuples(st.integers(min_value=1, max_value=800), st.sampled_from([" OR ", " AND ", ", "])).map(
        lambda t: "id IN (" + t[1].join(["1"] * t[0]) + ")" if t[1] == ", " else t[1].join(["id = 1"] * t[0])
    )
    return st.one_of(valid, outside, soup, deep, wide, st.text(max_size=200))


CONDITIONS = st.deferred(conditions)


@st.composite
def rules_with_condition(draw, path: Path) -> bytes:
    """A rule file with one table's keep_rows_where set to a drawn condition (string or not)."""
    data = yaml.safe_load(_read(path))
    table = draw(st.sampled_from(sorted(data["tables"])))
    condition = draw(st.one_of(CONDITIONS, CONDITIONS, SCALARS))
    spec = data["tables"][table]
    if isinstance(spec, dict):
        spec["keep_rows_where"] = condition
    return _dump(draw, data)
