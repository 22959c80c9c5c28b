"""How hard validation looks: sample sizes and thresholds, with defaults sized for a nightly run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    # Leak check (a): rows per table matched by primary key between production and the working copy.
    sample_rows: int = 1000
    # Leak check (a): look for the sampled scrubbed values in the whole of production's column (one scan of
    # the production table per table with such columns). Off: only the same-row comparison runs.
    search_production: bool = True
    # PII scan (b): rows per table read from the kept text columns (None: every row).
    pii_scan_rows: int | None = 100_000
    # PII scan (b): a kept column fails when more of its rows than this match one pattern.
    pii_max_hits: int = 0
    # Free text (c): rows per kept text column whose tokens are compared with production's identifiers.
    free_text_rows: int | None = 20_000
    # Free text (c): a kept column fails when more distinct production identifiers than this occur in it.
    free_text_max_hits: int = 0


def parse_validation(source, path: tuple, spec) -> tuple[Settings, list]:
    """A database's `validation:` mapping in deid.yaml (any of the fields above); unknown keys are errors.

    Row limits take a whole number ≥ 1, or `all` (every row: slower, but nothing goes unread); thresholds a
    whole number ≥ 0; search_production true or false.
    """
    from dataclasses import fields, replace

    if spec is None:
        return Settings(), []
    if not isinstance(spec, dict):
        return Settings(), [
            source.problem(path, "validation must be a mapping", "e.g. validation: {sample_rows: 5000}")
        ]
    names = tuple(f.name for f in fields(Settings))
    problems = source.unknown_keys(path, spec, names, where=f"{'.'.join(map(str, path))}")
    values = {}
    for key, value in spec.items():
        if key not in names:
            continue
        checked, fix = _setting(key, value)
        if fix:
            problems.append(source.problem((*path, key), f"validation.{key}: {fix}", ""))
        else:
            values[key] = checked
    return replace(Settings(), **values), problems


def _setting(key: str, value) -> tuple[object, str]:
    """(value, "") when `value` suits the field `key`, else (None, what it must be)."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    if key == "search_production":
        return (value, "") if isinstance(value, bool) else (None, "must be true or false")
    if key in ("pii_scan_rows", "free_text_rows"):
        if value == "all":
            return None, ""
        return (value, "") if whole and value >= 1 else (None, "must be a whole number ≥ 1, or all")
    if key == "sample_rows":
        return (value, "") if whole and value >= 1 else (None, "must be a whole number ≥ 1")
    return (value, "") if whole and value >= 0 else (None, "must be a whole number ≥ 0")
