"""Every paste block lint prints is YAML that, merged key by key into the file it was printed for, makes that
file lint clean: new tables, existing tables missing columns, and names YAML would misread unquoted."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml

from deid.backends import backend_for
from deid.errors import RuleProblems
from deid.rules import coverage
from deid.rules.load import load_rules

SQL = """
CREATE TABLE person (
    id integer PRIMARY KEY, emailaddress text, phonenumber text, passwordhash varchar(36),
    "on" text, "yes" integer, "a:b" text, "#x" text, "  lead" text, nationalidnumber varchar(11)
);
CREATE TABLE address (id integer PRIMARY KEY, addressline1 text, zip varchar(10));
CREATE TABLE person_address (
    person_id integer REFERENCES person, address_id integer REFERENCES address, created_at timestamptz
);
CREATE TABLE category (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE "odd table" ("null" text, "- dash" text, "key: value" text);
"""

SCENARIOS = {
    "no tables yet": "  public.category:\n    columns:\n      id: keep\n",
    "existing tables missing columns": (
        "  public.person:\n    columns:\n      id: keep\n      emailaddress: {class: email}\n"
        '  public.person_address:\n    columns:\n      person_id: keep\n  "public.odd table":\n'
        "    columns:\n      'null': keep\n"
    ),
    "existing address with a hashed key": (
        "  public.address:\n    columns:\n      id: {transformer: hash, params: {format: digits, pattern: "
        "'#########'}}\n"
    ),
}


@pytest.fixture(scope="module")
def schema(postgres):
    name = postgres.create_database("deid_paste")
    engine = sa.create_engine(postgres.url(name))
    try:
        with engine.begin() as c:
            c.exec_driver_sql(SQL)
        with engine.connect() as c:
            yield backend_for("postgresql").introspect(c, "shop")
    finally:
        engine.dispose()
        postgres.drop_database(name)


def _merge(into: dict, block: dict) -> None:
    for key, value in block.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            assert key not in into, f"the block redefines {key!r}"
            into[key] = value


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_paste_block_merges_into_a_file_that_lints_clean(schema, tmp_path, scenario):
    path = tmp_path / "shop.yaml"
    path.write_text("version: 1\ndatabase: shop\ntables:\n" + SCENARIOS[scenario])
    rules = load_rules(path)
    with pytest.raises(RuleProblems) as raised:
        coverage.check_or_raise(rules, schema)
    block = raised.value.appendix
    parsed = yaml.safe_load(block)
    assert list(parsed) == ["tables"]
    existing = [line for line in block.splitlines() if "existing entry" in line]
    missing = {t.qualified for t, _ in coverage.missing_columns(rules, schema)}
    assert len(existing) == len(missing & {t.name for t in rules.tables})
    data = yaml.safe_load(path.read_text())
    _merge(data, parsed)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    merged = load_rules(path)
    assert coverage.check(merged, schema) == []
    columns = {c.name for t in merged.tables for c in t.columns}
    assert {"on", "yes", "a:b", "#x", "  lead", "null", "- dash", "key: value"} <= columns
    person = merged.table("public.person")
    assert person.column("emailaddress").identifier_class == "email"
    assert person.column("phonenumber").identifier_class == "phone"
    assert person.column("passwordhash").transformer == "hash"  # fits varchar(36), unlike the class's 64
    assert merged.table("public.category").column("name").transformer == "keep"
    key = merged.table("public.person_address").column("address_id")
    assert (key.transformer, dict(key.params)) == (
        merged.table("public.address").column("id").transformer,
        dict(merged.table("public.address").column("id").params),
    )  # a referencing column gets the rule of the key it references, not {class: postal_address}


def test_the_suite_wide_audit_catches_a_block_that_does_not_merge_clean(schema, tmp_path, monkeypatch):
    """tests/paste_audit.py checks every block the suite prints; here it is shown a wrong one."""
    from tests.paste_audit import PasteAudit

    path = tmp_path / "shop.yaml"
    path.write_text("version: 1\ndatabase: shop\ntables:\n" + SCENARIOS["no tables yet"])
    wrong = "tables:\n  public.category:\n    columns:\n      nmae: keep\n"
    monkeypatch.setattr(coverage, "paste_block", lambda missing, rules: wrong)
    audit = PasteAudit()
    audit.install(monkeypatch)
    with pytest.raises(RuleProblems):
        coverage.check_or_raise(load_rules(path), schema)
    assert audit.audited == 1
    (failure,) = audit.failures
    assert "column public.category.nmae does not exist" in failure
    assert "no rule yet for public.category.name" in failure
