"""Names, literals, digests and the session of MySQL's and MariaDB's validation queries (for text()).

Every text a check compares is read as utf8mb4 under the binary collation (`text`): a regular expression
or an IN list then matches case for case, as on other engines, whatever the column's collation (most are
case-insensitive: `'ABC' REGEXP '^[a-z]+$'` holds under them).
"""

from __future__ import annotations

from typing import Any

from deid.backends.mysql.quoting import QUOTING
from deid.expect.digests import KEY_PARAM
from deid.expect.sql import for_text

# The session's text forms: TIMESTAMP values read in UTC, backslashes in literals as escapes (literal()
# doubles them), strictness as the scrub's sessions have it. MySQL 8 serves information_schema's
# AUTO_INCREMENT from a cache of statistics (a day old by default): read live instead (the sequence check).
# MariaDB reads it live anyway and has no such variable, and skips the /*!80000 */ part.
SETTINGS = (
    "SET SESSION time_zone = '+00:00', "
    "sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
    " /*!80000 , information_schema_stats_expiry = 0 */"
)


def session() -> tuple[str, ...]:
    return ("SET NAMES utf8mb4", SETTINGS)


def gx_engine_options() -> dict[str, Any]:
    # GX opens its own sessions: PyMySQL runs the settings first on each (the sequence check and truncated
    # TIMESTAMPs read them); utf8mb4 is PyMySQL's character set already
    return {"connect_args": {"init_command": SETTINGS}}


def quote_ident(name: str) -> str:
    return for_text(QUOTING.identifier(name))


def quote_table(table: str) -> str:
    """A table of the connection's database (deid names it `public.<table>`: the one namespace)."""
    return for_text(QUOTING.table(table))


def literal(text: str) -> str:
    # a backslash escapes in MySQL's string literals: regular expressions keep theirs doubled
    return for_text(QUOTING.literal(text))


def text(value: str) -> str:
    """The value's text, compared case for case."""
    return f"CONVERT(({value}) USING utf8mb4) COLLATE utf8mb4_bin"


def keyed(value: str, binary: bool = False) -> str:
    """The keyed digest of a value's text (a binary string's hex), as 64 hex digits; NULL stays NULL. The
    key is bound as hex (key_params): PyMySQL sends bytes as a string literal of the connection's character
    set, which random bytes are not. Digests travel as hex for the same reason (digest/hexes)."""
    content = f"HEX({value})" if binary else f"CONVERT(({value}) USING utf8mb4)"
    return f"SHA2(CONCAT(UNHEX(:{KEY_PARAM}), {content}), 256)"


def key_params(key: bytes) -> dict[str, object]:
    return {KEY_PARAM: key.hex()}


def digest(text: str | None) -> bytes | None:
    """A digest as the server gave it (hex) as the bytes deid.expect compares."""
    return None if text is None else bytes.fromhex(text)


def null_text() -> str:
    return "CAST(NULL AS CHAR)"


def unpivot(source: str, rows: list[tuple[str, ...]], names: tuple[str, ...], value: str) -> str:
    """Rows of `source` (one row) turned into one row per entry of `rows`: `names` from the entry's
    literals, `value` (a name) the source's column named by the entry's last element. MariaDB has no
    LATERAL, so a constant table is joined and a CASE picks the column."""
    constant = " UNION ALL ".join(
        "SELECT "
        + ", ".join([f"{i} AS i"] + [f"{literal(v)} AS {n}" for v, n in zip(entry[:-1], names, strict=True)])
        for i, entry in enumerate(rows)
    )
    picked = " ".join(f"WHEN {i} THEN s.{entry[-1]}" for i, entry in enumerate(rows))
    columns = ", ".join(f"u.{n}" for n in names)
    return (
        f"SELECT {columns}, CASE u.i {picked} END AS {value}, s.n AS checked "
        f"FROM ({source}) AS s CROSS JOIN ({constant}) AS u"
    )
