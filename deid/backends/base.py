"""What every engine backend offers, and what it can do, as data.

Callers ask a backend's `capabilities` ("can the server clone a database itself?") instead of testing its
name, so adding an engine means adding a subclass, not editing every step. The base class holds the
behaviour engines share and fails clearly for what an engine has not implemented.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import sqlalchemy as sa

from deid.backends.diagnosis import Diagnosis
from deid.backends.quoting import STANDARD, Quoting
from deid.backends.scrubbing import Progress, Scrubbing, TableResult
from deid.errors import ConfigError
from deid.schema import CheckTerm, Schema, Table

if TYPE_CHECKING:
    from deid.expect.free_text import Identifier
    from deid.expect.leaks import Compared
    from deid.plan import Plan, TablePlan
    from deid.rules.model import TableRule
    from deid.schema import Column, ForeignKey


class SequenceKind(StrEnum):
    """Where new ids come from, which decides what the rebase moves."""

    SEQUENCE = "sequence"  # sequence objects that columns draw from (serial, identity)
    AUTO_INCREMENT = "auto_increment"  # a counter kept per table
    NONE = "none"  # the engine hands out no ids itself: nothing to rebase


class TriggerSilencing(StrEnum):
    """How the scrub keeps triggers from firing (a trigger stamping updated_at would rewrite data)."""

    SESSION = "session"  # one setting of the scrub's sessions turns every trigger off (nothing to undo)
    DROP_AND_RESTORE = "drop_and_restore"  # triggers are dropped for the scrub and created again after it
    NONE = "none"


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, as data: callers ask "can you?", never "which engine are you?". Every flag
    defaults to what an engine without the feature has, so an engine claims only what it has."""

    transactional_ddl: bool = False  # DDL can be rolled back with the transaction around it
    database_rename: bool = False  # a database can be renamed inside a transaction (publish is one commit)
    instant_clone: bool = False  # the server copies a database itself (no rows through a client)
    sequence_kind: SequenceKind = SequenceKind.NONE
    trigger_silencing: TriggerSilencing = TriggerSilencing.NONE
    schemas: bool = False  # namespaces inside one database, so table names are "schema.table"
    # the engine runs the transformers' SQL forms (small tables rewritten in SQL, the forms of columns without
    # a vector form computed as rows stream out); without them every rewritten column streams
    sql_forms: bool = False
    # the longest database name the engine keeps whole: a staging name plus deid's suffixes must fit
    max_identifier_bytes: int = 30


@dataclass(frozen=True)
class TableStatements:
    """What a plan runs for one table where the engine runs SQL forms: the statement that rewrites (or
    empties) it, and the statements run before and after it in its transaction (triggers set and put back).
    None: the table is not touched by a statement."""

    statement: str | None = None
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


class PreviewSupport(Protocol):
    """The engine's part of `deid preview`: a throw-away database on the staging server (held so that a
    killed preview's leftover is found and dropped), one table's definition and first rows read from
    production, and the sample loaded, rewritten and read back there. A module can be one."""

    def new_name(self) -> str: ...
    def hold(self, admin: sa.Connection, name: str) -> None: ...
    def release(self, admin: sa.Connection, name: str) -> None: ...
    def drop_leftovers(self, admin: sa.Connection) -> list[str]: ...
    def table_ddl(
        self, production: sa.Connection, table: str
    ) -> tuple[list[str], list[tuple[str, str, bool]]]: ...
    def sample(
        self, production: sa.Connection, table: str, columns: list[str], key: tuple[str, ...], rows: int
    ): ...
    def load(
        self, work: sa.Connection, table: str, columns: list[tuple[str, str]], rows: list[tuple]
    ) -> None: ...
    def read_back(self, work: sa.Connection, table: str, columns: list[str]) -> dict[int, tuple]: ...
    def prepare_forms(self, work: sa.Connection, dictionaries: Iterable[str]) -> None:
        """What the plan's SQL forms call, and the dictionaries they pick from, in the sample's database."""

    def apply_key(self, work: sa.Connection, salt: str) -> None:
        """Hand the session the key the SQL forms read, as the scrub does (never in SQL text)."""

    def matching(self, work: sa.Connection, table: str, condition: str) -> list[int]: ...


