"""The rebase step on real PostgreSQL (every configured server): the seeded demo database, and small schemas
for the cases the demo lacks (limits, partitions, odd names, descending sequences)."""

from __future__ import annotations

import datetime as dt
import re
import types

import pytest
import sqlalchemy as sa

from deid.backends import backend_for
from deid.demo import seed as demo
from deid.errors import TerminalError
from deid.offsets import INTEGER_RANGES, MIN_OFFSET, NoRoom
from deid.steps.rebase import rebase, rebase_database
from deid.steps.state import Holder, Stamp, now, parse_state

DAY = dt.date(2026, 11, 28)
INT4 = INTEGER_RANGES["integer"][1]
INT2 = INTEGER_RANGES["smallint"][1]
DEMO_SEQUENCES = {
    "partners.partner_staff_id_seq": ("partners.partner_staff", "id"),
    "public.categories_id_seq": ("public.categories", "id"),
    "public.courses_id_seq": ("public.courses", "id"),
    "public.degrees_id_seq": ("public.degrees", "id"),
    "public.enrollments_id_seq": ("public.enrollments", "id"),
    "public.instructors_id_seq": ("public.instructors", "id"),
    "public.invoice_seq": None,
    "public.learners_id_seq": ("public.learners", "id"),
    "public.payments_id_seq": ("public.payments", "id"),
    "public.refunds_id_seq": ("public.refunds", "id"),
}


def engine(url: str) -> sa.Engine:
    # No pool: a database used as a template must have no open connection.
    return sa.create_engine(url, poolclass=sa.NullPool)


def run_sql(url: str, sql: str) -> None:
    e = engine(url)
    with e.connect() as c:
        raw = c.connection.driver_connection
        raw.execute(sql)
        raw.commit()
    e.dispose()


def rebase_url(url: str, day: dt.date = DAY) -> dict[str, dict]:
    e = engine(url)
    try:
        with e.begin() as c:
            schema = backend_for("postgresql").introspect(c, "work")
            return rebase_database(c, schema, day)
    finally:
        e.dispose()


def scalar(url: str, sql: str, **params):
    e = engine(url)
    try:
        with e.begin() as c:
            return c.execute(sa.text(sql), params).scalar()
    finally:
        e.dispose()


def sequence_state(url: str, sequence: str) -> tuple[int, bool]:
    e = engine(url)
    try:
        with e.connect() as c:
            return tuple(c.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one())
    finally:
        e.dispose()


def invoice_digits(value: str) -> int:
    return int(re.fullmatch(r"[A-Z]+-(\d+)", value)[1])


@pytest.fixture(scope="module")
def production(postgres):
    """The seeded demo database, per server: production, never written by these tests (it is the template
    of each working copy), and its high-water marks."""
    name = postgres.create_database("deid_rebase_prod")
    url = postgres.url(name)
    demo.seed(url, learners=50)
    facts = {
        seq: scalar(url, f"SELECT max({tc[1]}) FROM {tc[0]}") for seq, tc in DEMO_SEQUENCES.items() if tc
    }
    facts["public.invoice_seq"] = scalar(
        url,
        "SELECT max(substring(n FROM '[0-9]+$')::bigint) FROM "
        "(SELECT invoice_number FROM payments UNION ALL SELECT refund_number FROM refunds) AS numbers(n)",
    )
    facts["invoice_seq.last_value"] = scalar(url, "SELECT last_value FROM invoice_seq")
    yield name, facts
    postgres.drop_database(name)


@pytest.fixture
def copies(postgres, production):
    """Makes working copies of production (CREATE DATABASE ... TEMPLATE, as the snapshot step does)."""
    made: list[str] = []

    def make() -> str:
        name = postgres.copy_database(production[0], "deid_rebase_work")
        made.append(name)
        return postgres.url(name)

    yield make
    for name in made:
        postgres.drop_database(name)


# --- the demo database -------------------------------------------------------------------------------------


