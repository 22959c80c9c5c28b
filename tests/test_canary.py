"""Canaries: a unique value planted in every column type of production, and in its large objects, then
searched for everywhere the nightly job leaves something: a plain dump of the published copy (and its
planner statistics), every record, report and metrics file, every line the job printed or logged, and every
file under its temporary folder.

None may be found, except the one column the rules keep on purpose. The job runs once through the CLI (a
child process, with a temporary folder of its own) and once through Airflow (`dag.test()`), on every
configured server.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from deid.backends.postgresql.cloners.dump import choose_tools
from deid.steps.copies import admin, copies_on, drop_database
from tests.refresh import ROOT, supports_xml

ROWS = 12
COLUMNS = (
    "name", "first", "nick", "email", "backup", "profile", "prefs", "resume", "alias", "photo", "note", "blob"
)  # fmt: skip
KEPT = "kept"  # the column the rules keep on purpose: its canaries must arrive, the others never


def canaries(suffix: str) -> dict[str, list[str]]:
    """Per planted column, one token per row: letters and digits only, so text search and tsvector keep
    each token whole, and the suffix makes them unique to this test run."""
    return {col: [f"cnry{col}{row}x{suffix}" for row in range(ROWS)] for col in (*COLUMNS, KEPT)}


def production_sql(c: dict[str, list[str]], xml: bool) -> str:
    """`xml`: the server has XML support (the embedded PostgreSQL 18 is built without it: the column is then
    text, which the rules scrub alike)."""
    rows = []
    for i in range(ROWS):
        v = {col: values[i] for col, values in c.items()}
        rows.append(
            f"('{v['name']} {v['first']}', '{v['nick']}', '{v['email']}@mail.example.org', "
            f"'{v['backup']}@backup.example.org', '{{\"note\": \"{v['profile']}\"}}', "
            f'\'{{"contact": {{"email": "{v["prefs"]}@mail.example.org"}}, "lang": "en"}}\', '
            f"'<resume><p>{v['resume']}</p></resume>', ARRAY['{v['alias']}', 'plain'], "
            f"convert_to('{v['photo']}', 'UTF8'), '{v[KEPT]}')"
        )
    blobs = ", ".join(f"'{b}'" for b in c["blob"])
    notes = ", ".join(
        f"({i + 1}, DATE '2026-0{1 + i % 2}-15', {i + 1}, '{c['note'][i]}')" for i in range(ROWS)
    )
    return f"""
CREATE EXTENSION IF NOT EXISTS citext;
CREATE DOMAIN contact_email AS text CHECK (position('@' IN VALUE) > 1);
CREATE TABLE people (
    id serial PRIMARY KEY, full_name text NOT NULL, nick varchar(60), email citext UNIQUE,
    backup_email contact_email, profile json, prefs jsonb, resume {"xml" if xml else "text"}, search tsvector,
    aliases text[],
    photo bytea, motto text
);
CREATE FUNCTION people_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := to_tsvector('simple', NEW.full_name);
    RETURN NEW;
