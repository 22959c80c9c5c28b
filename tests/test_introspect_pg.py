"""PostgreSQL introspection against real servers (every configured one), plus the backend seam and the
connection helpers. The schema under test is tests/fixtures/tricky_schema.sql."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import db
from deid.backends import Backend, Capabilities, SequenceKind, TriggerSilencing, backend_for, engine_names
from deid.backends.postgresql import types
from deid.errors import ConfigError, TransientError
from deid.schema import Column, ForeignKey, Kind, Schema, Sequence, View

TRICKY = Path(__file__).parent / "fixtures" / "tricky_schema.sql"
TIERS = ("platinum", "bronze", "silver", "gold")
EVENT_TABLES = ("public.events", "public.events_2024", "public.events_2025")
EVENT_LEAVES = ("public.events_2025_h1", "public.events_2025_h2")


def run_sql(engine: sa.Engine, sql: str) -> None:
    """Run a script of several statements (the driver's simple protocol, no parameters)."""
    with engine.connect() as c:
        raw = c.connection.driver_connection
        raw.execute(sql)
        raw.commit()


def introspect(engine: sa.Engine) -> Schema:
    with engine.connect() as c:
        return backend_for("postgresql").introspect(c, "tricky")


@pytest.fixture
def tricky(pg_engine: sa.Engine) -> sa.Engine:
    run_sql(pg_engine, TRICKY.read_text())
    return pg_engine


@pytest.fixture
def schema(tricky: sa.Engine) -> Schema:
    return introspect(tricky)


def col(schema: Schema, qualified: str) -> Column:
    table, _, column = qualified.rpartition(".")
    found = schema.table(table).column(column)
    assert found is not None, qualified
    return found


# --- tables, partitions, views -------------------------------------------------------------------------


def test_tables_partitions_and_excluded_schemas(schema: Schema, postgres):
    assert [t.qualified for t in schema.tables] == [
        "partners.Odd Name",
        "partners.companies",
        "partners.contacts",
        "public.audit_log",
        "public.event_flags",
        *EVENT_TABLES,
        *EVENT_LEAVES,
        "public.notes",
        "public.tickets",
        "public.users",
    ]
    kinds = {t.qualified: (t.kind, t.partition_of) for t in schema.tables}
    assert kinds["public.events"] == ("partitioned", None)
    assert kinds["public.events_2024"] == ("table", "public.events")
    assert kinds["public.events_2025"] == ("partitioned", "public.events")
    assert kinds["public.events_2025_h1"] == ("table", "public.events_2025")
    assert kinds["public.users"] == ("table", None)
    assert {t.qualified for t in schema.rule_tables} == {t.qualified for t in schema.tables} - {
        *EVENT_TABLES[1:],
        *EVENT_LEAVES,
    }
    assert schema.engine == "postgresql"
    assert schema.database == "tricky"
    assert schema.server_version.split(".")[0] == str(postgres.version)


def test_views(schema: Schema):
    assert schema.views == (
        View("partners", "company_sizes", materialized=True),
        View("public", "active_users", materialized=False),
    )


def test_quoted_names_come_back_raw(schema: Schema):
    odd = schema.table("partners.Odd Name")
    assert [(c.name, c.data_type, c.kind) for c in odd.columns] == [
        ("Mixed Case", "text", Kind.TEXT),
        ("select", "integer", Kind.INTEGER),
    ]


# --- columns -------------------------------------------------------------------------------------------


def test_columns_in_attnum_order_without_dropped_ones(schema: Schema):
    names = [c.name for c in schema.table("public.users").columns]
    assert "obsolete" not in names
    assert names[:4] == ["id", "email", "username", "nickname"]
    assert names[-2:] == ["created_at", "updated_at"]


@pytest.mark.parametrize(
    ("column", "data_type", "kind"),
    [
        ("nickname", "public.citext", Kind.TEXT),
        ("first_name", "text", Kind.TEXT),
        ("profile", "jsonb", Kind.JSON),
        ("settings", "json", Kind.JSON),
        ("avatar", "bytea", Kind.BYTEA),
        ("external_id", "uuid", Kind.UUID),
        ("last_ip", "inet", Kind.INET),
        ("network", "cidr", Kind.INET),
        ("birth_date", "date", Kind.DATE),
        ("wake_at", "time without time zone", Kind.TIME),
        ("session_length", "interval", Kind.INTERVAL),
        ("balance", "numeric(12,2)", Kind.NUMERIC),
        ("ratio", "double precision", Kind.FLOAT),
        ("active", "boolean", Kind.BOOLEAN),
        ("location", "point", Kind.OTHER),
        ("updated_at", "timestamp without time zone", Kind.TIMESTAMP),
    ],
)
def test_scalar_types(schema: Schema, column, data_type, kind):
    c = col(schema, f"public.users.{column}")
    assert (c.data_type, c.kind, c.max_length, c.domain, c.element_kind) == (
        data_type,
        kind,
        None,
        None,
        None,
    )


def test_character_lengths(schema: Schema):
    assert col(schema, "public.users.username") == Column(
        name="username", data_type="character varying(40)", kind=Kind.TEXT, nullable=False, max_length=40
    )
    assert col(schema, "public.users.country") == Column(
        name="country", data_type="character(2)", kind=Kind.TEXT, max_length=2
    )


def test_defaults_and_not_null(schema: Schema):
    assert col(schema, "public.users.created_at") == Column(
        name="created_at",
        data_type="timestamp with time zone",
        kind=Kind.TIMESTAMP,
        nullable=False,
        default="now()",
    )
    assert col(schema, "public.users.active").default == "true"


def test_enum_labels_in_sort_order(schema: Schema):
    assert col(schema, "partners.companies.tier") == Column(
        name="tier",
        data_type="partners.tier",
        kind=Kind.ENUM,
        default="'silver'::partners.tier",
        enum_labels=TIERS,
    )


def test_arrays(schema: Schema):
    assert col(schema, "public.users.tags") == Column(
        name="tags", data_type="text[]", kind=Kind.ARRAY, element_kind=Kind.TEXT, element_type="text"
    )
    assert col(schema, "public.users.scores") == Column(
        name="scores",
        data_type="integer[]",
        kind=Kind.ARRAY,
        element_kind=Kind.INTEGER,
        element_type="integer",
    )
    assert col(schema, "public.users.aliases") == Column(
        name="aliases",
        data_type="character varying(20)[]",
        kind=Kind.ARRAY,
        element_kind=Kind.TEXT,
        element_type="character varying(20)",
        max_length=20,
    )
    assert col(schema, "public.users.past_tiers") == Column(
        name="past_tiers",
        data_type="partners.tier[]",
        kind=Kind.ARRAY,
        element_kind=Kind.ENUM,
        element_type="partners.tier",
        enum_labels=TIERS,
    )


def test_domains(schema: Schema):
    # NOT NULL declared on the domain makes the column not nullable.
    assert col(schema, "public.users.email") == Column(
        name="email", data_type="public.email_d", kind=Kind.TEXT, nullable=False, domain="public.email_d"
    )
    assert col(schema, "partners.companies.code") == Column(
        name="code", data_type="partners.code_d", kind=Kind.TEXT, domain="partners.code_d", max_length=12
    )
    # A domain over a domain: the outer name, the inner length, the NOT NULL of either.
    assert col(schema, "partners.companies.strict_code") == Column(
        name="strict_code",
        data_type="partners.strict_code_d",
        kind=Kind.TEXT,
        nullable=False,
        domain="partners.strict_code_d",
        max_length=12,
    )
    assert col(schema, "public.users.weekly") == Column(
        name="weekly",
        data_type="public.scores_d",
        kind=Kind.ARRAY,
        element_kind=Kind.INTEGER,
        element_type="integer",
        domain="public.scores_d",
    )
    assert col(schema, "partners.companies.codes") == Column(
        name="codes",
        data_type="partners.code_d[]",
        kind=Kind.ARRAY,
        element_kind=Kind.TEXT,
        element_type="partners.code_d",
        max_length=12,
    )


def test_generated_identity_and_serial(schema: Schema):
    assert col(schema, "public.users.full_name") == Column(
        name="full_name",
        data_type="text",
        kind=Kind.TEXT,
        generated=True,
        default="((first_name || ' '::text) || last_name)",
    )
    assert col(schema, "public.users.id") == Column(
        name="id", data_type="bigint", kind=Kind.INTEGER, nullable=False, identity=True
    )
    assert col(schema, "public.audit_log.id") == Column(
        name="id", data_type="smallint", kind=Kind.INTEGER, nullable=False, identity=True
    )
    assert col(schema, "partners.companies.id") == Column(
        name="id",
        data_type="integer",
        kind=Kind.INTEGER,
        nullable=False,
        default="nextval('partners.companies_id_seq'::regclass)",
    )


def test_every_data_type_casts_from_an_empty_search_path(tricky: sa.Engine, schema: Schema):
    casts = [f"CAST(NULL AS {c.data_type})" for t in schema.tables for c in t.columns]
    casts += [f"CAST(NULL AS {c.element_type})" for t in schema.tables for c in t.columns if c.element_type]
    with tricky.connect() as c:
        c.exec_driver_sql("SET search_path = ''")
        # EXPLAIN resolves every type without evaluating the casts (NULL would break a NOT NULL domain).
        c.exec_driver_sql(f"EXPLAIN SELECT {', '.join(casts)}")


def test_virtual_generated_column(pg_engine: sa.Engine, postgres):
    if postgres.version < 18:
        pytest.skip("virtual generated columns need PostgreSQL 18")
    run_sql(pg_engine, "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL)")
    assert introspect(pg_engine).table("public.t").column("b").generated


# --- keys, triggers, estimates -------------------------------------------------------------------------


def test_primary_keys_and_unique(schema: Schema):
    users = schema.table("public.users")
    assert users.primary_key == ("id",)
    # Constraints and indexes, deduplicated; INCLUDE columns, partial and expression indexes left out.
    assert users.unique == (
        ("country", "username"),
        ("external_id",),
        ("first_name", "last_name", "birth_date"),
        ("username",),
    )
    assert users.is_unique("username") and not users.is_unique("nickname")
    assert schema.table("partners.contacts").primary_key == ("company_id", "contact_no")
    assert schema.table("public.notes").primary_key == ()
    assert schema.table("public.audit_log").primary_key == ()
    for name in (*EVENT_TABLES, *EVENT_LEAVES):
        assert schema.table(name).primary_key == ("id", "occurred_at"), name


def test_foreign_keys(schema: Schema):
    assert schema.table("partners.contacts").foreign_keys == (
        ForeignKey("contacts_company_id_fkey", ("company_id",), "partners.companies", ("id",)),
        ForeignKey("contacts_user_id_fkey", ("user_id",), "public.users", ("id",)),
    )
    assert schema.table("public.notes").foreign_keys == (
        ForeignKey(
            "notes_contact_fk",
            ("company_id", "contact_no"),
            "partners.contacts",
            ("company_id", "contact_no"),
        ),
    )
    # One key, not one clone per partition of the referenced table.
    assert schema.table("public.event_flags").foreign_keys == (
        ForeignKey(
            "event_flags_event_fk", ("event_id", "occurred_at"), "public.events", ("id", "occurred_at")
        ),
    )
    # Partitions carry the key they inherit from their parent.
    for name in (*EVENT_TABLES, *EVENT_LEAVES):
        assert schema.table(name).foreign_keys == (
            ForeignKey("events_user_id_fkey", ("user_id",), "public.users", ("id",)),
        ), name


def test_user_triggers_only(schema: Schema):
    (stamp,) = schema.table("public.users").triggers
    assert (stamp.name, stamp.language) == ("users_stamp", "plpgsql")
    assert stamp.function == "public.stamp_updated_at"
    assert (stamp.row, stamp.timing, stamp.events, stamp.enabled) == (True, "before", ("update",), "origin")
    # what its function sets, read from its body: updated_at, from no column of the row
    assert [(d.column, d.sources) for d in stamp.derives] == [("updated_at", ())]
    assert not stamp.writes_elsewhere
    # Foreign keys are implemented with internal triggers; they do not show.
    assert schema.table("partners.contacts").triggers == ()
    assert schema.table("partners.companies").triggers == ()


def test_row_estimate(tricky: sa.Engine):
    with tricky.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO partners.companies (name, strict_code)"
            " SELECT 'c' || g, 'X' FROM generate_series(1, 25) g"
        )
        c.exec_driver_sql("ANALYZE partners.companies")
    schema = introspect(tricky)
    assert schema.table("partners.companies").row_estimate == 25
    # Never analyzed: reltuples is -1 on PostgreSQL 14+, reported as 0.
    assert schema.table("public.tickets").row_estimate == 0