class CopyStore(Protocol):
    """The databases deid keeps on a staging server (deid.steps.copies says which and what they mean): each
    call takes the staging server's autocommit maintenance connection. A copy carries a note (deid's facts,
    as JSON) that travels with it through renames. A module can be one."""

    def exists(self, c: sa.Connection, database: str) -> bool: ...
    def databases(self, c: sa.Connection, name: str, prefix: str) -> list[tuple[str, bool, str | None]]: ...
    def read_note(self, c: sa.Connection, database: str) -> str | None: ...
    def write_note(self, c: sa.Connection, database: str, text: str) -> None: ...
    def set_allow_connections(self, c: sa.Connection, database: str, allow: bool) -> None: ...
    def terminate_sessions(self, c: sa.Connection, database: str) -> int: ...
    def drop(self, c: sa.Connection, database: str) -> None: ...
    def create_closed(self, c: sa.Connection, name: str, options: str) -> None: ...
    def transaction(self, c: sa.Connection) -> AbstractContextManager[None]: ...
    def rename(self, c: sa.Connection, renames: list[tuple[str, str]]) -> None:
        """Give copies new names, in order, as one change: staging users never see a name missing (the
        swap: published -> kept, incoming -> published; a name may be reused within the list)."""

    def grant_connect(self, c: sa.Connection, database: str, roles: tuple[str, ...]) -> None: ...


@dataclass(frozen=True)
class MigrationStatement:
    """One statement of a migration file, as the engine's splitter found it."""

    sql: str  # from its first token to the character before its delimiter
    line: int  # line of its first token in the file, from 1
    words: tuple[str, ...]  # its first unquoted words, lower case: what kind of statement it is

    def line_at(self, position: int | None) -> int:
        """The file line of the 1-based character `position` within the statement (the server's cursor)."""
        if not position or position < 1:
            return self.line
        return self.line + self.sql.count("\n", 0, position - 1)

    def text_at(self, line: int) -> str:
        """The statement's text on file line `line`, stripped and shortened, for messages."""
        lines = self.sql.splitlines() or [""]
        text = lines[min(max(line - self.line, 0), len(lines) - 1)].strip()
        return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class AppliedMigration:
    """A row of deid's version table: a migration file applied to the copy, whole or (on an engine whose
    files cannot be one transaction) as far as its statements went."""

    version: int
    name: str
    checksum: str  # sha256 of the file (line endings normalised)
    statements_done: int | None = None  # None: the whole file; n: its first n statements only, so far
    done_checksum: str = ""  # of those n statements as they ran (sqlfiles.statements_checksum)


class MigrationDialect(Protocol):
    """The engine's part of SQL-folder migrations (deid.migrations.sqlfiles keeps the rest: file names,
    order, checksums, what is pending, the apply loop): how a file splits into statements, which statements
    the engine refuses or treats apart, and deid's version table in the copy. A module can be one."""

    # deid's version table as the engine's introspection names it ("schema.table"): coverage leaves it out
    version_table: str
    # a file and its row in the version table can commit as one transaction (the engine's DDL is
    # transactional); otherwise each statement commits on its own and its progress is recorded after it
    one_transaction: bool

    def split(self, text: str) -> list[MigrationStatement]:
        """The statements of a file, in order, as the engine's command-line client would send them."""

    def needs_no_transaction(self, words: tuple[str, ...]) -> str | None:
        """The statement's name if the engine refuses to run it inside a transaction block."""

    def is_transaction_control(self, words: tuple[str, ...]) -> bool: ...

    def problem(self, statement: MigrationStatement) -> tuple[str, str] | None:
        """What the engine cannot run as split (what, fix), found before anything runs; None if nothing."""

    def session_setting(self, statement: MigrationStatement) -> bool:
        """Whether the statement only sets the session (run again before resuming a file part-way)."""

    def error_position(self, statement: MigrationStatement, diagnosis: Diagnosis) -> int | None:
        """The 1-based character of `statement` where the server found the error, if it says."""

    def applied(self, connection: sa.Connection) -> dict[int, AppliedMigration]:
        """The version table's rows by version; empty when the copy has no version table."""

    def create_version_table(self, connection: sa.Connection) -> None: ...

    def record(self, connection: sa.Connection, row: AppliedMigration) -> None:
        """Write (or, for a file applied part-way, replace) the file's row, in the caller's transaction."""


