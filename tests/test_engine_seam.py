"""The engine seam: nothing outside deid/backends/ names an engine or speaks one engine's SQL, and callers
ask a backend's capabilities instead.

The guard is absolute: no line of deid/, dags/ or plugins/ outside deid/backends/ may match ENGINE_WORDS,
except the few words of deid's own vocabulary that an engine shares, each allowed by name in one file with
its reason (DEID_VOCABULARY). Adding an engine is a new package under deid/backends/ plus its tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re

import pytest

from deid.backends import Capabilities, SequenceKind, TriggerSilencing, backend_for
from deid.errors import ConfigError
from deid.plan import build_plan
from deid.rules.model import Policy, RuleFile
from deid.schema import Schema
from deid.steps.context import work_name
from deid.steps.copies import check_staging_name
from tests.conftest import ROOT

SCOPE = ("deid", "dags", "plugins")
TEXT = (".py", ".sql", ".md", ".yaml", ".yml", ".json", ".toml", ".cfg", ".txt", ".html", ".j2")  # not caches
# engine names and drivers, and SQL only one engine speaks (casts, catalogs, its own functions and settings)
ENGINE_WORDS = re.compile(
    r"postgres|psycopg|libpq|plpgsql|mysql|mariadb|sqlite|\bpg_\w|::[a-z]|session_replication_role|set_config"
    r"|regclass|jsonb|\bilike\b|\blateral\b|\bunnest\b|\$\$|auto_increment|get_lock|advisory_"
    r"|regexp_\w+\(|filter \(where|tablesample|date_trunc|make_interval|to_char\(|convert_to|string_agg"
    r"|generate_series|[gs]et_byte|int4send|timestamptz|\bbytea\b|group_concat|engine=innodb|load data"
    r"|on duplicate key|show create",
    re.IGNORECASE,
)


# Words of deid's own vocabulary that an engine happens to share, allowed in one file each, with the reason.
# Everything else on such a line is still checked. Keep this short: a new entry needs a reason as good.
DEID_VOCABULARY: dict[str, tuple[tuple[str, str], ...]] = {
    "deid/rules/condition.py": (
        (r"(?i)\bilike\b", "ILIKE is a word of the rule language (docs/rules.md); each engine renders it"),
        (r'_READER = "postgres"', "the sqlglot reader whose notation the rule language is written in"),
    ),
    "deid/rules/spec.py": ((r"(?i)\bilike\b", "the rule language's ILIKE, described for rule authors"),),
    "deid/schema.py": (
        (
            r'BYTEA = "bytea"',
            "the binary kind's name, in every schema digest since the first (renaming it "
            "would change the digest of every copy with a binary column)",
        ),
    ),
    "deid/demo/local_airflow.py": (
        (r"sqlite:///", "the local Airflow UI's own metadata database, not a database deid copies"),
    ),
}


def _unallowed(relative: str, line: str) -> str:
    for pattern, _reason in DEID_VOCABULARY.get(relative, ()):
        line = re.sub(pattern, " ", line)
    return line


def engine_lines() -> dict[str, int]:
    """Per file outside deid/backends/, the lines that name an engine or use one engine's SQL."""
    found = {}
    for top in SCOPE:
        for path in sorted((ROOT / top).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if not path.is_file() or relative.startswith("deid/backends/") or path.suffix not in TEXT:
                continue
            text = path.read_text(errors="replace")
            count = sum(1 for line in text.splitlines() if ENGINE_WORDS.search(_unallowed(relative, line)))
            if count:
                found[relative] = count
    return found


def test_no_file_outside_the_backends_names_an_engine_or_speaks_one_engines_sql():
    found = engine_lines()
    assert not found, (
        "engine-specific lines outside deid/backends/ (file: lines); move them behind the backend "
        f"(deid/backends/<engine>/), or ask its capabilities: {found}"
    )


def test_the_guard_sees_an_engine_name_and_engine_sql():
    for line in (
        "import psycopg",
        "x::text",
        "SELECT pg_backend_pid()",
        "SET session_replication_role",
        "ENGINE=InnoDB AUTO_INCREMENT=5",
    ):
        assert ENGINE_WORDS.search(line), line
    for line in ("values[::2]", "a public schema", "the pages of a pager"):
        assert not ENGINE_WORDS.search(line), line


def test_each_allowed_word_of_deids_vocabulary_is_still_there_and_alone_on_its_line():
    """An allowance that matches nothing any more is dropped, so the list never outgrows what it excuses."""
    for relative, allowed in DEID_VOCABULARY.items():
        text = (ROOT / relative).read_text()
        for pattern, _reason in allowed:
            assert re.search(pattern, text), f"{relative}: nothing matches {pattern!r} any more: drop it"
    assert ENGINE_WORDS.search(_unallowed("deid/schema.py", 'BYTEA = "bytea"  # postgres'))
    assert not ENGINE_WORDS.search(_unallowed("deid/schema.py", 'BYTEA = "bytea"'))


def test_capabilities_claim_nothing_by_default_and_the_default_engine_claims_what_steps_need():
    nothing = Capabilities()
    assert not (
        nothing.transactional_ddl or nothing.database_rename or nothing.instant_clone or nothing.schemas
    )
    assert (nothing.sequence_kind, nothing.trigger_silencing) == (SequenceKind.NONE, TriggerSilencing.NONE)
    postgresql = backend_for("postgresql").capabilities
    assert postgresql.database_rename and postgresql.instant_clone
    assert postgresql.trigger_silencing is TriggerSilencing.SESSION


def test_a_staging_name_is_checked_against_the_staging_engines_name_limit():
    backend = backend_for("postgresql")
    most = backend.capabilities.max_identifier_bytes
    suffix = len(work_name("", dt.date(2026, 1, 1)).encode())  # the longest suffix deid adds
    url = "postgresql://deid@staging/postgres"
    check_staging_name("s" * (most - suffix), url)
    with pytest.raises(ConfigError, match=rf"must be 1 to {most - suffix} bytes long.*at most {most} bytes"):
        check_staging_name("s" * (most - suffix + 1), url)
    with pytest.raises(ConfigError, match="must be 1 to"):
        check_staging_name("", url)


def test_the_plans_session_preamble_is_the_engines():
    schema = Schema("learners", "postgresql", ())
    plan = build_plan(RuleFile("learners.yaml", "learners", Policy("p", "", "p.yaml", ()), ()), schema)
    assert plan.preamble == backend_for("postgresql").scrub_preamble()
    assert plan.preamble, "the engine silences triggers per session, so its plan says how"


def test_a_column_field_added_later_leaves_the_digests_of_schemas_without_it_as_they_were():
    """Column.on_update came with the second engine; a copy validated before the upgrade must still publish
    after it, so the digest of a schema whose columns leave it unset is the one it had without the field."""
    schema = Schema.from_json((ROOT / "tests/fixtures/rules/shop.schema.json").read_text())
    structure = dataclasses.asdict(schema)
    structure["server_version"] = ""
    for table in structure["tables"]:
        table["row_estimate"] = 0
        for column in table["columns"]:
            del column["on_update"]
    before = hashlib.sha256(json.dumps(structure, sort_keys=True).encode()).hexdigest()
    assert schema.digest == before
    table = schema.tables[0]
    stamped = dataclasses.replace(table.columns[0], on_update="current_timestamp()")
    changed = dataclasses.replace(
        schema, tables=(dataclasses.replace(table, columns=(stamped, *table.columns[1:])), *schema.tables[1:])
    )
    assert changed.digest != schema.digest
