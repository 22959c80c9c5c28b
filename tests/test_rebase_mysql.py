"""The rebase of AUTO_INCREMENT counters and MariaDB sequences on a real MySQL/MariaDB server
(DEID_TEST_MYSQL_URL; CI's is MariaDB 10.11): offsets by logical date, inserts above production, idempotent
reruns (a sequence's cut off between its statements too), the limits of each integer type (signed and
UNSIGNED), a sequence's MAXVALUE and a VARCHAR's digits after its DEFAULT's prefix, the demo database, and
the server's quiet ways the backend must guard against. The PostgreSQL twin is tests/test_rebase.py."""

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


# --- MariaDB's SEQUENCE objects ----------------------------------------------------------------------------

SEQUENCED = [
    "CREATE SEQUENCE invoice_seq START WITH 100 NOCACHE COMMENT 'invoice and refund numbers'",
    "CREATE TABLE payments (id BIGINT NOT NULL DEFAULT NEXTVAL(invoice_seq) PRIMARY KEY, amount INT)",
    "CREATE TABLE refunds (id INT AUTO_INCREMENT PRIMARY KEY, "
    "refund_number VARCHAR(30) NOT NULL DEFAULT (CONCAT('RFD-', NEXTVAL(invoice_seq))))",
    "INSERT INTO payments (amount) VALUES (10), (20), (30)",  # 100, 101, 102
    "INSERT INTO refunds () VALUES (), ()",  # RFD-103, RFD-104
    "INSERT INTO payments (id, amount) VALUES (5000, 40)",  # above the sequence: the column's maximum counts
]


@pytest.fixture
def mariadb(mysql_server):
    if not mysql_server.is_mariadb:
        pytest.skip("CREATE SEQUENCE is MariaDB's (MySQL 8 has no sequences)")


