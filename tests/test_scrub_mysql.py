"""The MySQL/MariaDB scrub (deid.backends.mysql.scrub) against a real server: the same table, rows, rules and
salt give the same values as on PostgreSQL for every transformer with a vector form; triggers stay silent and
come back; ON UPDATE columns, static rows and retries; emptied tables; what is refused."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.backends.mysql import scrub as mysql_scrub
from deid.backends.mysql import triggers_off
from deid.backends.scrubbing import Scrubbing
from deid.errors import TerminalError
from deid.rules.load import load_rules
from deid.rules.targets import target_for
from deid.steps.scrub import scrub_database
from deid.transformers import all_transformers
from tests.mysql_server import mysql_engine, mysql_server, mysql_url, run  # noqa: F401

SALT = "mysql-scrub-test-salt-not-a-secret"
ROWS = 60
ODD = ["a,b", 'say "hi"', "line\nbreak", "back\\slash", "it's", "", "Zoë 東京", "  padded  ", "\r\n", "50%"]

RATIOS = [0.1, 1e-7, 123456.789, -2.5]
SINGLES = [3.1, 0.2, 123456789.0, -1.5]  # float4: 3.1 is held as 3.0999999..., 123456789 as 123456792


def _born(i: int) -> dt.date | None:
    return None if i % 8 == 0 else dt.date(1950, 1, 1) + dt.timedelta(days=i * 397)


def _seen(i: int) -> dt.datetime:
    return dt.datetime(2020, 2, 29, 23, 59, 59) + dt.timedelta(hours=i * 31, microseconds=i * 120_000)


def _stamp(i: int) -> dt.datetime | None:
    return None if i % 5 == 0 else dt.datetime(2021, 3, 28, 1, 30) + dt.timedelta(days=i, seconds=i)


# (name, PostgreSQL type, MySQL type, the value of row i): the same value on both engines
PROTOTYPES = [
    ("int", "integer", "int", lambda i: None if i % 9 == 0 else i * 37 - 500),
    ("big", "bigint", "bigint", lambda i: 9_000_000_000 + i * 7919),
    ("flag", "boolean", "tinyint(1)", lambda i: None if i % 11 == 0 else i % 2),
    ("amount", "numeric(10,2)", "decimal(10,2)", lambda i: Decimal(f"{i * 13 - 300}.{i % 100:02d}")),
    ("ratio", "double precision", "double", lambda i: None if i % 7 == 0 else RATIOS[i % 4]),
    ("single", "real", "float", lambda i: SINGLES[i % 4]),
    ("born", "date", "date", _born),
    ("seen", "timestamp(6)", "datetime(6)", _seen),
    ("stamp", "timestamptz", "timestamp(6) NULL", _stamp),
    ("clock", "time", "time", lambda i: dt.time(i % 24, i % 60, 7)),
    ("email", "varchar(120)", "varchar(120)", lambda i: None if i % 10 == 0 else f"Person.{i}@Corp.example"),
    ("phone", "varchar(40)", "varchar(40)", lambda i: f"+1 (555) 010-{i:04d}"),
    ("zip", "varchar(10)", "varchar(10)", lambda i: f"{10000 + i * 1234 % 89999:05d}"),
    ("note", "text", "text", lambda i: ODD[i % len(ODD)] + ("" if i % 3 else f" #{i}")),
    ("code", "char(8)", "char(8)", lambda i: f"c{i}"),
    ("mood", "mood", "enum('ok','sad','meh')", lambda i: ["ok", "sad", "meh"][i % 3]),
    ("data", "bytea", "blob", lambda i: bytes([i, 0, 255, 39]) if i % 4 else None),
    ("doc", "json", "json", lambda i: json.dumps({"n": i, "s": ODD[i % len(ODD)]})),
]
CONSTANTS = {
    "int": "7", "big": "7", "flag": "1", "amount": "12.5", "ratio": "2.5", "single": "2.5",
    "born": "2001-02-03", "seen": "2001-02-03 04:05:06.5", "stamp": "2001-02-03 04:05:06",
    "clock": "04:05:06",
    "mood": "sad",
    "data": "\\x0102", "doc": '{"a": 1}',
}  # fmt: skip
# variants beyond each transformer's defaults: keyed on another column, other formats
VARIANTS = [
    ("shift_date", {"by": "id"}),
    ("noise", {"by": "id", "relative": 0.3}),
    ("hash", {"format": "digits", "pattern": "###-####"}),
    ("hash", {"format": "email"}),
    ("hash", {"length": 8}),
    ("truncate_date", {"unit": "week"}),
    ("fake.email", {"unique": False}),
    ("redact", {"keep_start": 2, "keep_end": 0, "mask": "#"}),
    ("generalize_zip", {"pad": True}),
    ("json", {"paths": {"$.s": "hash", "$.n": {"transformer": "redact", "params": {"keep_end": 0}}}}),
    ("json", {"paths": {"$.s": "fake.email", "$.x[0]": "null"}, "invalid": "empty"}),
]
# json needs paths (VARIANTS only), on documents and on text that is not JSON (the zip codes are: numbers)
JSON_PROTOS = ("doc", "note", "email", "code")
# transformers the comparison cannot cover, each for its reason
NOT_COMPARED = {"keep": "rewrites nothing"}


def _prototype_schema(pg: bool) -> sa.Table:
    """Columns of every prototype, for asking each transformer where it applies."""
    from deid.schema import Column, Kind, Table

    kinds = {
        "int": Kind.INTEGER, "big": Kind.INTEGER, "flag": Kind.BOOLEAN if pg else Kind.INTEGER,
        "amount": Kind.NUMERIC, "ratio": Kind.FLOAT, "single": Kind.FLOAT, "born": Kind.DATE,
        "seen": Kind.TIMESTAMP, "stamp": Kind.TIMESTAMP, "clock": Kind.TIME, "email": Kind.TEXT,
        "phone": Kind.TEXT, "zip": Kind.TEXT, "note": Kind.TEXT, "code": Kind.TEXT, "mood": Kind.ENUM,
        "data": Kind.BYTEA, "doc": Kind.JSON,
    }  # fmt: skip
    columns = [
        Column(name, pg_type if pg else my_type.replace(" NULL", ""), kinds[name])
        for name, pg_type, my_type, _ in PROTOTYPES
    ]
    return Table("public", "t", (Column("id", "integer", Kind.INTEGER), *columns), primary_key=("id",))


def _layout() -> tuple[list[tuple[str, str, dict, str]], set[str]]:
    """(column, transformer, params, prototype) for every transformer variant and every prototype it
    applies to on both engines; and the transformers left out."""
    defaults = [(t.name, {}) for t in all_transformers() if t.name not in NOT_COMPARED and t.name != "json"]
    variants = defaults + VARIANTS
    tables = (_prototype_schema(True), _prototype_schema(False))
    layout, left_out = [], set(NOT_COMPARED)
    for name, given in variants:
        transformer = next(t for t in all_transformers() if t.name == name)
        used = False
        for proto, *_ in PROTOTYPES:
            if name == "json" and proto not in JSON_PROTOS:
                continue
            params = dict(given)
            if transformer.param("value") is not None:
                params["value"] = CONSTANTS.get(proto, "redacted")
            parsed = transformer.parse_params(params)
            if all(
                transformer.cannot_apply(target_for(t, t.column(proto), element_wise=False), parsed) is None
                for t in tables
            ):
                layout.append((f"c{len(layout)}_{proto}", name, params, proto))
                used = True
        if not used:
            left_out.add(name)
    return layout, left_out


LAYOUT, LEFT_OUT = _layout()


def _rules(layout) -> str:
    lines = ["version: 1", "database: twins", "tables:", "  public.t:", "    columns:", "      id: keep"]
    for column, name, params, _ in layout:
        lines.append(
            f"      {column}: {json.dumps({'transformer': name, 'params': params}, ensure_ascii=False)}"
        )
    return "\n".join(lines) + "\n"


def _rows() -> list[dict]:
    by_proto = {proto: value for proto, _, _, value in PROTOTYPES}
    return [
        {"id": i, **{column: by_proto[proto](i) for column, _, _, proto in LAYOUT}}
        for i in range(1, ROWS + 1)
    ]


def _fill_pg(engine: sa.Engine) -> None:
    types = {proto: pg_type for proto, pg_type, _, _ in PROTOTYPES}
    listed = ", ".join(f"{column} {types[proto]}" for column, _, _, proto in LAYOUT)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TYPE mood AS ENUM ('ok', 'sad', 'meh')")
        c.exec_driver_sql(f"CREATE TABLE t (id integer PRIMARY KEY, {listed})")
        rows = []
        for row in _rows():
            fixed = dict(row)
            for column, _, _, proto in LAYOUT:
                if proto == "flag" and row[column] is not None:
                    fixed[column] = bool(row[column])
                if proto == "stamp" and row[column] is not None:
                    fixed[column] = row[column].replace(tzinfo=dt.UTC)
            rows.append(fixed)
        names = ["id", *(column for column, *_ in LAYOUT)]
        c.execute(sa.text(f"INSERT INTO t VALUES ({', '.join(':' + n for n in names)})"), rows)
        c.exec_driver_sql("ANALYZE t")


def _fill_mysql(engine: sa.Engine) -> None:
    types = {proto: my_type for proto, _, my_type, _ in PROTOTYPES}
    listed = ", ".join(f"`{column}` {types[proto]}" for column, _, _, proto in LAYOUT)
    with engine.begin() as c:
        c.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        c.exec_driver_sql(f"CREATE TABLE t (id int PRIMARY KEY, {listed}) ROW_FORMAT=DYNAMIC")
        names = ["id", *(column for column, *_ in LAYOUT)]
        c.execute(sa.text(f"INSERT INTO t VALUES ({', '.join(':' + n for n in names)})"), _rows())


def _normal(value, proto: str):
    """A value as read from either engine, in one form: UTC naive datetimes, ints for booleans, bytes, parsed
    JSON, a time of day, char(n) without its padding."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dt.timedelta):
        return (dt.datetime.min + value).time()
    if proto == "doc" and isinstance(value, str):
        return json.loads(value)
    if proto == "code" and isinstance(value, str):
        return value.rstrip(" ")
    return value


