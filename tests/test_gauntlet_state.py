"""The gauntlet, part 1: a copy carries its own state, and its plan comes from the copy.

Each test reproduces a case of the third-party trial that published production values with exit 0 and
validation green (issue "No path publishes a production value"), on every configured PostgreSQL server.
"""

from __future__ import annotations

D1, D2 = "2026-11-27", "2026-11-28"

PEOPLE = """
CREATE TABLE people (id serial PRIMARY KEY, email text NOT NULL, secret_code text);
INSERT INTO people (email, secret_code)
SELECT 'person' || i || '@real-mail.example.org', 'CODE-' || (100000 + i) FROM generate_series(1, 40) AS i;
"""
PEOPLE_RULES = """  public.people:
    columns:
      id: keep
      email: {class: email}
      secret_code: {transformer: hash}
"""


def production_values(refresh, column: str) -> set[str]:
    return {v for (v,) in refresh.rows(refresh.production, f"SELECT {column} FROM people")}


def test_only_publish_refuses_a_raw_clone(refresh):
    """Case 1: `--only snapshot` then `--only publish` published the raw clone. Every step now checks the
    copy's stamps; publish takes only a copy whose last finished step is validate."""
    refresh.setup(PEOPLE, PEOPLE_RULES)
    assert refresh.run(D1, "--only", "snapshot").code == 0
    for step in ("publish", "validate", "migrate", "rebase"):
        refused = refresh.run(D1, "--only", step)
        assert refused.code == 1, refused.err
        assert f"is not ready for {step}: the scrub step has not finished on it" in refused.err
    assert refresh.state(refresh.work(D1)).done == ("snapshot",)
    assert refresh.staging not in refresh.copies()  # nothing published
    # the steps in order make it publishable; a step run twice out of order is refused again
    for step in ("scrub", "rebase", "migrate", "validate"):
        assert refresh.run(D1, "--only", step).code == 0, step
    again = refresh.run(D1, "--only", "scrub")
    assert again.code == 1 and "is scrubbed already" in again.err
    assert refresh.run(D1, "--only", "publish").code == 0
    published = {v for (v,) in refresh.rows(refresh.staging, "SELECT email FROM people")}
    assert published and not published & production_values(refresh, "email")


def test_a_failed_migrate_recheck_leaves_a_copy_no_step_takes(refresh):
    """Case 1, second form: after `--only migrate` failed its coverage re-check (a migration added a column
    without a rule), `--only validate` and `--only publish` published the copy anyway."""
    refresh.setup(
        PEOPLE, PEOPLE_RULES, migrations={"V1__phone.sql": "ALTER TABLE people ADD COLUMN phone text;"}
    )
    for step in ("snapshot", "scrub", "rebase"):
        assert refresh.run(D1, "--only", step).code == 0, step
    failed = refresh.run(D1, "--only", "migrate")
    assert failed.code == 1 and "public.people.phone" in failed.err
    state = refresh.state(refresh.work(D1))
    assert state.poisoned is not None and state.poisoned.step == "migrate"
    for step in ("validate", "publish"):
        refused = refresh.run(D1, "--only", step)
        assert refused.code == 1 and "its migrate step failed" in refused.err, refused.err
    assert refresh.staging not in refresh.copies()
    # the next full run starts from a fresh snapshot and drops the unusable copy
    assert refresh.run(D2).code == 1  # the migration still adds an unclassified column
    assert refresh.work(D1) not in refresh.copies() and refresh.work(D2) not in refresh.copies()


def test_the_plan_comes_from_the_copy_not_from_production(refresh):
    """Case 2: with migrations configured, a production column dropped between the snapshot and the scrub
    (a deploy during the run) had its rule set aside as "awaiting migrations", and all its values were
    published. The copy still has the column, so its rule applies."""
    refresh.setup(PEOPLE, PEOPLE_RULES, migrations={})
    codes = production_values(refresh, "secret_code")
    assert refresh.run(D1, "--only", "snapshot").code == 0
    refresh.sql(refresh.production, "ALTER TABLE people DROP COLUMN secret_code")  # the deploy
    for step in ("scrub", "rebase", "migrate", "validate", "publish"):
        done = refresh.run(D1, "--only", step)
        assert done.code == 0, (step, done.err)
    published = {v for (v,) in refresh.rows(refresh.staging, "SELECT secret_code FROM people")}
    assert len(published) == 40 and not published & codes


def test_migrations_that_drop_things_and_create_sequences(refresh):
    """Case 11: a migration dropping a column, the primary key and a sequence failed validation with a bare
    SQLSTATE 42703; sequences a migration created were never rebased (a new row got id 1)."""
    refresh.setup(
        PEOPLE + "CREATE SEQUENCE ticket_seq; SELECT nextval('ticket_seq');",
        PEOPLE_RULES + "  public.flags:\n    columns: {id: keep, flag: keep}\n",
        migrations={
            "V1__reshape.sql": "ALTER TABLE people DROP COLUMN secret_code;\n"
            "ALTER TABLE people DROP CONSTRAINT people_pkey;\n"
            "DROP SEQUENCE ticket_seq;\n"
            "CREATE TABLE flags (id serial PRIMARY KEY, flag text);\n"
            "INSERT INTO flags (flag) VALUES ('new_checkout');\n"
        },
    )
    done = refresh.run(D1)
    assert done.code == 0, done.err
    state = refresh.copies()[refresh.staging].metadata
    assert "public.flags_id_seq" in state["offsets"] and "public.ticket_seq" not in state["offsets"]
    (next_id,) = refresh.rows(refresh.staging, "SELECT nextval('flags_id_seq')")[0]
    assert next_id > state["offsets"]["public.flags_id_seq"] >= 1_000  # staging's IDs, far above 1
    assert refresh.rows(refresh.staging, "SELECT count(*) FROM people") == [(40,)]
