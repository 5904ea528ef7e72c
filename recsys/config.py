"""Where the library keeps its files.

The data directory holds datasets, runs, presets and job state::

    <data_dir>/datasets/<name>/{catalog.parquet, interactions.parquet, report.json}
    <data_dir>/runs/<run_id>/{run.json, vectors.npy, item_ids.npy, index.bin, ...}
    <data_dir>/runs/active.json
    <data_dir>/presets/<name>.json
    <data_dir>/jobs/<job_id>/{job.json, log.txt}

It is chosen by, in order: an explicit argument (the ``--data-dir`` flag), the
``RECSYS_DATA_DIR`` environment variable, then ``./data``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

ENV_DATA_DIR = "RECSYS_DATA_DIR"

#: A progress callback: ``progress(done, total, message)``. Long work takes one.
Progress = Callable[[int, int, str], None]


def null_progress(done: int, total: int, message: str = "") -> None:
    """A progress callback that does nothing."""


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory, creating it if needed.

    Parameters
    ----------
    explicit : path-like, optional
        Takes precedence over ``RECSYS_DATA_DIR`` and the ``./data`` default.
    """
    chosen = explicit or os.environ.get(ENV_DATA_DIR) or "data"
    path = Path(chosen).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) across processes.

    For read-modify-write cycles on small state files (presets, job.json) that
    several processes may update: the app's workers, a job's own process, a
    Celery worker. Writes stay atomic (temporary file, then rename); the lock
    only serialises the cycles so that no update is lost.
    """
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def file_stamp(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(inode, mtime_ns) of a file, (-1, -1) when it is missing: a cache key that changes
    when the file is replaced, even within one clock tick."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return st.st_ino, st.st_mtime_ns