def _read(engine: sa.Engine, mysql: bool) -> dict[int, dict]:
    single = {column for column, _, _, proto in LAYOUT if proto == "single"}  # float4 values, exactly
    listed = ", ".join(
        (f"CAST(`{c}` AS DOUBLE) AS `{c}`" if mysql else f"{c}::float8 AS {c}") if c in single else c
        for c, *_ in LAYOUT
    )
    with engine.connect() as c:
        if mysql:
            c.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        rows = c.exec_driver_sql(f"SELECT id, {listed} FROM t ORDER BY id").mappings().all()
    return {
        row["id"]: {column: _normal(row[column], proto) for column, _, _, proto in LAYOUT} for row in rows
    }


@pytest.fixture
def twins(pg_engine, mysql_engine, tmp_path):  # noqa: F811
    """The same table and rows on PostgreSQL and on MySQL/MariaDB, and the plan of the rules on each."""
    _fill_pg(pg_engine)
    _fill_mysql(mysql_engine)
    path = tmp_path / "twins.yaml"
    path.write_text(_rules(LAYOUT))
    rules = load_rules(path)
    plans = []
    for engine in (pg_engine, mysql_engine):
        with engine.connect() as c:
            schema = backend_for(engine.dialect.name).introspect(c, "twins")
        plans.append(planning.build_plan(rules, schema))
    return pg_engine, mysql_engine, plans[0], plans[1]


