"""json on MySQL/MariaDB: the scrub of a JSON column, a text column and a varchar(n) column holding the
documents of tests/json_corpus.py gives, byte for byte, the text the SQL form gives on PostgreSQL for the
same documents and salt (the JSON column against a json one, as both keep the text they were given)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.errors import TerminalError
from deid.rules.load import load_rules
from deid.schema import Kind
from deid.steps.scrub import scrub_database
from deid.vector import jsondoc
from tests.json_corpus import EDGES, INVALID, PATHS, random_documents
from tests.mysql_server import mysql_engine, mysql_server, mysql_url  # noqa: F401
from tests.test_transformers_pg import SALT, make_table, prepared, transform

DOCUMENTS = (*EDGES, *random_documents(200, seed=7))
# (column, MySQL type, PostgreSQL type, kind, params)
COLUMNS = [
    ("doc", "json", "json", Kind.JSON, {"paths": PATHS}),
    ("body", "text", "text", Kind.TEXT, {"paths": PATHS}),
    ("short", "varchar(90)", "varchar(90)", Kind.TEXT, {"paths": PATHS, "invalid": "empty"}),
]


def _documents(engine: sa.Engine) -> list[str]:
    """The corpus's documents both servers' document types hold (MariaDB's JSON_VALID, and the SQL form's
    type), capped in length for MariaDB's packet."""
    kept = []
    with engine.connect() as c:
        for d in DOCUMENTS:
            try:
                jsondoc.parse(d)
            except jsondoc.Invalid:
                continue
            if c.exec_driver_sql("SELECT JSON_VALID(%s)", (d,)).scalar():
                kept.append(d)
    return kept


def _rules() -> str:
    lines = ["version: 1", "database: docs", "tables:", "  public.docs:", "    columns:", "      id: keep"]
    lines += [f"      {c}: {json.dumps({'transformer': 'json', 'params': p})}" for c, _, _, _, p in COLUMNS]
    return "\n".join(lines) + "\n"


def _mysql_scrub(engine: sa.Engine, rows: list[tuple], tmp_path) -> list[tuple]:
    listed = ", ".join(f"`{c}` {t}" for c, t, *_ in COLUMNS)
    with engine.begin() as c:
        c.exec_driver_sql(f"CREATE TABLE docs (id int PRIMARY KEY, {listed})")
        c.execute(sa.text("INSERT INTO docs VALUES (:i, :d, :b, :s)"),
                  [{"i": i, "d": d, "b": b, "s": s} for i, (d, b, s) in enumerate(rows, 1)])  # fmt: skip
    path = tmp_path / "docs.yaml"
    path.write_text(_rules())
    with engine.connect() as c:
        schema = backend_for("mysql").introspect(c, "docs")
    results = scrub_database(engine, planning.build_plan(load_rules(path), schema), SALT)
    # updated by key or rebuilt (narrow rows: rebuild.faster), the same values
    assert [(r.table, r.rows) for r in results] == [("public.docs", len(rows))]
    assert results[0].action in ("streamed", "rebuilt")
    with engine.connect() as c:
        return [tuple(r) for r in c.exec_driver_sql("SELECT doc, body, short FROM docs ORDER BY id")]


def test_json_text_and_varchar_columns_give_the_sql_forms_text(mysql_engine, pg_url, tmp_path):  # noqa: F811
    valid = _documents(mysql_engine)
    texts = [*DOCUMENTS, *(i for i in INVALID if len(i) < 1000)]
    shorts = [t for t in texts if len(t) <= 90]  # some outgrow varchar(90) once scrubbed
    count = max(len(valid), len(texts))
    rows = [(valid[i % len(valid)], texts[i % len(texts)], shorts[i % len(shorts)]) for i in range(count)]
    rows += [(None, None, None)]
    scrubbed = _mysql_scrub(mysql_engine, rows, tmp_path)

    pg = prepared(pg_url)
    try:
        for j, (column, _, pg_type, kind, params) in enumerate(COLUMNS):
            make_table(pg, column, pg_type, [r[j] for r in rows])
            expected = transform(pg, column, pg_type, kind, "json", params, salt=SALT)
            got = [r[j] for r in scrubbed]
            differ = [(i, rows[i][j], expected[i], got[i]) for i in range(len(rows)) if got[i] != expected[i]]
            assert not differ, f"{column}: {len(differ)} of {len(rows)} differ; first: {differ[:2]}"
            assert sum(g != r[j] for g, r in zip(got, rows, strict=True)) > len(rows) // 2, column
    finally:
        pg.dispose()
    assert len(valid) > 150 and {r[1] for r in scrubbed} >= {None}  # invalid text made NULL


def test_a_json_column_holding_what_the_sql_form_cannot_read_fails_naming_the_column(
    mysql_engine,  # noqa: F811
    tmp_path,
):
    """MariaDB's JSON_VALID takes a NUL escape; the SQL form's document type refuses it, and so does the
    scrub, naming table and column and never the value."""
    first = '{"contact": {"email": "a@prod.org"}}'
    rows = [(first, None, None), ('{"k": "\\u0000 p51@prod.org"}', None, None)]
    with pytest.raises(TerminalError) as refused:
        _mysql_scrub(mysql_engine, rows, tmp_path)
    assert "column doc " in str(refused.value) and "prod.org" not in str(refused.value)
    with mysql_engine.connect() as c:
        assert c.exec_driver_sql("SELECT doc FROM docs WHERE id = 1").scalar() == first, "nothing written"
