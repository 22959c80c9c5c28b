"""The migrate step: SQL folders and Alembic on real PostgreSQL (every configured server), the statement
splitter and the folder checks without a database, and the rules re-checked against the migrated schema."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.migrations import VERSION_TABLE
from deid.backends.postgresql.migrations import split as split_statements
from deid.config import Config, DatabaseConfig, Migrations
from deid.demo.seed import seed
from deid.errors import RuleProblems, TerminalError
from deid.migrations import MigrationProblems, apply_migrations, is_bookkeeping
from deid.migrations.sqlfiles import Applied, pending, read_folder
from deid.rules.load import load_rules
from deid.schema import Column, Kind, Schema, Table
from deid.steps.context import RunContext
from deid.steps.migrate import check_migrated, migrate
from deid.steps.rebase import rebase
from deid.steps.scrub import scrub
from deid.steps.snapshot import snapshot

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "migrations"
RULES = FIXTURES / "rules.yaml"
ORDERED = Migrations("sql", "sql_ordered")
ALEMBIC = Migrations("alembic", "alembic_demo")
PRODUCTION = """
CREATE TABLE public.accounts (id integer PRIMARY KEY, email text NOT NULL);
INSERT INTO public.accounts VALUES (1, 'someone@example.org');
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def run_sql(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        c.connection.driver_connection.execute(sql)
        c.connection.driver_connection.commit()
    engine.dispose()


def scalars(url: str, sql: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        found = list(c.exec_driver_sql(sql).scalars())
    engine.dispose()
    return found


def columns(url: str, table: str) -> list[str]:
    return scalars(
        url,
        "SELECT attname FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped "
        f"AND attrelid = to_regclass('{table}') ORDER BY attnum",
    )


def versions(url: str) -> list[int]:
    return scalars(url, f"SELECT version FROM {VERSION_TABLE} ORDER BY version")


@pytest.fixture
def prod_url(pg_url: str) -> str:
    """A fresh database holding the "production" table the fixture rules know."""
    run_sql(pg_url, PRODUCTION)
    return pg_url


# --- splitting and reading files (no database) -----------------------------------------------------------


def test_split_respects_quotes_comments_and_bodies():
    text = """-- a comment; not a statement
CREATE TABLE a (x int, y text DEFAULT 'a;b');  /* c; /* nested; */ still; */
INSERT INTO a VALUES (1, E'it\\'s; ok'), (2, $$d;$$), (3, $q$ $$ ; $q$), (4, "odd;name");
CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN true THEN 1 ELSE 2 END;
  SELECT 2;
END;
DO $$ BEGIN RAISE NOTICE 'x;'; END $$;
CREATE RULE r AS ON INSERT TO a DO ALSO (SELECT 1; SELECT 2);
BEGIN;
SELECT 1 -- no semicolon at the end
"""
    statements = split_statements(text)
    assert [s.line for s in statements] == [2, 3, 4, 9, 10, 11, 12]
    assert statements[0].sql == "CREATE TABLE a (x int, y text DEFAULT 'a;b')"
    assert statements[1].sql.endswith('(4, "odd;name")')
    assert statements[2].sql.endswith("SELECT 2;\nEND")
    assert statements[3].words == ("do",)
    assert statements[4].sql.endswith("(SELECT 1; SELECT 2)")
    assert statements[5].words == ("begin",)  # a transaction BEGIN is not a body
    assert statements[6].sql == "SELECT 1 -- no semicolon at the end"


def test_files_sort_numerically():
    assert [m.name for m in read_folder(FIXTURES / "sql_ordered")] == [
        "V1__create_widgets.sql",
        "V2__add_widget_colour.sql",
        "V10__index_widget_colour.sql",
    ]
    assert [m.transactional for m in read_folder(FIXTURES / "sql_ordered")] == [True, True, False]


@pytest.mark.parametrize(
    "name", ["v1__lower_v.sql", "V1_one_underscore.sql", "V0__zero.sql", "V2__.sql", "001_init.sql", "V3.sql"]
)
def test_bad_file_name_names_the_file_and_the_fix(tmp_path, name):
    write(tmp_path, "V1__fine.sql", "SELECT 1;")
    write(tmp_path, "README.md", "not SQL, ignored")
    write(tmp_path, name, "SELECT 1;")
    with pytest.raises(MigrationProblems) as caught:
        read_folder(tmp_path)
    text = str(caught.value)
    assert name in text
    assert "V<n>__<description>.sql" in text


def test_duplicate_version_is_refused(tmp_path):
    write(tmp_path, "V1__first.sql", "SELECT 1;")
    write(tmp_path, "V01__second.sql", "SELECT 1;")
    with pytest.raises(
        MigrationProblems, match=r"version 1 is used twice: V01__second.sql and V1__first.sql"
    ):
        read_folder(tmp_path)


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(TerminalError, match="migrations folder .* not found"):
        read_folder(tmp_path / "nowhere")


def test_statements_that_refuse_a_transaction_need_the_marker(tmp_path):
    write(
        tmp_path, "V1__index.sql", "CREATE TABLE t (a int);\n\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a);\n"
    )
    with pytest.raises(MigrationProblems) as caught:
        read_folder(tmp_path)
    text = str(caught.value)
    assert "V1__index.sql:3: CREATE UNIQUE INDEX CONCURRENTLY cannot run inside a transaction" in text
    assert "-- deid: no-transaction" in text


def test_marker_counts_only_on_the_first_line(tmp_path):
    write(tmp_path, "V1__late.sql", "SELECT 1;\n-- deid: no-transaction\nVACUUM;\n")
    with pytest.raises(MigrationProblems) as caught:
        read_folder(tmp_path)
    assert "V1__late.sql:2: '-- deid: no-transaction' only counts as the file's first line" in str(
        caught.value
    )
    assert "V1__late.sql:3: VACUUM cannot run inside a transaction" in str(caught.value)


def test_transaction_control_is_refused(tmp_path):
    write(tmp_path, "V1__own_transaction.sql", "BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\n")
    with pytest.raises(MigrationProblems, match="V1__own_transaction.sql:1: BEGIN: deid runs each file"):
        read_folder(tmp_path)


def test_pending_checks_the_record_against_the_folder(tmp_path):
    for n in (1, 2, 3):
        write(tmp_path, f"V{n}__m{n}.sql", f"SELECT {n};")
    files = read_folder(tmp_path)
    record = {m.version: Applied(m.version, m.name, m.checksum) for m in files[:2]}
    assert [m.name for m in pending(files, record)] == ["V3__m3.sql"]
    assert pending(files, {m.version: Applied(m.version, m.name, m.checksum) for m in files}) == []
    with pytest.raises(MigrationProblems, match="V2__m2.sql changed after it was applied"):
        pending(files, {**record, 2: Applied(2, "V2__m2.sql", "0" * 64)})
    with pytest.raises(
        MigrationProblems, match="V1__m1.sql is not applied to this copy but the later version 2"
    ):
        pending(files, {2: record[2]})
    with pytest.raises(
        MigrationProblems, match="version 7 .* recorded as applied .* no file with that version"
    ):
        pending(files, {**record, 7: Applied(7, "V7__gone.sql", "0" * 64)})


# --- SQL folders on PostgreSQL --------------------------------------------------------------------------


def test_applies_in_numeric_order_once(prod_url):
    names = apply_migrations(prod_url, ORDERED, FIXTURES)
    assert names == ["V1__create_widgets.sql", "V2__add_widget_colour.sql", "V10__index_widget_colour.sql"]
    assert versions(prod_url) == [1, 2, 10]
    assert columns(prod_url, "public.widgets") == ["id", "kind", "colour"]
    assert scalars(prod_url, "SELECT colour FROM public.widgets ORDER BY id") == [
        "red; not a statement end",
        "blue",
    ]
    # the concurrently built index is there and valid
    assert scalars(
        prod_url,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.widgets_colour_idx')",
    ) == [True]
    assert apply_migrations(prod_url, ORDERED, FIXTURES) == []
    assert versions(prod_url) == [1, 2, 10]


def test_an_empty_folder_leaves_the_copy_untouched(prod_url, tmp_path):
    (tmp_path / "empty").mkdir()
    assert apply_migrations(prod_url, Migrations("sql", "empty"), tmp_path) == []
    assert scalars(prod_url, f"SELECT to_regclass('{VERSION_TABLE}')::text") == [None]


def test_a_failing_file_is_rolled_back_and_the_earlier_ones_stay(prod_url, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(FIXTURES / "sql_ordered" / "V1__create_widgets.sql", folder)
    broken = write(
        folder,
        "V2__broken.sql",
        "ALTER TABLE public.widgets ADD COLUMN colour text;\n"
        "-- the next one is misspelt\n"
        "ALTER TABL public.widgets ADD COLUMN size int;\n",
    )
    write(folder, "V3__never.sql", "CREATE TABLE public.never (id int);")
    with pytest.raises(TerminalError) as caught:
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)
    text = str(caught.value)
    assert f'{broken}:3: migration failed: syntax error at or near "TABL" (SQLSTATE 42601)' in text
    assert "in: ALTER TABL public.widgets ADD COLUMN size int" in text
    assert "nothing of V2__broken.sql was applied" in text
    assert "applied before it: V1__create_widgets.sql" in text
    assert versions(prod_url) == [1]
    assert columns(prod_url, "public.widgets") == ["id", "kind"]  # V2's first statement was rolled back
    assert scalars(prod_url, "SELECT to_regclass('public.never')::text") == [None]
    # fixed, it applies, and only what was missing
    broken.write_text("ALTER TABLE public.widgets ADD COLUMN colour text;\n")
    assert apply_migrations(prod_url, Migrations("sql", "m"), tmp_path) == ["V2__broken.sql", "V3__never.sql"]


def test_the_line_inside_a_statement_is_the_servers_cursor(prod_url, tmp_path):
    path = write(tmp_path / "m", "V1__type.sql", "\n\nCREATE TABLE t (\n    a int,\n    b no_such_type\n);\n")
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)
    assert f'{path}:5: migration failed: type "no_such_type" does not exist' in str(caught.value)
    assert "in: b no_such_type" in str(caught.value)


def test_errors_about_data_never_quote_values(prod_url, tmp_path):
    path = write(
        tmp_path / "m",
        "V1__cast.sql",
        "ALTER TABLE public.accounts ALTER COLUMN email TYPE integer USING email::integer;\n",
    )
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)
    text = str(caught.value)
    assert f"{path}:1:" in text
    assert "SQLSTATE 22P02" in text
    assert "someone" not in text and "example.org" not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_changed_applied_file_is_an_error(prod_url, tmp_path):
    folder = tmp_path / "m"
    path = write(folder, "V1__t.sql", "CREATE TABLE public.t (id int);\n")
    assert apply_migrations(prod_url, Migrations("sql", "m"), tmp_path) == ["V1__t.sql"]
    path.write_text("CREATE TABLE public.t (id bigint);\n")
    with pytest.raises(MigrationProblems, match="V1__t.sql changed after it was applied to this copy"):
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)


