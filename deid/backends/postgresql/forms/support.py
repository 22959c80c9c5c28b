"""The support objects the SQL forms call inside the working copy (schema `_deid`), and the session's key.

The keyed PRF (deid.transformers.keying: `prf(m) = SHA-256(K || m)`) in SQL: PostgreSQL's built-in
`sha256()` (C), so no extension is needed and the same SQL runs on every supported server, and it costs one
call where HMAC costs two (about 1.5 µs against 2.4 on the 2-core CI machine).

Statements write the PRF out (prf_sql and friends) with the key as a sub-SELECT, which PostgreSQL
evaluates once per statement; the functions of `_deid` serve the plpgsql helpers. The key reaches the session
as one setting, passed as a bound parameter: it never appears in SQL text, plans, logs or errors, and the
salt itself never reaches the database. Everything lives in schema `_deid`, which the pipeline drops before
publishing.

Functions are STABLE (the key is a session setting, so never IMMUTABLE), STRICT (NULL in, NULL out) and
PARALLEL SAFE. The small ones are single-expression `language sql` so the planner inlines them; the few that
need a value twice are plpgsql, so an expensive argument is computed once. No `%` anywhere: drivers read it
as a placeholder, so `mod()` is used instead.
"""

from __future__ import annotations

from typing import Any

from deid.errors import ConfigError, TerminalError, TransientError
from deid.transformers.keying import (  # noqa: F401  (the SQL forms' constants, read from here too)
    BLOCK,
    FEISTEL_ROUNDS,
    MASK63,
    MAX_DIGITS,
    ROUND_TABLE_MAX_DIGITS,
    prf_key,
    round_table_entries,
    value_bytes,
)

SCHEMA = "_deid"
KEY = "deid.prf_key"


_KEY_SQL = f"(SELECT decode(current_setting('{KEY}'), 'hex'))"


def prf_sql(message_sql: str) -> str:
    """The PRF (32 bytes) of a text expression, written out in the statement: the same bytes as
    `_deid.prf(message)`, with the key read and decoded once per statement (a sub-SELECT, which PostgreSQL
    evaluates as an InitPlan) where the function does so for every value. NULL stays NULL."""
    return f"sha256({_KEY_SQL} || convert_to({message_sql}, 'UTF8'))"


def prf_hex_sql(message_sql: str, chars: int = 64) -> str:
    """As `left(_deid.prf_hex(message), chars)`: the PRF's first `chars` hex characters (only the bytes
    shown are encoded)."""
    if chars >= 64:
        return f"encode({prf_sql(message_sql)}, 'hex')"
    hexed = f"encode(substr({prf_sql(message_sql)}, 1, {(chars + 1) // 2}), 'hex')"
    return hexed if chars % 2 == 0 else f"left({hexed}, {chars})"


def prf_int_sql(message_sql: str) -> str:
    """As `_deid.prf_int`: the PRF's first 63 bits, never negative."""
    return f"(('x' || encode(substr({prf_sql(message_sql)}, 1, 8), 'hex'))::bit(64)::bigint & {MASK63})"


def prf_unit_sql(message_sql: str) -> str:
    """As `_deid.prf_unit`: 53 bits of the PRF, uniform in [0, 1)."""
    return f"(({prf_int_sql(message_sql)} >> 10)::float8 / 9007199254740992.0)"


def uuid_sql(message_sql: str) -> str:
    """A UUID (version 8, RFC 9562 variant) made of the first 16 bytes of the PRF: 122 keyed bits."""
    return f"{SCHEMA}.uuid_from(substr({prf_sql(message_sql)}, 1, 16))"


def shift_days_sql(message_sql: str, days: int) -> str:
    """A keyed shift of 1 to `days` days either way, never 0. plpgsql because the drawn number is used twice
    (an inlined SQL function would compute the PRF twice); the PRF itself stays in the statement."""
    return f"{SCHEMA}.shift_from(mod({prf_int_sql(message_sql)}, {2 * days})::int, {days})"


