"""SQL-folder and Alembic migrations on a real MySQL/MariaDB server (DEID_TEST_MYSQL_URL; CI's is MariaDB
10.11): DDL commits by itself there, so a file runs statement by statement, its progress recorded after each
one, and a retried step resumes at the statement that failed. The splitter's MySQL rules are checked without
a server. The PostgreSQL twin is tests/test_migrate.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends import backend_for, engine_names
from deid.backends.base import MigrationDialect
from deid.backends.diagnosis import Diagnosis
from deid.backends.mysql import migrations as dialect
from deid.config import Migrations
from deid.errors import TerminalError
from deid.migrations import MigrationProblems, apply_migrations, is_bookkeeping, version_tables
from deid.migrations.sqlfiles import read_folder
from deid.rules.load import load_rules
from deid.steps.migrate import check_migrated
from tests.mysql_server import mysql_server, mysql_url  # noqa: F401

SQL = Migrations("sql", "m")
ALEMBIC = Migrations("alembic", "alembic")
ENV_PY = Path(__file__).parent / "fixtures" / "migrations" / "alembic_demo" / "env.py"

V1 = """-- widgets, with an index on kind
CREATE TABLE widgets (
    id    INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind  VARCHAR(40) NOT NULL,
    stamp VARCHAR(40) NULL COMMENT 'set by the trigger; see V2'
) ENGINE=InnoDB;
CREATE INDEX widgets_kind_idx ON widgets (kind);
"""
V2 = """# the trigger's body holds semicolons: it sits in a DELIMITER block
DELIMITER $$
CREATE TRIGGER widgets_stamp BEFORE INSERT ON widgets FOR EACH ROW
BEGIN
    IF NEW.stamp IS NULL THEN
        SET NEW.stamp = CONCAT('made;', NEW.kind);
    END IF;
