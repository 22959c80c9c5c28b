"""`deid scan DATABASE`: sample production read-only, classify every column, and optionally draft a rule file.

What leaves production is counts (and, for documents, key paths): the report names a class, a confidence and
evidence such as `content: email 212/250 sampled`, never a value. The draft is checked with lint itself
(load_rules + coverage.check); a column lint objects to moves on to its next candidate until the file is
clean.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from deid import names
from deid.classify import Evidence, Suspicion, classify
from deid.classify.content import document_paths, sensitive_paths
from deid.classify.propose import Rule, candidates
from deid.classify.yamlout import comment, flow, scalar
from deid.rules.model import Policy
from deid.schema import Column, Kind, Schema, Table
from deid.transformers.dictionaries import entries

DEFAULT_ROWS = 1000


@dataclass
class ColumnScan:
    table: Table
    column: Column
    suspicion: Suspicion
    evidence: Evidence | None
    paths: dict[str, str]  # sensitive document path -> class
    partition_key: bool = False

    @property
    def key(self) -> str:
        return names.column_key(self.table.qualified, self.column.name)


@dataclass
class ScanResult:
    schema: Schema
    columns: list[ColumnScan]
    large_objects: int = 0


def sample(connection: sa.Connection, schema: Schema, sampler, rows: int = DEFAULT_ROWS) -> ScanResult:
    """Classify every column of every rule table from its name, type and a sample of at most `rows` rows."""
    first = frozenset(v.lower() for v in entries("first_name"))
    last = frozenset(v.lower() for v in entries("last_name"))
    out = []
    for table in schema.rule_tables:
        counts = sampler.text_counts(connection, table, table.columns, rows, sorted(first), sorted(last))
        for name, found in sampler.date_counts(connection, table, table.columns, rows).items():
            counts.setdefault(name, {}).update(found)
        for column in table.columns:
            found = counts.get(column.name)
            evidence = None
            if found is not None:
                evidence = Evidence(
                    found.get("sampled", 0), {k: v for k, v in found.items() if k != "sampled"}
                )
                if column.kind is Kind.JSON or found.get("document", 0):
                    texts = sampler.documents(connection, table, column, rows)
                    evidence.paths = document_paths(texts, first, last)
            suspicion = classify(column, table, evidence)
            paths = sensitive_paths(evidence) if evidence and evidence.paths else {}
            in_partition_key = column.name in table.partition_key
            out.append(ColumnScan(table, column, suspicion, evidence, paths, in_partition_key))
    return ScanResult(schema, out, sampler.large_objects(connection))


def report(result: ScanResult) -> list[str]:
    """One line per column: `table.column  class  confidence  evidence` (counts and pattern names only)."""
    lines = []
    width = max((len(c.key) for c in result.columns), default=10)
    for c in result.columns:
        s = c.suspicion
        cls = s.cls or "-"
        facts = "; ".join(s.evidence) if s.cls else ("; ".join(s.evidence) or "no identifier suspected")
        lines.append(f"{c.key:<{width}}  {cls:<32}  {s.confidence or '-':<6}  {comment(facts)}")
    if result.large_objects:
        lines.append(
            f"large objects: {result.large_objects} (they belong to no column; the draft drops them)"
        )
    return lines


# --- the draft ---------------------------------------------------------------------------------------------


def draft(result: ScanResult, database: str, policy: Policy, folder: Path) -> tuple[str, list]:
    """A rule file for every table and column, and the lint problems left in it (none, unless no candidate
    of some column satisfies lint)."""
    from deid.errors import RuleProblems
    from deid.rules.coverage import check
    from deid.rules.load import load_rules

    options = {
        c.key: candidates(c.suspicion, c.column, c.table, policy, c.paths, c.partition_key)
        for c in result.columns
    }
    chosen = {key: 0 for key in options}
    triggers: dict[str, dict[str, object]] = {}
    text = ""
    for _ in range(12):
        rules = _follow_foreign_keys(result, {k: options[k][i] for k, i in chosen.items()})
        text, lines = render(result, database, policy.name, rules, triggers)
        # beside the target, so that a policies/ folder there is the one lint reads
        with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".deid-scan-", suffix=".yaml") as tmp:
            tmp.write(text)
            tmp.flush()
            try:
                problems = check(load_rules(tmp.name), result.schema)
            except RuleProblems as exc:
                problems = exc.problems
        if not problems:
            return text, []
        moved = False
        for problem in problems:
            owner = lines.get(problem.line)
            if owner is None:
                continue
            kind, key = owner
            if kind == "table":
                moved |= _quiet_triggers(result, key, triggers)
                continue
            key = _parent_of(result, key) or key
            if chosen[key] < len(options[key]) - 1:
                chosen[key] += 1
                moved = True
        if not moved:
            break
    return text, list(problems)


def _quiet_triggers(result: ScanResult, table_key: str, triggers: dict[str, dict[str, object]]) -> bool:
    """Decide the table's triggers the way lint asks: recompute a BEFORE ROW trigger (it then derives from
    scrubbed values), declare any other silent for review."""
    table = result.schema.table(table_key)
    if table is None or table_key in triggers:
        return False
    decided: dict[str, object] = {}
    for t in table.triggers:
        if not t.fires_on_rewrite:
            continue
        if t.row and t.timing == "before":
            decided[t.name] = "recompute"
        else:
            decided[t.name] = {"silent": f"deid scan: a {t.timing} trigger; review what {t.function} writes"}
    triggers[table_key] = decided
    return bool(decided)


def _parent_of(result: ScanResult, column_key: str) -> str | None:
    """The key column a foreign-key column follows (its rule is the parent's), or None."""
    for c in result.columns:
        if c.key != column_key:
            continue
        for fk in c.table.foreign_keys:
            if c.column.name in fk.columns:
                ref = fk.ref_columns[fk.columns.index(c.column.name)]
                parent = names.column_key(result.schema.rule_table_of(fk.ref_table), ref)
                return _parent_of(result, parent) or parent
    return None


def _follow_foreign_keys(result: ScanResult, rules: dict[str, Rule]) -> dict[str, Rule]:
    """A referencing column gets exactly the rule of the key it references, or the references break."""
    out = dict(rules)
    for key in rules:
        parent = _parent_of(result, key)
        if parent is not None and parent in rules:
            rule = rules[parent]
            if isinstance(rule, dict) and rule.get("transformer") == "keep":
                rule = {"transformer": "keep", "reason": "references a key, kept like it"}
            out[key] = rule
    return out


def render(
    result: ScanResult,
    database: str,
    policy: str,
    rules: dict[str, Rule],
    triggers: dict[str, dict[str, object]] | None = None,
) -> tuple[str, dict[int, tuple[str, str]]]:
    """The rule file's text, and which table or column each line is for (to map lint's problems back)."""
    out = [
        "# Drafted by `deid scan`: every column classified by name, type and a production sample. Review",
        "# each line (its comment is the evidence: counts and pattern names, never a value) before merging.",
        "version: 1",
        f"database: {scalar(database)}",
        f"policy: {scalar(policy)}",
    ]
    if result.large_objects:
        out.append("large_objects: drop   # the database holds large objects; they belong to no column")
    out.append("tables:")
    owners: dict[int, tuple[str, str]] = {}
    by_table: dict[str, list[ColumnScan]] = {}
    for c in result.columns:
        by_table.setdefault(c.table.qualified, []).append(c)
    for table_key, columns in by_table.items():
        out.append(f"  {scalar(table_key)}:")
        owners[len(out)] = ("table", table_key)
        decided = (triggers or {}).get(table_key)
        if decided:
            out.append(f"    triggers: {flow(decided)}")
        out.append("    columns:")
        for c in columns:
            rule = rules[c.key]
            s = c.suspicion
            note = f"  # {s.cls} {s.confidence}: {'; '.join(s.evidence)}" if s.cls else ""
            out.append(f"      {scalar(c.column.name)}: {flow(rule)}{comment(note)}")
            owners[len(out)] = ("column", c.key)
    return "\n".join(out) + "\n", owners


# --- the command -------------------------------------------------------------------------------------------


def scan_database(config, database: str, rows: int, write: str | None, say=print) -> int:
    """`deid scan`: sample production read-only, print the report, write the draft when asked."""
    from deid.backends import backend_for
    from deid.db import connect_readonly

    db = config.database(database)
    backend = backend_for(db.engine)
    engine = connect_readonly(config.settings().connection(db.production))
    try:
        with engine.connect() as connection:
            schema = backend.introspect(connection, database)
            result = sample(connection, schema, backend.content_sampler(), rows)
    finally:
        engine.dispose()
    for line in report(result):
        say(line)
    if write:
        target = Path(write)
        policy = _policy(config, database, target)
        text, problems = draft(
            result, database, policy, target.parent if target.parent.is_dir() else Path(".")
        )
        target.write_text(text)
        flagged = sum(1 for c in result.columns if c.suspicion.cls)
        tables, columns = len(schema.rule_tables), len(result.columns)
        say(f"wrote {target} ({tables} tables, {columns} columns, {flagged} judged)")
        if problems:
            from deid.errors import RuleProblems

            raise RuleProblems(problems, appendix=f"{target} was written; fix these lines by hand")
    return 0


def _policy(config, database: str, target: Path) -> Policy:
    """The policy the database's rule file names (its policies folder first), else the default one."""
    import yaml

    from deid.rules.load import DEFAULT_POLICY, load_policy, policy_dir

    name, folder = DEFAULT_POLICY, target.parent
    try:
        existing = config.rules_path(database)
        data = yaml.safe_load(existing.read_text())
        if isinstance(data, dict) and isinstance(data.get("policy"), str):
            name, folder = data["policy"], existing.parent
    except (OSError, yaml.YAMLError):
        pass
    return load_policy(name, policy_dir(folder))