def doc_ipv4_sql(message_sql: str) -> str:
    """A keyed pick among the 768 IPv4 documentation addresses."""
    return f"{SCHEMA}.doc_ipv4_from(mod({prf_int_sql(message_sql)}, 768)::int)"


def apply_key(connection: Any, salt: str) -> None:
    """Give the session its key (`prf_key`, as hex), as a session-wide setting sent as a bound parameter.

    `connection` is a SQLAlchemy Connection (or a DB-API connection). The statement goes through the raw
    DB-API cursor, so SQLAlchemy's statement logging and its error messages (which print parameters) never
    see the key, and a failure is re-raised without it.
    """
    if not salt:
        raise ConfigError("The salt is empty: keyed transformers need a secret salt.")
    try:
        with dbapi_connection(connection).cursor() as cursor:
            cursor.execute(f"SELECT set_config('{KEY}', %s, false)", (prf_key(salt).hex(),))
    except Exception as exc:  # re-raised without its text or cause, which could quote the key
        lost = any(k.__name__ in ("OperationalError", "InterfaceError") for k in type(exc).__mro__)
        kind = TransientError if lost else TerminalError
        raise kind(f"Could not hand the key to the database session ({type(exc).__name__}).") from None


def dbapi_connection(connection: Any) -> Any:
    """The DB-API connection under a SQLAlchemy Connection (or the argument itself): same transaction."""
    return connection.connection.dbapi_connection if hasattr(connection, "exec_driver_sql") else connection


def _hash_digits(signature: str, permutation: str, declare: str = "") -> str:
    """n digits for `hash` format digits: the permutation when the value's digits fill the pattern exactly
    (so distinct inputs stay distinct), else digits drawn from the value's keyed hash."""
    return f"""CREATE OR REPLACE FUNCTION {SCHEMA}.{signature} RETURNS text
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE{declare}
    -- the digits: delete from value every character that is not one (two translates, no regular expression)
    d text := translate(value, translate(value, '0123456789', ''), '');
BEGIN
    IF length(d) = n THEN
        RETURN {permutation};
    END IF;
    RETURN lpad(mod({SCHEMA}.prf_int('hash.digits' || chr(31) || value), (10::numeric ^ n)::bigint)::text,
                n, '0');
END $$"""


def fpe_rounds_unrolled_sql(n: int) -> list[str]:
    """The permutation of n digits from a round table (`fpe{n}_rounds`) and `hash{n}_digits_rounds` over it:
    the ten rounds of `fpe_digits` written out with their moduli and round-table offsets as constants. Same
    values as `fpe_digits` (the rounds alternate which half they change instead of swapping the halves, which
    ends in the same order after an even number of rounds), and about twice as fast as a loop: no numeric
    powers, no regular expression."""
    u, v = n // 2, n - n // 2
    mu, mv = 10**u, 10**v
    lines, base = [], 0
    for i in range(FEISTEL_ROUNDS):
        changed, other, modulus, entries = ("a", "b", mu, mv) if i % 2 == 0 else ("b", "a", mv, mu)
        w = value_bytes(modulus)
        # the round's keyed value for `other`: w bytes, big-endian, as fpe_rounds stored them
        read = " | ".join(
            f"(get_byte(rounds, {base + k} + {w} * {other}) << {8 * (w - 1 - k)})" for k in range(w)
        )
        lines.append(f"    {changed} := mod({changed} + ({read}), {modulus});")
        base += w * entries
    first = f"left(digits, {u})::int" if u else "0"
    return [
        f"""CREATE OR REPLACE FUNCTION {SCHEMA}.fpe{n}_rounds(digits text, rounds bytea) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    a int := {first};
    b int := substr(digits, {u + 1})::int;
BEGIN
    IF length(digits) <> {n} OR length(rounds) <> {base} THEN
        RAISE EXCEPTION 'fpe{n}_rounds: digits do not match the round table';
    END IF;
{chr(10).join(lines)}
    RETURN {f"lpad(a::text, {u}, '0') || " if u else ""}lpad(b::text, {v}, '0');
END $$""",
        _hash_digits(
            f"hash{n}_digits_rounds(value text, rounds bytea)",
            f"{SCHEMA}.fpe{n}_rounds(d, rounds)",
            declare=f"\n    n constant int := {n};",
        ),
    ]