def test_every_transformer_gives_the_same_values_as_on_postgresql(twins):
    pg, my, pg_plan, my_plan = twins
    before = _read(my, mysql=True)
    assert before == _read(pg, mysql=False), "the twins start equal"
    scrub_database(pg, pg_plan, SALT)
    results = scrub_database(my, my_plan, SALT)
    assert [(r.table, r.action, r.rows) for r in results] == [("public.t", "streamed", ROWS)]
    scrubbed_pg, scrubbed_my = _read(pg, mysql=False), _read(my, mysql=True)
    differ = [
        f"{column} ({name} {params} on {proto}) row {i}"
        for column, name, params, proto in LAYOUT
        for i in range(1, ROWS + 1)
        if scrubbed_my[i][column] != scrubbed_pg[i][column]
    ]
    assert not differ, f"{len(differ)} values differ, first: {differ[:5]}"
    changed = {
        column for column, *_ in LAYOUT if any(before[i][column] != scrubbed_my[i][column] for i in before)
    }
    assert changed == {column for column, *_ in LAYOUT}, "every column was rewritten"
    compared = {name for _, name, _, _ in LAYOUT}
    with_vector = {t.name for t in all_transformers() if t.vector is not None and t.rewrites}
    assert compared == with_vector, "every transformer with a vector form is compared"
    assert set(NOT_COMPARED) == LEFT_OUT, "only the transformers named are left out"
    assert len(LAYOUT) > 60