def test_demo_every_sequence_moves_above_production(copies, production):
    _, prod = production
    work = copies()
    results = rebase_url(work)
    assert sorted(results) == sorted(DEMO_SEQUENCES)
    for name, r in results.items():
        assert r["sequence"] == name
        assert r["next_value"] == r["high_water"] + r["offset"]
        assert r["offset"] >= MIN_OFFSET and r["next_value"] <= r["limit"]
        assert r["high_water"] >= prod[name], name
        assert r["rerun"] is False
        last_value, is_called = sequence_state(work, name)
        assert (last_value, is_called) == (r["next_value"], False)
    # The high water of invoice_seq is the sequence's: its columns are text.
    assert results["public.invoice_seq"]["high_water"] == prod["invoice_seq.last_value"]
    assert results["public.invoice_seq"]["columns"] == [
        "public.payments.invoice_number",
        "public.refunds.refund_number",
    ]
    # Integer sequences move by a quarter of int4 or more; the smallint one stays within smallint.
    assert results["public.learners_id_seq"]["offset"] >= INT4 // 4
    assert results["partners.partner_staff_id_seq"]["next_value"] <= INT2


def test_demo_inserts_after_rebase_are_above_production(copies, production):
    _, prod = production
    work = copies()
    results = rebase_url(work)
    e = engine(work)
    with e.begin() as c:
        learner = c.exec_driver_sql(
            "INSERT INTO learners (email, first_name, last_name, date_of_birth, password_hash, signup_at) "
            "VALUES ('new@example.org', 'N', 'L', '1990-01-01', 'x', now()) RETURNING id"
        ).scalar()
        payment_id, invoice = c.exec_driver_sql(
            "INSERT INTO payments (enrollment_id, learner_id, amount, paid_at) "
            "SELECT id, learner_id, 1, now() FROM enrollments ORDER BY id LIMIT 1 "
            "RETURNING id, invoice_number"
        ).one()
        refund_id, refund_number = c.execute(
            sa.text(
                "INSERT INTO refunds (payment_id, amount, refunded_at) VALUES (:p, 1, now()) "
                "RETURNING id, refund_number"
            ),
            {"p": payment_id},
        ).one()
        staff = c.exec_driver_sql(
            "INSERT INTO partners.partner_staff (partner_name, full_name, work_email, employee_number) "
            "VALUES ('P', 'S', 's@example.org', 'E1') RETURNING id"
        ).scalar()
    e.dispose()

    assert learner == results["public.learners_id_seq"]["next_value"]
    assert learner >= prod["public.learners_id_seq"] + results["public.learners_id_seq"]["offset"]
    assert payment_id >= prod["public.payments_id_seq"] + results["public.payments_id_seq"]["offset"]
    assert refund_id >= prod["public.refunds_id_seq"] + results["public.refunds_id_seq"]["offset"]
    assert staff >= prod["partners.partner_staff_id_seq"] + results["partners.partner_staff_id_seq"]["offset"]
    invoice_offset = results["public.invoice_seq"]["offset"]
    assert invoice_digits(invoice) >= prod["public.invoice_seq"] + invoice_offset
    assert invoice_digits(refund_number) == invoice_digits(invoice) + 1


def test_rebase_step_records_offsets(copies, production):
    work = copies()
    server = sa.make_url(work).set(database="postgres").render_as_string(hide_password=False)
    ctx = types.SimpleNamespace(
        work_url=work,
        work_name=sa.make_url(work).database,
        logical_date=DAY,
        record={},
        staging_server_url=server,
        holder=Holder(via="cli", run_id="test", since=now()),
        database=types.SimpleNamespace(name="learners", server_copies=None),  # copies: databases
        staging_name=sa.make_url(work).database.split("__work_")[0],
    )
    from deid.steps.copies import admin, new_metadata, read_metadata, set_metadata

    done = [Stamp(step=step, run_id="test", at=now()) for step in ("snapshot", "scrub")]
    with admin(server) as connection:  # as the snapshot and scrub steps leave a working copy
        set_metadata(connection, ctx.work_name, {**new_metadata("learners", DAY), "ledger": done})
    next_values = rebase(ctx)

    with admin(server) as connection:  # validate and publish, maybe in other processes, read them from here
        stored = parse_state(read_metadata(connection, ctx.work_name))
    assert stored.offsets == {name: r["offset"] for name, r in ctx.record["offsets"].items()}
    assert stored.high_waters == {name: r["high_water"] for name, r in ctx.record["offsets"].items()}
    assert stored.done == ("snapshot", "scrub", "rebase")
    offsets = ctx.record["offsets"]
    assert sorted(offsets) == sorted(DEMO_SEQUENCES)
    assert next_values == {name: r["next_value"] for name, r in offsets.items()}
    assert set(offsets["public.learners_id_seq"]) == {
        "sequence", "columns", "high_water", "offset", "next_value", "limit", "limited_by", "clamped",
        "rerun",
    }  # fmt: skip
    for r in offsets.values():  # names and numbers only
        assert all(isinstance(v, (str, int, bool, list)) for v in r.values())