# --- sequences -----------------------------------------------------------------------------------------


def test_sequences(schema: Schema):
    events = tuple(f"{t}.id" for t in (*EVENT_TABLES, *EVENT_LEAVES))
    assert schema.sequences == (
        Sequence(
            "partners",
            "companies_id_seq",
            data_type="integer",
            owned_by="partners.companies.id",
            used_by=("partners.companies.id",),
        ),
        Sequence(
            "public", "audit_log_id_seq", data_type="smallint", owned_by="public.audit_log.id", identity=True
        ),
        # A bigserial on a partitioned table: every partition's DEFAULT calls it.
        Sequence("public", "events_id_seq", data_type="bigint", owned_by="public.events.id", used_by=events),
        # Owned by nobody, found through the DEFAULTs that use it.
        Sequence(
            "public",
            "ticket_no_seq",
            data_type="integer",
            used_by=("public.notes.ticket_no", "public.tickets.id"),
        ),
        Sequence("public", "users_id_seq", data_type="bigint", owned_by="public.users.id", identity=True),
    )


# --- whole-schema properties ---------------------------------------------------------------------------


def test_json_round_trip_and_determinism(tricky: sa.Engine, schema: Schema):
    assert Schema.from_json(schema.to_json()) == schema
    again = introspect(tricky)
    assert again == schema
    assert again.to_json() == schema.to_json()