def test_a_bad_name_fails_before_anything_runs(prod_url, tmp_path):
    write(tmp_path / "m", "V1__t.sql", "CREATE TABLE public.t (id int);\n")
    write(tmp_path / "m", "2_add_index.sql", "SELECT 1;\n")
    with pytest.raises(MigrationProblems, match="2_add_index.sql is not a migration file name"):
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)
    assert scalars(prod_url, "SELECT to_regclass('public.t')::text") == [None]


def test_no_transaction_marker_runs_concurrent_index_builds(prod_url, tmp_path):
    folder = tmp_path / "m"
    write(
        folder,
        "V1__index.sql",
        "-- deid: no-transaction\nCREATE INDEX CONCURRENTLY accounts_email_idx ON public.accounts (email);\n",
    )
    assert apply_migrations(prod_url, Migrations("sql", "m"), tmp_path) == ["V1__index.sql"]
    assert scalars(prod_url, "SELECT to_regclass('public.accounts_email_idx')::text") == [
        "accounts_email_idx"
    ]


def test_without_the_marker_the_servers_refusal_is_explained(prod_url, tmp_path):
    # CLUSTER without a table is not recognised before running; the server refuses it (SQLSTATE 25001)
    path = write(tmp_path / "m", "V1__cluster.sql", "CREATE TABLE public.t (id int);\nCLUSTER;\n")
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)
    text = str(caught.value)
    assert (
        f"{path}:2: migration failed: CLUSTER cannot run inside a transaction block (SQLSTATE 25001)" in text
    )
    assert "put it in a file whose first line is '-- deid: no-transaction'" in text
    assert scalars(prod_url, "SELECT to_regclass('public.t')::text") == [None]


