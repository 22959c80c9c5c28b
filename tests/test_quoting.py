"""The one quoter (deid.backends.quoting) against real servers: hostile names and texts written by it come
back exactly as they were, on every configured PostgreSQL (15 and 18 in CI) and on MySQL/MariaDB.

Each name is made a schema (where the engine has them), a table, a column and a database; each text a
literal, through deid.rawsql (no parameters) and through text() with the validation dialect's spelling.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from deid import names, rawsql
from deid.backends import backend_for, engine_names
from deid.backends.quoting import Unquotable
from deid.rules.condition import parse_condition

# quotes of every kind, a backslash, a dot, placeholders of every driver, unicode, blanks, an SQL comment
NAMES = (
    "it's",
    'say "hi"',
    "back`tick",
    "back\\slash",
    "dot.ted",
    "per%cent %s",
    "colon:name",
    "ünïcødé 名前",
    "--; drop",
    " lead",
)
TEXTS = (*NAMES, "trailing\\", "\\'; DROP TABLE x; --", "%(x)s %%", "\\n is two characters", "😀", "''")


@pytest.fixture
def server_db(any_server):
    name = any_server.create_database("deid_quote")
    engine = sa.create_engine(any_server.url(name), poolclass=sa.pool.NullPool)
    yield any_server, engine
    engine.dispose()
    any_server.drop_database(name)


def test_names_and_texts_come_back_as_written(server_db):
    server, engine = server_db
    backend = backend_for(server.engine)
    schema = 'sch "em" `a`.x\'' if backend.capabilities.schemas else names.DEFAULT_SCHEMA
    with engine.begin() as c:
        if backend.capabilities.schemas:
            rawsql.execute(c, f"CREATE SCHEMA {backend.quote_identifier(schema)}")
        for name in NAMES:
            table, column = backend.quote_table(names.key(schema, name)), backend.quote_identifier(name)
            rawsql.execute(c, f"CREATE TABLE {table} ({column} varchar(200))")
            rows = ", ".join(f"({backend.quote_literal(text)})" for text in TEXTS)
            rawsql.execute(c, f"INSERT INTO {table} ({column}) VALUES {rows}")
    with engine.connect() as c:
        listed = sa.inspect(c).get_table_names(schema=schema if backend.capabilities.schemas else None)
        assert set(NAMES) <= set(listed)
        for name in NAMES:
            table, column = backend.quote_table(names.key(schema, name)), backend.quote_identifier(name)
            back = rawsql.execute(c, f"SELECT {column} FROM {table}").scalars().all()
            assert sorted(back) == sorted(TEXTS), name
            # a name and a text through the validation dialect's spelling, in SQLAlchemy's text()
            dialect = backend.validation()
            query = f"SELECT count(*) FROM {dialect.quote_table(names.key(schema, name))} WHERE "
            query += f"{dialect.quote_ident(name)} = {dialect.literal(name)}"
            assert c.execute(sa.text(query)).scalar() == 1, name


def test_texts_read_back_as_selected_literals(server_db):
    server, engine = server_db
    backend = backend_for(server.engine)
    with engine.connect() as c:
        for text in TEXTS:
            assert rawsql.execute(c, f"SELECT {backend.quote_literal(text)}").scalar() == text
            assert c.execute(sa.text(f"SELECT {backend.validation().literal(text)}")).scalar() == text


def test_a_row_condition_on_hostile_names_selects_its_rows(server_db):
    server, engine = server_db
    backend = backend_for(server.engine)
    name = 'say "hi" `now`'
    table, column = backend.quote_table(names.key(names.DEFAULT_SCHEMA, name)), backend.quote_identifier(name)
    with engine.begin() as c:
        rawsql.execute(c, f"CREATE TABLE {table} ({column} varchar(50))")
        values = ", ".join(f"({backend.quote_literal(t)})" for t in ("it's", "back\\slash", "other"))
        rawsql.execute(c, f"INSERT INTO {table} ({column}) VALUES {values}")
    # the rule language spells a name in double quotes and a text in single quotes, whatever the engine
    condition = parse_condition("\"say \"\"hi\"\" `now`\" IN ('it''s', 'back\\slash')")
    with engine.connect() as c:
        sql = f"SELECT count(*) FROM {table} WHERE {condition.render(backend)}"
        assert rawsql.execute(c, sql).scalar() == 2


@pytest.mark.parametrize("name", ["deid_q 50% off", "deid_q 'it''s' \"x\" `y`", "deid_q ünï"])
def test_database_names_reach_the_server_as_written(any_server, name):
    """The copy store's names: a `%` is not doubled (the connection's own dialect doubled it), quotes are."""
    backend = backend_for(any_server.engine)
    store = backend.copy_store()
    engine = sa.create_engine(any_server.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            store.drop(c, name)
            rawsql.execute(c, f"CREATE DATABASE {backend.quote_identifier(name)}")
            assert store.exists(c, name)
            store.drop(c, name)
            assert not store.exists(c, name)
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine", engine_names())
def test_nul_is_refused_naming_what_held_it_not_the_text(engine):
    backend = backend_for(engine)
    with pytest.raises(Unquotable, match="a name holds a NUL") as raised:
        backend.quote_identifier("secret\x00name")
    assert "secret" not in str(raised.value)
    with pytest.raises(Unquotable, match="a string literal holds a NUL"):
        backend.quote_literal("a\x00b")


# The spellings are pinned: they are in every plan's statements, whose digests copies carry.
SPELLINGS = {
    "postgresql": (
        ('a"b%:c', '"a""b%:c"'),
        ("it's \\ %", "'it''s \\ %'"),
        ('"dot.s".t', '"dot.s"."t"'),
    ),
    "mysql": (
        ('a`b"%', '`a``b"%`'),
        ("it's \\ %", "'it''s \\\\ %'"),
        ('public."x.y"', "`x.y`"),
    ),
}


@pytest.mark.parametrize("engine", sorted(SPELLINGS))
def test_spellings_stay_as_plans_were_written(engine):
    backend = backend_for(engine)
    (name, quoted), (text, literal), (key, table) = SPELLINGS[engine]
    assert backend.quote_identifier(name) == quoted
    assert backend.quote_literal(text) == literal
    assert backend.quote_table(key) == table