def test_same_result_from_any_search_path_which_is_restored(tricky: sa.Engine, schema: Schema):
    with tricky.connect() as c:
        c.exec_driver_sql("SET search_path = partners, public")
        assert backend_for("postgresql").introspect(c, "tricky") == schema
        assert c.exec_driver_sql("SHOW search_path").scalar() == "partners, public"


def test_works_in_autocommit(tricky: sa.Engine, schema: Schema):
    with tricky.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        assert backend_for("postgresql").introspect(c, "tricky") == schema
        assert c.exec_driver_sql("SHOW search_path").scalar() == '"$user", public'


def test_round_trips_do_not_grow_with_tables(tricky: sa.Engine):
    def count() -> int:
        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        sa.event.listen(tricky, "before_cursor_execute", record)
        try:
            introspect(tricky)
        finally:
            sa.event.remove(tricky, "before_cursor_execute", record)
        return len(statements)

    before = count()
    tables = len(introspect(tricky).tables)
    run_sql(
        tricky, "".join(f"CREATE TABLE extra_{i} (id serial PRIMARY KEY, v text UNIQUE);" for i in range(50))
    )
    assert len(introspect(tricky).tables) == tables + 50
    assert count() == before
    assert before <= 12  # one query per family of objects (CHECKs and partition keys are the 11th and 12th)


