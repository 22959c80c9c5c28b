"""The rebase of AUTO_INCREMENT counters on a real MySQL/MariaDB server (DEID_TEST_MYSQL_URL; CI's is
MariaDB 10.11): offsets by logical date, inserts above production, idempotent reruns, the limits of each
integer type (signed and UNSIGNED), and the server's quiet ways the backend must guard against. The
PostgreSQL twin is tests/test_rebase.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from deid.backends import backend_for
from deid.backends.mysql.rebase import COMMENT_LIMIT, column_range, set_counter
from deid.errors import TerminalError
from deid.offsets import SAFE_INTEGER, SOFT_LIMIT, NoRoom
from deid.steps.rebase import rebase_database
from tests.mysql_server import MysqlServer, mysql_server, run  # noqa: F401

DAY = dt.date(2026, 11, 28)
INT = 2**31 - 1
RECORD_KEYS = {
    "sequence",
    "columns",
    "high_water",
    "offset",
    "next_value",
    "limit",
    "limited_by",
    "clamped",
    "rerun",
}  # what deid.backends.postgresql.rebase records per sequence

PRODUCTION = [
    "CREATE TABLE learners (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(80)) "
    "COMMENT = 'one row per learner'",
    "CREATE TABLE payments (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, learner_id INT NOT NULL, "
    "FOREIGN KEY (learner_id) REFERENCES learners (id))",
    "CREATE TABLE settings (name VARCHAR(40) PRIMARY KEY, value TEXT) COMMENT = 'no counter here'",
    "INSERT INTO learners (email) VALUES ('a@example.com'), ('b@example.com'), ('c@example.com')",
    "INSERT INTO learners (id, email) VALUES (1000, 'd@example.com')",
    "INSERT INTO payments (learner_id) VALUES (1), (2), (1000)",
    "INSERT INTO settings VALUES ('theme', 'dark')",
    "DELETE FROM payments WHERE id = 3",  # the counter (4) is above the column's maximum (2)
]


@pytest.fixture
def database(mysql_server: MysqlServer) -> Iterator[Callable[[list[str]], str]]:
    """Makes databases holding the given statements' tables and rows (each one a working copy)."""
    made: list[str] = []

    def make(statements: list[str]) -> str:
        name = mysql_server.create_database("deid_rebase")
        made.append(name)
        url = mysql_server.url(name)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        run(engine, statements)
        engine.dispose()
        return url

    yield make
    for name in made:
        mysql_server.drop_database(name)


