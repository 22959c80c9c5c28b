"""The run lock on MySQL and MariaDB: named user locks (GET_LOCK), which die with their session, so a
SIGKILLed holder or a lost machine leaves nothing to clean up. User locks are server-wide, not per database,
so every deid process reaching the server locks in the same place whatever database its URL names
(Backend.maintenance_database is None).

**Shared holders.** A user lock has one holder; there is no shared mode. A shared hold is emulated with
SLOTS slot locks per staging name beside the exclusive lock:

- exclusive: take the exclusive lock, then check that no slot lock is held;
- shared: take one free slot lock, then check that the exclusive lock is free.

On a conflict the taker releases what it took and reports busy. Each side takes its own lock *before*
looking at the other kind, so two takers racing cannot both succeed: whichever looks last sees the other's
lock (both may fail at once, which is safe: Busy is transient and the caller retries). SLOTS shared
holders at once is the most one staging name can have; one more is refused as busy.

**Names.** Lock names are at most 64 characters on MySQL 8 and case-insensitive there by the manual, while
MariaDB 10.11 compares them byte for byte (two sessions hold `deid:x:A` and `deid:x:a` at once). A
staging name is folded to lower case first, so both servers give one lock per name whatever its case (on
a server with case-sensitive database names, `Learners` and `learners` then wait for each other, which is
merely cautious). A name that fits is kept readable (`deid:x:learners_staging`, `deid:s07:...`); a longer
one becomes a digest (`deid#x:<hex>`). The kind comes first and has a fixed spelling, so no staging name
can spell another's lock.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

SLOTS = 64  # shared holders one staging name can have at once (the mapped scrub tasks of one run)
MAX_NAME = 64  # characters of a user lock's name MySQL 8 accepts (MariaDB 10.11 accepts more)

_EXCLUSIVE = "x"


def lock_name(name: str, kind: str = _EXCLUSIVE) -> str:
    """The user lock's name for `kind` ("x", or a slot "s00".."s63") of the lock called `name`."""
    folded = name.lower()
    readable = f"deid:{kind}:{folded}"
    if len(readable) <= MAX_NAME:
        return readable
    return f"deid#{kind}:{hashlib.sha256(folded.encode()).hexdigest()[:48]}"


def slot_names(name: str) -> list[str]:
    return [lock_name(name, f"s{i:02d}") for i in range(SLOTS)]


def try_lock(c: sa.Connection, name: str, shared: bool) -> int | None:
    """The holding session's CONNECTION_ID(), or None when the lock is taken (nothing is then held)."""
    session = c.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()
    if shared:
        slots = slot_names(name)
        start = session % SLOTS  # sessions start at different slots, so they rarely try one another's
        for i in range(SLOTS):
            slot = slots[(start + i) % SLOTS]
            if _get(c, slot):
                if _used_by(c, [lock_name(name)]):
                    _release(c, slot)
                    return None
                return session
        return None
    exclusive = lock_name(name)
    if not _get(c, exclusive):
        return None
    if _used_by(c, slot_names(name)):
        _release(c, exclusive)
        return None
    return session


def unlock(c: sa.Connection, name: str, shared: bool) -> None:
    """Release what this session holds of the lock (its slot, when shared)."""
    if not shared:
        _release(c, lock_name(name))
        return
    session = c.execute(sa.text("SELECT CONNECTION_ID()")).scalar_one()
    slots = slot_names(name)
    for slot, holder in zip(slots, _holders(c, slots), strict=True):
        if holder == session:
            _release(c, slot)


def session_name_args(text: str) -> dict[str, str]:
    """PyMySQL's connect attribute `program_name`, which performance_schema.session_connect_attrs shows
    beside the session (MySQL 8 by default; MariaDB only when started with performance_schema=ON)."""
    return {"program_name": text}


def holder(c: sa.Connection, name: str) -> str:
    """ "connection id N since <time>, from <host>, program <name>" for the session holding the lock, or
    for the sessions sharing it."""
    exclusive = _used_by(c, [lock_name(name)])
    if exclusive:
        return _describe(c, exclusive[0])
    sharing = _used_by(c, slot_names(name))
    if not sharing:
        return "its holder has just finished: try again"
    sessions = f"{len(sharing)} session{'s' if len(sharing) > 1 else ''}"
    text = f"shared by {sessions}, the first {_describe(c, sharing[0])}"
    if len(sharing) >= SLOTS:
        text += f"; {SLOTS} sessions is the most that can share it"
    return text


# --- the server's functions ---------------------------------------------------------------------------------


def _get(c: sa.Connection, lock: str) -> bool:
    # 1: taken; 0: held by another session; NULL: an error (the session was killed)
    return c.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": lock}).scalar_one() == 1


def _release(c: sa.Connection, lock: str) -> None:
    c.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": lock})


def _holders(c: sa.Connection, locks: list[str]) -> list[int | None]:
    """IS_USED_LOCK of each lock, in one round trip: the holder's connection id, or None."""
    columns = ", ".join(f"IS_USED_LOCK(:n{i})" for i in range(len(locks)))
    row = c.execute(sa.text(f"SELECT {columns}"), {f"n{i}": lock for i, lock in enumerate(locks)}).one()
    return [None if value is None else int(value) for value in row]


def _used_by(c: sa.Connection, locks: list[str]) -> list[int]:
    """The sessions holding any of `locks`, in the locks' order."""
    return list(dict.fromkeys(h for h in _holders(c, locks) if h is not None))


PROCESS = sa.text(
    "SELECT HOST AS host, NOW() - INTERVAL TIME SECOND AS since "
    "FROM information_schema.PROCESSLIST WHERE ID = :id"
)
PROGRAM = sa.text(
    "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
    "WHERE PROCESSLIST_ID = :id AND ATTR_NAME = 'program_name'"
)


def _describe(c: sa.Connection, session: int) -> str:
    text = f"connection id {session}"
    # Another user's sessions are listed only with the PROCESS privilege; without it, the id alone.
    process = c.execute(PROCESS, {"id": session}).first()
    if process is not None:
        # TIME is the seconds since the session's last command: for the dedicated, idle lock session,
        # since it took the lock
        if process.since is not None:
            text += f" since {process.since:%Y-%m-%d %H:%M:%S}"
        if process.host:
            text += f", from {process.host}"
    program = _program(c, session)
    if program:
        text += f", program {program}"
    return text


def _program(c: sa.Connection, session: int) -> str | None:
    """The holder's program_name; None where performance_schema is off (MariaDB's default: its table is
    then empty) or not readable by deid's user."""
    try:
        value = c.execute(PROGRAM, {"id": session}).scalar()
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        return None
    return value.decode() if isinstance(value, bytes | bytearray) else value
