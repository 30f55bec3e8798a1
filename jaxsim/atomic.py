"""Atomic writes of result files and folders: a reader sees the old version or the new one, never part.

A file is written to a temporary name in its own folder, flushed, fsynced and renamed over the target
(``os.replace`` is atomic on POSIX); a folder is written under a temporary sibling name and renamed into
place whole. After each rename the parent folder is fsynced so the rename itself survives a power cut.

Temporary names start with ``.`` and end in ``.tmp``. They are created with ``os.open(..., 0o666)`` and
``os.mkdir(..., 0o777)``, so files and folders get the usual permissions under the user's umask (0644 and
0755 under umask 022; ``tempfile.mkstemp`` would leave 0600 / 0700 that colleagues cannot read).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_file", "write_folder", "fsync_dir"]

_TRIES = 100  # fresh random names before giving up (a clash needs another writer using the same folder)


def _temp_name(folder: Path, name: str) -> Path:
    return folder / f".{name}.{secrets.token_hex(4)}.tmp"


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder so renames and new entries in it are durable (a no-op where unsupported)."""
    if not hasattr(os, "O_DIRECTORY"):  # pragma: no cover (Windows): folders cannot be opened
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems (network, FUSE) refuse to fsync a folder
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _stage(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``path``, fsynced; returns its name."""
    for _ in range(_TRIES):
        tmp = _temp_name(path.parent, path.name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp
    raise FileExistsError(f"{path.parent}: no free temporary name after {_TRIES} tries")


def write_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync of the folder).

    On any error the temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    tmp = _stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def _make_temp_folder(parent: Path, name: str) -> Path:
    for _ in range(_TRIES):
        tmp = _temp_name(parent, name)
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"{parent}: no free temporary name after {_TRIES} tries")


def write_folder(path: str | os.PathLike, files: Mapping[str, bytes], *, exist_ok: bool = False) -> Path:
    """Write ``files`` (name -> bytes, written in order) as the folder ``path``, atomically.

    A new folder is written whole under a temporary sibling name and renamed into place, so ``path``
    appears only complete. An existing folder (``exist_ok=True``) is updated in place: every file is
    staged (written and fsynced) beside its target first and only then renamed over it, so a failure
    while writing leaves every old file as it was; files of other names in the folder stay. Missing
    parent folders are created.

    Raises:
      FileExistsError: ``path`` exists and ``exist_ok`` is False (it is never replaced or merged into).
      OSError: a write failed; no temporary file or folder is left behind.
    """
    path = Path(path)
    for name in files:
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"write_folder: {name!r} is not a plain file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        if not exist_ok:
            raise FileExistsError(errno.EEXIST, "folder exists", str(path))
        staged: list[tuple[Path, Path]] = []
        try:
            for name, data in files.items():
                staged.append((_stage(path / name, data), path / name))
            while staged:
                os.replace(*staged[0])
                staged.pop(0)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        fsync_dir(path)
        return path
    tmp = _make_temp_folder(path.parent, path.name)
    try:
        for name, data in files.items():
            write_file(tmp / name, data)
        # os.rename onto an existing non-empty folder fails, so a folder that appeared meanwhile is kept
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)
    return path