def test_temporary_tables_and_extension_objects_are_left_out(pg_engine: sa.Engine):
    with pg_engine.connect() as c:
        if not c.exec_driver_sql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").scalar():
            pytest.skip("CREATE EXTENSION pg_stat_statements needs a superuser")
        # Its views live in public but belong to the extension.
        c.exec_driver_sql("CREATE EXTENSION pg_stat_statements")
        c.exec_driver_sql("CREATE TABLE kept (id int)")
        c.exec_driver_sql("CREATE TEMPORARY TABLE scratch (id int)")
        schema = backend_for("postgresql").introspect(c, "x")
    assert [t.qualified for t in schema.tables] == ["public.kept"]
    assert schema.views == ()


def test_empty_database(pg_engine: sa.Engine):
    schema = introspect(pg_engine)
    assert (schema.tables, schema.sequences, schema.views) == ((), (), ())


# --- connections ---------------------------------------------------------------------------------------


def test_connect_readonly_refuses_writes(pg_url: str, pg_engine: sa.Engine):
    run_sql(pg_engine, "CREATE TABLE t (id int)")
    readonly = db.connect_readonly(pg_url)
    try:
        with readonly.connect() as c:
            assert c.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
            with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
                c.exec_driver_sql("CREATE TABLE t2 (id int)")
            c.rollback()
            with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
                c.exec_driver_sql("INSERT INTO t VALUES (1)")
            c.rollback()
            # Introspection only reads (its SET of search_path is not a write).
            assert backend_for("postgresql").introspect(c, "prod").table("public.t") is not None
    finally:
        readonly.dispose()


