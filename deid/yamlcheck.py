"""What deid refuses in its YAML files before it builds any data from them.

Rule files, policies and deid.yaml are reviewed by people: what a reviewer reads must be what deid applies.
So the files are UTF-8 text, and only plain YAML: mappings, lists and scalars, written out. Refused:

- other encodings, control characters (YAML's own reader refuses them) and the invisible bidirectional
  controls that make text read differently from what it is ("Trojan Source", CVE-2021-42574);
- anchors and aliases (`&a`, `*a`): a rule that points elsewhere is not reviewed where it applies, and
  aliases of aliases expand exponentially ("billion laughs": minutes and gigabytes for a 1 kB file);
- explicit tags (`!!float`, `!!python/...`, `!x`): they change what a value means, or fail to construct;
- nesting deeper than MAX_DEPTH: no file of deid's needs more than a handful of levels, and PyYAML's
  composer, like anything walking the tree, recurses once per level.

All of these are found from the parser's events (a flat stream, linear in the file's size), so nothing is
built from a file that would be refused. Merge keys and non-scalar keys are refused while the data is built
(yamlsrc): they need to know which scalar is a key.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator

import yaml

from deid.errors import Problem

# libyaml, bundled with PyYAML's wheels, reads 20 times faster than PyYAML's Python parser: the largest file
# deid reads (yamlsrc.MAX_BYTES) in seconds. The Python parser words syntax errors better, so it re-reads a
# file libyaml refused, up to the first error.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WORDING_LOADER = yaml.SafeLoader
MAX_DEPTH = 32  # a rule file needs 6: tables, table, columns, column, params, a list value
MAX_REFUSALS = 20  # beyond this, a list of the same refusal helps nobody
NOT_REFERENCES = "write each rule out; YAML anchors and aliases are not allowed in deid's files"
SAVE_AS_UTF8 = "save the file as UTF-8 (in most editors: Save with Encoding, UTF-8)"
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16: its byte order mark starts with UTF-16's
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    """The file's text (a UTF-8 byte order mark is dropped), or None and the problem."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return None, [Problem(file, 0, f"{file} is saved as {name}; deid reads UTF-8", SAVE_AS_UTF8)]
    if b"\0" in raw:  # valid UTF-8, but no text file holds it: UTF-16 without a byte order mark, or binary
        line = raw.count(b"\n", 0, raw.index(b"\0")) + 1
        return None, [
            Problem(file, line, f"a NUL byte at line {line}: the file is UTF-16 or not text", SAVE_AS_UTF8)
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(
                file,
                line,
                f"not UTF-8: the byte at line {line}, column {column} is not valid UTF-8 "
                "(the file is in another encoding, such as Latin-1 or Windows-1252)",
                SAVE_AS_UTF8,
            )
        ]
    return text, []


def refusals(text: str, file: str) -> list[Problem]:
    """Every refused construct of the text (at most MAX_REFUSALS), from the parser's events only.

    Raises yaml.YAMLError for text that is not YAML, as the parser finds it."""
    found: list[Problem] = []
    for problem in _scan(text, file):
        if problem in found:
            continue  # `[*a, *a, *a]`: one line, one problem
        if len(found) == MAX_REFUSALS:
            found.append(
                Problem(file, problem.line, f"and more from line {problem.line} on: fix the ones above first")
            )
            break
        found.append(problem)
    return found


def _scan(text: str, file: str) -> Iterator[Problem]:
    match = _BIDI_CONTROLS.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        yield Problem(
            file,
            line,
            f"invisible bidirectional control character U+{ord(match.group()):04X} at line {line}: it makes "
            "the text display differently from what it says",
            "delete it (your editor may show it only with invisible characters turned on)",
        )
        return
    depth = 0
    for event in yaml.parse(text, Loader=LOADER):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            yield Problem(
                file, line, f"alias *{event.anchor}: YAML anchors and aliases are not allowed", NOT_REFERENCES
            )
            continue
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            yield Problem(
                file,
                line,
                f"anchor &{event.anchor}: YAML anchors and aliases are not allowed",
                NOT_REFERENCES,
            )
        tag = getattr(event, "tag", None)
        if isinstance(event, yaml.NodeEvent) and tag is not None:
            yield Problem(
                file,
                line,
                f"explicit tag {_spelled(tag)} is not allowed",
                "remove the tag: deid's files hold text, numbers, true/false, lists and mappings "
                "(quote a value to make it text)",
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                yield Problem(
                    file,
                    line,
                    f"nested more than {MAX_DEPTH} levels deep",
                    "deid's files need a few levels (tables, columns, a rule, its params): flatten it",
                )
                return  # nothing deeper is read
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _spelled(tag: str) -> str:
    """A tag as it is usually written: tag:yaml.org,2002:float is !!float."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """YAML's reader refuses control characters; say which, and where."""
    line = text.count("\n", 0, exc.position) + 1
    character = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    fix = "delete it"
    if character == 0:
        fix += " (NUL characters usually mean the file is UTF-16 or not text: save it as UTF-8)"
    kind = "control character" if unicodedata.category(chr(character)) == "Cc" else "character"
    return Problem(file, line, f"{kind} U+{character:04X} is not allowed in YAML (line {line})", fix)