class ShapeSpelling(Protocol):
    """How the engine spells the parts of a transformer's promise, which deid.expect.shapes puts together.
    `value` is SQL for a column's value, `text` SQL for a text; patterns are regular expressions as
    deid.expect.shapes writes them (anchored where they must match whole), matched case-sensitively."""

    def text(self, value: str) -> str:
        """The value as text (what a staging user reads)."""

    def matches(self, value: str, pattern: str) -> str:
        """True when the value's text matches `pattern`."""

    def strip(self, text: str, pattern: str) -> str:
        """`text` without the first match of `pattern`."""

    def in_words(self, text: str, words: Sequence[str]) -> str:
        """True when `text` is one of `words`, exactly (case and all)."""

    def split_name(self, text: str) -> tuple[str, str]:
        """SQL for the part of `text` before its first blank, and for the part after it."""

    def length(self, text: str) -> str:
        """Its length in characters."""

    def substring(self, text: str, start: int, count: str) -> str:
        """`count` characters from the `start`th (from 1)."""

    def address_text(self, value: str, column: Column) -> str:
        """A network address's text without its mask (a text column's text as it is)."""

    def equals_constant(self, value: str, constant: str, column: Column) -> str:
        """True when the value is `constant` (rule-file text) as the column holds it."""

    def truncated(self, value: str, unit: str, column: Column) -> str:
        """True when a date or timestamp is at the start of its `unit` (year, quarter, month, week, day;
        UTC for a time zone aware type)."""

    def every_element(self, value: str, predicate: Callable[[str], str]) -> str | None:
        """True when `predicate` (given SQL for one element) holds for every element of an array; None
        where the engine has no arrays."""

    def json_text_at(self, value: str, steps: tuple[str, ...]) -> str:
        """The text at a path of a JSON value (a string unquoted), NULL where the path is missing."""