def test_unreachable_server_is_transient_and_hides_the_password():
    engine = db.connect_readonly("postgresql://deid:s3cr3t-pw@127.0.0.1:1/prod")
    with pytest.raises(TransientError) as caught:
        engine.connect()
    message = str(caught.value)
    assert "127.0.0.1:1/prod" in message and "deid:***@" in message
    assert "Connection refused" in message
    chain = [caught.value]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    assert all("s3cr3t-pw" not in str(e) for e in chain)


def test_urls_are_normalised():
    assert db.normalise_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.normalise_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert db.normalise_url("postgresql+psycopg2://u@h/d").drivername == "postgresql+psycopg2"
    assert db.engine("postgresql://u:pw@h:5433/d").url.render_as_string(hide_password=True) == (
        "postgresql+psycopg://u:***@h:5433/d"
    )
    with pytest.raises(ConfigError, match="Did you mean 'postgresql'"):
        db.engine("postgress://u@h/d")
    with pytest.raises(ConfigError) as caught:
        db.engine("not a url, secret")
    assert "secret" not in str(caught.value)


def test_read_only_options_keep_the_urls_own():
    url = db.normalise_url("postgresql://u@h/d?options=-c%20statement_timeout%3D5s")
    assert backend_for("postgresql").read_only_connect_args(url) == {
        "options": "-c statement_timeout=5s -c default_transaction_read_only=on"
    }


# --- the backend seam ----------------------------------------------------------------------------------


def test_backend_lookup():
    backend = backend_for("postgresql")
    assert backend is backend_for("postgresql+psycopg")
    assert backend.name == "postgresql" and isinstance(backend, Backend)
    assert backend.capabilities.instant_clone and backend.capabilities.transactional_ddl
    assert backend.capabilities.sequence_kind is SequenceKind.SEQUENCE
    assert "postgresql" in engine_names()
    with pytest.raises(AttributeError):
        backend.capabilities.instant_clone = False  # type: ignore[misc]
    # an engine claims only what it has: the defaults claim nothing
    nothing = Capabilities()
    assert not any(v for v in vars(nothing).values() if isinstance(v, bool))
    assert (nothing.sequence_kind, nothing.trigger_silencing) == (SequenceKind.NONE, TriggerSilencing.NONE)


def test_unknown_engine_suggests():
    with pytest.raises(ConfigError, match=r"^Unknown engine 'postgress'\. Did you mean 'postgresql'\?$"):
        backend_for("postgress")
    with pytest.raises(ConfigError, match=r"^Unknown engine 'oracle'\.$"):
        backend_for("oracle")


def test_base_backend_refuses_what_it_cannot_do():
    with pytest.raises(ConfigError, match="read-only"):
        Backend().read_only_connect_args(sa.make_url("sqlite://"))


def test_type_mapping_is_by_schema_and_name():
    assert types.kind_of("pg_catalog", "int8", "b") is Kind.INTEGER
    assert types.kind_of("public", "int8", "b") is Kind.OTHER  # a user's type that shadows a built-in name
    assert types.kind_of("ext", "citext", "b") is Kind.TEXT
    assert types.kind_of("public", "mood", "e") is Kind.ENUM
    assert types.kind_of("pg_catalog", "tsvector", "b") is Kind.OTHER
    assert types.max_length("pg_catalog", "varchar", -1) is None
    assert types.max_length("pg_catalog", "bpchar", 14) == 10
