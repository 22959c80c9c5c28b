"""The run record's model: every record deid closes fits it, its JSON Schema is generated from it and
committed (rules/schemas/record.schema.json), and a record that does not fit is refused naming the
field."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from deid.errors import DeidError
from deid.records.record import RunRecord, finish_record, start_record
from deid.rules import jsonschema as schemas
from tests.test_records_store import make_record

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "rules" / "schemas" / "record.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text()))


def test_committed_schema_is_up_to_date_and_valid():
    assert COMMITTED.read_text() == schemas.render_record(), "rules/schemas/record.schema.json is stale"
    jsonschema.Draft202012Validator.check_schema(json.loads(COMMITTED.read_text()))


@pytest.mark.parametrize("outcome", ["published", "kept", "failed", "step"])
def test_a_closed_record_fits_the_model_and_the_schema(outcome):
    record = start_record("learners", dt.date(2026, 11, 28), ROOT / "rules" / "learners.yaml", "cli")
    record["steps"] = {"snapshot": {"start": 0.0, "seconds": 1.5, "tasks": 1}}
    record["tables"] = {"public.users": {"rows": 3, "seconds": 0.1, "action": "rewritten", "sessions": 1}}
    error = DeidError("public.users.email: no rule") if outcome == "failed" else None
    finish_record(record, outcome, "scrub" if error else None, error)
    parsed = RunRecord.model_validate(record)
    assert parsed.outcome == outcome and parsed.rules.sha256 and parsed.logical_date == dt.date(2026, 11, 28)
    assert not [e.message for e in validator().iter_errors(json.loads(json.dumps(record)))]
    assert parsed.tables["public.users"].model_extra == {"sessions": 1}  # a step's own facts are kept


def test_the_store_s_test_records_fit_too():
    for outcome in ("published", "failed"):
        record = make_record(outcome=outcome, failed_step="validate" if outcome == "failed" else None)
        RunRecord.model_validate(record)
        assert not list(validator().iter_errors(record))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "done"}, "outcome"),
        ({"via": "cron"}, "via"),
        ({"tables": {"t": {"rows": -1, "action": "rewritten"}}}, "tables.t.rows"),
        ({"steps": {"scrub": {"seconds": 1.0}}}, "steps.scrub.start"),
    ],
)
def test_a_record_that_does_not_fit_names_the_field(change, field):
    record = {**make_record(), **change}
    with pytest.raises(ValidationError) as raised:
        RunRecord.model_validate(record)
    assert field in {".".join(map(str, e["loc"])) for e in raised.value.errors()}
    assert list(validator().iter_errors(json.loads(json.dumps(record))))
    if "outcome" in change:
        with pytest.raises(ValidationError):
            finish_record(make_record(), change["outcome"])


def test_a_record_read_back_that_does_not_fit_is_skipped_naming_the_file_and_field(tmp_path, caplog):
    """`deid status`, `history` and `report` read records back through the model: a record edited by hand
    (or another tool's JSON in the folder) is left out with a warning, never shown as a run."""
    from deid.records.store import read_records

    folder = tmp_path / "learners"
    folder.mkdir()
    good = make_record(outcome="published")
    secret = "hand-edited-value-4242"
    bad = {**make_record(outcome="failed"), "started_at": "2030-01-01T00:00:00+00:00", "via": secret}
    (folder / "good.json").write_text(json.dumps(good))
    (folder / "bad.json").write_text(json.dumps(bad))
    with caplog.at_level("WARNING", logger="deid"):
        records = read_records(tmp_path, "learners")
    assert [r["outcome"] for r in records] == ["published"]
    warning = caplog.text
    assert "bad.json" in warning and "via" in warning and "record.schema.json" in warning
    assert secret not in warning
