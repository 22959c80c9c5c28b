"""A template copy that shares blocks (PostgreSQL 18's `file_copy_method = clone`), and what it cost on disk.

`CREATE DATABASE ... STRATEGY FILE_COPY` copies the template's files. From PostgreSQL 18, a session that sets
`file_copy_method = clone` (any user may: its context is `user`) has them copied by copy_file_range(2) on
Linux (copyfile(3) on macOS): on a filesystem with reflinks (XFS made with reflink=1, btrfs, ZFS 2.2+) the
copy shares the template's blocks, takes milliseconds whatever the size, and costs no space until one side
is written. On a filesystem without them (ext4), the kernel copies the bytes itself: the same full copy
as `file_copy_method = copy`, with no error, so there is nothing to fall back from.

Whether blocks were shared can only be seen from the host that holds the files: `watch_disk` finds the
folder of the template's tablespace when the server's data directory is on this host and readable (its
postmaster.pid names this very server), measures the free space of its filesystem around the copy
(statvfs), and asks the filesystem (FIEMAP) whether the copy's extents are shared. Elsewhere (a database
server on another host, as in most deployments) both stay unknown.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from deid import rawsql

CLONE = "file_copy_method=clone"
FILE_COPY = "file_copy"  # PostgreSQL 15-17: STRATEGY FILE_COPY, always a byte copy
TEMPLATE = "template"  # before 15: the only strategy, a byte copy
SHARED_ENOUGH = 0.5  # a clone shares (nearly) every byte; a byte copy none


def file_copy(connection: sa.Connection) -> tuple[str, str]:
    """The STRATEGY clause for `CREATE DATABASE ... TEMPLATE`, and how the files will be copied (for the run
    record). Sets `file_copy_method = clone` on this session when the server has the setting; the session
    is deid's own admin connection, closed after the copy."""
    if connection.dialect.server_version_info < (15,):
        return "", TEMPLATE
    offered = connection.execute(
        sa.text("SELECT 'clone' = ANY(enumvals) FROM pg_settings WHERE name = 'file_copy_method'")
    ).scalar()
    if not offered:
        return " STRATEGY FILE_COPY", FILE_COPY
    rawsql.execute(connection, "SET file_copy_method = clone")
    return " STRATEGY FILE_COPY", CLONE


@dataclass(frozen=True)
class DiskWatch:
    """The folder that holds the template's database directory (`base/` or a tablespace's `PG_*` folder),
    when it is on this host, and its filesystem's free bytes before the copy."""

    folder: Path | None
    free_before: int | None

    def finish(self, connection: sa.Connection, copy: str) -> dict[str, int | bool | None]:
        """The run record's `clone_extra_bytes` (free space the copy took, whatever else wrote to that
        filesystem meanwhile: the server's WAL too) and `clone_shared` (most of the copy's bytes share
        blocks with another file); both None when the files are not on this host."""
        if self.folder is None or self.free_before is None:
            return {"clone_extra_bytes": None, "clone_shared": None}
        extra = self.free_before - _free_bytes(self.folder)
        folder = self.folder / str(_oid(connection, copy))
        return {"clone_extra_bytes": extra, "clone_shared": shared(folder)}


def watch_disk(connection: sa.Connection, template: str) -> DiskWatch:
    """Start watching the filesystem that holds `template`'s files, if this host has it (see module doc)."""
    folder = _local_folder(connection, template)
    if folder is None:
        return DiskWatch(None, None)
    try:
        return DiskWatch(folder, _free_bytes(folder))
    except OSError:
        return DiskWatch(None, None)


def _local_folder(connection: sa.Connection, database: str) -> Path | None:
    """The folder holding `database`'s directory in its default tablespace, when the server's data
    directory is on this host and readable; None otherwise (data_directory is hidden from roles without
    pg_read_all_settings, and a path of another host may exist here by chance: postmaster.pid decides)."""
    row = connection.execute(
        sa.text(
            "SELECT (SELECT setting FROM pg_settings WHERE name = 'data_directory'), "
            "floor(extract(epoch FROM pg_postmaster_start_time()))::bigint, "
            "current_setting('port'), d.oid, pg_tablespace_location(d.dattablespace) "
            "FROM pg_database d WHERE d.datname = :d"
        ),
        {"d": database},
    ).one_or_none()
    if row is None or row[0] is None:
        return None
    data_directory, started, port, oid, location = row
    if not _is_this_server(Path(data_directory), started, port):
        return None
    if not location:  # pg_default
        return Path(data_directory) / "base"
    # A tablespace keeps its databases under PG_<major>_<catalog version>/: the one holding this database
    found = [p for p in Path(location).glob("PG_*") if (p / str(oid)).is_dir()]
    return found[0] if len(found) == 1 else None


def _is_this_server(data_directory: Path, started: int, port: str) -> bool:
    """postmaster.pid (pid, data directory, start time in epoch seconds, port, ...) names this server."""
    try:
        lines = (data_directory / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    if len(lines) < 4 or not lines[2].strip().isdigit():
        return False
    # The postmaster notes its start time a moment before it stamps pg_postmaster_start_time()
    return lines[1] == str(data_directory) and lines[3].strip() == port and abs(int(lines[2]) - started) <= 2


def _oid(connection: sa.Connection, database: str) -> int:
    return connection.execute(
        sa.text("SELECT oid FROM pg_database WHERE datname = :d"), {"d": database}
    ).scalar_one()


def _free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bfree * stats.f_frsize


# FIEMAP (linux/fiemap.h): the extents of a file, each flagged SHARED when another file uses its blocks too
_FS_IOC_FIEMAP = 0xC020660B  # _IOWR('f', 11, struct fiemap)
_FIEMAP_FLAG_SYNC = 0x1  # write dirty pages out first, so delayed allocations are mapped
_EXTENT_LAST = 0x1
_EXTENT_SHARED = 0x2000
_HEADER = struct.Struct("=QQIIII")  # start, length, flags, mapped extents, extent count, reserved
_EXTENT = struct.Struct("=QQQQQIIII")  # logical, physical, length, 2 reserved, flags, 3 reserved
_BATCH = 256  # extents asked for per call


def shared(folder: Path) -> bool | None:
    """Whether most of the bytes of the files in `folder` share their blocks with another file; None when
    they cannot be read or the filesystem cannot say (no FIEMAP)."""
    total = in_shared = 0
    try:
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False):
                size, common = _extents(entry.path)
                total, in_shared = total + size, in_shared + common
    except OSError:
        return None
    return in_shared >= SHARED_ENOUGH * total if total else None


def _extents(path: str) -> tuple[int, int]:
    """Bytes mapped by `path`'s extents, and how many of them are in shared extents."""
    total = in_shared = start = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            buffer = bytearray(_HEADER.size + _BATCH * _EXTENT.size)
            _HEADER.pack_into(buffer, 0, start, 2**64 - 1 - start, _FIEMAP_FLAG_SYNC, 0, _BATCH, 0)
            fcntl.ioctl(fd, _FS_IOC_FIEMAP, buffer)
            mapped = _HEADER.unpack_from(buffer)[3]
            flags = 0
            for i in range(mapped):
                logical, _, length, _, _, flags, *_ = _EXTENT.unpack_from(
                    buffer, _HEADER.size + i * _EXTENT.size
                )
                total += length
                in_shared += length if flags & _EXTENT_SHARED else 0
                start = logical + length
            if mapped == 0 or flags & _EXTENT_LAST:
                return total, in_shared
    finally:
        os.close(fd)
