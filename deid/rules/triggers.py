"""Rules against a table's triggers: what the scrub, which silences them, must know of each.

A column a BEFORE ROW trigger derives from a column the scrub rewrites (a tsvector built from a name) would
keep what production's trigger computed from the real value: it needs a transformer of its own, or the
trigger must `recompute` during the scrub. A trigger whose effects deid cannot read (another language,
dynamic SQL) or that writes other tables must be decided in the rule file, recompute or silent with a
reason. What a trigger sets is read by the engine's backend (its introspection).
"""

from __future__ import annotations

from deid import names
from deid.errors import Problem
from deid.rules.model import TableRule
from deid.schema import Table
from deid.suggest import did_you_mean
from deid.transformers import get


def check_triggers(f: str, rule: TableRule, table: Table) -> list[Problem]:
    """The scrub silences triggers. A column a trigger derives from a column the scrub rewrites would keep
    what production's trigger computed from the real value, so it needs a rule that rewrites it, or the
    trigger must recompute it during the scrub; a trigger whose effects deid cannot read must be decided."""
    problems = []
    by_name = {t.name: t for t in table.triggers}
    for declared in rule.triggers:
        trigger = by_name.get(declared.name)
        if trigger is None:
            hint = did_you_mean(declared.name, by_name)
            message = f"{rule.name} has no trigger {declared.name}.{hint}"
            problems.append(Problem(f, declared.line, message, "fix the name"))
        elif declared.action == "recompute" and not (trigger.row and trigger.timing == "before"):
            problems.append(
                Problem(
                    f,
                    declared.line,
                    f"trigger {declared.name} of {rule.name} is not a BEFORE ROW trigger: it cannot "
                    "recompute columns of the rows the scrub rewrites",
                    f'write {declared.name}: {{silent: "why its effects hold no identifier"}}',
                )
            )
    full = rule.copy == "full"
    rewritten = {c.name for c in rule.columns if full and get(c.transformer).rewrites}
    if not rewritten:
        return problems  # the scrub does not rewrite this table: no trigger would have fired
    for trigger in table.triggers:
        if not trigger.fires_on_rewrite or rule.trigger(trigger.name) is not None:
            continue
        if trigger.derives is None or trigger.writes_elsewhere:
            what = "deid cannot read what it sets" if trigger.derives is None else "it writes other tables"
            problems.append(
                Problem(
                    f,
                    rule.line,
                    f"trigger {trigger.name} on {rule.name} ({trigger.language or 'unknown'} function "
                    f"{trigger.function or '?'}) fires on the rows the scrub rewrites, and {what}; the scrub "
                    "silences it, so what it maintains would keep values computed from production's",
                    f"add to {rule.name}: triggers: {{{trigger.name}: recompute}} (it fires during the "
                    f'scrub, on scrubbed values) or {{{trigger.name}: {{silent: "why its effects hold no '
                    'identifier"}}',
                )
            )
            continue
        for derived in trigger.derives:
            used = sorted(set(derived.sources) & rewritten)
            crule = rule.column(derived.column)
            if not used or crule is None or get(crule.transformer).rewrites:
                continue
            problems.append(
                Problem(
                    f,
                    crule.line,
                    f"{names.column_key(rule.name, derived.column)} is set by trigger {trigger.name} from "
                    f"{', '.join(used)}, which the scrub rewrites: kept, it would keep what production's "
                    "trigger derived from the real values",
                    f"add to {rule.name}: triggers: {{{trigger.name}: recompute}} (deid fires it during the "
                    "scrub) or give the column a transformer",
                )
            )
    return problems
