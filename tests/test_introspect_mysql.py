"""MySQL/MariaDB introspection against a real server (DEID_TEST_MYSQL_URL; CI's is MariaDB 10.11), the
registry's names for the engine, read-only sessions and which URL parameters may be shown.

The exact texts (type spellings, defaults, expressions) are MariaDB's: MySQL 8 prints `int` where MariaDB
prints `int(11)`, so those assertions run on MariaDB only; the structure (kinds, keys, identity, triggers)
is asserted on either server.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from deid import db
from deid.backends import SequenceKind, TriggerSilencing, backend_for, engine_names
from deid.backends.mysql import texts, triggers, types
from deid.errors import ConfigError
from deid.schema import (
    CheckConstraint,
    Column,
    Derivation,
    ForeignKey,
    Kind,
    Schema,
    Sequence,
    Trigger,
    UniqueKey,
    View,
)
from tests.mysql_server import MysqlServer, mysql_engine, mysql_server, mysql_url, run  # noqa: F401

SCHEMA = [
    """CREATE TABLE audit (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        account_id BIGINT UNSIGNED NOT NULL
    )""",
    """CREATE TABLE accounts (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
        email VARCHAR(255) NOT NULL,
        status ENUM('active','it''s off','x,y') NOT NULL DEFAULT 'active',
        flags SET('a','b','c') DEFAULT 'a,b',
        profile JSON,
        avatar BLOB,
        first_name VARCHAR(40) DEFAULT 'it''s',
        last_name VARCHAR(40),
        full_name VARCHAR(81) AS (CONCAT(first_name, ' ', last_name)) VIRTUAL,
        email_lower VARCHAR(255) AS (LOWER(email)) STORED,
        email_key VARCHAR(255),
        created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        age INT DEFAULT 3,
        CONSTRAINT uq_accounts_email UNIQUE (email),
        CONSTRAINT age_range CHECK (age >= 0 AND age < 200)
    ) AUTO_INCREMENT = 1000""",
    """CREATE TABLE order_lines (
        account_id BIGINT UNSIGNED NOT NULL,
        line INT NOT NULL,
        note TEXT,
        PRIMARY KEY (account_id, line),
        CONSTRAINT fk_lines_account FOREIGN KEY (account_id) REFERENCES accounts (id),
        CHECK (line > 0)
    )""",
    "CREATE TRIGGER accounts_email_key BEFORE INSERT ON accounts FOR EACH ROW"
    " SET NEW.email_key = LOWER(NEW.email)",
    """CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW
    BEGIN
        DECLARE k VARCHAR(255) DEFAULT TRIM(NEW.email);  -- through a variable
        IF k <> '' THEN SET NEW.email_key = LOWER(k); END IF;
    END""",
    "CREATE TRIGGER accounts_audit AFTER INSERT ON accounts FOR EACH ROW"
    " INSERT INTO audit (account_id) VALUES (NEW.id)",
    "CREATE VIEW active_accounts AS SELECT id, email FROM accounts WHERE status = 'active'",
    "INSERT INTO accounts (email, first_name, last_name)"
    " VALUES ('a@example.org', 'A', 'B'), ('b@example.org', 'C', 'D')",
    "ANALYZE TABLE accounts",
]


@pytest.fixture
def schema(mysql_engine: sa.Engine) -> Schema:
    run(mysql_engine, SCHEMA)
    return introspect(mysql_engine)


def introspect(engine: sa.Engine) -> Schema:
    with engine.connect() as c:
        return backend_for(engine.dialect.name).introspect(c, "shop")


@pytest.fixture
def mariadb(mysql_server: MysqlServer) -> None:
    if not mysql_server.is_mariadb:
        pytest.skip("the expected texts are MariaDB's (int(11), current_timestamp()); this server is MySQL")


def column(schema: Schema, qualified: str) -> Column:
    table, _, name = qualified.rpartition(".")
    found = schema.table(table).column(name)
    assert found is not None, qualified
    return found


# --- tables, views, keys -------------------------------------------------------------------------------


def test_tables_and_views_are_in_the_default_namespace(schema: Schema, mysql_engine: sa.Engine):
    assert [t.qualified for t in schema.tables] == ["public.accounts", "public.audit", "public.order_lines"]
    assert schema.views == (View("public", "active_accounts", materialized=False),)
    assert (schema.database, schema.engine) == ("shop", "mysql")
    # the database's own (random) name appears nowhere: a copy describes itself in the same words
    assert mysql_engine.url.database not in schema.to_json()
    assert schema.table("public.accounts").row_estimate == 2
    assert all(t.kind == "table" and t.partition_of is None for t in schema.tables)


def test_keys(schema: Schema):
    accounts, lines = schema.table("public.accounts"), schema.table("public.order_lines")
    assert accounts.primary_key == ("id",) and accounts.unique == (("email",),)
    assert accounts.unique_keys == (
        UniqueKey("PRIMARY", ("id",), primary=True),
        UniqueKey("uq_accounts_email", ("email",)),
    )
    assert accounts.is_unique("email") and not accounts.is_unique("first_name")
    assert lines.primary_key == ("account_id", "line") and lines.unique == ()
    assert lines.foreign_keys == (
        ForeignKey("fk_lines_account", ("account_id",), "public.accounts", ("id",)),
    )


def test_kinds_nullability_identity_and_generated(schema: Schema):
    kinds = {c.name: c.kind for c in schema.table("public.accounts").columns}
    assert kinds == {
        "id": Kind.INTEGER,
        "email": Kind.TEXT,
        "status": Kind.ENUM,
        "flags": Kind.OTHER,
        "profile": Kind.JSON,
        "avatar": Kind.BYTEA,
        "first_name": Kind.TEXT,
        "last_name": Kind.TEXT,
        "full_name": Kind.TEXT,
        "email_lower": Kind.TEXT,
        "email_key": Kind.TEXT,
        "created_at": Kind.TIMESTAMP,
        "updated_at": Kind.TIMESTAMP,
        "age": Kind.INTEGER,
    }
    accounts = schema.table("public.accounts")
    assert [c.name for c in accounts.columns if c.identity] == ["id"]
    assert [c.name for c in accounts.columns if c.generated] == ["full_name", "email_lower"]
    assert [c.name for c in accounts.columns if not c.nullable] == [
        "id",
        "email",
        "status",
        "created_at",
        "updated_at",
    ]
    assert [c.name for c in accounts.columns if c.on_update] == ["updated_at"]
    assert column(schema, "public.accounts.status").enum_labels == ("active", "it's off", "x,y")
    assert column(schema, "public.accounts.email").max_length == 255
    assert column(schema, "public.order_lines.note").max_length is None  # text: a byte limit, not characters


def test_auto_increment_is_an_identity_sequence_and_its_value_is_not_structure(schema: Schema, mysql_engine):
    assert [s for s in schema.sequences if s.name in ("accounts", "audit")] == [
        Sequence(
            "public",
            "accounts",
            column(schema, "public.accounts.id").data_type,
            owned_by="public.accounts.id",
            identity=True,
        ),
        Sequence(
            "public",
            "audit",
            column(schema, "public.audit.id").data_type,
            owned_by="public.audit.id",
            identity=True,
        ),
    ]
    with mysql_engine.connect() as c:
        counter = c.exec_driver_sql(
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME = 'accounts'"
        ).scalar_one()
    assert counter == 1002  # started at 1000, two rows since
    run(mysql_engine, ["INSERT INTO accounts (email) VALUES ('c@example.org')"])
    again = introspect(mysql_engine)
    assert again.digest == schema.digest  # the counter moved; the structure did not


def test_column_texts_on_mariadb(schema: Schema, mariadb):
    accounts = {c.name: c for c in schema.table("public.accounts").columns}
    assert accounts["id"] == Column("id", "bigint(20) unsigned", Kind.INTEGER, nullable=False, identity=True)
    assert accounts["status"] == Column(
        "status",
        "enum('active','it''s off','x,y')",
        Kind.ENUM,
        nullable=False,
        default="'active'",
        enum_labels=("active", "it's off", "x,y"),
    )
    assert accounts["flags"] == Column("flags", "set('a','b','c')", Kind.OTHER, default="'a,b'")
    # MariaDB's JSON is a longtext with a CHECK json_valid(`profile`) of its own: read as json, no CHECK
    assert accounts["profile"] == Column("profile", "json", Kind.JSON)
    assert accounts["avatar"] == Column("avatar", "blob", Kind.BYTEA)
    assert accounts["first_name"] == Column(
        "first_name", "varchar(40)", Kind.TEXT, default="'it''s'", max_length=40
    )
    assert accounts["last_name"] == Column("last_name", "varchar(40)", Kind.TEXT, max_length=40)
    assert accounts["full_name"] == Column(
        "full_name",
        "varchar(81)",
        Kind.TEXT,
        default="concat(`first_name`,' ',`last_name`)",
        generated=True,
        max_length=81,
    )
    assert accounts["email_lower"] == Column(
        "email_lower", "varchar(255)", Kind.TEXT, default="lcase(`email`)", generated=True, max_length=255
    )
    assert accounts["created_at"] == Column(
        "created_at", "timestamp", Kind.TIMESTAMP, nullable=False, default="current_timestamp()"
    )
    assert accounts["updated_at"] == Column(
        "updated_at",
        "timestamp",
        Kind.TIMESTAMP,
        nullable=False,
        default="current_timestamp()",
        on_update="current_timestamp()",
    )
    assert accounts["age"] == Column("age", "int(11)", Kind.INTEGER, default="3")
    assert schema.table("public.order_lines").column("line") == Column(
        "line", "int(11)", Kind.INTEGER, nullable=False
    )


def test_checks(schema: Schema, mariadb):
    assert schema.table("public.accounts").checks == (
        CheckConstraint("age_range", "CHECK (`age` >= 0 and `age` < 200)", ("age",)),
    )
    assert schema.table("public.order_lines").checks == (
        CheckConstraint("CONSTRAINT_1", "CHECK (`line` > 0)", ("line",)),
    )


def test_triggers_and_what_they_set(schema: Schema):
    assert schema.table("public.accounts").triggers == (
        Trigger(
            "accounts_audit",
            language="sql",
            timing="after",
            events=("insert",),
            derives=(),
            writes_elsewhere=True,
        ),
        Trigger(
            "accounts_email_key",
            language="sql",
            timing="before",
            events=("insert",),
            derives=(Derivation("email_key", ("email",)),),
        ),
        Trigger(
            "accounts_touch",
            language="sql",
            timing="before",
            events=("update",),
            derives=(Derivation("email_key", ("email",)),),
        ),
    )
    touch = schema.table("public.accounts").triggers[2]
    assert touch.fires_on_rewrite and not schema.table("public.accounts").triggers[1].fires_on_rewrite
    assert schema.table("public.order_lines").triggers == ()


def test_json_round_trip(schema: Schema):
    assert Schema.from_json(schema.to_json()) == schema


def test_mariadb_sequences_are_listed_with_the_columns_drawing_from_them(mysql_engine: sa.Engine, mariadb):
    run(
        mysql_engine,
        [
            "CREATE SEQUENCE invoice_seq",
            "CREATE TABLE invoices (id BIGINT NOT NULL DEFAULT NEXTVAL(invoice_seq) PRIMARY KEY)",
        ],
    )
    schema = introspect(mysql_engine)
    assert [t.qualified for t in schema.tables] == ["public.invoices"]  # the sequence is no table
    assert schema.sequences == (Sequence("public", "invoice_seq", "bigint", used_by=("public.invoices.id",)),)
    # MariaDB prints the reference qualified by the database; the copy-independent text drops it
    assert column(schema, "public.invoices.id").default == "nextval(`invoice_seq`)"


# --- the registry, read-only sessions, URL parameters --------------------------------------------------


def test_mysql_and_mariadb_urls_find_the_backend():
    backend = backend_for("mysql")
    assert backend is backend_for("mysql+pymysql") is backend_for("mariadb+pymysql") is backend_for("mariadb")
    assert (backend.name, backend.driver) == ("mysql", "pymysql")
    assert "mysql" in engine_names() and "mariadb" not in engine_names()  # an alias, not a second engine
    with pytest.raises(ConfigError, match=r"^Unknown engine 'mysq'\. Did you mean 'mysql'\?$"):
        backend_for("mysq")


def test_capabilities_claim_nothing_mysql_lacks():
    capabilities = backend_for("mysql").capabilities
    assert capabilities.transactional_ddl is False and capabilities.schemas is False
    claimed = [name for name, value in dataclasses.asdict(capabilities).items() if value is True]
    assert claimed == []
    assert capabilities.sequence_kind is SequenceKind.AUTO_INCREMENT
    assert capabilities.trigger_silencing is TriggerSilencing.DROP_AND_RESTORE  # the scrub sets them aside
    assert capabilities.max_identifier_bytes == 64


def test_a_mariadb_url_introspects(mysql_url: str, mariadb):
    engine = sa.create_engine(sa.make_url(mysql_url).set(drivername="mariadb+pymysql"))
    try:
        run(engine, ["CREATE TABLE t (id INT PRIMARY KEY)"])
        assert engine.dialect.name == "mariadb"
        assert [t.qualified for t in introspect(engine).tables] == ["public.t"]
    finally:
        engine.dispose()


def test_read_only_sessions_refuse_writes(mysql_engine: sa.Engine, mysql_url: str):
    run(mysql_engine, ["CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)"])
    production = db.connect_readonly(mysql_url)
    try:
        with production.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1  # reads work
        for statement in ("INSERT INTO t VALUES (2)", "UPDATE t SET id = 3", "CREATE TABLE u (id INT)"):
            with pytest.raises(sa.exc.DBAPIError) as caught, production.begin() as c:
                c.exec_driver_sql(statement)
            assert caught.value.orig.args[0] == 1792, (
                statement
            )  # "Cannot execute statement in a READ ONLY ..."
        autocommit = production.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(sa.exc.DBAPIError) as caught, autocommit.connect() as c:  # autocommitted ones too
            c.exec_driver_sql("DELETE FROM t")
        assert caught.value.orig.args[0] == 1792
    finally:
        production.dispose()
    with mysql_engine.connect() as c:
        assert c.exec_driver_sql("SELECT id FROM t").scalars().all() == [1]
        assert (
            c.exec_driver_sql(
                "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                " AND TABLE_NAME = 'u'"
            ).scalar_one()
            == 0
        )


def test_a_production_url_with_its_own_init_command_is_refused():
    url = sa.make_url("mysql+pymysql://deid@db/shop?init_command=SET+time_zone%3D%27%2B00%3A00%27")
    with pytest.raises(ConfigError, match="may not set init_command"):
        backend_for("mysql").read_only_connect_args(url)


def test_only_harmless_parameters_are_shown():
    url = "mysql+pymysql://deid:s3cret-pw@db/shop?charset=utf8mb4&ssl_ca=/etc/ca.pem&init_command=SET+@k%3D1&ssl_key_password=k3y-pw"
    shown = db.safe_url(url)
    assert "charset=utf8mb4" in shown and "ssl_ca=/etc/ca.pem" in shown
    assert "init_command=***" in shown and "ssl_key_password=***" in shown
    assert "s3cret-pw" not in shown and "k3y-pw" not in shown
    assert "k3y-pw" in db.url_secrets(url)


# --- what the texts mean, without a server -------------------------------------------------------------


def test_defaults_read_alike_on_both_servers():
    # MariaDB prints expressions; MySQL 8 prints a literal's bare value and flags expressions
    assert texts.default("'it''s'", "", Kind.TEXT, True, "shop") == "'it''s'"
    assert texts.default("it's", "", Kind.TEXT, False, "shop") == "'it''s'"
    assert texts.default("NULL", "", Kind.TEXT, True, "shop") is None
    assert texts.default(None, "", Kind.TEXT, False, "shop") is None
    assert texts.default("3", "", Kind.INTEGER, False, "shop") == "3"
    assert (
        texts.default("CURRENT_TIMESTAMP", "DEFAULT_GENERATED", Kind.TIMESTAMP, False, "shop")
        == "CURRENT_TIMESTAMP"
    )
    assert texts.expression("concat(`a`,_utf8mb4\\' \\',`b`)", False, "shop") == "concat(`a`,_utf8mb4' ',`b`)"
    assert texts.on_update("DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)") == "CURRENT_TIMESTAMP(3)"
    assert texts.on_update("auto_increment") is None


def test_enum_labels_and_mariadb_json():
    assert types.labels("enum('a\\\\b','c''d','x,y')") == ("a\\b", "c'd", "x,y")
    assert types.is_mariadb_json("longtext", "doc", "json_valid(`doc`)")
    assert not types.is_mariadb_json("longtext", "doc", "json_valid(`other`)")
    assert not types.is_mariadb_json("text", "doc", "json_valid(`doc`)")


@pytest.mark.parametrize(
    ("body", "derives", "writes"),
    [
        (
            "SET NEW.a = UPPER(NEW.b), NEW.c = concat(NEW.d, ',', OLD.e)",
            (("a", ("B",)), ("c", ("d", "e"))),  # names as the table spells them
            False,
        ),
        ("BEGIN SET @v = NEW.`B`; SET NEW.a = @v; END", (("a", ("B",)),), False),
        ("BEGIN SELECT lower(NEW.b) INTO NEW.a; END", (("a", ("B",)),), False),
        ("SET NEW.a = 'NEW.b -- not a column'", (("a", ()),), False),
        ("BEGIN UPDATE other SET x = NEW.b; END", (), True),
        ("BEGIN CALL fill(NEW.a); END", None, True),  # an OUT parameter may set the row
        (
            "BEGIN DECLARE CONTINUE HANDLER FOR NOT FOUND SET NEW.a = 1; SELECT 1; END",
            None,
            False,
        ),  # set where the reading does not reach: unknown, never "nothing"
    ],
)
def test_trigger_bodies(body, derives, writes):
    found, writes_elsewhere = triggers.analyse(body, ["a", "B", "c", "d", "e"])
    expected = None if derives is None else tuple(Derivation(c, s) for c, s in derives)
    assert (found, writes_elsewhere) == (expected, writes)
