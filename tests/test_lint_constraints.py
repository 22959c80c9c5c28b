"""Lint knows the schema's constraints: a rule the database would refuse during the scrub fails lint, naming
the constraint. Each case first shows the run really fails (or what the run does), then that lint says so,
then that the fixed rule lints clean and runs."""

from __future__ import annotations

import json

from deid.rules import constraints
from deid.rules.model import ColumnRule
from deid.schema import CheckConstraint, Column, Kind, Schema, Table

D1 = "2026-11-27"

# Two yearly partitions and no DEFAULT one; the dates sit at both ends, so a shift of up to 30 days pushes
# some of them out of every partition.
PARTITIONED = """
CREATE TABLE visits (id int NOT NULL, visited date NOT NULL, note text) PARTITION BY RANGE (visited);
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO visits SELECT i, date '2025-01-01' + mod(i, 10) FROM generate_series(1, 20) i;
INSERT INTO visits SELECT i, date '2026-12-31' - mod(i, 10) FROM generate_series(21, 40) i;
"""

PRICES = """
CREATE TABLE prices (id int PRIMARY KEY,
                     rate numeric(6,2) NOT NULL CONSTRAINT rate_range CHECK (rate BETWEEN 6.50 AND 200.00));
INSERT INTO prices SELECT i, 6.50 + mod(i, 3) FROM generate_series(1, 50) i;
"""


def lint(refresh):
    return refresh.cli("lint", str(refresh.folder / "rules" / "shop.yaml"), "--database", "shop")


def visits_rules(visited: str) -> str:
    return f"  public.visits:\n    columns: {{id: keep, visited: {visited}, note: 'null'}}\n"


def test_a_rewritten_partition_key_outside_every_partition_fails_lint(refresh):
    refresh.setup(PARTITIONED, visits_rules("{transformer: shift_date, params: {days: 30}}"))
    failed = refresh.run(D1)
    assert failed.code == 1 and "public.visits" in failed.err, failed.err
    assert refresh.staging not in refresh.copies()

    linted = lint(refresh)
    assert linted.code == 1
    assert "shop.yaml:5: public.visits.visited is in the partition key of public.visits" in linted.err
    assert "(PARTITION BY RANGE (visited))" in linted.err and "DEFAULT partition" in linted.err

    refresh.write_rules(visits_rules("keep"))
    assert lint(refresh).code == 0
    assert refresh.run(D1).code == 0


def test_a_default_partition_takes_any_key_so_the_rewrite_lints_and_runs(refresh):
    """What the run really does: PostgreSQL moves a row whose key changed to its new partition."""
    sql = PARTITIONED + "CREATE TABLE visits_other PARTITION OF visits DEFAULT;"
    refresh.setup(sql, visits_rules("{transformer: shift_date, params: {days: 30}}"))
    assert lint(refresh).code == 0
    assert refresh.run(D1).code == 0
    moved = refresh.rows(refresh.staging, "SELECT count(*) FROM visits_other")
    assert moved[0][0] > 0 and refresh.rows(refresh.staging, "SELECT count(*) FROM visits") == [(40,)]


def test_noise_that_can_leave_a_check_range_fails_lint_naming_the_constraint(refresh):
    refresh.setup(PRICES, "  public.prices:\n    columns: {id: keep, rate: {transformer: noise}}\n")
    failed = refresh.run(D1)
    assert failed.code == 1 and "constraint rate_range" in failed.err, failed.err

    linted = lint(refresh)
    assert linted.code == 1
    assert "shop.yaml:5: public.prices.rate: noise (relative: 0.1)" in linted.err
    assert "CHECK constraint rate_range (CHECK (((rate >= 6.50) AND (rate <= 200.00))))" in linted.err
    assert "`noise` with `min:`/`max:` inside the CHECK range" in linted.err

    refresh.write_rules("  public.prices:\n    columns: {id: keep, rate: keep}\n")
    assert lint(refresh).code == 0
    assert refresh.run(D1).code == 0