# --- on MySQL/MariaDB alone ---

PEOPLE = [
    """CREATE TABLE people (
        id int PRIMARY KEY,
        email varchar(120) NOT NULL UNIQUE,
        is_test tinyint(1) NOT NULL DEFAULT 0,
        touched datetime NULL,
        changed timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        secret varchar(40)
    )""",
    "CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, person int, what varchar(20))",
    "CREATE TABLE visits (id int PRIMARY KEY, person int, FOREIGN KEY (person) REFERENCES people (id))",
    "CREATE TABLE events (id int PRIMARY KEY, payload text)",
    # a BEFORE trigger stamping the row, an AFTER one writing elsewhere, and one with an order clause and a %
    "CREATE TRIGGER people_stamp BEFORE UPDATE ON people FOR EACH ROW SET NEW.touched = NOW()",
    """CREATE TRIGGER people_audit AFTER UPDATE ON people FOR EACH ROW
        BEGIN INSERT INTO audit (person, what) VALUES (NEW.id, 'updated'); END""",
    """CREATE TRIGGER people_percent BEFORE UPDATE ON people FOR EACH ROW FOLLOWS people_stamp
        SET NEW.secret = IF(NEW.secret LIKE '%%!%%', NEW.secret, NEW.secret)""",  # run() doubles %
    "CREATE TRIGGER people_insert BEFORE INSERT ON people FOR EACH ROW SET NEW.touched = NEW.touched",
]
PEOPLE_ROWS = 300
PEOPLE_RULES = """version: 1
database: people
tables:
  public.people:
    keep_rows_where: is_test = 1
    columns:
      id: keep
      email: {transformer: hash, params: {format: email}}
      is_test: keep
      touched: keep
      changed: keep
      secret: {transformer: redact, params: {keep_start: 1, keep_end: 0}}
    triggers:
      people_stamp: {silent: "stamps the row; the scrub must not"}
      people_audit: {silent: "audit rows only"}
      people_percent: {silent: "keeps the value"}
  public.audit:
    columns: {id: keep, person: keep, what: keep}
  public.visits:
    columns: {id: keep, person: keep}
  public.events:
    copy: schema_only
"""


# a table without a key that a foreign key references: the scrub cannot rebuild it (rebuild.refusal)
KEYLESS = [
    "CREATE TABLE tags (person int, tag varchar(40), KEY (person))",
    "CREATE TABLE tag_notes (person int, FOREIGN KEY (person) REFERENCES tags (person))",
]
TAGS_RULES = """  public.tags:
    columns: {person: keep, tag: {transformer: json, params: {paths: {$.a: hash}}}}
"""
KEYLESS_RULES = (
    TAGS_RULES
    + """  public.tag_notes:
    columns: {person: keep}
"""
)


def _people(engine: sa.Engine, rules: str, tmp_path, extra: list[str] = ()) -> planning.Plan:
    run(engine, [*PEOPLE, *extra])
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO people (id, email, is_test, touched, changed, secret) "
                "VALUES (:i, :e, :t, '2020-01-01 00:00:00', '2019-05-06 07:08:09', :s)"
            ),
            [
                {"i": i, "e": f"p{i}@corp.io", "t": int(i % 100 == 0), "s": f"secret {i}"}
                for i in range(1, PEOPLE_ROWS + 1)
            ],
        )
        c.exec_driver_sql("INSERT INTO visits SELECT id, id FROM people")
        c.exec_driver_sql("INSERT INTO events VALUES (1, 'x'), (2, 'y')")
    path = tmp_path / "people.yaml"
    path.write_text(rules)
    with engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "people")
    return planning.build_plan(load_rules(path), schema)


def _all(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.exec_driver_sql(sql)]