def sequence_state(url: str, name: str) -> tuple[int, str]:
    """(next_not_cached_value, COMMENT) of a sequence, as the server says."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as c:
            state = sa.select(sa.column("next_not_cached_value")).select_from(sa.table(name))
            next_value = c.execute(state).scalar_one()
            comment = c.execute(
                sa.text(
                    "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = :name"
                ),
                {"name": name},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(next_value), comment


def test_a_sequence_feeding_a_bigint_and_a_varchar_column_hands_out_values_above_production(
    database, mariadb
):
    work = database(SEQUENCED)
    results = rebase_url(work)
    assert set(results) == {"public.invoice_seq", "public.refunds"}  # the sequence, and refunds' counter
    invoices = results["public.invoice_seq"]
    assert set(invoices) == RECORD_KEYS
    assert invoices["columns"] == ["public.payments.id", "public.refunds.refund_number"]
    assert invoices["high_water"] == 5000 and not invoices["rerun"]  # payments.id's maximum
    assert invoices["next_value"] == 5000 + invoices["offset"]
    # bigint, MAXVALUE at the type's, and 26 digits left in refund_number: JavaScript's safe integers rule
    assert invoices["limit"] == SAFE_INTEGER and invoices["limited_by"] == [SOFT_LIMIT]
    assert invoices["offset"] >= SAFE_INTEGER // 4

    engine = sa.create_engine(work, poolclass=sa.pool.NullPool)
    run(engine, ["INSERT INTO payments (amount) VALUES (50)", "INSERT INTO refunds () VALUES ()"])
    engine.dispose()
    assert query(work, "SELECT MAX(id) FROM payments") == [(invoices["next_value"],)]
    assert query(work, "SELECT refund_number FROM refunds ORDER BY id DESC LIMIT 1") == [
        (f"RFD-{invoices['next_value'] + 1}",)
    ]
    _, comment = sequence_state(work, "invoice_seq")
    assert comment == (
        "invoice and refund numbers\n\n"
        f"deid rebase: production high water 5000 (logical date 2026-11-28, offset {invoices['offset']}, "
        f"next value {invoices['next_value']})"
    )
    [(created,)] = [row[1:] for row in query(work, "SHOW CREATE SEQUENCE invoice_seq")]
    assert "deid rebase: production high water 5000" in created  # a dump carries the marker


def test_values_a_server_may_hold_in_its_cache_count_as_production_s(database, mariadb):
    """next_not_cached_value, not the last value drawn: production may hand out its cached values after
    the copy was taken."""
    work = database(
        [
            "CREATE SEQUENCE s START WITH 1 CACHE 1000",
            "CREATE TABLE t (id BIGINT NOT NULL DEFAULT NEXTVAL(s) PRIMARY KEY)",
            "INSERT INTO t () VALUES (), (), ()",
        ]
    )
    assert sequence_state(work, "s")[0] == 1001
    assert rebase_url(work)["public.s"]["high_water"] == 1000


def test_sequence_offsets_are_reproducible_for_a_date_and_differ_between_dates(database, mariadb):
    monday, again, tuesday = database(SEQUENCED), database(SEQUENCED), database(SEQUENCED)
    a = rebase_url(monday)["public.invoice_seq"]
    b = rebase_url(again)["public.invoice_seq"]
    c = rebase_url(tuesday, DAY + dt.timedelta(days=1))["public.invoice_seq"]
    assert a == b
    assert a["offset"] != c["offset"] and a["high_water"] == c["high_water"]


def test_a_sequence_rerun_does_not_add_the_offset_twice(database, mariadb):
    work = database(SEQUENCED)
    first = rebase_url(work)["public.invoice_seq"]
    second = rebase_url(work)["public.invoice_seq"]
    assert second["rerun"] and (second["high_water"], second["next_value"]) == (5000, first["next_value"])
    next_value, comment = sequence_state(work, "invoice_seq")
    assert next_value == first["next_value"] and comment.count("deid rebase:") == 1

    # a value staging drew since is never handed out again
    insert_id(work, "INSERT INTO payments (amount) VALUES (60)")
    third = rebase_url(work)["public.invoice_seq"]
    assert third["high_water"] == 5000 and third["next_value"] == first["next_value"] + 1
    # another date starts from production's recorded high water, as a fresh copy would
    fresh = rebase_url(database(SEQUENCED), DAY + dt.timedelta(days=1))["public.invoice_seq"]
    moved = rebase_url(work, DAY + dt.timedelta(days=1))["public.invoice_seq"]
    assert moved["next_value"] == fresh["next_value"] and moved["high_water"] == 5000


@pytest.mark.parametrize("statements_done", [1, 2])
@pytest.mark.parametrize("rebased_before", [False, True])
def test_a_sequence_rebase_cut_off_between_its_statements_is_taken_up_by_a_rerun(
    database, mariadb, statements_done, rebased_before
):
    """The comment is written before and after the RESTART (ALTER SEQUENCE takes no COMMENT): a rebase
    that stops after the first or the second statement leaves a marker a rerun trusts, on a fresh copy
    and on one rebased for another date before."""
    from deid.backends.mysql.sequences import plan_sequences

    work = database(SEQUENCED)
    earlier = {"next_value": 0}
    if rebased_before:
        earlier = rebase_url(work, DAY - dt.timedelta(days=3))["public.invoice_seq"]
    engine = sa.create_engine(work, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        schema = backend_for("mysql").introspect(c, "work")
        sequences = [s for s in schema.sequences if not s.identity]
        [plan], problems = plan_sequences(c, schema, sequences, DAY)
        assert not problems and plan.next_value > earlier["next_value"]
        c.exec_driver_sql("ALTER TABLE invoice_seq COMMENT = %(c)s", {"c": plan.interim})
        if statements_done == 2:
            c.exec_driver_sql(f"ALTER SEQUENCE invoice_seq RESTART WITH {plan.next_value}")
    engine.dispose()
    rerun = rebase_url(work)["public.invoice_seq"]
    assert rerun["rerun"] and rerun["high_water"] == 5000
    assert (
        rerun["next_value"]
        == plan.next_value
        == rebase_url(database(SEQUENCED))["public.invoice_seq"]["next_value"]
    )
    assert sequence_state(work, "invoice_seq")[0] == plan.next_value


def test_a_varchar_column_s_digits_after_its_prefix_bound_the_offset(database, mariadb):
    work = database(
        [
            "CREATE SEQUENCE invoice_seq START WITH 100001",
            "CREATE TABLE invoices (id INT AUTO_INCREMENT PRIMARY KEY, "
            "number VARCHAR(12) NOT NULL DEFAULT (CONCAT('INV-', NEXTVAL(invoice_seq))))",
            "INSERT INTO invoices () VALUES (), ()",
        ]
    )
    invoices = rebase_url(work)["public.invoice_seq"]
    assert invoices["limit"] == 10**8 - 1  # 12 characters, 4 of them 'INV-': 8 digits
    assert invoices["limited_by"] == ["public.invoices.number (varchar(12); its DEFAULT adds 4 characters)"]
    assert invoices["high_water"] == 101000  # the cache of 1000 counts
    assert 101000 < invoices["next_value"] <= 10**8 - 1 - 1_000_000
    insert_id(work, "INSERT INTO invoices () VALUES ()")
    assert query(work, "SELECT number FROM invoices ORDER BY id DESC LIMIT 1") == [
        (f"INV-{invoices['next_value']}",)
    ]


def test_sequences_without_room_are_refused_by_name_before_anything_is_altered(database, mariadb):
    work = database(
        [
            "CREATE SEQUENCE fine_seq COMMENT 'kept'",
            "CREATE TABLE orders (id BIGINT NOT NULL DEFAULT NEXTVAL(fine_seq) PRIMARY KEY)",
            "CREATE SEQUENCE tiny_seq MAXVALUE 5000 START WITH 4000",
            "CREATE TABLE tickets (id INT NOT NULL DEFAULT NEXTVAL(tiny_seq) PRIMARY KEY)",
            "CREATE SEQUENCE code_seq START WITH 7000 NOCACHE",
            "CREATE TABLE codes (code CHAR(6) NOT NULL DEFAULT (CONCAT('C-', NEXTVAL(code_seq))))",
            "INSERT INTO orders () VALUES ()",
            "INSERT INTO codes () VALUES ()",
            "CREATE TABLE counted (id INT AUTO_INCREMENT PRIMARY KEY)",
            f"INSERT INTO counted VALUES ({INT - 100})",
        ]
    )

    def state():
        return tables(work), [sequence_state(work, s) for s in ("fine_seq", "tiny_seq", "code_seq")]

    before = state()
    with pytest.raises(NoRoom) as raised:
        rebase_url(work)
    text = str(raised.value)
    assert "sequence public.tiny_seq (MAXVALUE 5,000)" in text
    assert "raise the MAXVALUE of sequence public.tiny_seq in production (ALTER SEQUENCE ... MAXVALUE" in text
    # 4 digits left in codes.code after 'C-', and 7000 already drawn
    assert "public.codes.code (char(6); its DEFAULT adds 2 characters)" in text
    assert "lengthen public.codes.code in production" in text
    assert "public.counted.id (int(11))" in text  # counters and sequences in the one error
    assert "fine_seq" not in text
    assert state() == before  # nothing altered, the sequence with room neither


def test_a_descending_sequence_moves_below_production(database, mariadb):
    work = database(
        [
            "CREATE SEQUENCE down_seq INCREMENT BY -1 MINVALUE -1000000000 MAXVALUE -1 START WITH -1 NOCACHE",
            "CREATE TABLE t (id INT NOT NULL DEFAULT NEXTVAL(down_seq) PRIMARY KEY)",
            "INSERT INTO t () VALUES (), (), ()",  # -1, -2, -3
        ]
    )
    down = rebase_url(work)["public.down_seq"]
    assert down["high_water"] == -3 and down["next_value"] == -3 - down["offset"]
    assert down["limit"] == -1_000_000_000 and down["limited_by"] == [
        "sequence public.down_seq (MINVALUE -1,000,000,000)"
    ]
    insert_id(work, "INSERT INTO t () VALUES ()")
    assert query(work, "SELECT MIN(id) FROM t") == [(down["next_value"],)]


def test_odd_sequence_names_are_quoted(database, mariadb):
    work = database(
        [
            # exec_driver_sql hands PyMySQL an empty argument list, so its '%' is written '%%'
            "CREATE SEQUENCE `50%%_seq` START WITH 10 NOCACHE COMMENT 'it''s 100%%'",
            "CREATE SEQUENCE `we``ird:seq`",
            "CREATE TABLE t (id BIGINT NOT NULL DEFAULT NEXTVAL(`50%%_seq`) PRIMARY KEY, "
            "code VARCHAR(30) DEFAULT (CONCAT('X-', NEXTVAL(`we``ird:seq`))))",
            "INSERT INTO t () VALUES ()",
        ]
    )
    results = rebase_url(work)
    percent, odd = results["public.50%_seq"], results["public.we`ird:seq"]
    assert percent["high_water"] == 10 and odd["columns"] == ["public.t.code"]
    assert sequence_state(work, "50%_seq") == (
        percent["next_value"],
        "it's 100%\n\n"
        f"deid rebase: production high water 10 (logical date 2026-11-28, offset {percent['offset']}, "
        f"next value {percent['next_value']})",
    )
    assert sequence_state(work, "we`ird:seq")[0] == odd["next_value"]


def test_a_column_drawing_from_another_database_s_sequence_is_refused(database, mariadb):
    """A table copied with DEFAULT NEXTVAL(production.s) would draw production's values."""
    elsewhere = sa.make_url(database(["CREATE SEQUENCE s"])).database
    work = database([f"CREATE TABLE t (id BIGINT NOT NULL DEFAULT NEXTVAL(`{elsewhere}`.s) PRIMARY KEY)"])
    with pytest.raises(TerminalError, match=rf"public\.t\.id \(NEXTVAL\(`{elsewhere}`\.`s`\)\)") as raised:
        rebase_url(work)
    assert "the copy's DEFAULTs must name its own sequence" in str(raised.value)