def test_rerun_same_date_is_idempotent(copies):
    work = copies()
    first = rebase_url(work)
    second = rebase_url(work)
    assert {n: r["next_value"] for n, r in second.items()} == {n: r["next_value"] for n, r in first.items()}
    assert {n: r["high_water"] for n, r in second.items()} == {n: r["high_water"] for n, r in first.items()}
    assert all(r["rerun"] for r in second.values())
    comment = scalar(work, "SELECT obj_description('public.learners_id_seq'::regclass, 'pg_class')")
    assert comment.count("deid rebase:") == 1
    assert f"next value {first['public.learners_id_seq']['next_value']}" in comment


def test_rerun_after_staging_inserts_never_hands_out_a_used_value(copies):
    work = copies()
    first = rebase_url(work)
    used_invoice = scalar(work, "SELECT nextval('invoice_seq')")  # e.g. a migration's inserts
    explicit = first["public.refunds_id_seq"]["next_value"] + 10
    run_sql(
        work,
        "INSERT INTO refunds (id, payment_id, amount, refunded_at, refund_number) "
        f"SELECT {explicit}, id, 1, now(), 'RFD-given' FROM payments ORDER BY id LIMIT 1",
    )
    second = rebase_url(work)
    assert second["public.invoice_seq"]["next_value"] == used_invoice + 1
    assert second["public.refunds_id_seq"]["next_value"] == explicit + 1
    assert second["public.learners_id_seq"]["next_value"] == first["public.learners_id_seq"]["next_value"]
    assert second["public.refunds_id_seq"]["high_water"] == first["public.refunds_id_seq"]["high_water"]


def test_two_dates_give_different_offsets(copies):
    monday, tuesday = copies(), copies()
    a = rebase_url(monday, DAY)
    b = rebase_url(tuesday, DAY + dt.timedelta(days=1))
    for name in DEMO_SEQUENCES:
        assert a[name]["offset"] != b[name]["offset"], name
        assert a[name]["high_water"] == b[name]["high_water"]
    # The same date on a fresh copy of the same production gives the same values (reproducible).
    again = rebase_url(copies(), DAY)
    assert {n: r["next_value"] for n, r in again.items()} == {n: r["next_value"] for n, r in a.items()}
    # Another date on an already rebased copy starts from the recorded production high water.
    moved = rebase_url(monday, DAY + dt.timedelta(days=1))
    assert {n: r["next_value"] for n, r in moved.items()} == {n: r["next_value"] for n, r in b.items()}


def test_rolled_back_rebase_leaves_every_sequence_as_it_was(copies):
    """ALTER SEQUENCE ... RESTART is transactional (setval would not be)."""
    work = copies()
    before = {name: sequence_state(work, name) for name in DEMO_SEQUENCES}
    e = engine(work)
    with e.connect() as c:
        transaction = c.begin()
        rebase_database(c, backend_for("postgresql").introspect(c, "work"), DAY)
        transaction.rollback()
    e.dispose()
    assert {name: sequence_state(work, name) for name in DEMO_SEQUENCES} == before
    assert scalar(work, "SELECT obj_description('public.invoice_seq'::regclass, 'pg_class')") is None


# --- limits -----------------------------------------------------------------------------------------------


def test_int4_near_its_limit_gets_a_clamped_offset_that_fits(pg_url):
    run_sql(
        pg_url,
        "CREATE TABLE big (id serial PRIMARY KEY, note text);"
        "INSERT INTO big (id) VALUES (2100000000);"
        "CREATE TABLE roomy (id integer GENERATED ALWAYS AS IDENTITY, note text);",
    )
    results = rebase_url(pg_url)
    big = results["public.big_id_seq"]
    assert big["clamped"] and big["high_water"] == 2_100_000_000
    assert big["next_value"] + 1_000_000 <= INT4 and big["offset"] >= (INT4 - 2_100_000_000) // 4
    assert not results["public.roomy_id_seq"]["clamped"]
    assert scalar(pg_url, "INSERT INTO big (note) VALUES ('x') RETURNING id") == big["next_value"]