def support_sql() -> list[str]:
    """DDL of the `_deid` schema: keyed hash functions, the format-preserving permutation, dictionaries.

    Idempotent (CREATE OR REPLACE / IF NOT EXISTS), so a resumed scrub may run it again.
    """
    s = SCHEMA
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE OR REPLACE FUNCTION {s}.prf(msg text) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT sha256(decode(current_setting('{KEY}'), 'hex') || convert_to(msg, 'UTF8'))
$$""",
        f"""CREATE OR REPLACE FUNCTION {s}.prf_hex(msg text) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$ SELECT encode({s}.prf(msg), 'hex') $$""",
        # 63 bits, never negative, so mod() gives an index without sign games; the bias of mod(h, n) for the
        # small n used here is below 2^-40
        f"""CREATE OR REPLACE FUNCTION {s}.prf_int(msg text) RETURNS bigint
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT ('x' || encode(substr({s}.prf(msg), 1, 8), 'hex'))::bit(64)::bigint & {MASK63}
$$""",
        # 53 bits: exactly representable in float8, uniform in [0, 1)
        f"""CREATE OR REPLACE FUNCTION {s}.prf_unit(msg text) RETURNS float8
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT ({s}.prf_int(msg) >> 10)::float8 / 9007199254740992.0
$$""",
        f"""CREATE TABLE IF NOT EXISTS {s}.dictionary (
    name text NOT NULL, idx integer NOT NULL, value text NOT NULL, PRIMARY KEY (name, idx))""",
        # A keyed permutation of n-digit strings (FF1-style alternating Feistel): distinct inputs give
        # distinct outputs by construction, which is how `hash` keeps unique digit columns unique.
        f"""CREATE OR REPLACE FUNCTION {s}.fpe_digits(digits text, tweak text) RETURNS text
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n int := length(digits);
    u int := n / 2;  -- a has u digits (possibly none), b has v
    v int := n - u;
    mu bigint := (10::numeric ^ u)::bigint;
    mv bigint := (10::numeric ^ v)::bigint;
    a bigint;
    b bigint;
    c bigint;
    prefix text := tweak || chr(31) || n || chr(31);
BEGIN
    IF digits !~ '^[0-9]{{1,{MAX_DIGITS}}}$' THEN
        RAISE EXCEPTION 'fpe_digits takes 1 to {MAX_DIGITS} decimal digits';
    END IF;
    a := coalesce(nullif(left(digits, u), '')::bigint, 0);
    b := substr(digits, u + 1)::bigint;
    FOR i IN 0..{FEISTEL_ROUNDS - 1} LOOP
        -- even rounds: a has u digits; odd rounds: v. Each round is a bijection, so the whole is one.
        c := mod(a + {s}.prf_int(prefix || i || chr(31) || b), CASE WHEN i & 1 = 0 THEN mu ELSE mv END);
        a := b;
        b := c;
    END LOOP;
    RETURN lpad(a::text, u, '0') || lpad(b::text, v, '0');
END $$""",
        _hash_digits("hash_digits(value text, n int)", f"{s}.fpe_digits(d, 'hash.digits')"),
        # The same permutation with every round's keyed values computed once, set-based, instead of ten
        # PRF calls per value: round i maps the half b (of 10^v or 10^u values) to prf_int(...) mod the other
        # half's modulus m, stored big-endian in as few bytes as m needs (value_bytes), round after round.
        # Worth it for big tables only (see ROUND_TABLE_MAX_DIGITS and hashing.py). The bytea lives in the
        # statement's memory only.
        f"""CREATE OR REPLACE FUNCTION {s}.fpe_rounds(tweak text, n int) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT string_agg(substr(int4send(mod({s}.prf_int(tweak || chr(31) || n || chr(31) || r.i
                                                    || chr(31) || b), r.m)::int), 5 - r.w, r.w),
                      ''::bytea ORDER BY r.i, b)
    FROM (  -- per round: the modulus, the entries' width, the size of the other half (OFFSET 0: once a round)
        SELECT i, m, CASE WHEN m <= 256 THEN 1 WHEN m <= 65536 THEN 2 ELSE 3 END AS w, other
        FROM (SELECT i, (10::numeric ^ CASE WHEN i & 1 = 0 THEN n / 2 ELSE n - n / 2 END)::bigint AS m,
                     (10::numeric ^ CASE WHEN i & 1 = 0 THEN n - n / 2 ELSE n / 2 END)::bigint AS other
              FROM generate_series(0, {FEISTEL_ROUNDS - 1}) i OFFSET 0) moduli
        OFFSET 0) r, LATERAL generate_series(0, r.other - 1) b
