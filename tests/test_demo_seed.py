"""The demo production database, on real PostgreSQL: shape, ratios, test accounts, determinism, integrity."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.demo import seed as demo
from deid.demo.rows import COLUMNS, tables

ROOT = Path(__file__).resolve().parent.parent
LEARNERS = 200


@pytest.fixture(scope="module")
def seeded(postgres):
    """One seeded database per server for the read-mostly tests; tests that write roll back."""
    name = postgres.create_database("deid_demo")
    url = postgres.url(name)
    counts = demo.seed(url, learners=LEARNERS)
    engine = sa.create_engine(url)
    yield engine, counts
    engine.dispose()
    postgres.drop_database(name)


def _tables(c: sa.Connection) -> list[str]:
    """Tables and materialized views of the demo schemas (partitions are read through their parent)."""
    return list(
        c.exec_driver_sql(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'partners') "
            "AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition ORDER BY 1"
        ).scalars()
    )


def _digest(c: sa.Connection, table: str) -> str:
    """md5 of the table's rows in primary-key order (whole-row order where there is no primary key)."""
    pk = c.exec_driver_sql(
        "SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum)) "
        "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
        f"WHERE i.indrelid = '{table}'::regclass AND i.indisprimary"
    ).scalar()
    order = pk or "t::text"
    return c.exec_driver_sql(
        f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY {order})) FROM {table} t"
    ).scalar()


def _digests(postgres, seed: int) -> dict[str, str]:
    name = postgres.create_database("deid_demo")
    try:
        demo.seed(postgres.url(name), learners=LEARNERS, seed=seed)
        engine = sa.create_engine(postgres.url(name))
        with engine.connect() as c:
            digests = {t: _digest(c, t) for t in _tables(c)}
            digests["invoice_seq"] = str(c.exec_driver_sql("SELECT last_value FROM invoice_seq").scalar())
        engine.dispose()
        return digests
    finally:
        postgres.drop_database(name)


def test_counts_are_the_database_counts_and_follow_the_ratios(seeded):
    engine, counts = seeded
    with engine.connect() as c:
        tables = [t for t in _tables(c) if t != "public.course_revenue"]
        assert sorted(counts) == tables
        for table, count in counts.items():
            assert c.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == count, table
        paid_enrollments = c.exec_driver_sql(
            "SELECT count(*) FROM enrollments e JOIN courses c ON c.id = e.course_id WHERE c.price > 0"
        ).scalar()
    assert counts["public.learners"] == LEARNERS
    assert (counts["public.instructors"], counts["public.courses"], counts["partners.partner_staff"]) == (
        50,
        200,
        30,
    )
    assert 2.5 <= counts["public.enrollments"] / LEARNERS <= 3.7
    assert counts["public.payments"] == paid_enrollments  # exactly one per paid enrollment
    assert 1.5 <= counts["public.course_progress"] / counts["public.enrollments"] <= 4
    assert 0.01 <= counts["public.accommodations"] / LEARNERS <= 0.12
    assert 0.7 <= counts["public.audit_events"] / LEARNERS <= 1.3
    assert 0 < counts["public.refunds"] <= 0.1 * counts["public.payments"]
    assert 0.3 <= counts["public.degrees"] / LEARNERS <= 1.1


def test_static_test_accounts_have_their_known_values(seeded):
    engine, _ = seeded
    columns = [c for c in demo.LEARNER_COLUMNS if c != "profile"]
    with engine.connect() as c:
        rows = c.exec_driver_sql(
            f"SELECT {', '.join(columns)}, profile FROM learners WHERE is_test_account ORDER BY id"
        ).all()
        enrolled = c.exec_driver_sql(
            "SELECT e.learner_id, e.course_id, p.card_pan FROM enrollments e "
            "JOIN payments p ON p.enrollment_id = e.id JOIN learners l ON l.id = e.learner_id "
            "WHERE l.is_test_account ORDER BY 1, 2"
        ).all()
    assert [r.email for r in rows] == [f"qa+{n}@test.learners.example" for n in range(1, 6)]
    for row, account in zip(rows, demo.TEST_ACCOUNTS, strict=True):
        for column in columns:
            expected = account[column]
            assert getattr(row, column) == expected or str(getattr(row, column)) == expected, column
        assert row.profile == account["profile"]
    expected = [
        (n, course, demo.TEST_CARD_PAN) for n, courses in demo.TEST_COURSES.items() for course in courses
    ]
    assert [tuple(r) for r in enrolled] == expected


def test_same_seed_gives_identical_data_and_another_seed_does_not(postgres):
    first, again = _digests(postgres, 20261128), _digests(postgres, 20261128)
    other = _digests(postgres, 7)
    assert first == again
    assert len(first) == 15  # 13 tables, the materialized view, invoice_seq
    for table in ("public.learners", "public.enrollments", "public.payments", "public.course_progress"):
        assert first[table] != other[table], table


def test_ssns_are_distinct_and_well_formed(seeded):
    engine, _ = seeded
    with engine.connect() as c:
        ssns = c.exec_driver_sql("SELECT ssn, is_test_account FROM learners WHERE ssn IS NOT NULL").all()
    assert len(ssns) > LEARNERS // 2
    assert len({s for s, _ in ssns}) == len(ssns)
    for ssn, test in ssns:
        assert re.fullmatch(r"\d{3}-\d{2}-\d{4}", ssn)
        area, group, serial = ssn.split("-")
        if not test:  # issuable: the test accounts use the SSA's advertising range on purpose
            assert area not in ("000", "666") and area < "900" and group != "00" and serial != "0000", ssn


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def test_card_numbers_pass_luhn_and_match_their_last4(seeded):
    engine, _ = seeded
    with engine.connect() as c:
        cards = c.exec_driver_sql("SELECT card_pan, card_last4 FROM payments").all()
    assert cards
    for pan, last4 in cards:
        assert re.fullmatch(r"\d{15,16}", pan) and _luhn_ok(pan), pan
        assert pan[-4:] == last4
    assert not _luhn_ok("4242424242424241")