def _triggers(engine: sa.Engine) -> list[tuple]:
    return _all(
        engine,
        "SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, ACTION_STATEMENT "
        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1",
    )


def test_triggers_stay_silent_and_come_back_on_update_columns_and_static_rows_keep(
    mysql_engine,  # noqa: F811
    tmp_path,
):
    plan = _people(mysql_engine, PEOPLE_RULES, tmp_path)
    triggers = _triggers(mysql_engine)
    before = _all(mysql_engine, "SELECT id, email, touched, changed, secret FROM people ORDER BY id")
    results = {r.table: r for r in scrub_database(mysql_engine, plan, SALT)}
    assert {t: (r.action, r.rows) for t, r in results.items()} == {
        "public.people": ("streamed", PEOPLE_ROWS - 3),  # the 3 static rows are not read
        "public.events": ("emptied", 2),
    }
    after = _all(mysql_engine, "SELECT id, email, touched, changed, secret FROM people ORDER BY id")
    for old, new in zip(before, after, strict=True):
        assert new[2:4] == old[2:4], "no trigger stamped the row, and ON UPDATE kept production's value"
        if old[0] % 100 == 0:
            assert new == old, "static rows are never changed"
        else:
            assert (
                new[1] != old[1]
                and new[1].endswith("@example.com")
                and new[4] == "s" + "*" * (len(old[4]) - 1)
            )
    assert _all(mysql_engine, "SELECT COUNT(*) FROM audit") == [(0,)], "the AFTER trigger did not fire"
    assert _triggers(mysql_engine) == triggers, "every trigger is back, in its order"
    assert _all(mysql_engine, "SELECT COUNT(*) FROM events") == [(0,)]
    tables = {r[0] for r in _all(mysql_engine, "SHOW TABLES")}
    assert not {t for t in tables if t.startswith("_deid")}, "the ledger is dropped"
    assert results["public.people"].tallies["email"]["rows"] == PEOPLE_ROWS - 3


def test_a_retried_scrub_does_not_scrub_twice_and_a_killed_ones_triggers_come_back(
    mysql_engine,  # noqa: F811
    tmp_path,
):
    plan = _people(mysql_engine, PEOPLE_RULES, tmp_path)
    triggers = _triggers(mysql_engine)
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "people")
    units = mysql_scrub.prepare_scrub(mysql_engine, plan, schema, Scrubbing())
    assert sorted(units) == ["public.events", "public.people"]
    first = mysql_scrub.scrub_tables(mysql_engine, plan, SALT, schema, {"public.people"})
    once = _all(mysql_engine, "SELECT email, secret FROM people ORDER BY id")
    # a scrub killed after setting the triggers aside: the ledger holds them, the server does not
    with mysql_scrub._session(mysql_engine) as c:
        triggers_off.set_aside(c, "public.people", "people", ())
    assert [t[0] for t in _triggers(mysql_engine)] == ["people_insert"]
    again = mysql_scrub.scrub_tables(mysql_engine, plan, SALT, schema, set(units))
    assert [(r.table, r.action) for r in first] == [("public.people", "streamed")]
    assert [(r.table, r.action, r.rows) for r in again] == [
        ("public.events", "emptied", 2),
        ("public.people", "already scrubbed", PEOPLE_ROWS - 3),
    ]
    assert _all(mysql_engine, "SELECT email, secret FROM people ORDER BY id") == once, "not scrubbed twice"
    assert _triggers(mysql_engine) == triggers, "the retry created the triggers again"
    rows, tallies, unchecked = mysql_scrub.finish_scrub(mysql_engine, plan)
    assert rows == {"public.people": PEOPLE_ROWS - 3, "public.events": 2}
    assert set(tallies["public.people"]) == {"email", "secret"} and unchecked == []


