"""MySQL/MariaDB copies on the staging server: both cloners, the notes, access, and the publish swap by one
RENAME TABLE (deid/backends/mysql/copies.py, cloners/). Runs on the server of DEID_TEST_MYSQL_URL.

Production is a small schema holding what a copy must carry: AUTO_INCREMENT counters (one past a deleted
row), a foreign key, VIRTUAL and STORED generated columns, ENUM/JSON/BLOB values, triggers (one that writes
into another table, naming production's database explicitly), views (one over another), a procedure, a
function and an event.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql import copies
from deid.backends.mysql.cloners import dump, objects
from deid.cloners import cloner_for, create_working_copy
from deid.cloners.pipe import Outcome
from deid.config import Config, DatabaseConfig
from deid.errors import ConfigError, TerminalError
from deid.steps import publish as publishing
from deid.steps.context import RunContext, kept_name, work_name
from deid.steps.copies import admin, copies_on, new_metadata, read_metadata, set_metadata
from deid.steps.publish import rollback
from tests.mysql_server import MysqlServer, mysql_server  # noqa: F401

D1, D2, D3 = (dt.date(2026, 3, day) for day in (1, 2, 3))
TABLES = ("users", "orders", "audit")


def production_ddl(db: str) -> list[str]:
    q = f"`{db}`"
    return [
        """CREATE TABLE users (
            id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
            email varchar(120) NOT NULL UNIQUE,
            first_name varchar(40), last_name varchar(40),
            full_name varchar(81) AS (CONCAT(first_name, ' ', last_name)) VIRTUAL,
            status ENUM('active', 'closed') NOT NULL DEFAULT 'active',
            profile JSON, avatar BLOB,
            updated_at timestamp NULL DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP
        ) ENGINE=InnoDB""",
        """CREATE TABLE orders (
            id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
            user_id int unsigned NOT NULL,
            amount decimal(10,2) NOT NULL,
            cents bigint AS (amount * 100) STORED,
            CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
        ) ENGINE=InnoDB""",
        "CREATE TABLE audit (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, order_id bigint, note varchar(40))",
        "CREATE TRIGGER users_lower BEFORE UPDATE ON users FOR EACH ROW SET NEW.email = LOWER(NEW.email)",
        f"CREATE TRIGGER orders_audit AFTER INSERT ON {q}.orders FOR EACH ROW "
        f"INSERT INTO {q}.audit (order_id, note) VALUES (NEW.id, 'order placed')",
        "CREATE VIEW active_users AS SELECT id, email FROM users WHERE status = 'active'",
        "CREATE VIEW active_orders AS SELECT o.id, o.amount, a.email FROM orders o JOIN active_users a "
        "ON a.id = o.user_id",
        f"CREATE FUNCTION order_count(u int) RETURNS int READS SQL DATA "
        f"RETURN (SELECT COUNT(*) FROM {q}.orders WHERE user_id = u)",
        "CREATE PROCEDURE close_user(u int) UPDATE users SET status = 'closed' WHERE id = u",
        f"CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DO DELETE FROM {q}.audit WHERE id < 0",
    ]


ROWS = [
    "INSERT INTO users (email, first_name, last_name, status, profile, avatar) VALUES "
    "('ada@example.com', 'Ada', 'Lovelace', 'active', '{\"tier\": 1}', 0x00FF10), "
    "('bob@example.com', 'Bob', NULL, 'closed', NULL, NULL), "
    "('cy@example.com', 'Cy', 'Young', 'active', '[1, 2]', 0xDEADBEEF), "
    "('gone@example.com', 'Gone', 'Away', 'active', NULL, NULL)",
    "DELETE FROM users WHERE email = 'gone@example.com'",  # the counter stays past the last row
    "INSERT INTO orders (user_id, amount) VALUES (1, 10.50), (1, 3.25), (3, 99.99)",
]


def run(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        for statement in statements:
            c.exec_driver_sql(statement)
    engine.dispose()


def query(url: str, statement: str, **params) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        rows = [tuple(r) for r in c.execute(sa.text(statement), params)]
    engine.dispose()
    return rows


def checksums(url: str, database: str) -> dict[str, int]:
    rows = query(url, f"CHECKSUM TABLE {', '.join(f'`{database}`.`{t}`' for t in TABLES)} EXTENDED")
    return {name.split(".")[-1]: value for name, value in rows}


def counters(url: str, database: str) -> dict[str, int]:
    rows = query(
        url,
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = :d "
        "AND TABLE_TYPE = 'BASE TABLE'",
        d=database,
    )
    return {name: value for name, value in rows if name in TABLES}


def references(url: str, database: str) -> list[tuple]:
    """(database, table) each foreign key of `database` references."""
    return query(
        url,
        "SELECT REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
        "WHERE TABLE_SCHEMA = :d AND REFERENCED_TABLE_NAME IS NOT NULL",
        d=database,
    )


def names(url: str, database: str, table: str, column: str, schema_column: str) -> set[str]:
    rows = query(
        url, f"SELECT {column} FROM information_schema.{table} WHERE {schema_column} = :d", d=database
    )
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def production(mysql_server: MysqlServer):  # noqa: F811
    name = mysql_server.create_database("deid_prod")
    url = mysql_server.url(name)
    run(url, [*production_ddl(name), *ROWS])
    yield name
    mysql_server.drop_database(name)


@pytest.fixture
def staging(mysql_server: MysqlServer):  # noqa: F811
    """A staging name of its own; every database deid made for it is dropped afterwards."""
    name = f"deid_stg_{uuid.uuid4().hex[:8]}"
    yield name
    for (database,) in query(mysql_server.admin_url, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"):
        if database.startswith(name):
            mysql_server.drop_database(database)


def make_ctx(server: MysqlServer, production: str, staging: str, day: dt.date, clone: str, **fields):
    database = DatabaseConfig(
        name="shop",
        engine="mysql",
        production="production",
        staging_server="staging",
        staging_name=staging,
        rules="rules/shop.yaml",
        salt_secret="salt",
        clone=clone,
        migrations=None,
        **fields,
    )
    root = Path(__file__).resolve().parent.parent
    return RunContext(
        config=Config(file="deid.yaml", root=root, databases={"shop": database}),
        database=database,
        logical_date=day,
        production_url=server.url(production),
        staging_server_url=server.admin_url,
        salt="not-a-secret",
    )


def clone(server: MysqlServer, production: str, staging: str, day: dt.date, method: str, label: str):
    """A working copy of `day` made by `method`, with its note, and a marker row telling copies apart."""
    ctx = make_ctx(server, production, staging, day, method)
    cloner_for(method, "mysql").clone(ctx)
    with admin(ctx.staging_server_url) as c:
        set_metadata(c, ctx.work_name, new_metadata("shop", day))
    run(ctx.work_url, [f"INSERT INTO audit (order_id, note) VALUES (NULL, '{label}')"])
    return ctx


# --- the cloners -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dump", "same_server"])
def test_clone_copies_rows_counters_and_objects(mysql_server, production, staging, method):  # noqa: F811
    server = mysql_server.admin_url
    before = checksums(server, production)
    ctx = make_ctx(mysql_server, production, staging, D1, method)
    cloner_for(method, "mysql").clone(ctx)
    work = ctx.work_name

    assert checksums(server, work) == before  # every row of every table, generated columns included
    assert checksums(server, production) == before  # production unchanged
    assert counters(server, work) == counters(server, production)
    assert counters(server, work)["users"] == 5  # one past the deleted row, not max(id) + 1
    assert query(server, f"SELECT full_name, status FROM `{work}`.users WHERE id = 1") == [
        ("Ada Lovelace", "active")
    ]
    assert query(server, f"SELECT HEX(avatar) FROM `{work}`.users WHERE id = 3") == [("DEADBEEF",)]
    assert names(server, work, "TRIGGERS", "TRIGGER_NAME", "TRIGGER_SCHEMA") == {
        "users_lower",
        "orders_audit",
    }
    assert names(server, work, "VIEWS", "TABLE_NAME", "TABLE_SCHEMA") == {"active_users", "active_orders"}
    assert names(server, work, "ROUTINES", "ROUTINE_NAME", "ROUTINE_SCHEMA") == {"order_count", "close_user"}
    assert query(server, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :d", d=work) == [
        ("DISABLED",)
    ]
    assert references(server, work) == [(work, "users")]

    # the trigger that named production's database explicitly now writes into the working copy
    placed = f"SELECT COUNT(*) FROM `{work}`.audit WHERE note = 'order placed'"
    assert query(server, placed) == [(3,)]  # production's, copied
    run(ctx.work_url, ["INSERT INTO orders (user_id, amount) VALUES (3, 1.00)"])
    assert query(server, placed) == [(4,)]
    assert checksums(server, production) == before
    assert query(server, f"SELECT `{work}`.order_count(3)") == [(2,)]  # the function reads the copy
    assert query(server, f"SELECT COUNT(*) FROM `{work}`.active_orders") == [(4,)]


def test_dump_error_masks_quoted_values_and_secrets():
    stderr = (
        "ERROR 1062 (23000) at line 45: Duplicate entry 'ada@example.com' for key 'email'\n"
        "mariadb: connecting with password hunter22 failed\n"
    )
    error = dump.pipeline_error([Outcome("mariadb", 1, stderr)], "shop", "shop__work_1", ["hunter22"])
    text = str(error)
    assert "ada@example.com" not in text and "hunter22" not in text
    assert "ERROR 1062 (23000) at line 45" in text and "'?'" in text


def test_dump_of_an_unreachable_production_fails_naming_no_password(mysql_server, production, staging):  # noqa: F811
    ctx = make_ctx(mysql_server, production, staging, D1, "dump")
    wrong = sa.make_url(ctx.production_url).set(username="nobody_here", password="s3cret-pass")
    ctx.production_url = wrong.render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match="Access denied") as caught:  # the server said no: no retry
        cloner_for("dump", "mysql").clone(ctx)
    assert "s3cret-pass" not in str(caught.value)
    with admin(mysql_server.admin_url) as c:
        assert not copies.exists(c, ctx.work_name)


def test_same_server_refuses_another_server(mysql_server, production, staging, tmp_path):  # noqa: F811
    ctx = make_ctx(mysql_server, production, staging, D1, "same_server")
    # the same server under another port would be another server: simulated by a URL the server refuses
    ctx.staging_server_url = sa.make_url(ctx.staging_server_url).set(port=1).render_as_string(False)
    with pytest.raises(Exception):  # noqa: B017 - no connection at all, or a ConfigError: never a copy
        cloner_for("same_server", "mysql").clone(ctx)
    assert not query(
        mysql_server.admin_url,
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :d",
        d=ctx.work_name,
    )


# --- notes, listing, access --------------------------------------------------------------------------------


def test_notes_are_read_written_and_listed_by_exact_prefix(mysql_server, staging):  # noqa: F811
    lookalike = staging.replace("_", "X", 1) + "__20260101"  # matches LIKE 'deid_stg...__%', not the prefix
    with admin(mysql_server.admin_url) as c:
        for database in (staging, work_name(staging, D1), kept_name(staging, D2), lookalike):
            c.exec_driver_sql(f"CREATE DATABASE `{database}`")
        try:
            assert copies.read_note(c, staging) is None
            set_metadata(c, work_name(staging, D1), new_metadata("shop", D1))
            set_metadata(c, work_name(staging, D1), {**new_metadata("shop", D1), "rows": {"public.users": 3}})
            assert read_metadata(c, work_name(staging, D1))["rows"] == {"public.users": 3}
            found = {copy.name: copy for copy in copies_on(c, staging)}
            assert set(found) == {staging, work_name(staging, D1), kept_name(staging, D2)}
            assert found[work_name(staging, D1)].logical_date == D1
            assert found[staging].metadata == {}
            with pytest.raises(TerminalError, match="refusing to store metadata"):  # deid's facts only
                set_metadata(c, staging, {"deid": 1, "email": "ada@example.com"})
        finally:
            c.exec_driver_sql(f"DROP DATABASE `{lookalike}`")


def test_a_wildcard_grant_reaching_a_working_copy_is_refused(mysql_server, staging):  # noqa: F811
    user = f"deid_t_{uuid.uuid4().hex[:6]}"
    pattern = staging[:-3] + "%"  # e.g. deid_stg_1234a%: reaches every copy of the staging name
    with admin(mysql_server.admin_url) as c:
        rawsql.execute(c, f"CREATE USER '{user}'@'%'")
        try:
            rawsql.execute(c, f"GRANT SELECT ON `{pattern}`.* TO '{user}'@'%'")
            with pytest.raises(TerminalError) as caught:
                create_working_copy(
                    c, work_name(staging, D1), copies.database_options("utf8mb4", "utf8mb4_bin")
                )
            assert f"`{pattern}`.* TO '{user}'@'%'" in str(caught.value)
            assert not copies.exists(c, work_name(staging, D1))
            # a grant on the staging name alone, `_` escaped, reaches no copy
            rawsql.execute(c, f"REVOKE SELECT ON `{pattern}`.* FROM '{user}'@'%'")
            rawsql.execute(c, f"GRANT SELECT ON `{staging.replace('_', chr(92) + '_')}`.* TO '{user}'@'%'")
            create_working_copy(c, work_name(staging, D1), copies.database_options("utf8mb4", "utf8mb4_bin"))
            assert copies.exists(c, work_name(staging, D1))
            with pytest.raises(ConfigError, match="nobody_known"):
                copies.check_roles(c, (user, "nobody_known"))
            copies.check_roles(c, (user, f"{user}@%"))
            copies.grant_connect(c, staging, (user,))
            grants = " ".join(r[0] for r in rawsql.execute(c, f"SHOW GRANTS FOR '{user}'@'%'"))
            assert f"ON `{staging}`.*" in grants and "SELECT, INSERT, UPDATE, DELETE" in grants
        finally:
            rawsql.execute(c, f"DROP USER '{user}'@'%'")


def test_terminate_sessions_ends_a_readers_session(mysql_server, staging):  # noqa: F811
    with admin(mysql_server.admin_url) as c:
        c.exec_driver_sql(f"CREATE DATABASE `{staging}`")
        reader = sa.create_engine(mysql_server.url(staging), poolclass=sa.pool.NullPool)
        own = reader.connect()
        try:
            own.exec_driver_sql("SELECT 1")
            assert copies.terminate_sessions(c, staging) == 1
            with pytest.raises(sa.exc.OperationalError):
                own.exec_driver_sql("SELECT 1")
            assert c.exec_driver_sql("SELECT 1").scalar() == 1  # not deid's own
        finally:
            own.invalidate()
            reader.dispose()


def test_repoint_rewrites_references_to_the_database_only():
    names = {"users", "audit", "close_user"}
    text = (
        "INSERT INTO learners.audit SELECT learners.email, `learners`.`users`.id, 'learners.audit' "
        "FROM learners.users /* learners.users */; CALL learners.close_user(1)"
    )
    assert objects.repoint(text, "learners", "w", names) == (
        "INSERT INTO `w`.audit SELECT learners.email, `w`.`users`.id, 'learners.audit' "
        "FROM `w`.users /* learners.users */; CALL `w`.close_user(1)"
    )


# --- publish and rollback ----------------------------------------------------------------------------------


class Reader(threading.Thread):
    """Reads the staging name's tables and view over and over, from a session on another database (deid
    ends sessions *on* the copies it swaps), noting what it saw and every error."""

    def __init__(self, url: str, staging: str):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.staging, self.seen, self.errors, self.reads = staging, set(), [], 0
        self.stop = threading.Event()

    def run(self) -> None:
        s = f"`{self.staging}`"
        with self.engine.connect() as c:
            while not self.stop.is_set():
                try:
                    label = c.exec_driver_sql(
                        f"SELECT note FROM {s}.audit WHERE order_id IS NULL ORDER BY id DESC LIMIT 1"
                    ).scalar()
                    c.exec_driver_sql(
                        f"SELECT COUNT(*) FROM {s}.users JOIN {s}.orders ON orders.user_id = users.id"
                    )
                    c.exec_driver_sql(f"SELECT COUNT(*) FROM {s}.active_orders")
                    c.commit()
                    self.seen.add(label)
                    self.reads += 1
                except sa.exc.DBAPIError as error:
                    self.errors.append(str(error.orig))
                    c.rollback()


def test_publish_swap_rollback_and_retention(mysql_server, production, staging):  # noqa: F811
    server = mysql_server.admin_url
    first = clone(mysql_server, production, staging, D1, "same_server", "build 1")
    with admin(server) as c:
        work = next(x for x in copies_on(c, staging) if x.role == "work")
        publishing.swap(c, staging, work, None, {**new_metadata("shop", D1, "published")}, grant_to=())
    assert query(server, f"SELECT note FROM `{staging}`.audit WHERE order_id IS NULL") == [("build 1",)]
    with admin(server) as c:
        assert not copies.exists(c, first.work_name)  # its tables moved, its emptied database dropped

    clone(mysql_server, production, staging, D2, "dump", "build 2")
    reader = Reader(server, staging)
    reader.start()
    while reader.reads < 20:
        time.sleep(0.01)
    with admin(server) as c:
        listed = copies_on(c, staging)
        work = next(x for x in listed if x.role == "work")
        published = next(x for x in listed if x.role == "published")
        started = time.monotonic()
        publishing.swap(c, staging, work, published, {**new_metadata("shop", D2, "published")}, grant_to=())
        swap_seconds = time.monotonic() - started
    time.sleep(0.2)
    reader.stop.set()
    reader.join(10)
    assert reader.errors == []  # never a missing table or view
    assert reader.seen == {"build 1", "build 2"}
    assert swap_seconds < 10

    kept = kept_name(staging, D1)
    with admin(server) as c:
        found = {x.name: x for x in copies_on(c, staging)}
        assert set(found) == {staging, kept}  # the working copy's emptied database is gone
        assert found[staging].logical_date == D2 and found[staging].metadata["state"] == "published"
        assert found[kept].logical_date == D1 and found[kept].metadata["state"] == "kept"
    for database, label in ((staging, "build 2"), (kept, "build 1")):
        assert query(server, f"SELECT note FROM `{database}`.audit WHERE order_id IS NULL") == [(label,)]
        assert names(server, database, "TRIGGERS", "TRIGGER_NAME", "TRIGGER_SCHEMA") == {
            "users_lower",
            "orders_audit",
        }
        assert names(server, database, "VIEWS", "TABLE_NAME", "TABLE_SCHEMA") == {
            "active_users",
            "active_orders",
        }
        assert names(server, database, "ROUTINES", "ROUTINE_NAME", "ROUTINE_SCHEMA") == {
            "order_count",
            "close_user",
        }
        assert references(server, database) == [(database, "users")]
        # each copy's triggers write into its own tables, its views read them
        placed = f"SELECT COUNT(*) FROM `{database}`.audit WHERE note = 'order placed'"
        assert query(server, placed) == [(3,)]
        run(mysql_server.url(database), ["INSERT INTO orders (user_id, amount) VALUES (1, 2.00)"])
        assert query(server, placed) == [(4,)]
        assert query(server, f"SELECT COUNT(*) FROM `{database}`.active_orders") == [(4,)]

    assert rollback(server, staging) == D1
    assert query(server, f"SELECT note FROM `{staging}`.audit WHERE order_id IS NULL") == [("build 1",)]
    assert query(server, f"SELECT note FROM `{kept_name(staging, D2)}`.audit WHERE order_id IS NULL") == [
        ("build 2",)
    ]
    with admin(server) as c:
        assert {x.name for x in copies_on(c, staging)} == {staging, kept_name(staging, D2)}
        assert read_metadata(c, staging)["logical_date"] == D1.isoformat()

    # a third build published: two kept copies, retention 1 drops the older
    clone(mysql_server, production, staging, D3, "same_server", "build 3")
    with admin(server) as c:
        listed = copies_on(c, staging)
        work = next(x for x in listed if x.role == "work")
        published = next(x for x in listed if x.role == "published")
        publishing.swap(c, staging, work, published, {**new_metadata("shop", D3, "published")}, grant_to=())
        assert publishing._retain(c, staging, 1) == [kept_name(staging, D1)]
        assert {x.name for x in copies_on(c, staging)} == {staging, kept_name(staging, D2)}
    assert query(server, f"SELECT note FROM `{staging}`.audit WHERE order_id IS NULL") == [("build 3",)]


def _label(server: str, database: str) -> str:
    return query(server, f"SELECT note FROM `{database}`.audit WHERE order_id IS NULL")[0][0]


def test_rename_through_a_parked_name_and_the_statement_is_one(mysql_server, production, staging):  # noqa: F811
    """Rolling back to the older build of the published copy's own date: kept -> parked, published -> kept,
    parked -> published, all in one RENAME TABLE; the parked database is gone afterwards."""
    server = mysql_server.admin_url
    kept, parked = kept_name(staging, D1), staging + publishing.SWAP_MARK
    first = clone(mysql_server, production, staging, D1, "same_server", "old build")
    second = clone(mysql_server, production, staging, D2, "same_server", "new build")
    renames = [(kept, parked), (staging, kept), (parked, staging)]
    with admin(server) as c:
        copies.rename(c, [(first.work_name, kept), (second.work_name, staging)])
        origins = copies._origins(c, renames, copies._schemata(c))
        statement = copies._rename_statement(renames, origins)
        assert statement.count("RENAME TABLE") == 1
        assert statement.index(f"`{kept}`.`users` TO `{parked}`") < statement.index(f"`{staging}`.`users` TO")
        copies.rename(c, renames)
        assert not copies.exists(c, parked)
    assert (_label(server, staging), _label(server, kept)) == ("old build", "new build")
    assert names(server, staging, "TRIGGERS", "TRIGGER_NAME", "TRIGGER_SCHEMA") == {
        "users_lower",
        "orders_audit",
    }
    assert references(server, kept) == [(kept, "users")]


def test_a_rename_that_cannot_lock_changes_nothing(mysql_server, production, staging, monkeypatch):  # noqa: F811
    """A staging session's open transaction holds the published tables: the RENAME gives up after its wait
    and every copy keeps its tables, triggers and views where they were."""
    server = mysql_server.admin_url
    monkeypatch.setattr(copies, "RENAME_LOCK_WAIT_SECONDS", 1)
    first = clone(mysql_server, production, staging, D1, "same_server", "published")
    second = clone(mysql_server, production, staging, D2, "same_server", "incoming")
    holder = sa.create_engine(server, poolclass=sa.pool.NullPool)
    with admin(server) as c:
        copies.rename(c, [(first.work_name, staging)])
        with holder.connect() as h:
            h.exec_driver_sql(f"SELECT COUNT(*) FROM `{staging}`.users")  # a transaction left open
            with pytest.raises(sa.exc.OperationalError):
                copies.rename(c, [(staging, kept_name(staging, D1)), (second.work_name, staging)])
            h.rollback()
    holder.dispose()
    assert (_label(server, staging), _label(server, second.work_name)) == ("published", "incoming")
    for database in (staging, second.work_name):
        assert names(server, database, "TRIGGERS", "TRIGGER_NAME", "TRIGGER_SCHEMA") == {
            "users_lower",
            "orders_audit",
        }
        assert names(server, database, "VIEWS", "TABLE_NAME", "TABLE_SCHEMA") == {
            "active_users",
            "active_orders",
        }
