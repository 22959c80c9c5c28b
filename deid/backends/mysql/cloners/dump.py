"""Clone by dump and restore, streamed: `mariadb-dump | mariadb` (or `mysqldump | mysql`), no file between.

For production on another server than the staging copies (or a busy primary). The dump reads every table in
one transaction (`--single-transaction`: a consistent snapshot of InnoDB tables, taken without locking
them), with the views, stored routines and events; `--hex-blob` writes binary values as hex, so nothing in
the stream depends on a character set; `--no-create-db` and no `--databases`, so the stream names no
database and the client loads it into the working copy it connects to, which `create_working_copy` made
first (same character set and collation as production's, reachable by no grant but deid's).

Triggers are left out of the stream (`--skip-triggers`) and created by deid after it, from production's
own definitions (SHOW CREATE TRIGGER, in a read-only session): a trigger whose text names production's
database (`CREATE TRIGGER t AFTER INSERT ON shop.orders ...`) cannot be created in another database
(error 1435, "Trigger in wrong schema"), and one that wrote into `shop`.`audit` would write production's
name from the copy; deid re-points such references at the working copy.

Read-only production: the dump issues only reads (SELECT, SHOW, and the transaction and savepoint
statements of --single-transaction; no --flush-logs, --master-data or --lock-all-tables), and the role
should be granted no more than SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES there. Unlike the
PostgreSQL dump, the session cannot be made read-only on top of that: mariadb-dump takes no init command.

The rows cross a pipe (deid.cloners.pipe), never a file, and both programs die with deid. Passwords go to
each program through a private option file (`--defaults-extra-file`, 0600 in a 0700 folder deleted
whatever happens; credentials only, never rows), never on the command line. The client's error output
quotes values ("Duplicate entry '...'"), so every quoted text is masked in what deid reports, and
MariaDB's client is told not to print the failing statement (an INSERT holding rows); a statement printed
anyway (between its dashed lines) is withheld.

After the restore: the events are disabled (they were production's scheduled jobs: one must not run on an
unscrubbed copy), and triggers, routines and events that name the production database explicitly are
re-pointed at the working copy (deid.backends.mysql.cloners.objects).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from deid.backends.mysql import copies
from deid.backends.mysql.cloners import objects
from deid.cloners import Cloner, create_working_copy, pipe
from deid.cloners.pipe import Outcome, Program, run_pipeline
from deid.db import connect_readonly, normalise_url
from deid.errors import ConfigError, TerminalError
from deid.steps.context import RunContext
from deid.steps.copies import admin

MAX_ERROR_LINES = 30
DUMP_OPTIONS = (
    "--single-transaction",
    "--routines",
    "--skip-triggers",  # created by deid afterwards, re-pointed (see above)
    "--events",
    "--hex-blob",
    "--no-create-db",
    "--no-tablespaces",  # no tablespace DDL, and MySQL 8's mysqldump then needs no PROCESS privilege
    "--default-character-set=utf8mb4",
    "--max-allowed-packet=1G",
    "--skip-dump-date",
    # no LOCK TABLES around a table's rows: a DEFAULT naming production's sequence (MariaDB writes the
    # database into it) would be refused inside them; the rows load the same, and settle re-points it
    "--skip-add-locks",
)
RESTORE_OPTIONS = ("--batch", "--binary-mode", "--default-character-set=utf8mb4", "--max-allowed-packet=1G")
# URL query parameters the command-line programs understand, by their option names there; the rest of
# PUBLIC_PARAMETERS (read/write timeouts) has no equivalent and is not needed by a one-off program.
_OPTION_NAMES = {
    "unix_socket": "socket",
    "ssl_ca": "ssl-ca",
    "ssl_capath": "ssl-capath",
    "ssl_cert": "ssl-cert",
    "ssl_key": "ssl-key",
    "connect_timeout": "connect-timeout",
}
_IGNORED = frozenset({"read_timeout", "write_timeout", "charset"})
_QUOTED = re.compile(r"'(?:[^'\\]|''|\\.)*'|\"(?:[^\"\\]|\"\"|\\.)*\"")
_LOST = re.compile(r"\b(?:2002|2003|2006|2013|2055)\b|Lost connection|server has gone away|Can't connect")
_INPUT_ENDED = re.compile(r"Unknown command|unexpected end|Got a packet bigger")


@dataclass(frozen=True)
class Tools:
    dump: str
    client: str
    mariadb_dump: bool  # MariaDB's dump program (else Oracle's mysqldump)
    mariadb_client: bool


@functools.cache
def find_tools() -> Tools:
    """The dump program and the client on PATH: MariaDB's names first (Debian's mariadb-client also
    installs them as mysqldump and mysql)."""
    dump = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not dump or not client:
        raise TerminalError(
            "clone: dump needs mariadb-dump (or mysqldump) and mariadb (or mysql) on PATH; install the "
            "MariaDB or MySQL client programs (Debian: apt-get install mariadb-client)"
        )
    return Tools(dump, client, _is_mariadb(dump), _is_mariadb(client))


def _is_mariadb(program: str) -> bool:
    try:
        version = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "mariadb" in version.lower()


class DumpCloner(Cloner):
    name = "dump"

    def clone(self, ctx: RunContext) -> None:
        production = normalise_url(ctx.production_url)
        work = normalise_url(ctx.work_url)
        tools = find_tools()
        source = _read_production(production)
        with admin(ctx.staging_server_url) as c:
            copies.check_roles(c, tuple(getattr(ctx.database, "staging_roles", ()) or ()))
            create_working_copy(c, ctx.work_name, copies.database_options(*source.defaults))
        with tempfile.TemporaryDirectory(prefix="deid-mysql-") as folder:  # 0700, deleted whatever happens
            dump = dump_program(tools, production, source.mariadb, Path(folder) / "production.cnf")
            restore = restore_program(tools, work, Path(folder) / "work.cnf")
            outcomes = run_pipeline(dump, restore)
        failed = [o for o in outcomes if o.returncode != 0]
        if failed:
            secrets = [production.password, work.password]
            raise pipeline_error(failed, production.database, ctx.work_name, secrets)
        with admin(ctx.staging_server_url) as c:
            failed = objects.create_all(c, source.triggers, ctx.work_name, source.name, source.names)
            if failed:
                raise TerminalError(f"clone: dump could not create in {ctx.work_name}: {'; '.join(failed)}")
            settled = objects.settle(c, ctx.work_name, source.name)
        ctx.record["clone_method_detail"] = f"{Path(tools.dump).name} | {Path(tools.client).name}"
        if settled:
            ctx.record["clone_events_disabled"] = settled


@dataclass(frozen=True)
class Source:
    name: str
    defaults: tuple[str, str]  # character set, collation
    mariadb: bool
    triggers: list[objects.Definition]
    names: set[str]  # its tables, views, routines, triggers and events


def _read_production(production: sa.URL) -> Source:
    """Production's character set and collation, its kind of server, and a check that it holds no table
    whose name deid reserves in a copy; through a read-only session."""
    engine = connect_readonly(production, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return read_source(c, production.database or "")
    finally:
        engine.dispose()


def read_source(c: sa.Connection, database: str) -> Source:
    row = c.execute(
        sa.text(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME, VERSION() "
            "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :d"
        ),
        {"d": database},
    ).first()
    if row is None:
        raise ConfigError(
            f"clone: the production database {database} does not exist (or deid may not see it)"
        )
    reserved = [t for t in objects.tables(c, database) if t.startswith(copies.RESERVED_PREFIX)]
    if reserved:
        raise TerminalError(
            f"production's {database} holds table(s) {', '.join(reserved)}: deid reserves names beginning "
            f"{copies.RESERVED_PREFIX} in a MySQL copy (its note, the scrub's ledger): rename them there"
        )
    charset, collation, version = (v.decode() if isinstance(v, bytes) else v for v in row)
    mariadb = "mariadb" in str(version).lower()
    return Source(
        database,
        (charset, collation),
        mariadb,
        objects.triggers(c, database),
        objects.object_names(c, database),
    )


def dump_program(tools: Tools, production: sa.URL, server_is_mariadb: bool, options: Path) -> Program:
    argv = [tools.dump, f"--defaults-extra-file={write_options(production, options)}", *DUMP_OPTIONS]
    if not tools.mariadb_dump:  # Oracle's mysqldump 8
        argv.append("--set-gtid-purged=OFF")  # no GTID_PURGED statement for the staging server to refuse
        if server_is_mariadb:
            argv.append("--column-statistics=0")  # MariaDB has no COLUMN_STATISTICS table to read
    argv += ["--", production.database or ""]
    return Program(Path(tools.dump).name, argv)


def restore_program(tools: Tools, work: sa.URL, options: Path) -> Program:
    argv = [tools.client, f"--defaults-extra-file={write_options(work, options)}", *RESTORE_OPTIONS]
    if tools.mariadb_client:
        argv.append("--skip-print-query-on-error")  # the statement may be an INSERT holding rows
    argv.append(f"--database={work.database}")
    return Program(Path(tools.client).name, argv)


def write_options(url: sa.URL, path: Path) -> Path:
    """A private option file ([client] group, 0600) with the connection settings of `url`, its password
    included; returns its path, which must be the program's first option."""
    settings: dict[str, str] = {}
    if url.host:
        settings["host"] = url.host
    if url.port:
        settings["port"] = str(url.port)
    if url.username:
        settings["user"] = url.username
    if url.password is not None:
        settings["password"] = str(url.password)
    for key, value in url.query.items():
        text = ",".join(value) if isinstance(value, tuple) else value
        if key in _OPTION_NAMES:
            settings[_OPTION_NAMES[key]] = text
        elif key == "ssl_check_hostname":
            settings["ssl-verify-server-cert"] = "1" if text.lower() in ("1", "true", "yes") else "0"
        elif key not in _IGNORED:
            raise ConfigError(
                f"clone: dump cannot hand the URL parameter {key} to the command-line programs; remove it "
                "or use clone: same_server"
            )
    if any("\n" in v or "\r" in v for v in settings.values()):
        raise TerminalError("clone: dump cannot write a connection setting that holds a line break")
    lines = "".join(f"{key}={_option_value(value)}\n" for key, value in settings.items())
    with open(path, "x", opener=lambda name, flags: os.open(name, flags, 0o600)) as file:
        file.write("[client]\n" + lines)
    return path


