"""Private files for run records: 0600 files in 0700 folders, whatever the umask of the process.

Records hold no value from production, but they name its tables and columns, and a failed run's error names
its servers: readable by deid's own user only. Modes are set explicitly, never left to the umask, since
Airflow workers and containers often run with a permissive one (0o022, or 0o000).

A records dir that already exists belongs to whoever made it and keeps its mode (docs/records.md says how to
make it private); the folders deid makes inside it are deid's, so a looser mode found there (left by an
older deid, or a copy) is tightened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def write_private(root: Path, relative: str, data: bytes) -> Path:
    """Write `data` to root/relative atomically (a reader sees the old file or the new one, never half of
    one); the file is 0600 from its creation, its folders 0700."""
    path = root / relative
    _private_folders(root, path.parent)
    partial = path.with_name(f".{path.name}.partial")  # hidden: dataset readers skip dot files
    partial.unlink(missing_ok=True)  # a crashed run's leftover; O_EXCL below refuses to reuse one
    try:
        # Created with its mode (O_EXCL, O_NOFOLLOW: never through a file or link someone put there), so it
        # is private before the first byte; fchmod undoes a umask that took more than group and others.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        partial.replace(path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    return path


def _private_folders(root: Path, folder: Path) -> None:
    """Make `folder` and the folders up to it 0700: those missing are created, those deid owns inside
    `root` are tightened. `root` itself, and the folders above it, keep the mode they have if they exist."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # another run made it meanwhile: like a folder that existed
        path.chmod(FOLDER_MODE)  # mkdir's mode went through the umask
    inside = [p for p in (folder, *folder.parents) if p != root and root in p.parents]
    for path in inside:
        if stat.S_IMODE(path.stat().st_mode) != FOLDER_MODE:
            path.chmod(FOLDER_MODE)
