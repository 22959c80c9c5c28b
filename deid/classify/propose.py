"""From a suspicion to rule candidates, best first, each one that a column of this type can take.

A rule is what a rule file says for a column: "keep", or a mapping with class/transformer/params/reason.
Candidates that the transformer itself refuses for the column (its kind, length, uniqueness, NOT NULL) are
left out here; `deid scan --write` then checks the whole draft with lint and moves a column on to its next
candidate when lint still objects, so checks that lint gains later are honoured without changes here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deid.classify import Suspicion
from deid.rules.model import Policy
from deid.rules.targets import target_for
from deid.schema import Column, Kind, Table
from deid.transformers import UnknownTransformer, get
from deid.transformers.base import ParamError
from deid.transformers.common import text_limit

Rule = str | dict[str, Any]
KEEP: Rule = "keep"
_INTEGER_DIGITS = {"smallint": 4, "integer": 9, "bigint": 18}
_JSON_PATH_TRANSFORMERS = {
    "email": "fake.email",
    "phone": "fake.phone",
    "fax": "fake.phone",
    "name": "fake.name",
    "first_name": "fake.first_name",
    "last_name": "fake.last_name",
    "url": "fake.url",
    "postal_address": "fake.street_address",
}


def keep_because(reason: str) -> Rule:
    return {"transformer": "keep", "reason": reason}


def candidates(
    s: Suspicion,
    column: Column,
    table: Table,
    policy: Policy,
    paths: Mapping[str, str] | None = None,
    partition_key: bool = False,
) -> list[Rule]:
    """Rules for the column, best first; the last one always applies (a keep with a reason at worst)."""
    if column.generated:
        return [keep_because("generated column: the database recomputes it from the columns it reads")]
    if s.cls is None:
        # lint may still find the name sensitive (a catalogue's `name`): then the keep says why it is safe
        why = "; ".join(s.evidence) or "no identifier format in the sampled values"
        return [KEEP, keep_because(f"judged not to hold an identifier ({why}): review")]
    if s.cls == "key":
        return [keep_because("a key: it identifies a row, not a person")]
    if partition_key:
        return [
            keep_because(
                f"partition key suspected to hold {s.cls.replace('_', ' ')}: the scrub must not move rows "
                "between partitions; review"
            )
        ]
    out = [r for r in _preferred(s.cls, column, policy, paths or {}) if applies(r, column, table, policy)]
    out += [r for r in _fallbacks(column, table) if applies(r, column, table, policy)]
    out.append(keep_because(f"deid scan found no transformer for this {column.data_type}: review"))
    unique: list[Rule] = []
    for rule in out:
        if rule not in unique:
            unique.append(rule)
    return unique


def _preferred(cls: str, column: Column, policy: Policy, paths: Mapping[str, str]) -> list[Rule]:
    if cls == "json":
        spec = {
            p: _JSON_PATH_TRANSFORMERS.get(
                c, {"transformer": "hash", "params": {"format": "hex", "length": 32}}
            )
            for p, c in paths.items()
            if p.startswith("$") and "[*]" not in p and "[?]" not in p
        }
        whole = len(spec) == len(paths) and spec
        return [{"transformer": "json", "params": {"paths": spec}}] if whole else []
    if cls == "date_of_birth":
        if column.kind in (Kind.DATE, Kind.TIMESTAMP):
            return [
                {"transformer": "shift_date", "params": {"days": 180}},
                {"transformer": "truncate_date", "params": {"unit": "year"}},
            ]
        return []
    if cls == "zip":
        return [{"transformer": "generalize_zip", "params": {"pad": True}}, {"transformer": "generalize_zip"}]
    if cls in ("login", "person_number"):
        return [{"transformer": "hash", "params": {"format": "hex", "length": 32}}]
    if cls == "free_text":
        return [
            {"transformer": "null"},
            {"transformer": "redact", "params": {"keep_start": 0, "keep_end": 0}},
        ]
    if policy.get(cls) is not None:
        return [{"class": cls}]
    return []


def _fallbacks(column: Column, table: Table) -> list[Rule]:
    kind = column.kind
    out: list[Rule] = []
    if kind is Kind.TEXT:
        limit = text_limit_of(column)
        length = 32 if limit is None else min(64, limit)
        if length >= 8:
            out.append({"transformer": "hash", "params": {"format": "hex", "length": max(length, 8)}})
    if kind is Kind.INTEGER:
        digits = _INTEGER_DIGITS.get(column.data_type, 9)
        out.append({"transformer": "hash", "params": {"format": "digits", "pattern": "#" * digits}})
    if kind in (Kind.NUMERIC, Kind.FLOAT, Kind.INTEGER):
        out.append({"transformer": "noise", "params": {"relative": 0.1}})
    if kind in (Kind.DATE, Kind.TIMESTAMP):
        out.append({"transformer": "shift_date", "params": {"days": 180}})
    if column.nullable:
        out.append({"transformer": "null"})
    if kind is Kind.JSON:
        out.append({"transformer": "constant", "params": {"value": "{}"}})
    if kind is Kind.TEXT:
        out.append({"transformer": "redact", "params": {"keep_start": 0, "keep_end": 0}})
    return out


def text_limit_of(column: Column) -> int | None:
    from deid.transformers.base import Target

    return text_limit(Target(column=column, value="", kind=column.kind, sql_type=column.data_type))


def resolve(rule: Rule, policy: Policy) -> tuple[str, Mapping[str, Any]]:
    """(transformer, given params) of a rule, a class resolved through the policy."""
    if rule == KEEP:
        return "keep", {}
    assert isinstance(rule, dict)
    if "class" in rule:
        found = policy.get(rule["class"])
        return found.transformer, {**found.params, **rule.get("params", {})}
    return rule["transformer"], rule.get("params", {})


def applies(rule: Rule, column: Column, table: Table, policy: Policy) -> bool:
    """Whether the transformer accepts its parameters and can produce values for the column."""
    name, given = resolve(rule, policy)
    try:
        transformer = get(name)
        params = transformer.parse_params(given)
    except (ParamError, KeyError, LookupError, UnknownTransformer):
        return False
    if not transformer.rewrites:
        return True
    element_wise = column.kind is Kind.ARRAY and transformer.name != "null"
    return transformer.cannot_apply(target_for(table, column, element_wise=element_wise), params) is None
