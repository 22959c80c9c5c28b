"""A reflink copy of a directory tree: every file cloned by the FICLONE ioctl, so the copy shares the
source's blocks until one side writes them.

FICLONE (linux/fs.h) makes the destination file share all of the source file's extents, or fails: it never
copies bytes. XFS made with reflink=1 and btrfs have it; ext4, tmpfs and an XFS without reflinks answer
EOPNOTSUPP, two filesystems EXDEV. A failure is refused with the directory, the filesystem and the fix:
deid never turns a clone that takes milliseconds and no space into a full copy that takes the source's size,
unless the caller was configured to accept one (`full_copy=True`), and the facts say which it was.

The source is only read: files are opened O_RDONLY and the ioctl is made on the destination. Owners and
modes are carried over (the server's user must own its data directory, mode 0700 or 0750).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deid.backends.postgresql import cow
from deid.errors import ConfigError

FICLONE = 0x40049409  # _IOW(0x94, 9, int)
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EXDEV, errno.ENOSYS}


@dataclass(frozen=True)
class TreeCopy:
    """What a copy of a tree did: whether its blocks are shared (every file reflinked), its files and bytes,
    and seconds."""

    shared: bool
    files: int
    bytes: int
    seconds: float


class NoReflink(ConfigError):
    """The filesystem cannot reflink: nothing was copied."""


# Decides, for a path relative to the tree's root, how to copy it: "copy", "skip" (not at all), "empty" (a
# directory made empty), "follow" (a symbolic link copied as what it points to). Anything else is why the
# path is refused. A symbolic link is copied only when followed: the copy must share no file with the source.
Policy = Callable[[Path, os.DirEntry], str]


def copy_tree(source: Path, target: Path, policy: Policy, *, full_copy: bool = False) -> TreeCopy:
    """Copy `source` to the new directory `target` (whose parent must exist, on the same filesystem), every
    file reflinked; NoReflink before anything is copied when the filesystem cannot (unless `full_copy`).
    A failure part-way removes `target`."""
    if target.exists():
        raise ConfigError(f"{target} exists already: a copy is only ever made into a new directory")
    shared = _can_reflink(source, target.parent)
    if not shared and not full_copy:
        raise NoReflink(
            f"cannot reflink {source} into {target.parent}: {_why_not(source, target.parent)}. Put the data "
            "directory and the copies on one filesystem with reflinks (XFS made with mkfs.xfs -m reflink=1, "
            "or btrfs), or accept a full copy of every byte (full_copy: true)"
        )
    started = time.monotonic()
    counts = [0, 0]
    try:
        _copy_dir(source, target, Path("."), policy, shared, counts)
        sync_filesystem(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    seconds = time.monotonic() - started
    return TreeCopy(shared, counts[0], counts[1], seconds)


def _copy_dir(source: Path, target: Path, relative: Path, policy: Policy, shared: bool, counts: list) -> None:
    info = os.stat(source)
    os.mkdir(target, 0o700)
    _own(target, info)
    with os.scandir(source) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            path = relative / entry.name
            action = policy(path, entry)
            if action == "skip":
                continue
            if action == "empty":
                os.mkdir(target / entry.name, 0o700)
                _own(target / entry.name, entry.stat())
            elif action == "follow" or (action == "copy" and not entry.is_symlink()):
                if entry.is_dir():
                    _copy_dir(Path(entry.path), target / entry.name, path, policy, shared, counts)
                elif entry.is_file():
                    counts[1] += _copy_file(entry.path, target / entry.name, shared)
                    counts[0] += 1
                else:
                    raise ConfigError(f"{entry.path}: neither a file nor a directory; deid copies only those")
            elif action == "copy":
                raise ConfigError(
                    f"{entry.path} is a symbolic link (to {os.readlink(entry.path)}): a copy would write "
                    "through it into the source's file; replace it with the file itself"
                )
            else:
                raise ConfigError(f"{entry.path}: {action}")


def _copy_file(source: str, target: Path, shared: bool) -> int:
    info = os.stat(source)
    src = os.open(source, os.O_RDONLY)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if shared:
                fcntl.ioctl(dst, FICLONE, src)
            else:
                _copy_bytes(src, dst, info.st_size)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    _own(target, info)
    return info.st_size


def sync_filesystem(path: Path) -> None:
    """syncfs(2) on `path`'s filesystem: the copy is on disk before a server runs on it (a server started
    from a clean shutdown does not sync the files it finds, and a host crash would leave it torn). For a
    reflink it writes only the clones' metadata; for a full copy, every byte, which is part of its cost."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc().syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs {path}: {os.strerror(error)}")
    finally:
        os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _copy_bytes(src: int, dst: int, size: int) -> None:
    """The configured full copy: copy_file_range, the kernel moving the bytes."""
    left = size
    while left > 0:
        done = os.copy_file_range(src, dst, left)
        if done == 0:
            break
        left -= done


def _own(path: Path, info: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.chown(path, info.st_uid, info.st_gid)
    os.chmod(path, stat.S_IMODE(info.st_mode))


def _can_reflink(source: Path, folder: Path) -> bool:
    """Whether a file of `source`'s filesystem can be reflinked into `folder`: PG_VERSION (or the first
    file found) cloned into a scratch file there, then removed."""
    probe = source / "PG_VERSION"
    if not probe.is_file():
        probe = next((p for p in source.rglob("*") if p.is_file() and not p.is_symlink()), None)
        if probe is None:
            return True  # nothing to clone: any filesystem will do
    scratch = folder / f".deid-reflink-probe-{os.getpid()}"
    src = os.open(probe, os.O_RDONLY)
    try:
        dst = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            fcntl.ioctl(dst, FICLONE, src)
            return True
        except OSError as error:
            if error.errno in _NO_REFLINK:
                return False
            raise
        finally:
            os.close(dst)
            scratch.unlink(missing_ok=True)
    finally:
        os.close(src)


def _why_not(source: Path, folder: Path) -> str:
    here, there = filesystem_of(source), filesystem_of(folder)
    if os.stat(source).st_dev != os.stat(folder).st_dev:
        return f"they are on two filesystems ({here} and {there}), and a reflink stays inside one"
    return f"its filesystem ({here}) has no reflinks"


def filesystem_of(path: Path) -> str:
    """'xfs on /mnt/data': the type and mount point of the filesystem holding `path` (/proc/self/mountinfo);
    'unknown' where it cannot be read."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    resolved, best = str(Path(path).resolve()), ("", "unknown")
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        mountpoint = fields[4].replace("\\040", " ")
        kind = fields[fields.index("-") + 1]
        inside = resolved == mountpoint or resolved.startswith(mountpoint.rstrip("/") + "/")
        if inside and len(mountpoint) >= len(best[0]):
            best = (mountpoint, kind)
    return f"{best[1]} on {best[0]}" if best[0] else "unknown"


def unshared_bytes(root: Path) -> int | None:
    """The bytes of the files under `root` whose blocks no other file shares: the space the tree takes of
    its own (FIEMAP, as the backend's cow module reads it). Unlike free space before and after, it does not
    count what anything else wrote meanwhile. None where the filesystem cannot say."""
    total = 0
    try:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    mapped, in_shared = cow._extents(path)
                    total += mapped - in_shared
    except OSError:
        return None
    return total
