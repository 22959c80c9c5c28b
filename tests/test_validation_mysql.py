"""The validation gate on MariaDB/MySQL (deid.backends.mysql.validation): a correct copy passes, and a copy
that leaks a production value, breaks uniqueness, loses a row, orphans a key, skips the rebase, changes a
static row or keeps an identifier in free text fails, naming the place and never a production value, as
tests/test_expect_gate.py shows for PostgreSQL.

The working copy is made by hand (CREATE TABLE ... LIKE, INSERT ... SELECT, then UPDATEs that do what the
rules' transformers promise, and the counters moved as the rebase would), so these tests hold the checks,
not the scrub, to account.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid import plan as planning
from deid.backends import backend_for
from deid.errors import TerminalError
from deid.expect import raise_on_failure, validate_with_expectations
from deid.expect.digests import new_key
from deid.expect.gx_runner import run_specs
from deid.expect.spec import Spec
from deid.rules.load import load_rules
from deid.steps.validate import validate_copy
from tests.mysql_server import MysqlServer, mysql_server  # noqa: F401  (a fixture)

_quote = backend_for("mysql").quote_identifier
LEARNERS = 60
STATIC = 3  # learners 1-3 are QA accounts: kept as they are
HIGH_WATER = {"learners": LEARNERS, "courses": LEARNERS}
OFFSET = 1_000_000
FIRSTS = ["Quentin", "Ysolde", "Barnaby", "Octavia", "Ignatius", "Perpetua"]
LASTS = ["Zabriskie", "Quarrington", "Wetherspoon", "Abernethy", "Vandersloot"]

SCHEMA = [
    "CREATE TABLE learners (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE, "
    "first_name VARCHAR(40), last_name VARCHAR(40), ssn VARCHAR(11), born DATE, notes TEXT, "
    "is_test TINYINT(1) NOT NULL DEFAULT 0)",
    "CREATE TABLE courses (id INT AUTO_INCREMENT PRIMARY KEY, learner_id INT NOT NULL, "
    "title VARCHAR(200) NOT NULL, FOREIGN KEY (learner_id) REFERENCES learners (id))",
]

RULES = """version: 1
database: school
tables:
  public.learners:
    keep_rows_where: is_test
    columns:
      id: keep
      email: {transformer: hash, params: {format: email}}
      first_name: {transformer: fake.first_name}
      last_name: {transformer: fake.last_name}
      ssn: {transformer: hash, params: {format: digits}}
      born: {transformer: shift_date, params: {days: 30}}
      notes: keep
      is_test: keep
  public.courses:
    columns:
      id: keep
      learner_id: keep
      title: keep