def _option_value(value: str) -> str:
    """A value as an option file reads it back: double-quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def safe_lines(stderr: str, secrets: Iterable[str | None] = ()) -> list[str]:
    """The error output with every quoted text masked (MySQL quotes values in single quotes: "Duplicate
    entry '...'", "Incorrect integer value: '...'"; names come in backquotes and stay) and secrets hidden."""
    kept, masked, statement = [], 0, False
    for line in stderr.splitlines():
        if line.strip() == "--------------":  # the client's echo of a failing statement, both ends
            statement = not statement
            if statement:
                kept.append("(the failing statement is withheld: it can hold row values)")
            continue
        if statement or not line.strip():
            continue
        line, count = _QUOTED.subn("'?'", line)
        masked += count
        for secret in filter(None, secrets):
            if len(secret) >= 4:
                line = line.replace(secret, "***")
        kept.append(line)
    if len(kept) > MAX_ERROR_LINES:
        kept = [*kept[:MAX_ERROR_LINES], f"... {len(kept) - MAX_ERROR_LINES} more line(s)"]
    if masked:
        kept.append("(quoted texts are shown as '?': they can be row values)")
    return kept


def pipeline_error(
    failed: list[Outcome], production: str | None, work: str, secrets: Iterable[str | None]
) -> TerminalError:
    """What went wrong in the pipe (deid.cloners.pipe.pipeline_error), as this engine's tools say it."""
    return pipe.pipeline_error(
        failed,
        production,
        work,
        secrets,
        pipe.Speech(lambda name: "dump" in name, _LOST, _INPUT_ENDED, safe_lines),
    )