def test_refused_before_anything_is_written(mysql_engine, tmp_path):  # noqa: F811
    # a table without a key, referenced by a foreign key: named, with the reason and the fix
    plan = _people(mysql_engine, PEOPLE_RULES + KEYLESS_RULES, tmp_path, KEYLESS)
    before = _all(mysql_engine, "SELECT * FROM people ORDER BY id")
    with pytest.raises(TerminalError, match=r"public\.tags has no primary key .*\(public\.tag_notes "):
        scrub_database(mysql_engine, plan, SALT)
    # static rows beyond their limit: the table and the counts, and nothing written
    run(mysql_engine, ["DROP TABLE tag_notes"])
    plan = _plan(mysql_engine, PEOPLE_RULES.replace("is_test = 1", "id > 10") + TAGS_RULES, tmp_path)
    with pytest.raises(TerminalError, match=r"keeps 290 of its 300 rows"):
        scrub_database(mysql_engine, plan, SALT)
    assert _all(mysql_engine, "SELECT * FROM people ORDER BY id") == before
    assert len(_triggers(mysql_engine)) == 4


def test_keys_rewritten_alike_still_match_and_an_orphan_is_named(mysql_engine, tmp_path):  # noqa: F811
    """The primary key and the column referencing it hashed alike (the UPDATE rewrites the key it joins on):
    every visit still finds its person, but those of the static people (who keep their ids while their
    visits do not: rows of the rule file's own making) and one that had none before, which finish_scrub
    names."""
    digits = "{transformer: hash, params: {format: digits, pattern: '#########'}}"
    rules = PEOPLE_RULES.replace("      id: keep\n      email", f"      id: {digits}\n      email", 1)
    rules = rules.replace("columns: {id: keep, person: keep}", f"columns: {{id: keep, person: {digits}}}")
    plan = _people(mysql_engine, rules, tmp_path)
    with mysql_engine.begin() as c:
        c.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        c.exec_driver_sql("INSERT INTO visits VALUES (99999, 99999)")
    with pytest.raises(TerminalError, match=r"visits_ibfk_1 of public\.visits \(4 rows without their row"):
        scrub_database(mysql_engine, plan, SALT)
    joined = "SELECT COUNT(*) FROM visits v JOIN people p ON p.id = v.person"
    assert _all(mysql_engine, joined) == [(PEOPLE_ROWS - 3,)]
    assert _all(mysql_engine, "SELECT COUNT(*) FROM people WHERE id > 1000") == [(PEOPLE_ROWS - 3,)]


def _plan(engine: sa.Engine, rules: str, tmp_path) -> planning.Plan:
    path = tmp_path / "again.yaml"
    path.write_text(rules)
    with engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "people")
    return planning.build_plan(load_rules(path), schema)


def test_a_system_versioned_table_keeps_no_production_value_in_its_history(
    mysql_server,  # noqa: F811
    mysql_engine,  # noqa: F811
    tmp_path,
):
    if not mysql_server.is_mariadb:
        pytest.skip("system-versioned tables are MariaDB's")
    run(mysql_engine, ["CREATE TABLE h (id int PRIMARY KEY, email varchar(80)) WITH SYSTEM VERSIONING"])
    run(mysql_engine, ["INSERT INTO h VALUES (1, 'a@corp.io'), (2, 'b@corp.io')"])
    path = tmp_path / "h.yaml"
    path.write_text(
        "version: 1\ndatabase: h\ntables:\n  public.h:\n    columns:\n"
        "      id: keep\n      email: {transformer: hash, params: {format: email}}\n"
    )
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "h")
    scrub_database(mysql_engine, planning.build_plan(load_rules(path), schema), SALT)
    history = "SELECT COUNT(*), SUM(email LIKE '%%corp.io') FROM h FOR SYSTEM_TIME ALL"
    assert _all(mysql_engine, history) == [(2, 0)]


def test_a_mysql_plan_holds_decisions_only_no_sql_forms(mysql_engine, tmp_path):  # noqa: F811
    """An engine without the SQL forms (Capabilities.sql_forms) gets a plan of decisions: which columns
    are rewritten and how, which rows are static, which tables are emptied; no PostgreSQL SQL in it."""
    plan = _people(mysql_engine, PEOPLE_RULES, tmp_path)
    people, events, visits = (plan.table(f"public.{t}") for t in ("people", "events", "visits"))
    assert all(t.statement is None and not t.before and not t.after for t in plan.tables)
    assert all(a.sql is None for t in plan.tables for a in t.actions)
    assert {a.column for a in people.rewritten} == {"email", "secret"} and people.touched
    assert people.keep_rows_where == "`is_test` = 1"  # rendered for this engine
    assert events.touched and not events.rewritten  # emptied
    assert not visits.touched
    assert plan.preamble == () and plan.dictionaries == ()