"""

# What the rules' transformers do, by hand: hashed emails and SSNs (outside production's), dictionary names,
# birth dates moved by 1 to 30 days; the static rows (is_test) untouched.
SCRUB = [
    "UPDATE learners SET email = CONCAT(LEFT(SHA2(CONCAT('s', email), 256), 32), '@example.com'), "
    "first_name = ELT(1 + MOD(id, 5), 'Amy', 'Molly', 'Donald', 'Christopher', 'Kristin'), "
    "last_name = ELT(1 + MOD(id, 5), 'Woodard', 'Monroe', 'Simon', 'Schmidt', 'Fernandez'), "
    "ssn = CONCAT(LPAD(700 + MOD(id, 99), 3, '0'), '-', LPAD(MOD(id, 97) + 1, 2, '0'), '-', "
    "LPAD(id * 7, 4, '0')), "
    "born = DATE_ADD(born, INTERVAL 1 + MOD(id, 30) DAY) WHERE NOT is_test",
]


def _learner(i: int) -> dict:
    test = i <= STATIC
    return {
        "id": i,
        "email": f"qa+{i}@test.school.example" if test else f"{FIRSTS[i % 6].lower()}.{i}@mail.example.org",
        "first_name": FIRSTS[i % 6],
        "last_name": LASTS[i % 5],
        "ssn": f"{100 + i:03d}-{10 + i:02d}-{1000 + i:04d}",
        "born": f"19{50 + i % 40}-0{1 + i % 9}-1{i % 9}",
        "notes": "prefers evening classes" if i % 2 else "moved from the waiting list",
        "is_test": int(test),
    }


class School:
    """A production database on the server, its schema and plan, and working copies made from it."""

    def __init__(self, server: MysqlServer, folder: Path):
        self.server = server
        self.prod_name = server.create_database("deid_val_prod")
        self.prod = sa.create_engine(server.url(self.prod_name))
        with self.prod.begin() as c:
            for statement in SCHEMA:
                c.exec_driver_sql(statement)
            c.execute(
                sa.text(
                    "INSERT INTO learners VALUES (:id, :email, :first_name, :last_name, :ssn, :born, :notes, "
                    ":is_test)"
                ),
                [_learner(i) for i in range(1, LEARNERS + 1)],
            )
            c.execute(
                sa.text("INSERT INTO courses VALUES (:id, :id, :title)"),
                [{"id": i, "title": f"Course {i}: ceramics"} for i in range(1, LEARNERS + 1)],
            )
        with self.prod.connect() as c:
            self.schema = backend_for("mysql").introspect(c, "school")
        path = folder / "school.yaml"
        path.write_text(RULES)
        self.plan = planning.build_plan(load_rules(path), self.schema)
        self.copies: list[str] = []

    def working_copy(self, *breakage: str, **params) -> sa.Engine:
        """A correct scrubbed and rebased copy, then `breakage` (statements run on it, with `params`)."""
        name = self.server.create_database("deid_val_work")
        self.copies.append(name)
        work = sa.create_engine(self.server.url(name))
        with work.begin() as c:
            for table in ("learners", "courses"):
                c.exec_driver_sql(
                    f"CREATE TABLE {_quote(table)} LIKE {_quote(self.prod_name)}.{_quote(table)}"
                )
                c.exec_driver_sql(
                    f"INSERT INTO {_quote(table)} SELECT * FROM {_quote(self.prod_name)}.{_quote(table)}"
                )
            for statement in SCRUB:
                c.exec_driver_sql(statement)
            for table, high_water in HIGH_WATER.items():
                c.exec_driver_sql(f"ALTER TABLE {_quote(table)} AUTO_INCREMENT = {high_water + OFFSET}")
            for statement in breakage:
                c.execute(sa.text(statement), params)
        return work

    @property
    def offsets(self) -> dict:
        return {f"public.{t}": {"high_water": h, "offset": OFFSET} for t, h in HIGH_WATER.items()}

    def validate(self, work: sa.Engine, plan=None):
        return validate_with_expectations(self.prod, work, plan or self.plan, self.schema, self.offsets)

    def production_values(self) -> set[str]:
        with self.prod.connect() as c:
            rows = c.exec_driver_sql(
                "SELECT email, first_name, last_name, ssn, CAST(born AS CHAR) FROM learners"
            )
            return {v for row in rows for v in row if v and len(v) >= 6}

    def close(self) -> None:
        self.prod.dispose()
        for name in [*self.copies, self.prod_name]:
            self.server.drop_database(name)


@pytest.fixture(scope="module")
def school(mysql_server: MysqlServer, tmp_path_factory):  # noqa: F811
    made = School(mysql_server, tmp_path_factory.mktemp("rules"))
    yield made
    made.close()


def failed(report) -> set[tuple[str, str, str | None]]:
    return {(o.expectation, o.table, o.column) for o in report.failed}


def failure_message(report) -> str:
    with pytest.raises(TerminalError) as caught:
        raise_on_failure(report)
    return str(caught.value)


def assert_no_values(message: str, school: School, *also: str) -> None:
    leaked = [v for v in school.production_values() | set(also) if v in message]
    assert not leaked, "the message quotes production values"


def test_a_correct_copy_passes_every_check(school):
    work = school.working_copy()
    report = school.validate(work)
    checks = validate_copy(school.prod, work, school.plan, school.schema)
    work.dispose()
    assert report.ok, "\n".join(str(o) for o in report.failed)
    assert {o.expectation for o in report.outcomes} == {
        "row_count_unchanged",
        "values_match_transformer_shape",
        "unique_values",
        "static_rows_identical",
        "static_rows_within_limit",
        "foreign_key_without_orphans",
        "sequence_above_production",
        "kept_text_without_pii",
        "value_differs_from_production",
        "value_not_found_in_production",
        "value_within_promised_window",
        "kept_text_without_production_identifiers",
    }
    places = {(o.expectation, o.place) for o in report.outcomes}
    assert ("values_match_transformer_shape", "public.learners.email") in places
    assert ("unique_values", "public.learners.email") in places
    assert ("value_within_promised_window", "public.learners.born") in places
    assert ("kept_text_without_pii", "public.courses.title") in places
    assert ("sequence_above_production", "public.learners") in places
    window = next(o for o in report.outcomes if o.expectation == "value_within_promised_window")
    assert window.checked == LEARNERS - STATIC  # every row, matched by key (static rows left out)
    assert checks and all(c.ok for c in checks), [str(c) for c in checks if not c.ok]


def test_a_production_value_left_in_the_copy_is_caught(school):
    """ssn left as production has it: the shape still fits (###-##-####); the comparisons see it."""
    work = school.working_copy(
        f"UPDATE learners AS w JOIN {_quote(school.prod_name)}.learners AS p ON p.id = w.id SET w.ssn = p.ssn"
    )
    report = school.validate(work)
    checks = validate_copy(school.prod, work, school.plan, school.schema)
    work.dispose()
    assert failed(report) == {
        ("value_differs_from_production", "public.learners", "ssn"),
        ("value_not_found_in_production", "public.learners", "ssn"),
    }
    same = next(o for o in report.failed if o.expectation == "value_differs_from_production")
    assert same.unexpected == same.checked == LEARNERS - STATIC
    assert [c.subject for c in checks if not c.ok] == ["public.learners.ssn"]
    message = failure_message(report)
    assert "value_differs_from_production public.learners.ssn" in message
    assert_no_values(message, school)


def test_a_production_email_left_in_a_scrubbed_column_breaks_its_shape(school):
    work = school.working_copy(
        f"UPDATE learners AS w JOIN {_quote(school.prod_name)}.learners AS p ON p.id = w.id "
        "SET w.email = p.email WHERE w.id = 10"
    )
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {
        ("values_match_transformer_shape", "public.learners", "email"),
        ("value_differs_from_production", "public.learners", "email"),
        ("value_not_found_in_production", "public.learners", "email"),
    }
    assert_no_values(failure_message(report), school)


def test_an_upper_cased_fake_email_breaks_its_shape_case_for_case(school):
    """deid's shape scan reads the value's text under the binary collation: GX's regex built-in would match
    under the column's own (MariaDB's default ignores case: [a-z] would pass upper case), so it is not used
    on MySQL/MariaDB."""
    work = school.working_copy("UPDATE learners SET email = UPPER(email) WHERE id = 10")
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {("values_match_transformer_shape", "public.learners", "email")}
    (shape,) = report.failed
    assert shape.unexpected == 1
    types = {r["expectation_config"]["type"] for suite in report.gx_results for r in suite["results"]}
    assert "expect_column_values_to_match_regex" not in types


def test_a_duplicated_unique_value_is_caught(school):
    work = school.working_copy(
        "ALTER TABLE learners DROP INDEX email",  # the copy's index would refuse the duplicate
        "UPDATE learners AS a JOIN learners AS b ON b.id = 11 SET a.email = b.email WHERE a.id = 12",
    )
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {("unique_values", "public.learners", "email")}
    # GX counts the rows whose value another row has: both of them
    assert "unique_values public.learners.email: 2 unexpected of" in failure_message(report)


def test_a_lost_row_is_caught(school):
    work = school.working_copy("DELETE FROM courses WHERE id = 7")
    report = school.validate(work)
    checks = validate_copy(school.prod, work, school.plan, school.schema)
    work.dispose()
    assert failed(report) == {("row_count_unchanged", "public.courses", None)}
    assert "row_count_unchanged public.courses: 1 unexpected" in failure_message(report)
    assert [c.subject for c in checks if not c.ok] == ["public.courses"]


def test_an_orphaned_foreign_key_is_caught(school):
    work = school.working_copy("UPDATE courses SET learner_id = 999999 WHERE id = 3")
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {("foreign_key_without_orphans", "public.courses", None)}
    assert "(learner_id) -> public.learners" in failure_message(report)


def test_a_counter_not_rebased_is_caught(school):
    work = school.working_copy(f"ALTER TABLE learners AUTO_INCREMENT = {LEARNERS + 1}")
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {("sequence_above_production", "public.learners", None)}


def test_offsets_given_as_numbers_read_production_counters(school):
    work = school.working_copy()
    plain = {name: OFFSET for name in school.offsets}
    report = validate_with_expectations(school.prod, work, school.plan, school.schema, plain)
    work.dispose()
    assert report.ok, "\n".join(str(o) for o in report.failed)
    assert any(f"high water {LEARNERS}," in o.detail for o in report.outcomes if o.table == "public.learners")


def test_a_changed_static_row_and_a_date_outside_its_window_are_caught(school):
    work = school.working_copy(
        "UPDATE learners SET notes = 'edited' WHERE id = 2",
        "UPDATE learners SET born = DATE_ADD(born, INTERVAL 60 DAY) WHERE id = 30",
    )
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {
        ("static_rows_identical", "public.learners", None),
        ("value_within_promised_window", "public.learners", "born"),
    }


def test_an_email_in_kept_free_text_is_caught(school):
    """A production address written into a kept column: the PII scan sees an email, and the comparison
    with production's identifiers sees that it is one of theirs."""
    email = _learner(20)["email"]
    work = school.working_copy(
        "UPDATE learners SET notes = CONCAT(notes, ' (write to ', :e, ')') WHERE id = 40", e=email
    )
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {
        ("kept_text_without_pii", "public.learners", "notes"),
        ("kept_text_without_production_identifiers", "public.learners", "notes"),
    }
    message = failure_message(report)
    assert "email: 1 rows" in message
    assert_no_values(message, school, email)


def test_a_real_ssn_and_a_card_number_in_kept_free_text_are_caught(school):
    ssn = _learner(21)["ssn"]
    work = school.working_copy(
        "UPDATE courses SET title = CONCAT(title, ' alumni id ', :ssn) WHERE id = 5",
        "UPDATE courses SET title = CONCAT(title, ' paid with 4242 4242 4242 4242') WHERE id = 6",
        "UPDATE courses SET title = CONCAT(title, ' ref 4242 4242 4242 4241, key 4d2c7b1e9f0a3b5c6d7e') "
        "WHERE id = 8",
        ssn=ssn,
    )
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {("kept_text_without_pii", "public.courses", "title")}
    message = failure_message(report)
    assert "ssn: 1 rows" in message and "card_number: 1 rows" in message
    assert_no_values(message, school, ssn)


def test_a_production_name_in_kept_free_text_is_caught(school):
    """No PII pattern matches a name: only the comparison with production's identifiers finds it."""
    learner = _learner(25)
    name = f"{learner['first_name']} {learner['last_name']}"
    work = school.working_copy(
        "UPDATE courses SET title = CONCAT(title, ', taught with ', :n) WHERE id = 9", n=name
    )
    report = school.validate(work)
    work.dispose()
    assert failed(report) == {("kept_text_without_production_identifiers", "public.courses", "title")}
    assert "public.courses.title: 1 unexpected" in failure_message(report)


def test_keyed_digests_are_sha256_of_key_and_text_on_the_server(school):
    """The digests both databases compute: sha256(key || the value's UTF-8 text), the key a bound value."""
    from deid.backends.mysql.validation.names import key_params, keyed

    key = new_key()
    with school.prod.connect() as c:
        digest = c.execute(sa.text(f"SELECT {keyed(':v')}"), key_params(key) | {"v": "Zoë 東京"}).scalar_one()
    assert digest == hashlib.sha256(key + "Zoë 東京".encode()).hexdigest()


def test_an_expectation_gx_cannot_evaluate_fails_without_quoting_the_error(school):
    broken = Spec(
        "broken", "public.t", (None,), "SELECT CAST(NULL AS CHAR) AS column_name, no_such AS unexpected"
    )
    failing = Spec("failing", "public.t", ("b",), "SELECT 'b' AS column_name, 3 AS unexpected, 10 AS checked")
    outcomes = {(o.expectation, o.column): o for o in run_specs(school.prod, "school", [broken, failing])}
    assert not outcomes[("broken", None)].ok and outcomes[("broken", None)].unexpected is None
    assert "no_such" not in str(outcomes[("broken", None)])
    assert (outcomes[("failing", "b")].unexpected, outcomes[("failing", "b")].checked) == (3, 10)