END $$;
CREATE TRIGGER people_search BEFORE INSERT OR UPDATE ON people FOR EACH ROW EXECUTE FUNCTION people_search();
INSERT INTO people (full_name, nick, email, backup_email, profile, prefs, resume, aliases, photo, motto)
VALUES {", ".join(rows)};
CREATE TABLE visits (
    id int, at date NOT NULL, person_id int REFERENCES people, note text, PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE visits_jan PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE visits_feb PARTITION OF visits FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
INSERT INTO visits VALUES {notes};
CREATE TABLE scans (id int PRIMARY KEY, scan oid);
INSERT INTO scans SELECT i, lo_from_bytea(0, convert_to(b, 'UTF8'))
FROM unnest(ARRAY[{blobs}]) WITH ORDINALITY AS t(b, i);
ANALYZE;
"""


RULES = """version: 1
database: vault
large_objects: drop
tables:
  public.people:
    triggers: {people_search: recompute}
    columns:
      id: keep
      full_name: {class: name}
      nick: {transformer: hash, params: {length: 40}}
      email: {class: email}
      backup_email: {transformer: hash, params: {format: email, domain: example.net}}
      profile: 'null'
      prefs: {transformer: json, params: {paths: {$.contact.email: fake.email}}}
      resume: 'null'
      search: keep
      aliases: {transformer: hash}
      photo: 'null'
      motto: {transformer: keep, reason: "planted on purpose: the canary that must arrive"}
  public.visits:
    columns: {id: keep, at: keep, person_id: keep, note: {transformer: hash}}
  public.scans:
    columns: {id: keep, scan: 'null'}
"""


def config(folder: Path, staging: str, clone: str) -> Path:
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "vault.yaml").write_text(RULES)
    path = folder / "deid.yaml"
    path.write_text(
        "databases:\n  vault:\n    production: prod\n    staging_server: stg\n"
        f"    staging_name: {staging}\n    salt_secret: salt\n    clone: {clone}\n"
        f"    rules: {folder / 'rules' / 'vault.yaml'}\n"
    )
    return path


@pytest.fixture
def vault(postgres, tmp_path, request):
    suffix = "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(8))
    planted = canaries(suffix)
    production = postgres.create_database("deid_vault")
    engine = sa.create_engine(postgres.url(production), poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        c.exec_driver_sql(production_sql(planted, supports_xml(c)))
    engine.dispose()
    staging = f"st_{uuid.uuid4().hex[:8]}"
    # the CLI clones with pg_dump (a dump on its way, temporary files), Airflow by template (the copy's
    # files are production's, planner statistics included)
    clone = "template" if "airflow" in request.node.name else "dump"
    yield planted, production, staging, config(tmp_path, staging, clone)
    with admin(postgres.admin_url) as c:
        for copy in copies_on(c, staging):
            drop_database(c, copy.name)
    postgres.drop_database(production)


def plain_dump(postgres, database: str, into: Path) -> bytes:
    """pg_dump of the published copy, as staging users would see it, plus its planner statistics."""
    url = sa.make_url(postgres.url(database))
    tools = choose_tools(postgres.version)
    out = into / "published.sql"
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    subprocess.run(
        [tools.pg_dump, "--no-password", "-f", str(out), "-h", url.host, "-p", str(url.port or 5432),
         "-U", url.username, "-d", database],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    engine = sa.create_engine(postgres.url(database), poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        stats = c.exec_driver_sql(
            "SELECT coalesce(string_agg(concat_ws(' ', most_common_vals::text, histogram_bounds::text), "
            "' '), '') FROM pg_stats WHERE schemaname = 'public'"
        ).scalar()
    engine.dispose()
    return out.read_bytes() + stats.encode()


def files_under(*folders: Path) -> bytes:
    data = b""
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else ():
            if path.is_file():
                content = path.read_bytes()
                data += gzip.decompress(content) if path.suffix == ".gz" else content
    return data


def found(planted: dict[str, list[str]], data: bytes) -> dict[str, int]:
    return {col: sum(v.encode() in data for v in values) for col, values in planted.items()}


def assert_only_the_kept_canaries(planted, everywhere: bytes, published: bytes) -> None:
    hits = found(planted, everywhere)
    leaked = {col: n for col, n in hits.items() if n and col != KEPT}
    assert leaked == {}, f"production canaries found: {leaked}"
    assert found(planted, published)[KEPT] == ROWS  # the kept column arrived: the search can find canaries


def test_no_canary_leaves_production_through_the_cli(vault, postgres, tmp_path):
    planted, production, staging, deid_yaml = vault
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "DEID_CONFIG": str(deid_yaml),
        "DEID_CONN_PROD": postgres.url(production),
        "DEID_CONN_STG": postgres.admin_url,
        "DEID_SECRET_SALT": "canary-salt",
        "DEID_RECORDS_DIR": str(tmp_path / "records"),
        "TMPDIR": str(temp),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [os.sys.executable, "-m", "deid.cli", "run", "vault", "--date", "2026-11-28"],
        env=env, cwd=ROOT, capture_output=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    published = plain_dump(postgres, staging, tmp_path)
    everywhere = published + done.stdout + done.stderr + files_under(tmp_path / "records", temp)
    assert_only_the_kept_canaries(planted, everywhere, published)


def test_no_canary_leaves_production_through_airflow(vault, postgres, tmp_path, airflow_home, capfd):
    from airflow.dag_processing.dagbag import DagBag

    planted, production, staging, deid_yaml = vault
    env = pytest.MonkeyPatch()
    env.setenv("DEID_CONFIG", str(deid_yaml))
    env.setenv("AIRFLOW_CONN_PROD", postgres.url(production))
    env.setenv("AIRFLOW_CONN_STG", postgres.admin_url)
    env.setenv("AIRFLOW_VAR_SALT", "canary-salt")
    env.setenv("AIRFLOW_VAR_DEID_RECORDS_DIR", str(tmp_path / "records"))
    try:
        dag = DagBag(dag_folder=str(ROOT / "dags")).dags["staging_refresh__vault"]
        run = dag.test(logical_date=dt.datetime(2026, 11, 28, 3, tzinfo=dt.UTC))
    finally:
        env.undo()
    assert run.state == "success"
    printed = capfd.readouterr()
    published = plain_dump(postgres, staging, tmp_path)
    logs = files_under(airflow_home / "logs")
    everywhere = published + (printed.out + printed.err).encode() + logs + files_under(tmp_path / "records")
    assert_only_the_kept_canaries(planted, everywhere, published)
    shutil.rmtree(tmp_path / "records", ignore_errors=True)
