"""A copy of a whole PostgreSQL data directory, made by reflinks, for servers where production and staging
cannot share a server (the `reflink` clone method).

The source is a stopped standby or a restored base backup on a filesystem with reflinks (cluster.py says
what is accepted and why). `copy_data_directory` checks it, reflink-copies it into a new directory beside
the other copies (reflink.py: refused, never a silent full copy, where the filesystem cannot), leaves out
what a running server would not need or must not inherit (below), makes the copy startable as deid's own
server (instance.py), and checks that the source stayed stopped throughout. `instance.start` then runs it.

Left out of the copy, as pg_basebackup leaves them out of a backup (src/backend/backup/basebackup.c), plus
the standby's signal files and production's server logs (they may quote production values, and the copy
becomes staging's): postmaster.pid and .opts, standby.signal, recovery.signal, the contents of
pg_dynshmem, pg_notify, pg_serial, pg_snapshots, pg_stat_tmp, pg_subtrans, pg_replslot (a slot nobody
reads would keep the copy's WAL forever), log and pg_log, and temporary files. pg_wal, when it is a link to
another folder, is copied as a folder; a tablespace outside the data directory is refused: the copy would
write into the source's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from deid.backends.postgresql.cloners import cluster, instance, reflink

REFLINK = "reflink"
FULL_COPY = "full copy"
_SKIPPED = {"postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal", "current_logfiles"}
_EMPTIED = {
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
    "pg_replslot",
    "log",
    "pg_log",
}


@dataclass(frozen=True)
class DataDirCopy:
    """A prepared, stopped copy and what it cost."""

    path: Path
    source: cluster.Cluster
    tree: reflink.TreeCopy
    extra_bytes: int | None  # the copy's blocks that no other file shares, once prepared

    @property
    def binaries(self) -> cluster.Binaries:
        return self.source.binaries

    def record(self) -> dict:
        """The run record's facts: how the files were copied, the seconds the copy took, the free space it
        took on the copies' filesystem, whether its blocks are shared with the source's."""
        return {
            "clone_method_detail": REFLINK if self.tree.shared else FULL_COPY,
            "clone_copy_seconds": round(self.tree.seconds, 3),
            "clone_extra_bytes": self.extra_bytes,
            "clone_shared": self.tree.shared,
            "clone_source_state": self.source.state,
        }


def copy_data_directory(
    source: Path, target: Path, *, bindir: Path | None = None, full_copy: bool = False
) -> DataDirCopy:
    """Copy the stopped cluster in `source` to the new directory `target` (on the same filesystem), ready to
    start with instance.start. ConfigError, with nothing left behind, when the source may not be copied
    (cluster.inspect), the filesystem cannot reflink and `full_copy` is off, or the source was started
    meanwhile."""
    checked = cluster.inspect(source, bindir)
    tree = reflink.copy_tree(checked.path, Path(target), _policy, full_copy=full_copy)
    try:
        checked.check_untouched()
        instance.prepare(Path(target))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return DataDirCopy(Path(target), checked, tree, reflink.unshared_bytes(Path(target)))


def _policy(path: Path, entry: os.DirEntry) -> str:
    top = len(path.parts) == 1
    if (top and entry.name in _SKIPPED) or entry.name.startswith("pgsql_tmp"):
        return "skip"
    if top and entry.name in _EMPTIED and entry.is_dir():
        return "empty"
    if top and entry.name == "pg_wal":
        return "follow"
    if (top and entry.name == "tablespace_map") or (path.parts[0] == "pg_tblspc" and entry.is_symlink()):
        where = os.readlink(entry.path) if entry.is_symlink() else "named in tablespace_map"
        return (
            f"a tablespace outside the data directory ({where}); a copy would write into the source's "
            "tablespace. deid copies data directories whose tablespaces are all inside them"
        )
    return "copy"
