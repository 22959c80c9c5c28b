"""MariaDB writes a sequence into a column DEFAULT with its database (`nextval(`shop`.`invoice_seq`)`) and
keeps that name through a dump, a copy and a RENAME TABLE. A copy must draw from its own sequence: else an
insert into the working copy would advance production's sequence (a write to production), and one into the
published copy would name a database that the publish renamed away."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from deid.backends.mysql import copies
from deid.cloners import cloner_for
from deid.steps.copies import admin
from tests.mysql_server import MysqlServer, mysql_server  # noqa: F401
from tests.test_copies_mysql import make_ctx, query, run

DAY = dt.date(2026, 12, 1)


@pytest.fixture
def production(mysql_server: MysqlServer):  # noqa: F811
    name = mysql_server.create_database("deid_seqprod")
    run(
        mysql_server.url(name),
        [
            "CREATE SEQUENCE invoice_seq START WITH 1000",
            "CREATE TABLE payments (id int PRIMARY KEY, "
            "invoice varchar(20) NOT NULL DEFAULT concat('INV-', nextval(invoice_seq)))",
            "INSERT INTO payments (id) VALUES (1), (2)",
        ],
    )
    yield name
    mysql_server.drop_database(name)


def _default(server: MysqlServer, database: str) -> str:
    ((default,),) = query(
        server.admin_url,
        "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :d "
        "AND TABLE_NAME = 'payments' AND COLUMN_NAME = 'invoice'",
        d=database,
    )
    return default.decode() if isinstance(default, bytes) else default


def _next(server: MysqlServer, database: str) -> int:
    ((value,),) = query(server.url(database), "SELECT next_not_cached_value FROM invoice_seq")
    return int(value)


def test_a_copy_and_its_published_name_draw_from_their_own_sequence(
    mysql_server: MysqlServer,  # noqa: F811
    production: str,
):
    """(clone: dump; clone: same_server refuses sequences, see tests/test_copies_mysql.py)"""
    assert f"`{production}`.`invoice_seq`" in _default(mysql_server, production)
    staging = f"deid_seqstg_{uuid.uuid4().hex[:8]}"
    ctx = make_ctx(mysql_server, production, staging, DAY, "dump")
    produced = _next(mysql_server, production)
    try:
        cloner_for("dump", "mysql").clone(ctx)
        assert f"`{ctx.work_name}`.`invoice_seq`" in _default(mysql_server, ctx.work_name)
        run(ctx.work_url, ["INSERT INTO payments (id) VALUES (3)"])
        assert _next(mysql_server, production) == produced  # production's sequence untouched
        with admin(ctx.staging_server_url) as c:
            copies.rename(c, [(ctx.work_name, staging)])
        assert f"`{staging}`.`invoice_seq`" in _default(mysql_server, staging)
        run(mysql_server.url(staging), ["INSERT INTO payments (id) VALUES (4)"])
        rows = query(mysql_server.url(staging), "SELECT invoice FROM payments ORDER BY id")
        numbers = [int(invoice.removeprefix("INV-")) for (invoice,) in rows]
        # the copy's own sequence, carried on from production's: new numbers above production's, no repeat
        assert numbers[:2] == [1000, 1001] and numbers[2] > 1001 and numbers[3] > numbers[2]
    finally:
        for name in (ctx.work_name, staging):
            mysql_server.drop_database(name)


def test_the_copys_note_is_deids_and_never_needs_a_rule(mysql_server: MysqlServer, production: str):  # noqa: F811
    """The note (deid's state, a table in the copy) is not the database's: introspection leaves it out."""
    from deid.backends import backend_for
    from deid.steps.copies import new_metadata, set_metadata

    with admin(mysql_server.admin_url) as c:
        set_metadata(c, production, new_metadata("shop", DAY))
    engine = sa.create_engine(mysql_server.url(production))
    try:
        with engine.connect() as c:
            tables = [t.qualified for t in backend_for("mysql").introspect(c, "shop").tables]
    finally:
        engine.dispose()
    assert tables == ["public.payments"]
    assert query(mysql_server.url(production), "SELECT count(*) FROM _deid_note") == [(1,)]


def test_validation_checks_a_rebased_sequence_and_a_counter_alike(mysql_server: MysqlServer, production: str):  # noqa: F811
    """The sequence check reads a MariaDB SEQUENCE's own next value (a counter's from its table): it fails
    before the rebase and passes after it."""
    from deid.backends import backend_for
    from deid.steps.rebase import rebase_database

    dialect = backend_for("mysql").validation()
    engine = sa.create_engine(mysql_server.url(production))
    try:
        with engine.begin() as c:
            schema = backend_for("mysql").introspect(c, "shop")
        with engine.connect() as c:
            high_water = dialect.sequence_high_water(c, "public.invoice_seq")
            failing = dialect.sequence_query(c, "public.invoice_seq", high_water, 1000)
            assert c.execute(sa.text(failing)).all() != []  # not moved yet
        with engine.begin() as c:
            facts = rebase_database(c, schema, DAY)["public.invoice_seq"]
        with engine.connect() as c:
            query_sql = dialect.sequence_query(c, "public.invoice_seq", facts["high_water"], facts["offset"])
            assert c.execute(sa.text(query_sql)).all() == []
    finally:
        engine.dispose()