def test_a_domain_s_check_is_the_column_s_check(refresh):
    """A domain's CHECK binds every column declared with it: noise that can leave its range fails the run,
    so lint names the domain's constraint, and the clamped rule passes both."""
    sql = """
    CREATE DOMAIN percent AS numeric(5,2) CONSTRAINT percent_range CHECK (VALUE BETWEEN 0 AND 100);
    CREATE TABLE scores (id int PRIMARY KEY, score percent NOT NULL);
    INSERT INTO scores SELECT i, CASE WHEN mod(i, 2) = 0 THEN 90 + mod(i, 11) ELSE 1 + mod(i, 9) END
        FROM generate_series(1, 40) i;
    """
    refresh.setup(sql, "  public.scores:\n    columns: {id: keep, score: noise}\n")
    failed = refresh.run(D1)
    assert failed.code == 1 and "percent_range" in failed.err, failed.err

    linted = lint(refresh)
    assert linted.code == 1
    assert "public.scores.score: noise" in linted.err
    assert "CHECK constraint percent_range of domain public.percent" in linted.err
    assert "(score <= (100)::numeric)" in linted.err
    clamped = "{transformer: noise, params: {min: 0.5, max: 99.5}}"
    refresh.write_rules(f"  public.scores:\n    columns: {{id: keep, score: {clamped}}}\n")
    assert lint(refresh).code == 0
    assert refresh.run(D1).code == 0


def test_constants_lists_and_composite_keys_are_checked_against_the_live_schema(refresh):
    sql = """
    CREATE TABLE stays (id int PRIMARY KEY, status text NOT NULL CHECK (status IN ('open', 'closed')),
                        zip text, night date, CONSTRAINT one_stay UNIQUE (zip, night),
                        code text CHECK (code ~ '^[A-Z]{3}$'), room text CONSTRAINT one_room UNIQUE);
    """
    rules = (
        "  public.stays:\n    columns:\n      id: keep\n"
        "      status: {transformer: constant, params: {value: gone}}\n"
        "      zip: generalize_zip\n      night: keep\n      code: hash\n      room: redact\n"
    )
    refresh.setup(sql, rules)
    linted = lint(refresh)
    assert linted.code == 1
    assert (
        "public.stays.status: the constant 'gone' is not listed, which CHECK constraint stays_status_check"
        in (linted.err)
    )
    assert "public.stays.zip is in the unique key one_stay (zip, night)" in linted.err
    assert "public.stays.room (text, unique one_room): redact can give equal outputs" in linted.err
    # a regex lint cannot prove a hash matches: a warning that names it, not a refusal
    assert (
        "warning: public.stays.code is rewritten by hash" in linted.err and "stays_code_check" in linted.err
    )

    fixed = rules.replace("value: gone", "value: closed").replace("generalize_zip", "hash")
    fixed = fixed.replace("room: redact", "room: hash")
    refresh.write_rules(fixed)
    passed = lint(refresh)
    assert passed.code == 0, passed.err
    assert "stays_code_check" in passed.err  # still warned


def _prices(rule_params: dict) -> list:
    table = Table(
        "public",
        "prices",
        columns=(Column("rate", "numeric(6,2)", Kind.NUMERIC, nullable=False),),
        checks=(CheckConstraint("rate_range", "CHECK (((rate >= 6.50) AND (rate <= 200.00)))", ("rate",)),),
    )
    crule = ColumnRule("rate", "noise", {"relative": 0.1, "by": None, **rule_params}, 7)
    return constraints._verdict(crule, table.columns[0], _terms(table)[0]), constraints._verdict(
        crule, table.columns[0], _terms(table)[1]
    )


def _terms(table: Table):
    from deid.backends import backend_for

    c = table.checks[0]
    return backend_for("postgresql").check_terms(c.definition, c.columns)


def test_noise_clamped_inside_the_range_is_accepted():
    assert all(_prices({})), "unclamped noise can leave both ends"
    assert _prices({"min": 6.5, "max": 200}) == (None, None)
    assert _prices({"min": 6.0, "max": 200})[0] and _prices({"min": 6.0, "max": 200})[1] is None


def test_snapshots_of_format_2_still_load_and_format_3_round_trips():
    table = Table(
        "public",
        "t",
        columns=(Column("a", "integer", Kind.INTEGER),),
        checks=(CheckConstraint("a_pos", "CHECK ((a > 0))", ("a",)),),
        partition_by="RANGE (a)",
        partition_key=("a",),
    )
    schema = Schema("shop", "postgresql", (table,))
    assert Schema.from_json(schema.to_json()) == schema
    old = json.loads(schema.to_json())
    old["format"] = 2
    for key in ("checks", "unique_keys", "partition_by", "partition_key", "partition_bound"):
        del old["tables"][0][key]
    loaded = Schema.from_dict(old).tables[0]
    assert loaded.checks == () and loaded.partition_key == () and loaded.column("a") is not None