def test_a_failing_no_transaction_file_says_what_stayed(prod_url, tmp_path):
    path = write(
        tmp_path / "m",
        "V1__two.sql",
        "-- deid: no-transaction\n"
        "CREATE INDEX CONCURRENTLY a_idx ON public.accounts (id);\n"
        "CREATE INDEX CONCURRENTLY b_idx ON public.nothing (id);\n",
    )
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(prod_url, Migrations("sql", "m"), tmp_path)
    assert f"{path}:3:" in str(caught.value)
    assert "before this one stayed committed" in str(caught.value)
    assert scalars(prod_url, "SELECT to_regclass('public.a_idx')::text") == ["a_idx"]
    assert scalars(prod_url, f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL") == [True]
    assert versions(prod_url) == []


# --- Alembic --------------------------------------------------------------------------------------------


def test_alembic_upgrades_to_head_once(prod_url):
    assert apply_migrations(prod_url, ALEMBIC, FIXTURES) == [
        "a1 create feature_flags",
        "b2 add widgets.colour",
    ]
    assert scalars(prod_url, "SELECT version_num FROM alembic_version") == ["b2"]
    assert columns(prod_url, "public.widgets") == ["id", "kind", "colour"]
    assert apply_migrations(prod_url, ALEMBIC, FIXTURES) == []


def test_alembic_applies_only_what_the_copy_lacks(prod_url, tmp_path):
    location = tmp_path / "alembic"
    shutil.copytree(FIXTURES / "alembic_demo", location)
    (location / "versions" / "b2_add_widget_colour.py").unlink()
    assert apply_migrations(prod_url, Migrations("alembic", "alembic"), tmp_path) == [
        "a1 create feature_flags"
    ]
    shutil.copy(FIXTURES / "alembic_demo" / "versions" / "b2_add_widget_colour.py", location / "versions")
    assert apply_migrations(prod_url, Migrations("alembic", "alembic"), tmp_path) == ["b2 add widgets.colour"]


def test_alembic_failure_names_the_revision(prod_url, tmp_path):
    location = tmp_path / "alembic"
    shutil.copytree(FIXTURES / "alembic_demo", location)
    bad = write(
        location / "versions",
        "c3_broken.py",
        '"""broken"""\nfrom alembic import op\n\nrevision = "c3"\ndown_revision = "b2"\n\n\n'
        'def upgrade():\n    op.execute("ALTER TABLE widgets ADD COLUMN size nosuchtype")\n',
    )
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(prod_url, Migrations("alembic", "alembic"), tmp_path)
    text = str(caught.value)
    assert f'{bad}:9: revision c3 broken failed: type "nosuchtype" does not exist (SQLSTATE 42704)' in text
    assert "applied before it: a1 create feature_flags, b2 add widgets.colour" in text
    assert scalars(prod_url, "SELECT version_num FROM alembic_version") == ["b2"]


def test_alembic_needs_an_env_py(prod_url, tmp_path):
    (tmp_path / "alembic").mkdir()
    with pytest.raises(TerminalError, match="has no env.py"):
        apply_migrations(prod_url, Migrations("alembic", "alembic"), tmp_path)


def test_unknown_kind(prod_url):
    with pytest.raises(TerminalError, match="unknown migrations kind 'flyway'"):
        apply_migrations(prod_url, Migrations("flyway", "x"), FIXTURES)


# --- the step: rules re-checked against the migrated schema ---------------------------------------------


def sql_rules(tmp_path: Path) -> Path:
    """The fixture rules without feature_flags, which only the Alembic fixture creates."""
    return write(tmp_path, "sql_rules.yaml", RULES.read_text().split("  public.feature_flags:")[0])


def accounts_rules(tmp_path: Path) -> Path:
    """Rules for the "production" table only."""
    return write(tmp_path, "accounts_rules.yaml", RULES.read_text().split("  public.widgets:")[0])


@pytest.fixture
def run_context(postgres, tmp_path):
    """A RunContext whose working copy has been through snapshot, scrub and rebase (the steps migrate
    follows), cloned from a "production" database holding the accounts table; rules and migrations under
    tmp_path, which is the config root."""
    created: list[tuple[str, str]] = []

    def make(migrations: Migrations | None, rules: Path = RULES) -> RunContext:
        production = postgres.create_database("deid_prod")
        run_sql(postgres.url(production), PRODUCTION)
        database = DatabaseConfig(
            name="widgets",
            engine="postgresql",
            production="prod",
            staging_server="staging",
            staging_name=f"mig_{uuid.uuid4().hex[:8]}",
            rules=str(rules),
            salt_secret="salt",
            migrations=migrations,
        )
        config = Config(file=str(tmp_path / "deid.yaml"), root=tmp_path, databases={"widgets": database})
        ctx = RunContext(
            config=config,
            database=database,
            logical_date=dt.date(2026, 11, 28),
            production_url=postgres.url(production),
            staging_server_url=postgres.admin_url,
            salt="salt",
        )
        created.append((production, ctx.work_name))
        for step in (snapshot, scrub, rebase):
            step(ctx)
        return ctx

    yield make
    for production, work in created:
        postgres.drop_database(work)
        postgres.drop_database(production)


def test_migrate_step_applies_records_and_checks(run_context, tmp_path):
    shutil.copytree(FIXTURES / "sql_ordered", tmp_path / "sql")
    ctx = run_context(Migrations("sql", "sql"), sql_rules(tmp_path))
    names = ["V1__create_widgets.sql", "V2__add_widget_colour.sql", "V10__index_widget_colour.sql"]
    assert migrate(ctx) == names
    assert ctx.record["migrations"] == names
    assert migrate(ctx) == []  # a retried step applies nothing
    assert ctx.record["migrations"] == []


def test_migrate_step_with_alembic(run_context, tmp_path):
    shutil.copytree(FIXTURES / "alembic_demo", tmp_path / "alembic")
    ctx = run_context(Migrations("alembic", "alembic"))
    # widgets.colour and feature_flags have rules; alembic_version has none and needs none
    assert migrate(ctx) == ["a1 create feature_flags", "b2 add widgets.colour"]


def test_a_column_added_without_a_rule_fails_the_run(run_context, tmp_path):
    write(tmp_path / "sql", "V1__phone.sql", "ALTER TABLE public.accounts ADD COLUMN phone text;\n")
    ctx = run_context(Migrations("sql", "sql"), accounts_rules(tmp_path))
    with pytest.raises(RuleProblems) as caught:
        migrate(ctx)
    assert len(caught.value.problems) == 1
    assert (
        "1 column(s) have no rule (deid fails closed on unclassified columns): public.accounts.phone"
        in str(caught.value)
    )
    # the table has an entry: the block says so, and lists the column to add under its columns:
    assert "  public.accounts:  # existing entry" in caught.value.appendix
    assert "    columns:\n      phone: {class: phone}" in caught.value.appendix
    assert ctx.record["migrations"] == ["V1__phone.sql"]  # applied; the run fails after it


def test_a_table_added_without_rules_fails_with_the_paste_block(run_context, tmp_path):
    write(tmp_path / "sql", "V1__notes.sql", "CREATE TABLE public.notes (id int PRIMARY KEY, body text);\n")
    ctx = run_context(Migrations("sql", "sql"), accounts_rules(tmp_path))
    with pytest.raises(RuleProblems) as caught:
        migrate(ctx)
    assert len(caught.value.problems) == 1
    assert (
        "2 column(s) have no rule (deid fails closed on unclassified columns): "
        "public.notes.id, public.notes.body" in str(caught.value)
    )
    block = caught.value.appendix
    assert "  public.notes:\n    columns:\n      id: {transformer: keep, reason: 'a key" in block
    assert VERSION_TABLE not in str(caught.value)  # deid's bookkeeping needs no rule


def test_rules_of_objects_a_migration_drops_are_set_aside(run_context, tmp_path):
    rules = write(tmp_path, "rules.yaml", RULES.read_text())
    write(
        tmp_path / "sql", "V1__widgets.sql", "CREATE TABLE public.widgets (id int, kind text, colour text);\n"
    )
    write(tmp_path / "sql", "V2__drop_email.sql", "ALTER TABLE public.accounts DROP COLUMN email;\n")
    ctx = run_context(Migrations("sql", "sql"), rules)
    with pytest.raises(RuleProblems, match="table public.feature_flags does not exist"):
        migrate(ctx)  # a rule for a table that exists neither before nor after still fails
    ctx = run_context(Migrations("sql", "sql"), sql_rules(tmp_path))
    assert migrate(ctx) == ["V1__widgets.sql", "V2__drop_email.sql"]
    assert ctx.record["rules_for_dropped"] == ["public.accounts.email"]


def test_bookkeeping_tables_are_left_out_only_without_a_rule(tmp_path):
    version_num = Column("version_num", "character varying(32)", Kind.TEXT, nullable=False)
    alembic = Table("public", "alembic_version", (version_num,))
    lookalike = Table("public", "alembic_version", (version_num, Column("note", "text", Kind.TEXT)))
    deid = Table("_deid_migrations", "applied", (Column("version", "bigint", Kind.INTEGER),))
    accounts = Table(
        "public", "accounts", (Column("id", "integer", Kind.INTEGER), Column("email", "text", Kind.TEXT))
    )
    assert is_bookkeeping(alembic) and is_bookkeeping(deid) and not is_bookkeeping(lookalike)
    header = (
        "version: 1\ndatabase: widgets\ntables:\n  public.accounts:\n    columns: {id: keep, email: null}\n"
    )
    rules = load_rules(write(tmp_path, "rules.yaml", header))
    assert check_migrated(rules, Schema("widgets", "postgresql", (accounts, alembic, deid))) == []
    with pytest.raises(RuleProblems, match="public.alembic_version.note"):
        check_migrated(rules, Schema("widgets", "postgresql", (accounts, lookalike)))
    # a rule for a bookkeeping table is checked like any other
    ruled = header + "  public.alembic_version:\n    columns: {version_num: keep, extra: keep}\n"
    with pytest.raises(RuleProblems, match="column public.alembic_version.extra does not exist"):
        check_migrated(
            load_rules(write(tmp_path, "ruled.yaml", ruled)), Schema("w", "postgresql", (accounts, alembic))
        )


# --- the demo migration ---------------------------------------------------------------------------------

DEMO_RULES = """
  public.feature_flags:
    columns:
      id: keep
      flag: keep
      enabled: keep
      description: keep
"""


def test_demo_migration_applies_to_the_seeded_demo(pg_url, tmp_path):
    seed(pg_url, learners=50)
    demo = Migrations("sql", "migrations/learners")
    assert apply_migrations(pg_url, demo, ROOT) == ["V1__add_staging_feature_flags.sql"]
    assert apply_migrations(pg_url, demo, ROOT) == []
    assert scalars(pg_url, "SELECT flag FROM public.feature_flags WHERE enabled") == ["new_course_page"]
    assert "tagline" in columns(pg_url, "public.courses")
    # rerunnable: the night production has the table and the column, the file changes nothing
    run_sql(pg_url, "DROP SCHEMA _deid_migrations CASCADE")
    assert apply_migrations(pg_url, demo, ROOT) == ["V1__add_staging_feature_flags.sql"]
    assert scalars(pg_url, "SELECT count(*) FROM public.feature_flags") == [2]
    # the rules the lead adds to rules/learners.yaml make the migrated schema pass the re-check
    text = (ROOT / "rules" / "learners.yaml").read_text()
    if "public.feature_flags:" not in text:
        text = text.replace("      published: keep\n", "      published: keep\n      tagline: keep\n")
        text = text.replace("\n  public.degrees:", DEMO_RULES + "\n  public.degrees:")
    rules = write(tmp_path, "learners.yaml", text)
    engine = sa.create_engine(pg_url)
    with engine.connect() as c:
        from deid.backends import backend_for

        migrated = backend_for("postgresql").introspect(c, "learners")
    engine.dispose()
    assert check_migrated(load_rules(rules), migrated) == []


def test_alembic_env_errors_are_terminal_and_named(prod_url, tmp_path):
    location = tmp_path / "alembic"
    shutil.copytree(FIXTURES / "alembic_demo", location)
    env = location / "env.py"
    env.write_text("import no_such_app_models  # noqa\n" + env.read_text())
    with pytest.raises(TerminalError, match=r"alembic env.py in .*: ModuleNotFoundError: No module named"):
        apply_migrations(prod_url, Migrations("alembic", "alembic"), tmp_path)