class ValidationDialect(Protocol):
    """The engine's SQL for the validate step (deid.steps.validate, deid.expect). deid.expect says what each
    check means, which rows and columns it reads and what passes; the dialect spells and runs the queries.
    Every query returns names and counts, or keyed digests (deid.expect.digests), never a row's value (but
    the primary-key values of sampled rows). Texts go through SQLAlchemy's text() unless said otherwise, so
    a colon of a quoted name or literal is escaped (deid.expect.sql.for_text). A module can be one."""

    shapes: ShapeSpelling

    def session(self) -> tuple[str, ...]:
        """Statements each validation session runs first (in its transaction): the text forms of dates,
        times and numbers pinned, so that a value reads as the same text in both databases."""

    def gx_engine_options(self) -> dict[str, Any]:
        """create_engine() keyword arguments for Great Expectations' own sessions on the working copy."""

    def gx_table(self, table: str) -> tuple[str | None, str]:
        """(schema, table) as GX's table asset of `schema.table` names it."""

    def gx_regex_as_deid(self, column: Column) -> bool:
        """Whether GX's regex built-in, matching the column as it is, reads the text deid's shape reads
        (the whole value, case for case); where not, deid's shape scan checks the column."""

    def quote_ident(self, name: str) -> str: ...
    def quote_table(self, table: str) -> str:
        """The SQL name of a table given by its key (`schema.table`)."""

    def literal(self, text: str) -> str:
        """A string literal of text deid wrote (patterns, names, rule-file constants), never of row data."""

    # --- the quick checks (deid.steps.validate): statements run as they are (deid.rawsql), nothing escaped

    def count_rows(self, table: str) -> str: ...
    def sample_digests(self, table: Table, columns: Sequence[str], exempt: str | None, rows: int) -> str:
        """The first `rows` rows by primary key but those `exempt` selects: the key, then an unkeyed
        digest of each column's text (the same rows and digests on both sides, compared in Python)."""

    # --- the suite (deid.expect.suites): each query returns rows (column_name, unexpected[, checked]) only
    # --- where the expectation fails

    def row_count_query(self, table: str, expected: int) -> str: ...
    def static_rows_bounded_query(self, table_plan: TablePlan) -> str:
        """Fails when keep_rows_where selects more rows than table_plan.keep_rows_limit allows."""

    def shapes_query(self, table_plan: TablePlan, predicates: Sequence[tuple[str, str]]) -> str:
        """One scan of the table (static rows left out): a row per (column, predicate) some rows break."""

    def unique_query(self, table: str, column: str) -> str:
        """Fails with the number of rows whose value another row has (a unique index may prove none)."""

    def static_rows_digest_query(self, table: Table, table_plan: TablePlan) -> str:
        """One row: how many rows keep_rows_where selects, and a digest of them all (their order aside)."""

    def static_rows_query(self, table: Table, table_plan: TablePlan, count: int, digest: str) -> str: ...
    def orphans_query(self, table: Table, key: ForeignKey) -> str:
        """Fails with the number of rows whose key is complete but references no row."""

    def sequence_query(self, connection: sa.Connection, name: str, high_water: int, offset: int) -> str:
        """Fails when the id source `name` (the rebase record's) would hand out a value at or below
        production's high water plus the offset (above high water minus offset for a descending one).
        `connection`: production's, where the engine must look up what kind of id source `name` is."""

    def sequence_high_water(self, connection: sa.Connection, name: str) -> int:
        """The last value production's id source `name` handed out."""

    # --- kept text and the PII scan (deid.expect.kept, deid.expect.pii)

    def kept_text(self, column: str, array: bool) -> str:
        """SQL for a kept column's content as one text (an array's elements joined by blanks)."""

    def pii_scan_query(
        self, table_plan: TablePlan, columns: Sequence[tuple[str, str, tuple[str, ...]]], rows: int | None
    ) -> str:
        """One read of at most `rows` rows (static rows left out): a row (column_name, pattern, unexpected,
        checked) per column (name, SQL of its text, checks) and check of deid.expect.pii, counting rows."""

    # --- leak checks (deid.expect.leaks): the key travels as a bound parameter, never in SQL text

    def leak_sample(
        self,
        work: sa.Connection,
        table: Table,
        table_plan: TablePlan,
        compared: Sequence[Compared],
        size: int,
        key: bytes,
    ) -> list[tuple]:
        """Up to `size` rows of the copy (spread over a large table; static rows left out): the key's
        values, then per compared column its keyed digest, or for a relative one its value as text."""

    def leak_counts(
        self,
        production: sa.Connection,
        table: Table,
        compared: Sequence[Compared],
        rows: list[tuple],
        key: bytes,
    ) -> tuple[int, ...]:
        """Production's counts for the sampled keys: rows matched, then per compared column its non-NULL
        values and how many break the promise (digest equal; outside the window of a relative one)."""

    def found_in_production(
        self,
        production: sa.Connection,
        table: Table,
        table_plan: TablePlan,
        columns: Mapping[int, Column],
        pairs: Sequence[tuple[int, bytes]],
        key: bytes,
    ) -> dict[int, int]:
        """Per column index, how many of its sampled digests (index, digest) occur anywhere in
        production's column (static rows left out)."""

    # --- production identifiers in kept free text (deid.expect.free_text)

    def identifier_sql(self, identifier: Identifier) -> str:
        """SQL for a production identifier a row's scrubbed columns held (an email, a full name)."""

    def token_digests(
        self, work: sa.Connection, table_plan: TablePlan, content: str, rows: int | None, key: bytes
    ) -> Iterable[bytes]:
        """Keyed digests of the distinct tokens (emails, pairs of adjacent words, lower-cased) of at most
        `rows` rows of a kept text column (SQL of its text: `content`)."""

    def identifiers_found(
        self,
        production: sa.Connection,
        table_plan: TablePlan,
        identifiers: Sequence[str],
        tokens: Sequence[bytes],
        key: bytes,
    ) -> set[bytes]:
        """Those of `tokens` that are the keyed digest of an identifier (SQL of identifier_sql), lower-cased
        and trimmed, of some row of production's table (static rows left out)."""


