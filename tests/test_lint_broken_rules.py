"""`deid lint` on broken rule files: each fails with file:line, the message and a fix.

Each file in tests/fixtures/rules/broken/ starts with `# expect: LINE | TEXT` lines: lint must exit 1 and
print every TEXT, at `file:LINE:` unless LINE is 0 (problems about the file as a whole).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from deid.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "rules"
SCHEMA = FIXTURES / "shop.schema.json"
BROKEN = sorted((FIXTURES / "broken").glob("*.yaml"))


def expectations(path: Path) -> list[tuple[int, str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")  # some are broken on purpose: not UTF-8
    found = re.findall(r"^# expect: (\d+) \| (.*)$", text, flags=re.M)
    assert found, f"{path} has no '# expect:' line"
    return [(int(line), text) for line, text in found]


def lint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["lint", "--schema", str(SCHEMA), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_rule_file_is_rejected_with_place_and_fix(path, capsys):
    started = time.perf_counter()
    code, _, err = lint(capsys, str(path))
    assert time.perf_counter() - started < 5, "a broken file is refused within seconds"
    assert code == 1, err
    for line, text in expectations(path):
        assert text in err, f"expected {text!r} in:\n{err}"
        if line:
            located = [seg for seg in err.split(f"{path}:{line}: ")[1:] if text in seg.split("\n    fix:")[0]]
            assert located, f"expected {text!r} at {path}:{line}:\n{err}"
    assert "fix: " in err
    assert "Traceback" not in err


def test_good_rule_file_passes(capsys):
    code, out, err = lint(capsys, str(FIXTURES / "good.yaml"))
    assert code == 0, err
    assert "ok (3 tables, 16 columns covered" in out


def test_every_problem_is_reported_in_one_run(capsys, tmp_path):
    rules = tmp_path / "shop.yaml"
    rules.write_text(
        "database: shop\ntables:\n  users:\n    columns:\n      emial: keep\n      bio: shift_date\n"
    )
    code, _, err = lint(capsys, str(rules))
    assert code == 1
    assert f"{rules}:5: column public.users.emial does not exist" in err
    assert f"{rules}:6: public.users.bio (text): shift_date" in err
    assert "public.orders.amount" in err  # and the unclassified columns, all at once


def test_an_unreadable_rule_file_or_policy_is_a_rule_problem(tmp_path, monkeypatch, capsys):
    from tests.test_yamlsrc import deny_reading

    rules = tmp_path / "shop.yaml"
    rules.write_text((FIXTURES / "good.yaml").read_text())
    deny_reading(monkeypatch, rules)
    code, _, err = lint(capsys, str(rules))
    assert code == 1
    assert f"{rules}: cannot read {rules}: permission denied" in err
    assert "Traceback" not in err

    monkeypatch.undo()
    (tmp_path / "policies").mkdir()
    policy = tmp_path / "policies" / "hipaa_limited_data_set.yaml"
    policy.write_text("name: hipaa_limited_data_set\nclasses: {}\n")
    deny_reading(monkeypatch, policy)
    code, _, err = lint(capsys, str(rules))
    assert code == 1
    assert f"{rules}:4: cannot read {policy}: permission denied" in err


def test_a_rule_file_that_is_a_folder_is_a_rule_problem(tmp_path, capsys):
    folder = tmp_path / "shop.yaml"
    folder.mkdir()
    code, _, err = lint(capsys, str(folder))
    assert code == 1
    assert f"{folder}: cannot read {folder}: it is a folder" in err


def test_a_policy_class_with_params_that_are_not_a_mapping_is_a_rule_problem(tmp_path, capsys):
    """Found by tests/test_lint_property.py: `params: [null]` in a policy reached a transformer (exit 70)."""
    rules = tmp_path / "shop.yaml"
    rules.write_text((FIXTURES / "good.yaml").read_text())
    (tmp_path / "policies").mkdir()
    shipped = (ROOT / "rules" / "policies" / "hipaa_limited_data_set.yaml").read_text()
    policy = tmp_path / "policies" / "hipaa_limited_data_set.yaml"
    policy.write_text(shipped.replace("params: {format: hex, length: 32}", "params: [null]", 1))
    assert policy.read_text() != shipped
    code, _, err = lint(capsys, str(rules))
    assert code == 1
    assert "params must be a mapping" in err and f"in {policy}:" in err


# The names owners kept without a reason while lint said nothing (issue 12), and names that are fine kept.
_KEPT_NEEDS_REASON = {
    "public.accounts": (
        "emailaddress phonenumber passwordhash passwordsalt addressline1 nationalidnumber loginid username "
        "contact_name picture"
    ),
    "public.patients": "first last maiden drivers passport",
}
_KEPT_IS_FINE = {"public.genre": "name", "public.orders": "address_id"}


def test_joined_up_and_short_identifier_names_kept_without_a_reason_fail_lint(tmp_path):
    from deid.rules.coverage import check
    from deid.rules.load import load_rules
    from deid.schema import Column, Kind, Schema, Table

    def table(qualified: str, names: str) -> Table:
        schema, name = qualified.split(".")
        kind = {"address_id": (Kind.INTEGER, "integer")}
        columns = [Column(c, *reversed(kind.get(c, (Kind.TEXT, "text")))) for c in names.split()]
        return Table(schema, name, (Column("id", "integer", Kind.INTEGER), *columns), primary_key=("id",))

    tables = {**_KEPT_NEEDS_REASON, **_KEPT_IS_FINE}
    schema = Schema("shop", "postgresql", tuple(table(q, n) for q, n in tables.items()))
    body = "".join(
        f"  {q}:\n    columns:\n      id: keep\n" + "".join(f"      {c}: keep\n" for c in n.split())
        for q, n in tables.items()
    )
    path = tmp_path / "shop.yaml"
    path.write_text(f"version: 1\ndatabase: shop\ntables:\n{body}")
    refused = {p.message.split(" ")[0] for p in check(load_rules(path), schema)}
    expected = {f"{q}.{c}" for q, n in _KEPT_NEEDS_REASON.items() for c in n.split()}
    assert refused == expected
