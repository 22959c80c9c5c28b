"""What sampled values say a column holds: counts per format, turned into findings.

`Evidence` holds counts only (how many sampled values matched which format, and per key path of a
document), never a value, so it can be printed, kept and compared in tests. Documents (json, and text or
xml holding them) are parsed in memory by `document_paths`, which keeps only paths and counts.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from deid.classify.name import HIGH, LOW, MEDIUM, Finding, _rule
from deid.classify.words import split_words
from deid.expect.pii import CARD, HEX_KEY, PATTERNS

# pattern -> (class, what it is called in reports); checked in this order
_IDENTIFYING = (
    ("email", "email"),
    ("ssn", "ssn"),
    ("card_number", "card_number"),
    ("phone", "phone"),
    ("ipv4", "ip_address"),
    ("ipv6", "ip_address"),
    ("url", "url"),
)
_FREE_TEXT_PATTERNS = ("email", "ssn", "card_number", "phone")
MOSTLY = 0.5  # share of sampled values for "the column holds X"
_PY = {name: re.compile(regex) for name, regex in PATTERNS.items()}
_HEX_KEY = re.compile(HEX_KEY)  # validation's and the SQL sample's: UUIDs and hex keys are never phones
_CARD = re.compile(CARD)
_PATH_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DIGITS = re.compile(r"[0-9]{3}")


@dataclass
class Evidence:
    """Counts for one column: values sampled, values matching each pattern, and per document path the
    values seen there and those matching each pattern."""

    sampled: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    paths: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> {"seen": n, pattern: n}

    def share(self, pattern: str) -> float:
        return self.hits.get(pattern, 0) / self.sampled if self.sampled else 0.0


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def value_patterns(text: str, first_names: frozenset[str], last_names: frozenset[str]) -> set[str]:
    """The patterns one scalar value inside a document matches (the same as the SQL counts, in Python)."""
    found = set()
    if _PY["email"].search(text):
        found.add("email")
    cleaned = _HEX_KEY.sub(" ", text)
    if _PY["ssn"].search(cleaned):
        found.add("ssn")
    if _PY["phone"].search(cleaned):
        found.add("phone")
    if any(_luhn(re.sub("[^0-9]", "", m.group(0))) for m in _CARD.finditer(cleaned)):
        found.add("card_number")
    words = text.lower().split()
    if len(words) == 2 and words[0] in first_names and words[1] in last_names:
        found.add("person_full")
    elif len(words) == 1 and (words[0] in first_names or words[0] in last_names):
        found.add("person_part")
    return found


def document_paths(
    texts: Iterable[str], first_names: frozenset[str], last_names: frozenset[str]
) -> dict[str, dict[str, int]]:
    """path -> counts, over the documents (JSON, or XML element paths); unparseable texts are skipped."""
    paths: dict[str, dict[str, int]] = {}
    for text in texts:
        for path, value in _leaves(text):
            counts = paths.setdefault(path, {"seen": 0})
            counts["seen"] += 1
            for pattern in value_patterns(value, first_names, last_names):
                counts[pattern] = counts.get(pattern, 0) + 1
    return paths


def _leaves(text: str) -> Iterable[tuple[str, str]]:
    stripped = text.lstrip()
    if stripped.startswith("<"):
        try:
            root = ET.fromstring(stripped)
        except ET.ParseError:
            return []
        return _xml_leaves(root, "/" + _name(root.tag))
    try:
        document = json.loads(text)
    except ValueError:
        return []
    return _json_leaves(document, "$")


def _json_leaves(node, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _json_leaves(value, path + _step(key))
    elif isinstance(node, list):
        for item in node:
            yield from _json_leaves(item, path + "[*]")
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        yield path, str(node)
    elif node is None:
        yield path, ""


def _step(key: str) -> str:
    """One path step: `.key`, or `[?]` for a key _name will not write out (no transformer path names it)."""
    return "[?]" if (name := _name(key)) == "?" else f".{name}"


def _name(key) -> str:
    """A JSON key or XML tag as written in reports, or `?`: one that is not a plain word (an e-mail, a
    number, an id used as a key) may be a value itself, so it is never written out."""
    plain = isinstance(key, str) and _PATH_KEY.fullmatch(key) and len(key) <= 40 and not _DIGITS.search(key)
    return key if plain else "?"


def _xml_leaves(element: ET.Element, path: str) -> Iterable[tuple[str, str]]:
    children = list(element)
    if not children:
        yield path, (element.text or "").strip()
    for child in children:
        yield from _xml_leaves(child, f"{path}/{_name(child.tag)}")


def by_content(evidence: Evidence | None, date_like: bool = False) -> list[Finding]:
    """Findings from the counts, strongest first; empty when the values say nothing."""
    if evidence is None or not evidence.sampled:
        return []
    n = evidence.sampled
    out = []
    for pattern, cls in _IDENTIFYING:
        hits = evidence.hits.get(pattern, 0)
        if hits and hits / n >= MOSTLY:
            out.append(Finding(cls, HIGH, f"content: {pattern} {hits}/{n} sampled"))
    if evidence.share("person_full") >= 0.3:
        out.append(Finding("name", HIGH, f"content: person name {evidence.hits['person_full']}/{n} sampled"))
    elif evidence.share("person_first") >= MOSTLY:
        out.append(Finding("first_name", MEDIUM, f"content: first name {evidence.hits['person_first']}/{n}"))
    elif evidence.share("person_last") >= MOSTLY:
        out.append(Finding("last_name", MEDIUM, f"content: last name {evidence.hits['person_last']}/{n}"))
    if date_like and evidence.share("birth_range") >= MOSTLY:
        out.append(
            Finding("date_of_birth", MEDIUM, f"content: birth-range dates {evidence.hits['birth_range']}/{n}")
        )
    if not out:
        mentioned = {p: evidence.hits.get(p, 0) for p in _FREE_TEXT_PATTERNS if evidence.hits.get(p, 0)}
        if mentioned:
            counts = ", ".join(f"{p} {k}/{n}" for p, k in mentioned.items())
            out.append(
                Finding(
                    "free_text", MEDIUM if sum(mentioned.values()) > 1 else LOW, f"content: {counts} sampled"
                )
            )
    if evidence.paths:
        flagged = sensitive_paths(evidence)
        if flagged:
            listed = ", ".join(f"{p} {cls}" for p, cls in flagged.items())
            out.append(Finding("json", HIGH, f"content: document keys {listed}"))
    return out


def sensitive_paths(evidence: Evidence) -> dict[str, str]:
    """Document path -> class, for paths whose values mostly match a format or whose key is named like one."""
    out = {}
    for path, counts in sorted(evidence.paths.items()):
        seen = counts.get("seen", 0)
        cls = None
        for pattern, pclass in (("email", "email"), ("ssn", "ssn"), ("card_number", "card_number"),
                                ("phone", "phone"), ("person_full", "name")):  # fmt: skip
            if seen and counts.get(pattern, 0) / seen >= MOSTLY:
                cls = pclass
                break
        if cls is None:
            key = re.split(r"[./\[\]\"*]+", path.strip("$/"))[-1] or path
            named = _rule(split_words(key))
            if named is not None and named.cls not in ("date_of_birth", "zip"):
                cls = named.cls
        if cls is not None:
            out[path] = cls
    return out