class Backend:
    """One database engine. Subclasses set `name`, `driver` and `capabilities` and implement the methods."""

    name: ClassVar[str] = "default"
    driver: ClassVar[str] = ""  # SQLAlchemy driver used when a URL names none, e.g. "psycopg"
    url_example: ClassVar[str] = ""  # what messages show as an example connection URL
    capabilities: ClassVar[Capabilities] = Capabilities()

    def diagnose(self, original: BaseException) -> Diagnosis:
        """What an error of the engine's driver says (code, objects, whether a retry may help), read from
        its structured fields, never from a row's value (deid.backends.diagnose picks the backend)."""
        return Diagnosis()

    def refused(self, original: BaseException | None, reason: str) -> bool:
        """Whether a failure to connect is the server saying no (wrong password, unknown role or database):
        a configuration error that no retry mends. `reason` is the driver's first line."""
        return False

    def bad_settings(self, original: BaseException | None, reason: str) -> bool:
        """Whether a failure to connect is the driver refusing a connection option's value (`sslmode=bogus`)
        before it dials: a configuration error that no retry mends. `reason` is the driver's first line."""
        return False

    # snapshot strategies of the engine: `clone:` name -> "module:Class" (a deid.cloners.Cloner)
    cloners: ClassVar[dict[str, str]] = {}

    # the database every server of the engine has, where deid does server-wide work (its run lock, creating
    # and dropping copies); None: the engine's server-wide work needs no database
    maintenance_database: ClassVar[str | None] = None

    # --- the run lock (deid.lock): held by one session, released when the session ends, however it ends ---

    def try_lock(self, connection: sa.Connection, name: str, shared: bool) -> int | None:
        """Take the lock called `name` for the session; the session's id, or None when another holds it.
        `shared` locks coexist with each other, never with an exclusive one."""
        raise NotImplementedError(f"{type(self).__name__} has no session lock")

    def unlock(self, connection: sa.Connection, name: str, shared: bool) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no session lock")

    def lock_holder(self, connection: sa.Connection, name: str) -> str:
        """Who holds the lock called `name`, for a message: "backend pid N since ..."; never a value."""
        return "another session"

    def session_name_args(self, text: str) -> dict[str, Any]:
        """Connect arguments that show `text` beside the session on the server (the lock's holder)."""
        return {}

    def introspect(self, connection: sa.Connection, database_name: str) -> Schema:
        """The structure of the database `connection` is connected to, named `database_name` in the result."""
        raise NotImplementedError(f"{type(self).__name__} cannot introspect")

    def public_parameters(self) -> frozenset[str]:
        """URL query parameters that never carry a secret, so a message may show their values (sslmode, ...).

        Every other parameter is shown masked and counted as a secret (deid.db.safe_url, url_secrets): an
        unknown name may be a password under a name nobody listed. The default knows none.
        """
        return frozenset()

    def url_from_dsn(self, text: str) -> sa.URL | None:
        """The URL that means what `text` means in the engine's own connection-string syntax, or None when
        `text` is not one (the default: the engine has no syntax of its own besides URLs)."""
        return None

    def read_only_connect_args(self, url: sa.URL) -> dict[str, Any]:
        """DBAPI connect() arguments that make every transaction of a session read-only.

        A backend without such a setting cannot be pointed at production, so the default refuses.
        """
        raise ConfigError(f"deid cannot open read-only sessions on engine '{self.name}'")

    def check_terms(self, definition: str, columns: tuple[str, ...]) -> tuple[CheckTerm, ...]:
        """The conjuncts of a CHECK constraint as printed by the engine (schema.CheckConstraint.definition).
        The default reads none: one "other" term, which lint cannot prove a transformer respects."""
        return (CheckTerm(definition, None, "other", columns),)

    def content_sampler(self) -> Any:
        """The module that counts, in the database, how many sampled values match identifier formats (see
        deid.backends.postgresql.sample for the functions `deid scan` calls)."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample content")

    def validate_foreign_keys(
        self, engine: sa.Engine, keys: list[tuple[str, str]], sessions: int = 1
    ) -> list[tuple[str, str]]:
        """Check the foreign keys (table, constraint) a scrub left unchecked, and mark them valid; returns
        those that do not hold. Only an engine whose scrub leaves keys unchecked has any."""
        raise NotImplementedError(f"{type(self).__name__} leaves no foreign key unchecked")

    # --- the scrub (deid.backends.scrubbing holds the types; deid.steps.scrub says when each part runs) ---

    def prepare_scrub(
        self, engine: sa.Engine, plan: Plan, schema: Schema, how: Scrubbing, tables: set[str] | None = None
    ) -> list[str]:
        """Make the scrub's support objects and ledger in the working copy; returns the units of work (a
        table, or `<table>#<i>/<n>`, a part of one), each of which scrub_tables can be given on its own."""
        raise NotImplementedError(f"{type(self).__name__} cannot scrub")

    def scrub_tables(
        self,
        engine: sa.Engine,
        plan: Plan,
        salt: str,
        schema: Schema,
        units: set[str],
        progress: Progress | None = None,
        how: Scrubbing = Scrubbing(),
        streams_done: Callable[[], object] | None = None,
    ) -> list[TableResult]:
        """Scrub some of the units prepare_scrub returned; `streams_done` is called once no row remains to
        transform in this process."""
        raise NotImplementedError(f"{type(self).__name__} cannot scrub")

    def finish_scrub(
        self, engine: sa.Engine, plan: Plan, tables: set[str] | None = None
    ) -> tuple[dict[str, int], dict, list[tuple[str, str]]]:
        """Check every table of the plan is scrubbed, renew statistics, drop the support objects; returns
        rows per table, the stream's tallies per table and column, and the foreign keys left unchecked."""
        raise NotImplementedError(f"{type(self).__name__} cannot scrub")

    def scrub_refusals(self, schema: Schema, plan: Plan) -> list[str]:
        """What the engine's scrub would refuse in `plan` before writing anything (a column it has no form
        for, a table it cannot write rows back to), each naming table or table.column: what a run would stop
        on, known before the night. The default engine refuses nothing."""
        return []

    def scrub_database(self, engine: sa.Engine, plan: Plan, salt: str, **options: Any) -> list[TableResult]:
        """The three parts in one call, for a benchmark or a test (options: the backend's)."""
        raise NotImplementedError(f"{type(self).__name__} cannot scrub")

    def rebase_database(
        self, connection: sa.Connection, schema: Schema, logical_date: dt.date
    ) -> dict[str, dict]:
        """Move every id source of `schema` (sequences, AUTO_INCREMENT counters) far above production's values
        for `logical_date` (deid.offsets.offset_for), in the caller's transaction; NoRoom naming every source
        without room before anything is written. Returns, per source, the facts the run record keeps:
        sequence, columns, high_water, offset, next_value, limit, limited_by, clamped, rerun."""
        raise NotImplementedError(f"{type(self).__name__} cannot rebase")

    def large_objects(self, connection: sa.Connection) -> int:
        """How many objects the database holds outside any table's columns, which no column rule covers (the
        rule file's `large_objects:` says what to do with them). The default engine has none."""
        return 0

    def copy_store(self) -> CopyStore:
        """The staging server's copies: create, list, note, close, rename, drop (deid.steps.copies)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no copies")

    def preview_support(self) -> PreviewSupport:
        """What `deid preview` needs of the engine (deid.preview.build)."""
        raise NotImplementedError(f"{type(self).__name__} cannot preview")

    def migrations(self) -> MigrationDialect:
        """The engine's part of SQL-folder migrations (deid.migrations.sqlfiles)."""
        raise NotImplementedError(f"{type(self).__name__} has no SQL-folder migrations")

    def validation(self) -> ValidationDialect:
        """The engine's SQL for the validate step (deid.expect, deid.steps.validate)."""
        raise NotImplementedError(f"{type(self).__name__} (engine '{self.name}') cannot validate a copy")

    def column_sql(
        self, table: Table, column: Column, transformer: str, params: Mapping[str, Any]
    ) -> str | None:
        """SQL for the column's new value, by the transformer's SQL form (`params` parsed): what the plan's
        statement sets, and what the stream computes for a column without a vector form. None where the
        engine runs no SQL forms (Capabilities.sql_forms): its scrub streams every rewritten column."""
        return None

    def table_statements(
        self, table: Table, rule: TableRule, sets: Sequence[tuple[str, str]], condition: str | None
    ) -> TableStatements:
        """The plan's statements for `table`: its columns set to their SQL (column, column_sql) but on the
        rows the rendered `condition` keeps, or the table emptied for `copy: schema_only`. Nothing where the
        engine runs no SQL forms: its scrub works from the plan's decisions."""
        return TableStatements()

    # --- how the engine spells what deid writes itself (row conditions, names): deid.backends.quoting ---

    quoting: ClassVar[Quoting] = STANDARD  # the SQL standard's ("name", 'text') unless the engine says

    def quote_identifier(self, name: str) -> str:
        """A name as an SQL identifier of the engine, always quoted."""
        return self.quoting.identifier(name)

    def quote_table(self, table: str) -> str:
        """The SQL name of a table given by its key (`schema.table`), on a connection to its database."""
        return self.quoting.table(table)

    def quote_literal(self, text: str) -> str:
        """A string literal, for text written in rule files only, never for production values."""
        return self.quoting.literal(text)

    def like_ignoring_case(self, column_sql: str, pattern_sql: str, negate: bool) -> str:
        """`column [NOT] LIKE pattern`, ignoring case (the standard's way by default)."""
        return f"LOWER({column_sql}) {'NOT ' if negate else ''}LIKE LOWER({pattern_sql})"

    def is_scrub_table(self, table: Table) -> bool:
        """Whether `table` is one the scrub makes in a working copy for its own work (its ledger, its
        support objects): one in production would be mistaken for deid's, so a clone holding one is refused,
        and one left in a copy is never published."""
        return False

    def scrub_preamble(self) -> tuple[str, ...]:
        """Statements every scrub session runs first: triggers silenced where the engine does that per
        session (Capabilities.trigger_silencing SESSION), and foreign keys not checked row by row (both ends
        get the same deterministic transform; validation checks them afterwards). Part of the plan."""
        return ()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