def test_too_little_room_is_a_clear_error_and_nothing_is_written(pg_url):
    run_sql(
        pg_url,
        "CREATE TABLE fine (id serial PRIMARY KEY);"
        "CREATE TABLE full_up (id serial PRIMARY KEY);"
        f"INSERT INTO full_up VALUES ({INT4 - 3_000});"
        "CREATE TABLE partner_staff (id smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);"
        "INSERT INTO partner_staff VALUES (32100);",
    )
    with pytest.raises(NoRoom) as raised:
        rebase_url(pg_url)
    text = str(raised.value)
    assert isinstance(raised.value, TerminalError)
    assert "public.full_up.id (integer)" in text and "widen public.full_up.id to bigint" in text
    assert "public.partner_staff.id (smallint)" in text and "production's high water 32,100, room 667" in text
    assert "widen public.partner_staff.id to integer" in text
    assert "public.fine" not in text
    assert sequence_state(pg_url, "fine_id_seq") == (1, False)  # the sequence with room was not moved either


def test_smallint_identity(pg_url):
    run_sql(
        pg_url,
        "CREATE TABLE staff (id smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);"
        "INSERT INTO staff (name) SELECT 'n' FROM generate_series(1, 30);",
    )
    r = rebase_url(pg_url)["public.staff_id_seq"]
    assert r["high_water"] == 30 and r["limit"] == INT2
    assert r["offset"] >= INT2 // 4 and INT2 - r["next_value"] >= (INT2 - 30) // 10
    assert scalar(pg_url, "INSERT INTO staff (name) VALUES ('x') RETURNING id") == r["next_value"]


def test_sequence_used_only_by_defaults_and_a_short_varchar(pg_url):
    """A bigint sequence behind 'INV-' || nextval() in a varchar(12): 8 digits left, not bigint's 19."""
    run_sql(
        pg_url,
        "CREATE SEQUENCE invoice_seq START WITH 100001;"
        "CREATE TABLE payments (id serial,"
        "    invoice varchar(12) NOT NULL DEFAULT 'INV-' || nextval('invoice_seq'));"
        "CREATE TABLE notes (id serial, number text NOT NULL DEFAULT 'RFD-' || nextval('invoice_seq'));"
        "INSERT INTO payments (id) SELECT g FROM generate_series(1, 5) g;"
        "INSERT INTO notes (id) VALUES (1);",
    )
    r = rebase_url(pg_url)["public.invoice_seq"]
    assert r["high_water"] == 100_006
    assert r["limit"] == 99_999_999
    assert r["limited_by"] == [
        "public.payments.invoice (character varying(12); its DEFAULT adds 4 characters)"
    ]
    assert r["columns"] == ["public.notes.number", "public.payments.invoice"]
    invoice = scalar(pg_url, "INSERT INTO payments DEFAULT VALUES RETURNING invoice")
    assert invoice == f"INV-{r['next_value']}" and len(invoice) <= 12


def test_never_called_sequence_starts_from_its_start_value(pg_url):
    run_sql(pg_url, "CREATE SEQUENCE tickets START WITH 100001;")
    r = rebase_url(pg_url)["public.tickets"]
    assert r["high_water"] == 100_000 and r["columns"] == []
    assert scalar(pg_url, "SELECT nextval('tickets')") == 100_000 + r["offset"]


def test_partitioned_table_with_a_serial(pg_url):
    run_sql(
        pg_url,
        "CREATE TABLE events (id serial, day date NOT NULL) PARTITION BY RANGE (day);"
        "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
        "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
        "INSERT INTO events (day) VALUES ('2024-05-01');"
        "INSERT INTO events_2025 (id, day) VALUES (5000, '2025-05-01');",  # explicit id, sequence behind
    )
    r = rebase_url(pg_url)["public.events_id_seq"]
    assert r["columns"] == ["public.events.id", "public.events_2024.id", "public.events_2025.id"]
    assert r["high_water"] == 5_000
    new = scalar(pg_url, "INSERT INTO events (day) VALUES ('2025-06-01') RETURNING id")
    assert new == 5_000 + r["offset"]


