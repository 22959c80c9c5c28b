"""What a failed rules-against-schema check tells the owner to run next: `deid diff` when a schema snapshot
is committed beside the rule file (it shows what changed since), else how to write that snapshot first."""

from __future__ import annotations

from pathlib import Path

from deid.errors import RuleProblems


def snapshot_path(rules_path: Path | str) -> Path:
    """rules/<db>.yaml -> rules/<db>.schema.json, where `deid lint` and `deid diff` look for the snapshot."""
    return Path(rules_path).with_suffix(".schema.json")


def drift_hint(database: str, rules_path: Path | str, shown: str | None = None) -> str:
    """`shown`: the rule file's path as the owner knows it (deid.yaml's `rules`, relative to the config)."""
    snapshot = snapshot_path(rules_path)
    name = str(snapshot_path(shown)) if shown else str(snapshot)
    if snapshot.exists():
        return f"Run `deid diff {database}` to see what changed in the schema since {name}."
    return (
        f"No schema snapshot to compare with: write one with `deid schema {database} --out {name}` "
        f"and commit it, so that `deid diff {database}` can show what changes from then on."
    )


def with_drift_hint(
    error: RuleProblems, database: str, rules_path: Path | str, shown: str | None
) -> RuleProblems:
    """The same problems, with the hint after the appendix (the paste block of unclassified columns), when
    some of them are drift: a rule problem of another kind (a keep without a reason) is no schema change."""
    if not any(p.drift for p in error.problems):
        return error
    hint = drift_hint(database, rules_path, shown)
    appendix = f"{error.appendix}\n\n{hint}" if error.appendix else hint
    return RuleProblems(error.problems, appendix=appendix)