$$""",
        # A shift in [-days, days] without 0, so a shifted value always moves: k is mod(prf_int, 2 * days),
        # computed in the statement (see shift_days_sql), so this needs no key and is IMMUTABLE
        f"""CREATE OR REPLACE FUNCTION {s}.shift_from(k int, days int) RETURNS int
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN CASE WHEN k < days THEN k - days ELSE k - days + 1 END;
END $$""",
        # The 768 addresses of the three IPv4 documentation ranges (RFC 5737); k is mod(prf_int, 768)
        f"""CREATE OR REPLACE FUNCTION {s}.doc_ipv4_from(k int) RETURNS inet
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN (ARRAY['192.0.2.0', '198.51.100.0', '203.0.113.0']::inet[])[k / 256 + 1] + mod(k, 256);
END $$""",
        # A version-8 UUID (RFC 9562: custom layout) from 16 PRF bytes: the version nibble set to 8 and the
        # variant bits to 10, so 122 keyed bits remain. plpgsql so the PRF bytes, read three times, are
        # computed once (see uuid_sql)
        f"""CREATE OR REPLACE FUNCTION {s}.uuid_from(b bytea) RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN encode(set_byte(set_byte(b, 6, (get_byte(b, 6) & 15) | 128), 8, (get_byte(b, 8) & 63) | 128),
                  'hex')::uuid;
END $$""",
        # JSON kept in a text column (the json transformer): parsed, or when it is not JSON, what `invalid`
        # says: NULL, an empty object, or an error naming the column and never the value (SQLSTATE 22P02)
        f"""CREATE OR REPLACE FUNCTION {s}.json_parse(value text, invalid text, what text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN value::jsonb;
EXCEPTION WHEN data_exception THEN
    RETURN {s}.json_invalid(invalid, what, 'holds a value that is not valid JSON');
END $$""",
        # ... and written back as text, when it fits the column (varchar(n): `lim`; NULL for no limit)
        f"""CREATE OR REPLACE FUNCTION {s}.json_text(doc jsonb, lim int, invalid text, what text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t text := doc::text;
BEGIN
    IF t IS NULL OR lim IS NULL OR length(t) <= lim THEN
        RETURN t;
    END IF;
    RETURN {s}.json_invalid(invalid, what, 'gets a scrubbed document longer than its type holds')::text;
END $$""",
        f"""CREATE OR REPLACE FUNCTION {s}.json_invalid(invalid text, what text, problem text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF invalid = 'fail' THEN
        RAISE EXCEPTION USING MESSAGE = 'json: column ' || what || ' ' || problem, ERRCODE = '22P02',
            COLUMN = what, HINT = 'invalid: null or invalid: empty replaces such values';
    END IF;
    RETURN CASE WHEN invalid = 'empty' THEN '{{}}'::jsonb END;
END $$""",
        # jsonb_set only where the whole path exists: it then cannot fail on a scalar or on an array met
        # where the path expects an object, and a missing path leaves the document as it is
        f"""CREATE OR REPLACE FUNCTION {s}.jsonb_replace(doc jsonb, path text[], new jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF doc #> path IS NULL THEN
        RETURN doc;
    END IF;
    RETURN jsonb_set(doc, path, new, false);
END $$""",
        *(
            statement
            for n in range(1, ROUND_TABLE_MAX_DIGITS + 1)
            for statement in fpe_rounds_unrolled_sql(n)
        ),
    ]
