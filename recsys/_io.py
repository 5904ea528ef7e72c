"""Small-file I/O shared by every writer: atomic writes, the one cache key, a cross-process lock.

- :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_write_json`
  write to a hidden temporary file in the *same folder* (``.<name>.<random>``,
  the pattern :func:`recsys.stored.sweep_leftovers` cleans up after a kill),
  ``fsync`` it and ``os.replace`` it over the target: a reader sees the old
  file or the new one, never half of one. A full disk becomes
  :class:`~recsys.errors.DiskFullError` and the temporary file is removed.
- :func:`atomic_path` is the same for writers that must be handed a file name
  (a library's ``save(path)``).
- :func:`file_stamp` is the one cache key for a watched file (``run.json``, a
  dataset's ``report.json``, a preset): ``(mtime_ns, size, inode)``, or None
  when the file is missing. The inode changes on every atomic replace, so a
  file rewritten within one clock tick is still seen as new.
- :func:`file_lock` serialises read-modify-write cycles across processes
  (``fcntl.flock``; no lock library is installed in the project's venv).

This module imports only the standard library at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Stamp = tuple[int, int, int]


def file_stamp(path: str | os.PathLike[str]) -> Stamp | None:
    """``(mtime_ns, size, inode)`` of ``path``, or None when it is missing or unreadable."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) across processes.

    For read-modify-write cycles on small state files (presets, job.json) that
    several processes may update: the app's workers, a job's own process, a
    Celery worker. Writes stay atomic; the lock only serialises the cycles so
    that no update is lost. The lock dies with the process.
    """
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], what: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsync-ed and renamed over ``path``.

    On any exception (including a full disk, reported as
    :class:`~recsys.errors.DiskFullError` naming ``what``) the temporary file
    is removed and ``path`` is left as it was.
    """
    from recsys.stored import disk_full_guard

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with disk_full_guard(what or path.name, path.parent):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, what: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, what) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, what: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), what)


def atomic_write_json(
    path: str | os.PathLike[str],
    data: Any,
    what: str | None = None,
    *,
    indent: int | None = 2,
    default: Any = str,
) -> None:
    """Write ``data`` as JSON to ``path`` atomically (values JSON cannot hold go through ``default``)."""
    atomic_write_text(path, json.dumps(data, indent=indent, default=default), what)


def atomic_create_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True when this call created it.

    The file appears complete or not at all (written and fsync-ed under a
    temporary name, then hard-linked into place, which fails if another
    process got there first), so a crash never leaves an empty file behind.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)
