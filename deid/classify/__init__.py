"""Which columns hold identifiers, judged by name, type and (when sampled) content.

`classify(column, table, evidence)` is the one entry point: lint's paste blocks call it without evidence,
`deid scan` with counts from a production sample. It returns a Suspicion: a class (a policy class, or one of
name.py's extras), a confidence and the value-free reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from deid.classify.content import Evidence, by_content
from deid.classify.name import HIGH, LOW, MEDIUM, Finding, by_name, is_catalogue
from deid.classify.words import split_words
from deid.schema import Column, Kind, Table

__all__ = ["HIGH", "LOW", "MEDIUM", "Evidence", "Suspicion", "classify"]

_PERSON_NAMES = ("name", "first_name", "last_name")
_RANK = {HIGH: 3, MEDIUM: 2, LOW: 1}
# Kept without a reason: nothing suspected; a key (it names a row, not a person); a ZIP code (a limited data
# set may keep it, 45 CFR 164.514(e)(2); the policy generalises it only where a rule says so).
_KEPT_FREELY = (None, "key", "zip")


@dataclass(frozen=True)
class Suspicion:
    cls: str | None  # None: nothing suggests an identifier
    confidence: str = ""
    evidence: tuple[str, ...] = ()

    @property
    def identifier(self) -> bool:
        """Whether keeping the column as is needs a reason (a key holds none, but is judged all the same)."""
        return self.cls is not None


def classify(column: Column, table: Table, evidence: Evidence | None = None) -> Suspicion:
    named = by_name(column, table)
    date_like = column.kind in (Kind.DATE, Kind.TIMESTAMP) and named is not None
    found = by_content(evidence, date_like=date_like)
    reasons = tuple(f.reason for f in ([named] if named else []) + found)
    if named is None and split_words(column.name) == ["name"] and is_catalogue(table):
        reasons = ("name: a catalogue's name, not a person's", *reasons)
    if named is not None and named.cls == "key":
        return Suspicion("key", HIGH, reasons)
    if named is None and _text_key(column, table, evidence):
        return Suspicion(
            "key", HIGH, (*reasons, f"content: uuid or hex key {_keys(evidence)}/{evidence.sampled} sampled")
        )
    if column.kind is Kind.JSON:
        document = next((f for f in found if f.cls == "json"), None)
        if document is not None:
            return Suspicion("json", HIGH, reasons)
    if named is not None and named.confidence == HIGH:
        return Suspicion(named.cls, HIGH, reasons)
    strongest = max(found, key=lambda f: _RANK[f.confidence], default=None)
    if strongest is not None and (named is None or _RANK[strongest.confidence] >= _RANK[named.confidence]):
        return Suspicion(strongest.cls, strongest.confidence, reasons)
    if named is not None:
        if _weak_name_without_names(named, evidence):
            return Suspicion(None, "", (*reasons, "content: no person names sampled"))
        return Suspicion(named.cls, named.confidence, reasons)
    return Suspicion(None, "", reasons)


def kept_identifier(column: Column, table: Table) -> Suspicion | None:
    """What lint asks a `reason:` for when the column is kept as is: a name (split into words) that suggests
    an identifier with medium or high confidence (see needs_reason)."""
    s = classify(column, table)
    return s if needs_reason(s) else None


def needs_reason(s: Suspicion) -> bool:
    """Keeping a column so judged needs a reason. Keys name rows, not people; a low-confidence guess (a
    `course_name`) would cost every owner a reason line for nothing, so neither needs one."""
    return s.cls not in _KEPT_FREELY and s.confidence in (HIGH, MEDIUM)


def _keys(evidence: Evidence) -> int:
    return max(evidence.hits.get("uuid", 0), evidence.hits.get("hex_key", 0))


def _text_key(column: Column, table: Table, evidence: Evidence | None) -> bool:
    """A text column of UUIDs or hex keys that is a primary, unique or foreign key: it names a row."""
    if evidence is None or not evidence.sampled or _keys(evidence) / evidence.sampled < 0.9:
        return False
    in_fk = any(column.name in fk.columns for fk in table.foreign_keys)
    return table.is_unique(column.name) or column.name in table.primary_key or in_fk


def _weak_name_without_names(named: Finding, evidence: Evidence | None) -> bool:
    """A low-confidence guess of a person's name that a sample with no dictionary name contradicts."""
    if named.confidence != LOW or named.cls not in _PERSON_NAMES or evidence is None or not evidence.sampled:
        return False
    person = sum(evidence.hits.get(p, 0) for p in ("person_full", "person_first", "person_last"))
    return person / evidence.sampled < 0.1