def test_narrow_foreign_key_and_domain_limit_the_sequence(pg_url):
    run_sql(
        pg_url,
        "CREATE TABLE orders (id bigserial PRIMARY KEY);"
        "CREATE TABLE items (order_id integer REFERENCES orders);"  # an int4 key to a bigint id
        "CREATE DOMAIN code AS smallint;"
        "CREATE SEQUENCE code_seq;"  # bigint sequence, smallint column through a domain
        "CREATE TABLE codes (c code DEFAULT nextval('code_seq'));"
        "INSERT INTO orders DEFAULT VALUES; INSERT INTO codes DEFAULT VALUES;",
    )
    results = rebase_url(pg_url)
    orders = results["public.orders_id_seq"]
    assert orders["limit"] == INT4
    assert orders["limited_by"] == ["public.items.order_id (integer, references public.orders.id)"]
    assert results["public.code_seq"]["limit"] == INT2
    order = scalar(pg_url, "INSERT INTO orders DEFAULT VALUES RETURNING id")
    run_sql(pg_url, f"INSERT INTO items VALUES ({order})")
    assert (
        scalar(pg_url, "INSERT INTO codes DEFAULT VALUES RETURNING c")
        == results["public.code_seq"]["next_value"]
    )


def test_sequence_maxvalue_and_increment(pg_url):
    run_sql(
        pg_url,
        "CREATE SEQUENCE tens INCREMENT BY 10 START WITH 7 MAXVALUE 99999999;"
        "CREATE TABLE t (id bigint DEFAULT nextval('tens'));"
        "INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES;",
    )
    r = rebase_url(pg_url)["public.tens"]
    assert r["high_water"] == 17 and r["limit"] == 99_999_999
    assert r["limited_by"] == ["sequence public.tens (MAXVALUE 99,999,999)"]
    assert r["offset"] % 10 == 0
    assert scalar(pg_url, "INSERT INTO t DEFAULT VALUES RETURNING id") % 10 == 7


def test_descending_sequence(pg_url):
    run_sql(
        pg_url,
        "CREATE SEQUENCE down AS integer INCREMENT BY -1;"  # -1, -2, ...
        "CREATE TABLE t (id integer DEFAULT nextval('down'));"
        "INSERT INTO t DEFAULT VALUES; INSERT INTO t DEFAULT VALUES; INSERT INTO t VALUES (-40);",
    )
    r = rebase_url(pg_url)["public.down"]
    assert r["high_water"] == -40 and r["limit"] == -(2**31)
    assert r["next_value"] == -40 - r["offset"] and r["offset"] >= INT4 // 4
    assert scalar(pg_url, "INSERT INTO t DEFAULT VALUES RETURNING id") == r["next_value"]


def test_odd_names_and_production_comments_survive(pg_url):
    run_sql(
        pg_url,
        'CREATE SCHEMA "Odd:Schema";'
        'CREATE TABLE "Odd:Schema"."we%ird ""t""" (":id" serial, v text);'
        'INSERT INTO "Odd:Schema"."we%ird ""t""" (v) VALUES (\'a\');'
        'COMMENT ON SEQUENCE "Odd:Schema"."we%ird ""t""_:id_seq"'
        " IS E'Owner: billing \\\\ 100% o''clock';",
    )
    sequence = 'Odd:Schema."we%ird ""t""_:id_seq"'  # the quotes in the name are quoted: names are exact
    first = rebase_url(pg_url)[sequence]
    assert first["high_water"] == 1
    comment_sql = 'SELECT obj_description(\'"Odd:Schema"."we%ird ""t""_:id_seq"\'::regclass, \'pg_class\')'
    comment = scalar(pg_url, comment_sql.replace(":", "\\:"))
    assert comment.startswith("Owner: billing \\ 100% o'clock\n\ndeid rebase: production high water 1 ")
    second = rebase_url(pg_url)[sequence]
    assert second["next_value"] == first["next_value"] and second["rerun"]
    assert scalar(pg_url, comment_sql.replace(":", "\\:")) == comment


def test_a_marker_copied_from_elsewhere_is_ignored(pg_url):
    """A production comment that carries a marker the sequence never reached is not this copy's."""
    run_sql(
        pg_url,
        "CREATE TABLE t (id serial);"
        "INSERT INTO t DEFAULT VALUES;"
        "COMMENT ON SEQUENCE t_id_seq IS 'deid rebase: production high water 0 (logical date 2020-01-01, "
        "offset 5, next value 999999999)';",
    )
    r = rebase_url(pg_url)["public.t_id_seq"]
    assert not r["rerun"] and r["high_water"] == 1
    comment = scalar(pg_url, "SELECT obj_description('t_id_seq'::regclass, 'pg_class')")
    assert comment.count("deid rebase:") == 1 and "logical date 2026-11-28" in comment


def test_no_sequences(pg_url):
    run_sql(pg_url, "CREATE TABLE plain (id integer);")
    assert rebase_url(pg_url) == {}