def test_trigger_stamps_updated_at_on_update(seeded):
    engine, _ = seeded
    with engine.connect() as c, c.begin() as tx:
        before = c.exec_driver_sql("SELECT updated_at FROM learners WHERE id = 10").scalar()
        c.exec_driver_sql("UPDATE learners SET city = 'Springfield' WHERE id = 10")
        after, now = c.exec_driver_sql("SELECT updated_at, now() FROM learners WHERE id = 10").one()
        tx.rollback()
    assert before < after == now


def test_progress_rows_land_in_their_partitions(seeded):
    engine, counts = seeded
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM ONLY course_progress").scalar() == 0
        per_partition = dict(
            c.exec_driver_sql(
                "SELECT tableoid::regclass::text, count(*) FROM course_progress GROUP BY 1"
            ).all()
        )
        misplaced = c.exec_driver_sql(
            "SELECT count(*) FROM course_progress WHERE tableoid::regclass::text <> CASE "
            "WHEN recorded_on < '2024-01-01' THEN 'course_progress_archive' "
            "ELSE 'course_progress_' || extract(year FROM recorded_on) END"
        ).scalar()
    assert misplaced == 0
    assert sum(per_partition.values()) == counts["public.course_progress"]
    assert {"course_progress_archive", "course_progress_2025", "course_progress_2026"} <= set(per_partition)


def test_foreign_keys_have_no_orphans(seeded):
    engine, _ = seeded
    with engine.connect() as c:
        fks = c.exec_driver_sql(
            "SELECT conname, conrelid::regclass::text, confrelid::regclass::text, "
            "  array(SELECT quote_ident(attname) FROM unnest(conkey) WITH ORDINALITY k(n, i) "
            "        JOIN pg_attribute ON attrelid = conrelid AND attnum = k.n ORDER BY k.i), "
            "  array(SELECT quote_ident(attname) FROM unnest(confkey) WITH ORDINALITY k(n, i) "
            "        JOIN pg_attribute ON attrelid = confrelid AND attnum = k.n ORDER BY k.i) "
            "FROM pg_constraint WHERE contype = 'f' AND conparentid = 0"
        ).all()
        for name, child, parent, cols, pcols in fks:
            match = " AND ".join(f"p.{pc} = c.{cc}" for cc, pc in zip(cols, pcols, strict=True))
            present = " AND ".join(f"c.{cc} IS NOT NULL" for cc in cols)
            orphans = c.exec_driver_sql(
                f"SELECT count(*) FROM {child} c WHERE {present} "
                f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match})"
            ).scalar()
            assert orphans == 0, name
    assert len(fks) == 12


def test_invoice_seq_numbers_both_tables_without_gaps(seeded):
    engine, counts = seeded
    with engine.connect() as c, c.begin() as tx:
        numbers = c.exec_driver_sql(
            "SELECT invoice_number FROM payments UNION ALL SELECT refund_number FROM refunds"
        ).scalars()
        issued = sorted(int(re.fullmatch(r"(?:INV|RFD)-(\d+)", n).group(1)) for n in numbers)
        invoice = c.exec_driver_sql(
            "INSERT INTO payments (enrollment_id, learner_id, amount, paid_at) "
            "SELECT id, learner_id, 10, now() FROM enrollments ORDER BY id LIMIT 1 "
            "RETURNING id, invoice_number"
        ).one()
        refund = c.exec_driver_sql(
            f"INSERT INTO refunds (payment_id, amount, refunded_at) VALUES ({invoice.id}, 10, now()) "
            "RETURNING refund_number"
        ).scalar()
        tx.rollback()
    assert issued == list(range(100001, 100001 + counts["public.payments"] + counts["public.refunds"]))
    assert invoice.id == counts["public.payments"] + 1  # the bigserial resumes above the seeded ids
    last = int(invoice.invoice_number.removeprefix("INV-"))
    assert last > issued[-1] and refund == f"RFD-{last + 1}"


def test_identity_and_serial_ids_resume_above_the_seeded_ones(seeded):
    engine, _ = seeded
    with engine.connect() as c:
        for table in demo.ID_TABLES:
            top, following = c.exec_driver_sql(
                f"SELECT max(id), nextval(pg_get_serial_sequence('{table}', 'id')) FROM {table}"
            ).one()
            assert following > top, table  # (other tests may have drawn numbers already)


def test_command_line_seeds_a_database(pg_url):
    libpq_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    result = subprocess.run(
        [sys.executable, "-m", "deid.demo.seed", libpq_url, "--learners", "20"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert re.search(r"public\.learners\s+20\b", result.stdout)


def test_too_few_learners_is_refused():
    with pytest.raises(ValueError, match="at least 5"):
        demo.seed("postgresql://unused/x", learners=4)


def test_each_tables_rows_are_read_before_the_next_table_is_made():
    """Later tables are drawn from what earlier ones drew: a loader that skipped a table's rows would get
    other rows for the same seed, so the generator refuses instead."""
    made = tables(learners=10)
    first = next(made)
    assert (first.table, first.columns[0]) == ("partners.partner_staff", "id")
    with pytest.raises(RuntimeError, match="partners.partner_staff's rows were not all read"):
        next(made)
    counts = {t.table: sum(1 for _ in t.rows) for t in tables(learners=10)}
    assert list(counts) == list(COLUMNS) and counts["public.learners"] == 10