def rebase_url(url: str, day: dt.date = DAY) -> dict[str, dict]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as c:
            schema = backend_for("mysql").introspect(c, "work")
            return rebase_database(c, schema, day)
    finally:
        engine.dispose()


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as c:
            return [tuple(row) for row in c.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def insert_id(url: str, statement: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as c:
            c.exec_driver_sql(statement)
            return int(c.exec_driver_sql("SELECT LAST_INSERT_ID()").scalar_one())
    finally:
        engine.dispose()


def tables(url: str) -> dict[str, tuple[int | None, str]]:
    """(AUTO_INCREMENT, COMMENT) per table, as the server says."""
    rows = query(
        url,
        "SELECT TABLE_NAME, AUTO_INCREMENT, TABLE_COMMENT FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE()",
    )
    return {name: (counter, comment) for name, counter, comment in rows}


# --- the usual case ---------------------------------------------------------------------------------------


def test_inserts_after_the_rebase_are_above_production_plus_the_offset(database):
    work = database(PRODUCTION)
    results = rebase_url(work)
    assert set(results) == {"public.learners", "public.payments"}  # settings has no counter: untouched
    assert all(set(r) == RECORD_KEYS for r in results.values())

    learners = results["public.learners"]
    assert learners["columns"] == ["public.learners.id"]
    assert learners["high_water"] == 1000  # the column's maximum (the counter, 1001, less one, agrees)
    assert learners["next_value"] == 1000 + learners["offset"] and not learners["rerun"]
    assert learners["offset"] >= INT // 4 and learners["limit"] == INT
    # the INT learner_id of payments references it, and so limits it as much as its own INT type does
    assert learners["limited_by"] == [
        "public.learners.id (int(11))",
        "public.payments.learner_id (int(11), references public.learners.id)",
    ]
    payments = results["public.payments"]
    assert payments["high_water"] == 3  # the counter less one: id 3 was handed out, then deleted
    assert payments["limit"] == SAFE_INTEGER and payments["limited_by"] == [SOFT_LIMIT]

    new_learner = insert_id(work, "INSERT INTO learners (email) VALUES ('staging@example.com')")
    assert new_learner == learners["next_value"] == 1000 + learners["offset"]
    new_payment = insert_id(work, f"INSERT INTO payments (learner_id) VALUES ({new_learner})")
    assert new_payment == payments["next_value"] == 3 + payments["offset"]

    after = tables(work)
    assert after["settings"] == (None, "no counter here")
    assert after["learners"][1] == (
        "one row per learner\n\n"
        f"deid rebase: production high water 1000 (logical date 2026-11-28, offset {learners['offset']}, "
        f"next value {learners['next_value']})"
    )


def test_the_offset_is_reproducible_for_a_date_and_differs_between_dates(database):
    monday, again, tuesday = database(PRODUCTION), database(PRODUCTION), database(PRODUCTION)
    a = rebase_url(monday, DAY)
    b = rebase_url(again, DAY)
    c = rebase_url(tuesday, DAY + dt.timedelta(days=1))
    assert a == b
    for name in a:
        assert a[name]["offset"] != c[name]["offset"], name
        assert a[name]["high_water"] == c[name]["high_water"]


def test_a_rerun_does_not_add_the_offset_twice(database):
    work = database(PRODUCTION)
    first = rebase_url(work)
    second = rebase_url(work)
    assert all(r["rerun"] for r in second.values())
    assert {n: (r["high_water"], r["next_value"]) for n, r in second.items()} == {
        n: (r["high_water"], r["next_value"]) for n, r in first.items()
    }
    assert tables(work)["learners"][0] == first["public.learners"]["next_value"]
    assert tables(work)["learners"][1].count("deid rebase:") == 1
    # another date starts from production's recorded high water, as a fresh copy would
    fresh = rebase_url(database(PRODUCTION), DAY + dt.timedelta(days=1))
    moved = rebase_url(work, DAY + dt.timedelta(days=1))
    assert {n: r["next_value"] for n, r in moved.items()} == {n: r["next_value"] for n, r in fresh.items()}


def test_a_rerun_never_hands_out_a_value_staging_used(database):
    work = database(PRODUCTION)
    first = rebase_url(work)
    used = first["public.learners"]["next_value"] + 10
    run(sa.create_engine(work, poolclass=sa.pool.NullPool), [f"INSERT INTO learners (id) VALUES ({used})"])
    second = rebase_url(work)["public.learners"]
    assert second["next_value"] == used + 1 and second["high_water"] == 1000


def test_a_marker_copied_from_elsewhere_is_ignored(database):
    """A comment line from another copy (its recorded next value above this counter) is not this copy's."""
    work = database(
        [
            "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY) COMMENT = 'deid rebase: production high "
            "water 5 (logical date 2026-01-01, offset 1000, next value 999999)'",
            "INSERT INTO t VALUES (70)",
        ]
    )
    result = rebase_url(work)["public.t"]
    assert result["high_water"] == 70 and not result["rerun"]
    assert tables(work)["t"][1].count("deid rebase:") == 1


def test_the_step_dispatches_to_the_backend_and_an_empty_schema_has_nothing_to_move(database):
    work = database(["CREATE TABLE plain (code CHAR(2) PRIMARY KEY)"])
    assert rebase_url(work) == {}
    assert tables(work)["plain"] == (None, "")


def test_odd_table_names_are_quoted(database):
    work = database(
        [
            # exec_driver_sql hands PyMySQL an empty argument list, so its '%' is written '%%'
            "CREATE TABLE `50%%_off` (id INT AUTO_INCREMENT PRIMARY KEY)",
            "CREATE TABLE `we``ird:x` (id SMALLINT UNSIGNED AUTO_INCREMENT PRIMARY KEY)",
            "INSERT INTO `50%%_off` VALUES (7)",
        ]
    )
    results = rebase_url(work)
    assert results["public.50%_off"]["high_water"] == 7
    odd = results["public.we`ird:x"]
    assert odd["limit"] == 2**16 - 1
    assert insert_id(work, "INSERT INTO `we``ird:x` VALUES ()") == odd["next_value"]


# --- limits: never past the column's type, and what the server does otherwise -------------------------------


def test_the_server_takes_a_counter_past_a_signed_int_and_then_fails_every_insert(database):
    """Why the rebase never sets a value past the column's type: MariaDB accepts it silently."""
    work = database(["CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY)"])
    run(sa.create_engine(work, poolclass=sa.pool.NullPool), ["ALTER TABLE t AUTO_INCREMENT = 3000000000"])
    assert tables(work)["t"][0] == 3_000_000_000
    with pytest.raises(sa.exc.DBAPIError, match="Out of range value"):
        insert_id(work, "INSERT INTO t VALUES ()")


def test_an_int_near_its_maximum_gets_a_clamped_offset_that_fits(database):
    work = database(
        [
            "CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY)",
            "INSERT INTO big VALUES (2100000000)",
        ]
    )
    big = rebase_url(work)["public.big"]
    assert big["clamped"] and big["high_water"] == 2_100_000_000
    assert big["next_value"] + 1_000_000 <= INT and big["offset"] >= (INT - 2_100_000_000) // 4
    assert insert_id(work, "INSERT INTO big VALUES ()") == big["next_value"]


def test_counters_without_room_are_refused_by_name_before_anything_is_altered(database):
    work = database(
        [
            "CREATE TABLE fine (id INT AUTO_INCREMENT PRIMARY KEY) COMMENT = 'kept'",
            "CREATE TABLE full_up (id INT AUTO_INCREMENT PRIMARY KEY)",
            f"INSERT INTO full_up VALUES ({INT - 3000})",
            "CREATE TABLE statuses (id TINYINT UNSIGNED AUTO_INCREMENT PRIMARY KEY)",
            "INSERT INTO statuses VALUES (), (), ()",
        ]
    )
    before = tables(work)
    with pytest.raises(NoRoom) as raised:
        rebase_url(work)
    text = str(raised.value)
    assert isinstance(raised.value, TerminalError)
    assert "public.full_up.id (int(11))" in text and "room 3,000" in text
    assert "widen public.full_up.id to BIGINT" in text
    assert "public.statuses.id (tinyint(3) unsigned)" in text and "values up to 255" in text
    assert "widen public.statuses.id to SMALLINT UNSIGNED" in text
    assert "public.fine" not in text
    assert tables(work) == before  # the counter with room was not moved either (DDL commits at once)


def test_bigint_unsigned_above_the_safe_integers_stays_below_its_last_usable_value(database):
    work = database(
        [
            "CREATE TABLE events (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY)",
            f"INSERT INTO events VALUES ({2**60})",
        ]
    )
    events = rebase_url(work)["public.events"]
    assert events["limit"] == 2**64 - 2 and events["limited_by"] == ["public.events.id (bigint(20) unsigned)"]
    assert 2**60 < events["next_value"] <= 2**64 - 2 - 1_000_000
    assert insert_id(work, "INSERT INTO events VALUES ()") == events["next_value"]


def test_a_value_the_server_quietly_ignores_fails_clearly(database):
    """MariaDB keeps the counter at the column's maximum + 1 when asked for less, without a warning; the
    rebase reads every counter back and names the table."""
    work = database(["CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY)", "INSERT INTO t VALUES (500)"])
    engine = sa.create_engine(work, poolclass=sa.pool.NullPool)
    with engine.begin() as c, pytest.raises(TerminalError) as raised:
        set_counter(c, "t", 100, "", key="public.t")
    engine.dispose()
    assert "did not take AUTO_INCREMENT = 100 for public.t: it keeps 501" in str(raised.value)


def test_a_production_comment_without_room_for_the_marker_is_refused(database):
    work = database(
        [
            f"CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY) COMMENT = '{'x' * (COMMENT_LIMIT - 20)}'",
            "CREATE TABLE u (id INT AUTO_INCREMENT PRIMARY KEY)",
        ]
    )
    before = tables(work)
    with pytest.raises(NoRoom, match=r"table public\.t: its COMMENT leaves no room for the rebase's marker"):
        rebase_url(work)
    assert tables(work) == before


def test_mariadb_sequences_are_refused_rather_than_left_where_production_is(database, mysql_server):
    if not mysql_server.is_mariadb:
        pytest.skip("CREATE SEQUENCE is MariaDB's")
    work = database(
        [
            "CREATE SEQUENCE invoice_seq",
            "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY)",
        ]
    )
    with pytest.raises(TerminalError, match=r"cannot rebase the sequences public\.invoice_seq"):
        rebase_url(work)


@pytest.mark.parametrize(
    ("column_type", "expected"),
    [
        ("int(11)", (-(2**31), 2**31 - 1)),  # MariaDB's spelling
        ("int", (-(2**31), 2**31 - 1)),  # MySQL 8's
        ("int(10) unsigned", (0, 2**32 - 1)),
        ("int unsigned", (0, 2**32 - 1)),
        ("mediumint(8) unsigned zerofill", (0, 2**24 - 1)),
        ("smallint(6)", (-(2**15), 2**15 - 1)),
        ("bigint(20)", (-(2**63), 2**63 - 1)),
        ("bigint unsigned", (0, 2**64 - 2)),
        ("double", (-(2**53), 2**53)),
        ("varchar(20)", None),
        ("decimal(10,0)", None),
    ],
)
def test_column_ranges(column_type, expected):
    assert column_range(column_type) == expected