def test_what_the_scrub_would_refuse_is_known_before_the_night(mysql_engine, tmp_path):  # noqa: F811
    """Backend.scrub_refusals: the refusals prepare_scrub would make, from the schema and the plan alone
    (the demo says them; nothing is written). json has a vector form: it is not among them."""
    plan = _people(mysql_engine, PEOPLE_RULES + KEYLESS_RULES, tmp_path, KEYLESS)
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "people")
    (refused,) = backend_for("mysql").scrub_refusals(schema, plan)
    assert refused.startswith("public.tags has no primary key") and "add a primary key" in refused.lower()
    run(mysql_engine, ["DROP TABLE tag_notes"])
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "people")
    assert (
        backend_for("mysql").scrub_refusals(schema, _plan(mysql_engine, PEOPLE_RULES + TAGS_RULES, tmp_path))
        == []
    )


def test_unique_keys_are_checked_on_the_scrubbed_values_not_row_by_row(mysql_engine, tmp_path):  # noqa: F811
    """A format-preserving hash of 60 two-digit codes maps them onto the 100 codes: rewritten one row at a
    time, a code meets another row's code not yet rewritten, which MySQL's row-by-row check refuses. The
    unique key is set aside for the UPDATE and built again on the scrubbed codes; a foreign key references
    the table, so it is updated by key, not rebuilt."""
    run(mysql_engine, [
        "CREATE TABLE codes (id int PRIMARY KEY, code char(2) NOT NULL, UNIQUE KEY code_u (code))",
        "CREATE TABLE uses (code_id int, FOREIGN KEY (code_id) REFERENCES codes (id))",
        "INSERT INTO codes SELECT seq, LPAD(seq, 2, '0') FROM seq_0_to_59",
    ])  # fmt: skip
    path = tmp_path / "codes.yaml"
    path.write_text(
        "version: 1\ndatabase: codes\ntables:\n  public.codes:\n    columns:\n      id: keep\n"
        "      code: {transformer: hash, params: {format: digits, pattern: '##'}}\n"
        "  public.uses:\n    columns: {code_id: keep}\n"
    )
    with mysql_engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "codes")
        definition = c.exec_driver_sql("SHOW CREATE TABLE codes").one()[1]
    before = dict(_all(mysql_engine, "SELECT id, code FROM codes"))
    results = scrub_database(mysql_engine, planning.build_plan(load_rules(path), schema), SALT)
    assert [(r.table, r.action) for r in results] == [("public.codes", "streamed")]
    after = dict(_all(mysql_engine, "SELECT id, code FROM codes"))
    assert len(set(after.values())) == 60 and sum(after[i] != before[i] for i in before) > 50
    assert set(after.values()) & set(before.values()), "scrubbed codes that were other rows' codes"
    with mysql_engine.connect() as c:
        assert c.exec_driver_sql("SHOW CREATE TABLE codes").one()[1] == definition, "the key is back"


def test_a_unique_key_whose_scrubbed_values_repeat_fails_naming_it_never_a_value(mysql_engine):  # noqa: F811
    from deid.backends.mysql import scrub_ledger, unique_off
    from deid.schema import UniqueKey

    run(mysql_engine, [
        "CREATE TABLE codes (id int PRIMARY KEY, code varchar(8), UNIQUE KEY code_u (code))",
        "INSERT INTO codes VALUES (1, 'secret1'), (2, 'secret2')",
    ])  # fmt: skip
    with mysql_scrub._session(mysql_engine) as c:
        for statement in scrub_ledger.DDL:
            c.exec_driver_sql(statement)
        table = backend_for("mysql").introspect(c, "codes").table("public.codes")
        assert UniqueKey("code_u", ("code",)) in table.unique_keys
        assert unique_off.set_aside(c, "public.codes", table, {"code"}) == ["code_u"]
        c.exec_driver_sql("UPDATE codes SET code = 'secret1'")  # two rows, one value
        with pytest.raises(TerminalError) as refused:
            unique_off.restore(c)
    message = str(refused.value)
    assert message.startswith("public.codes: the scrubbed values of its unique key(s) code_u are not unique")
    assert "secret" not in message