END$$
DELIMITER ;
INSERT INTO widgets (kind) VALUES ('gear'), ('it\\'s; a cog'), ("say \\"hi\\"; then go");
"""
V10 = """-- numbered 10: it needs V2's rows, so it fails if files are sorted as text (V1, V10, V2)
UPDATE widgets SET kind = CONCAT(kind, ' (v10)') WHERE stamp LIKE 'made;%';
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        rows = [tuple(row) for row in c.exec_driver_sql(sql)]
    engine.dispose()
    return rows


def progress(url: str) -> list[tuple]:
    return query(url, f"SELECT version, name, statements_done FROM {dialect.TABLE} ORDER BY version")


# --- splitting (no server) -------------------------------------------------------------------------------


def test_split_follows_the_mysql_clients_rules():
    text = r"""-- a comment; not a statement
# and another; with a semicolon
CREATE TABLE `odd;name` (`a``;b` INT, s VARCHAR(9) DEFAULT 'a;b' COMMENT "it\"s; ok");
INSERT INTO `odd;name` VALUES (1, 'it\'s; here', 'x''y;z'); /* a block; comment */ SELECT 3--1;
/*!40101 SET @saved_mode = @@SQL_MODE */;
DELIMITER $$
CREATE DEFINER = CURRENT_USER PROCEDURE p()
BEGIN
    SELECT 'a;' INTO @x; -- inside the body
END$$
  delimiter ;
SELECT 1 # a comment at the end; still one statement
;
SELECT 'no delimiter at the end'"""
    statements = dialect.split(text)
    assert [s.line for s in statements] == [3, 4, 4, 5, 7, 12, 14]
    assert statements[0].sql == (
        'CREATE TABLE `odd;name` (`a``;b` INT, s VARCHAR(9) DEFAULT \'a;b\' COMMENT "it\\"s; ok")'
    )
    assert statements[1].sql == r"INSERT INTO `odd;name` VALUES (1, 'it\'s; here', 'x''y;z')"
    assert statements[2].sql == "SELECT 3--1"  # `--` without a space after it is two minus signs
    assert statements[3].sql == "/*!40101 SET @saved_mode = @@SQL_MODE */"
    assert statements[3].words[:1] == ("set",)  # an executable comment's words count
    assert statements[4].sql.startswith("CREATE DEFINER = CURRENT_USER PROCEDURE p()\nBEGIN")
    assert statements[4].sql.endswith("-- inside the body\nEND")  # `END$$`: the delimiter ends the word
    assert statements[5].sql == "SELECT 1 # a comment at the end; still one statement"
    assert statements[6].sql == "SELECT 'no delimiter at the end'"
    assert all(dialect.problem(s) is None for s in statements)


def test_a_trigger_body_without_a_delimiter_block_is_refused_before_anything_runs(tmp_path):
    path = write(
        tmp_path,
        "V1__trigger.sql",
        "CREATE TABLE t (a INT, b INT);\n"
        "CREATE TRIGGER t_b BEFORE INSERT ON t FOR EACH ROW\nBEGIN\n    SET NEW.b = NEW.a;\nEND;\n",
    )
    with pytest.raises(MigrationProblems) as caught:
        read_folder(tmp_path, dialect)
    text = str(caught.value)
    assert f"{path}:2: a trigger body with BEGIN ... END holds ';', which ends the statement here" in text
    assert "between a line 'DELIMITER $$' and a line 'DELIMITER ;'" in text
    # in a DELIMITER block it is one statement, and so is MariaDB's BEGIN NOT ATOMIC block
    write(
        tmp_path,
        "V1__trigger.sql",
        "DELIMITER //\nCREATE TRIGGER t_b BEFORE INSERT ON t FOR EACH ROW\n"
        "BEGIN\n    SET NEW.b = NEW.a;\nEND//\nBEGIN NOT ATOMIC\n    SELECT 1;\nEND//\n",
    )
    assert [len(m.statements) for m in read_folder(tmp_path, dialect)] == [2]


@pytest.mark.parametrize(
    ("statement", "said"),
    [
        ("START TRANSACTION", "START: deid runs each statement on its own"),
        ("COMMIT", "COMMIT: deid runs each statement on its own"),
        ("LOCK TABLES t WRITE", "LOCK TABLES: deid records each statement in its version table"),
    ],
)
def test_transaction_control_and_table_locks_are_refused(tmp_path, statement, said):
    path = write(tmp_path, "V1__x.sql", f"CREATE TABLE t (a INT);\n{statement};\n")
    with pytest.raises(MigrationProblems, match=f"{path}:2: {said}"):
        read_folder(tmp_path, dialect)


def test_a_syntax_errors_line_is_read_from_the_servers_text():
    statement = dialect.split("\n\nCREATE TABLE t (\n    a INT,\n    b INTT NOT NULL\n)")[0]
    said = Diagnosis(message="... the right syntax to use near 'NOT NULL\n)' at line 3", about_statement=True)
    assert statement.line_at(dialect.error_position(statement, said)) == 5
    assert dialect.error_position(statement, Diagnosis(message="Table 't' doesn't exist")) is None


def test_each_engines_dialect_has_every_member_the_protocol_names():
    members = {n for n in vars(MigrationDialect) if not n.startswith("_")} | set(
        MigrationDialect.__annotations__
    )
    assert {"split", "record", "one_transaction", "version_table"} <= members
    for name in engine_names():
        module = backend_for(name).migrations()
        assert not [m for m in members if not hasattr(module, m)], name


def test_deids_version_table_on_mysql_is_bookkeeping():
    assert dialect.version_table in version_tables()
    assert backend_for("postgresql").migrations().version_table in version_tables()


# --- on the server ---------------------------------------------------------------------------------------


def test_a_folder_applies_in_numeric_order_once(mysql_url, tmp_path):
    write(tmp_path / "m", "V1__widgets.sql", V1)
    write(tmp_path / "m", "V2__stamp_trigger.sql", V2)
    write(tmp_path / "m", "V10__mark.sql", V10)
    names = ["V1__widgets.sql", "V2__stamp_trigger.sql", "V10__mark.sql"]
    assert apply_migrations(mysql_url, SQL, tmp_path) == names
    assert query(mysql_url, "SELECT id, kind, stamp FROM widgets ORDER BY id") == [
        (1, "gear (v10)", "made;gear"),
        (2, "it's; a cog (v10)", "made;it's; a cog"),
        (3, 'say "hi"; then go (v10)', 'made;say "hi"; then go'),
    ]
    assert query(
        mysql_url,
        "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'widgets' AND COLUMN_NAME = 'kind'",
    ) == [("widgets_kind_idx",)]
    assert query(
        mysql_url, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
    ) == [("widgets_stamp",)]
    assert progress(mysql_url) == [(1, names[0], None), (2, names[1], None), (10, names[2], None)]
    assert apply_migrations(mysql_url, SQL, tmp_path) == []  # a second apply is a no-op
    assert query(mysql_url, "SELECT count(*) FROM widgets") == [(3,)]

    # the migrated schema passes the rules without one for deid's version table
    engine = sa.create_engine(mysql_url, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        migrated = backend_for("mysql").introspect(c, "widgets")
    engine.dispose()
    assert any(is_bookkeeping(t) for t in migrated.tables)
    rules = write(
        tmp_path,
        "rules.yaml",
        "version: 1\ndatabase: widgets\ntables:\n  public.widgets:\n    columns: {id: keep, kind: keep, "
        "stamp: keep}\n",
    )
    assert check_migrated(load_rules(rules), migrated) == []


def test_an_empty_folder_leaves_the_copy_untouched(mysql_url, tmp_path):
    (tmp_path / "m").mkdir()
    assert apply_migrations(mysql_url, SQL, tmp_path) == []
    assert query(mysql_url, "SHOW TABLES") == []


def test_a_failing_statement_keeps_the_ones_before_it_and_the_retry_resumes_after_them(mysql_url, tmp_path):
    write(tmp_path / "m", "V1__widgets.sql", V1)
    text = (
        "SET @origin = 'staging';\n"  # a session setting: run again before the file resumes
        "ALTER TABLE widgets ADD COLUMN origin VARCHAR(20);\n"
        "INSERT INTO widgets (kind) VALUES ('first');\n"  # not rerunnable: it must run once
        "-- the next one is misspelt\n"
        "ALTER TABL widgets ADD COLUMN size INT;\n"
        "UPDATE widgets SET origin = @origin;\n"
    )
    path = write(tmp_path / "m", "V2__grow.sql", text)
    write(tmp_path / "m", "V3__never.sql", "CREATE TABLE never (id INT);\n")
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(mysql_url, SQL, tmp_path)
    said = str(caught.value)
    assert f"{path}:5: migration failed: You have an error in your SQL syntax" in said
    assert "(error 1064), in: ALTER TABL widgets ADD COLUMN size INT" in said
    assert "statements 1 to 3 of V2__grow.sql (up to line 3) stayed applied" in said
    assert "a retry resumes at this statement (statement 4, line 5)" in said
    assert "applied before it: V1__widgets.sql" in said
    assert progress(mysql_url) == [(1, "V1__widgets.sql", None), (2, "V2__grow.sql", 3)]
    assert query(mysql_url, "SELECT kind, origin FROM widgets") == [("first", None)]
    assert query(mysql_url, "SHOW TABLES LIKE 'never'") == []

    # an applied statement changed: refused before anything runs
    path.write_text(text.replace("'first'", "'second'").replace("ALTER TABL ", "ALTER TABLE "))
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(mysql_url, SQL, tmp_path)
    assert (
        f"{path}: V2__grow.sql stopped part-way on an earlier try: its first 3 statement(s) stayed applied "
        "(line 3 now), and they are not what ran then" in str(caught.value)
    )
    assert query(mysql_url, "SELECT kind FROM widgets") == [("first",)]

    # only the failed statement corrected: the file resumes there, the session setting holds again
    path.write_text(text.replace("ALTER TABL ", "ALTER TABLE "))
    assert apply_migrations(mysql_url, SQL, tmp_path) == ["V2__grow.sql", "V3__never.sql"]
    assert query(mysql_url, "SELECT kind, origin, size FROM widgets") == [("first", "staging", None)]
    assert progress(mysql_url) == [
        (1, "V1__widgets.sql", None),
        (2, "V2__grow.sql", None),
        (3, "V3__never.sql", None),
    ]
    # the whole file is recorded now: from here on, any change to it is refused
    path.write_text(text.replace("ALTER TABL ", "ALTER TABLE ") + "SELECT 1;\n")
    with pytest.raises(MigrationProblems, match="V2__grow.sql changed after it was applied to this copy"):
        apply_migrations(mysql_url, SQL, tmp_path)


def test_a_failing_insert_leaves_none_of_its_rows_and_quotes_no_value(mysql_url, tmp_path):
    engine = sa.create_engine(mysql_url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:  # "production" rows, which a message must never quote
        c.exec_driver_sql("CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(80))")
        c.exec_driver_sql("INSERT INTO people VALUES (1, 'someone@example.org'), (2, 'other@example.org')")
    engine.dispose()
    path = write(
        tmp_path / "m",
        "V1__archive.sql",
        "CREATE TABLE archive (id INT PRIMARY KEY, email VARCHAR(80) UNIQUE);\n"
        "INSERT INTO archive SELECT id, email FROM people;\n"
        "INSERT INTO archive SELECT id + 10, email FROM people;\n",
    )
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(mysql_url, SQL, tmp_path)
    said = str(caught.value)
    assert f"{path}:3: migration failed: the statement failed (error 1062)" in said
    assert "example.org" not in said and "someone" not in said  # a duplicate key's text quotes the value
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert query(mysql_url, "SELECT count(*) FROM archive") == [(2,)]  # none of the failed statement's rows
    assert progress(mysql_url) == [(1, "V1__archive.sql", 2)]

    path.write_text(
        "CREATE TABLE archive (id INT PRIMARY KEY, email VARCHAR(80) UNIQUE);\n"
        "INSERT INTO archive SELECT id, email FROM people;\n"
        "ALTER TABLE people MODIFY email INT;\n"
    )
    with pytest.raises(MigrationProblems) as caught:
        apply_migrations(mysql_url, SQL, tmp_path)
    said = str(caught.value)
    # a cast of the production values: the server's text quotes one, the message does not
    assert f"{path}:3: migration failed: the statement failed (error " in said
    assert "example.org" not in said and "someone" not in said


def test_a_bad_file_name_fails_before_anything_runs(mysql_url, tmp_path):
    write(tmp_path / "m", "V1__t.sql", "CREATE TABLE t (id INT);\n")
    write(tmp_path / "m", "2_add_index.sql", "SELECT 1;\n")
    with pytest.raises(MigrationProblems, match="2_add_index.sql is not a migration file name"):
        apply_migrations(mysql_url, SQL, tmp_path)
    assert query(mysql_url, "SHOW TABLES") == []


# --- Alembic ---------------------------------------------------------------------------------------------

REVISIONS = {
    "a1_create_feature_flags.py": '''"""create feature_flags"""
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None


def upgrade():
    op.create_table(
        "feature_flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("flag", sa.String(60), nullable=False, unique=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
''',
    "b2_add_description.py": '''"""add feature_flags.description"""
import sqlalchemy as sa
from alembic import op

revision = "b2"
down_revision = "a1"


def upgrade():
    op.add_column("feature_flags", sa.Column("description", sa.Text))
    op.bulk_insert(
        sa.table("feature_flags", sa.column("flag"), sa.column("enabled")),
        [{"flag": "new_course_page", "enabled": True}],
    )
''',
}


def alembic_location(tmp_path: Path, revisions: dict[str, str]) -> Path:
    location = tmp_path / "alembic"
    (location / "versions").mkdir(parents=True)
    shutil.copy(ENV_PY, location)
    for name, text in revisions.items():
        write(location / "versions", name, text)
    return location


def test_alembic_revisions_apply_to_mariadb_once(mysql_url, tmp_path):
    location = alembic_location(
        tmp_path, {"a1_create_feature_flags.py": REVISIONS["a1_create_feature_flags.py"]}
    )
    assert apply_migrations(mysql_url, ALEMBIC, tmp_path) == ["a1 create feature_flags"]
    write(location / "versions", "b2_add_description.py", REVISIONS["b2_add_description.py"])
    assert apply_migrations(mysql_url, ALEMBIC, tmp_path) == ["b2 add feature_flags.description"]
    assert apply_migrations(mysql_url, ALEMBIC, tmp_path) == []
    assert query(mysql_url, "SELECT version_num FROM alembic_version") == [("b2",)]
    assert query(mysql_url, "SELECT flag, enabled, description FROM feature_flags") == [
        ("new_course_page", 1, None)
    ]
    engine = sa.create_engine(mysql_url, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        tables = backend_for("mysql").introspect(c, "flags").tables
    engine.dispose()
    assert [t.qualified for t in tables if is_bookkeeping(t)] == ["public.alembic_version"]


def test_a_failing_alembic_revision_says_what_stayed_applied(mysql_url, tmp_path):
    broken = '''"""half done"""
import sqlalchemy as sa
from alembic import op

revision = "c3"
down_revision = "b2"


def upgrade():
    op.add_column("feature_flags", sa.Column("owner", sa.String(40)))
    op.execute("ALTER TABLE feature_flags ADD COLUMN size NOSUCHTYPE")
'''
    location = alembic_location(tmp_path, {**REVISIONS, "c3_half_done.py": broken})
    with pytest.raises(TerminalError) as caught:
        apply_migrations(mysql_url, ALEMBIC, tmp_path)
    said = str(caught.value)
    assert f"{location / 'versions' / 'c3_half_done.py'}:11: revision c3 half done failed" in said
    assert "applied before it: a1 create feature_flags, b2 add feature_flags.description" in said
    assert "what revision c3 did before the error stayed applied" in said
    assert "a retry runs the whole revision again" in said
    assert query(mysql_url, "SELECT version_num FROM alembic_version") == [("b2",)]
    columns = query(
        mysql_url,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'feature_flags' ORDER BY ORDINAL_POSITION",
    )
    assert ("owner",) in columns  # DDL committed by itself: the first operation stayed
