"""The last gate before publish: every column of the copy accounted for, nothing changed since validation."""

from __future__ import annotations

from deid.plan import build_plan
from deid.rules.load import load_rules
from deid.schema import Column, Kind, Schema, Table
from deid.steps.gate import unaccounted

ID = Column("id", "integer", Kind.INTEGER, nullable=False)
EMAIL = Column("email", "text", Kind.TEXT)
PHONE = Column("phone", "text", Kind.TEXT)
NOTE = Column("note", "text", Kind.TEXT)


def schema(*tables: Table) -> Schema:
    return Schema("shop", "postgresql", tables)


def rules(tmp_path, text: str):
    path = tmp_path / "shop.yaml"
    path.write_text("version: 1\ndatabase: shop\ntables:\n" + text)
    return load_rules(path)


def test_every_column_is_accounted_for_or_named(tmp_path):
    cloned = schema(Table("public", "people", (ID, EMAIL)))
    ruled = rules(tmp_path, "  public.people:\n    columns: {id: keep, email: {class: email}}\n")
    applied = build_plan(ruled, cloned)
    assert unaccounted(applied, cloned, cloned, ruled) == []
    # a column that appeared after the clone, with no rule: named (a migration's is checked by migrate, but
    # the gate trusts no step: it looks at the copy as it is)
    grown = schema(Table("public", "people", (ID, EMAIL, PHONE)), Table("public", "notes", (ID, NOTE)))
    assert unaccounted(applied, cloned, grown, ruled) == [
        "public.notes.id",
        "public.notes.note",
        "public.people.phone",
    ]
    # with rules for them (what the migrate step re-checked), they are accounted for
    more = rules(
        tmp_path,
        "  public.people:\n    columns: {id: keep, email: {class: email}, phone: {class: phone}}\n"
        "  public.notes:\n    columns: {id: keep, note: 'null'}\n",
    )
    assert unaccounted(applied, cloned, grown, more) == []


def test_deids_own_objects_and_bookkeeping(tmp_path):
    cloned = schema(Table("public", "people", (ID,)))
    ruled = rules(tmp_path, "  public.people:\n    columns: {id: keep}\n")
    applied = build_plan(ruled, cloned)
    leftover = Table("_deid", "dictionary", (Column("value", "text", Kind.TEXT),))
    applied_table = Table("_deid_migrations", "applied", (Column("version", "bigint", Kind.INTEGER),))
    found = unaccounted(applied, cloned, schema(*cloned.tables, leftover, applied_table), ruled)
    assert found == ["_deid.dictionary.value"]  # the scrub's objects must be gone; bookkeeping stays


def test_a_copy_changed_after_validation_is_not_published(refresh):
    refresh.setup(
        "CREATE TABLE people (id int PRIMARY KEY, email text);"
        "INSERT INTO people SELECT i, 'p' || i || '@real-mail.example.org' FROM generate_series(1, 20) i;",
        "  public.people:\n    columns: {id: keep, email: {class: email}}\n",
    )
    for step in ("snapshot", "scrub", "rebase", "migrate", "validate"):
        assert refresh.run("2026-11-28", "--only", step).code == 0, step
    refresh.sql(refresh.work("2026-11-28"), "ALTER TABLE people ADD COLUMN ssn text")  # behind deid's back
    refused = refresh.run("2026-11-28", "--only", "publish")
    assert refused.code == 1 and "changed after it was validated" in refused.err
    assert refresh.staging not in refresh.copies()


def test_a_scrub_table_left_in_a_mysql_copy_is_named(tmp_path):
    """Each engine names the tables its scrub makes (Backend.is_scrub_table): on MySQL they live beside the
    user's tables, so only their names tell them apart."""
    cloned = Schema("shop", "mysql", (Table("public", "people", (ID,)),))
    ruled = rules(tmp_path, "  public.people:\n    columns: {id: keep}\n")
    applied = build_plan(ruled, cloned)
    ledger = Table("public", "_deid_scrubbed", (Column("table_key", "varchar(255)", Kind.TEXT),))
    copy = Schema("shop", "mysql", (*cloned.tables, ledger))
    assert unaccounted(applied, cloned, copy, ruled) == ["public._deid_scrubbed.table_key"]
