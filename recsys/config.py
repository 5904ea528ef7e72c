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

import os
from collections.abc import Callable
from pathlib import Path

from recsys._io import file_lock, file_stamp  # noqa: F401  (re-exported: the lock and cache key live in _io)

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


# ---------------------------------------------------------------------------
# the import folder: the only server folder a browser user may name
# ---------------------------------------------------------------------------
ENV_IMPORT_DIR = "RECSYS_IMPORT_DIR"
ENV_MAX_UPLOAD_MB = "RECSYS_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 20
#: Longest path accepted from a form (longer ones are refused before any file-system call).
MAX_PATH_CHARS = 1024


def import_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder whose files the Data page (and ``POST /train``) may read, created if needed.

    ``$RECSYS_IMPORT_DIR``, else ``<data dir>/imports``; symlinks resolved.
    """
    chosen = os.environ.get(ENV_IMPORT_DIR)
    path = Path(chosen).expanduser() if chosen else data_dir(root) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def resolve_import_path(
    typed: object, root: str | os.PathLike[str] | None = None, *, allow_dir: bool = False
) -> Path:
    """Resolve a path a user typed to a regular file (or folder) inside the import folder.

    A relative path is taken inside the import folder. The path is resolved
    (symlinks followed) before the check, so a link cannot lead out. Anything
    outside gets one message whether or not it exists; FIFOs, devices and
    sockets are refused from ``stat`` alone, without opening them.

    Raises
    ------
    DataValidationError
        The path is empty, too long, outside the import folder, missing, not a
        regular file, or a folder where a file is needed.
    """
    import stat

    from recsys.errors import DataValidationError

    base = import_dir(root)
    if not isinstance(typed, str) or not typed.strip():
        raise DataValidationError(f"type the path of a file in the import folder {base}, or upload the file")
    text = typed.strip()
    if len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise DataValidationError(
            f"the path is {len(text):,} characters long; at most {MAX_PATH_CHARS} are accepted"
            if len(text) > MAX_PATH_CHARS
            else "the path holds a NUL character"
        )
    outside = DataValidationError(
        f"files are read only from the import folder {base}: copy the file there (or upload it) "
        "and give its path inside that folder",
        file=text[:200],
    )
    p = Path(text).expanduser() if text.startswith("~") else Path(text)
    if not p.is_absolute():
        p = base / p
    try:
        real = p.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop, a bad name
        raise outside from None
    if real != base and not real.is_relative_to(base):
        raise outside
    try:
        mode = os.stat(real).st_mode
    except OSError:
        raise DataValidationError(
            "no such file in the import folder; check the name", file=text[:200]
        ) from None
    if stat.S_ISDIR(mode):
        if allow_dir and real != base:
            return real
        raise DataValidationError("is a folder; choose the data file inside it", file=text[:200])
    if not stat.S_ISREG(mode):
        raise DataValidationError("is not a regular file (a pipe, device or socket)", file=text[:200])
    return real


def upload_max_bytes() -> int:
    """Largest file the browser may upload (``$RECSYS_MAX_UPLOAD_MB``, default 20 MB)."""
    try:
        mb = float(os.environ.get(ENV_MAX_UPLOAD_MB) or DEFAULT_MAX_UPLOAD_MB)
    except ValueError:
        mb = DEFAULT_MAX_UPLOAD_MB
    return int(max(mb, 0.001) * 1024 * 1024)