def test_the_mariadb_demo_database_rebases(mysql_server, mariadb):
    from deid.demo.seed import seed

    name = mysql_server.create_database("deid_rebase_demo")
    try:
        url = mysql_server.url(name)
        seed(url, learners=50)
        results = rebase_url(url)
        invoices = results["public.invoice_seq"]
        assert invoices["columns"] == ["public.payments.invoice_number", "public.refunds.refund_number"]
        assert invoices["high_water"] >= 100001 and invoices["next_value"] > invoices["high_water"]
        assert all(set(r) == RECORD_KEYS for r in results.values())
        assert sequence_state(url, "invoice_seq")[0] == invoices["next_value"]
        assert rebase_url(url) == {n: {**r, "rerun": True} for n, r in results.items()}
    finally:
        mysql_server.drop_database(name)


@pytest.mark.parametrize(
    ("default", "characters"),
    [
        ("concat('INV-',nextval(`invoice_seq`))", 4),
        ("concat('it\\'s','''',nextval(`s`))", 5),  # MariaDB prints a quote backslash-escaped
        ("concat('a\\\\b',nextval(`we'ird`))", 3),  # a quote in a backquoted name opens no literal
        ("nextval(`s`)", 0),
        (None, 0),
    ],
)
def test_the_characters_a_default_adds(default, characters):
    from deid.backends.mysql.sequences import fixed_characters

    assert fixed_characters(default) == characters
