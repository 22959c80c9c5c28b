"""Unique keys set aside for the scrub's UPDATE by key: MySQL checks a unique key row by row while an UPDATE
runs, so a rewritten value equal to another row's value not yet rewritten (a format-preserving hash maps the
values onto their own domain: at 20,000 SSNs such a meeting is likely) fails the UPDATE with a duplicate key,
where PostgreSQL checks at the end of the statement. The table's unique keys over rewritten columns are
dropped before its UPDATE and added again after it (ALTER TABLE ... ADD UNIQUE KEY builds each once, sorted,
which also costs less than maintaining it row by row), so only the values as scrubbed must be unique.

Each key's clause (its line of SHOW CREATE TABLE: prefix lengths, algorithm, comment) is written to the
ledger (scrub_ledger.UNIQUE) before it is dropped and deleted once it exists again, so a scrub killed in
between leaves it to `restore` (the retry, or finish_scrub). A unique key a foreign key needs cannot be
dropped (the server says so): it stays, with the row-by-row check. The primary key is the UPDATE's own key:
it stays too.
"""

from __future__ import annotations

import re
from collections import defaultdict

import sqlalchemy as sa

from deid import rawsql
from deid.backends.mysql.errors import ER_DUP_ENTRY, errno_of
from deid.backends.mysql.quoting import quote_identifier
from deid.backends.mysql.scrub_ledger import UNIQUE
from deid.errors import TerminalError
from deid.schema import Table

_CLAUSE = re.compile(r"^\s*(UNIQUE KEY\s+`((?:[^`]|``)+)`.*?),?\s*$")
_NEEDED_IN_FOREIGN_KEY = 1553


def set_aside(connection: sa.Connection, table_key: str, table: Table, rewritten: set[str]) -> list[str]:
    """Drop the unique keys of `table` over a rewritten column, their clauses committed to the ledger
    first; returns the names dropped. `connection` autocommits."""
    wanted = {k.name for k in table.unique_keys if not k.primary and set(k.columns) & rewritten}
    if not wanted:
        return []
    shown = rawsql.execute(connection, f"SHOW CREATE TABLE {quote_identifier(table.name)}").one()[1]
    clauses = {}
    for line in shown.splitlines():
        found = _CLAUSE.match(line)
        if found and found[2].replace("``", "`") in wanted:
            clauses[found[2].replace("``", "`")] = found[1]
    for name, clause in clauses.items():  # every clause is in the ledger before the first drop
        connection.execute(
            sa.text(
                f"INSERT IGNORE INTO `{UNIQUE}` (table_key, table_name, name, clause) VALUES (:k, :t, :n, :c)"
            ),
            {"k": table_key, "t": table.name, "n": name, "c": clause},
        )
    dropped = []
    for name in clauses:
        try:
            rawsql.execute(
                connection, f"ALTER TABLE {quote_identifier(table.name)} DROP INDEX {quote_identifier(name)}"
            )
        except sa.exc.DBAPIError as exc:
            if errno_of(exc) != _NEEDED_IN_FOREIGN_KEY:
                raise
            _forget(connection, table_key, name)  # a foreign key needs it: it stays
            continue
        dropped.append(name)
    return dropped


def restore(connection: sa.Connection, table_key: str | None = None) -> list[str]:
    """Add again every unique key the ledger holds (of `table_key`, or of every table), one ALTER TABLE per
    table; returns their names. TerminalError naming the table and the key when the scrubbed values are not
    unique (never a value)."""
    where, params = ("WHERE table_key = :k", {"k": table_key}) if table_key else ("", {})
    saved = connection.execute(
        sa.text(f"SELECT table_key, table_name, name, clause FROM `{UNIQUE}` {where} ORDER BY 1, 3"),
        params,
    ).all()
    by_table: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for key, table, name, clause in saved:
        by_table[key, table].append((name, clause))
    for (key, table), keys in by_table.items():
        present = set(
            connection.execute(
                sa.text(
                    "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
                ),
                {"t": table},
            ).scalars()
        )
        missing = [(n, c) for n, c in keys if n not in present]
        if missing:
            added = ", ".join(f"ADD {clause}" for _, clause in missing)
            try:
                rawsql.execute(connection, f"ALTER TABLE {quote_identifier(table)} {added}")
            except sa.exc.DBAPIError as exc:
                if errno_of(exc) != ER_DUP_ENTRY:
                    raise
                names = ", ".join(n for n, _ in missing)
                raise TerminalError(
                    f"{key}: the scrubbed values of its unique key(s) {names} are not unique (two rows got "
                    "the same value; the message is not shown, as it quotes it). Give the column a "
                    "transformer that keeps distinct values distinct (hash, or a fake.* with unique: true)"
                ) from None
        for name, _ in keys:
            _forget(connection, key, name)
    return [name for _, _, name, _ in saved]


def _forget(connection: sa.Connection, table_key: str, name: str) -> None:
    connection.execute(
        sa.text(f"DELETE FROM `{UNIQUE}` WHERE table_key = :k AND name = :n"), {"k": table_key, "n": name}
    )
