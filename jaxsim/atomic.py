"""Atomic file writes with the permissions the user's umask asks for.

``tempfile.mkstemp`` / ``mkdtemp`` create private files (0600) and folders (0700), and renaming
keeps those modes, so results written through a temporary name would be unreadable to others even
under a umask of 022. Everything here chmods to what a plain ``open()`` / ``mkdir()`` would give.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["umask", "file_mode", "dir_mode", "write_bytes", "make_temp_dir"]


def umask() -> int:
    """The process umask (read without changing it for longer than two calls)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file: 0666 minus the umask."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """Mode of a new folder: 0777 minus the umask."""
    return 0o777 & ~umask()


def write_bytes(path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync, then rename.

    A reader sees the old file or the new one, never a partial one. The file gets ``mode``
    (default :func:`file_mode`).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def make_temp_dir(parent, prefix: str) -> Path:
    """A temporary folder in ``parent`` with :func:`dir_mode` (to be renamed into place when complete)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
    os.chmod(path, dir_mode())
    return path
