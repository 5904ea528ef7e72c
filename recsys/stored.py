"""The files the library stores, checked when they are read back.

Every JSON file written earlier and read again (``run.json``, ``runs/active.json``,
``model.json``, ``job.json``, preset files, dataset ``report.json``) is validated
with a pydantic schema here. The schemas are permissive about keys they do not
know (a newer version may add some) and strict about the types the code relies
on: valid JSON of the wrong shape (a list, ``"created": 5``, a missing key) is
refused with a reason naming the file and the field, as are truncated or
garbage files. ``.npy`` arrays are checked from their header (shape, dtype,
length) without reading the data.

The callers turn a refusal into their own error (a damaged run, a damaged
preset...), so one bad file marks only what it belongs to.

It also holds the two helpers for saving that every writer shares:
:func:`disk_full_guard` (a full disk becomes :class:`~recsys.errors.DiskFullError`,
one clear message) and :func:`saving_dir` / :func:`sweep_leftovers` (temporary
folders of a save that was killed are removed at the next start).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from recsys.errors import DiskFullError, StoredDataError

logger = logging.getLogger(__name__)

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")


# ---------------------------------------------------------------------------
# schemas
# ---------------------------------------------------------------------------
class _Stored(BaseModel):
    """Unknown keys are kept (forward compatibility); known ones must have their type."""

    model_config = ConfigDict(extra="allow", strict=True)


class DatasetRef(_Stored):
    name: str = Field(min_length=1)
    fingerprint: str | None = None


class RunFile(_Stored):
    """``runs/<run_id>/run.json``."""

    run_id: str = Field(min_length=1)
    family: str = Field(min_length=1)
    created: str
    dataset: DatasetRef
    label: str | None = None
    is_embedding: bool = True
    status: str = "complete"
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    coverage: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    artifacts: dict[str, Any] = {}
    split: dict[str, Any] = {}


class ActiveByDataset(BaseModel):
    """``runs/active.json`` now: the default dataset and dataset -> family -> run id."""

    model_config = ConfigDict(strict=True, extra="allow")

    default_dataset: str | None = None
    active: dict[str, dict[str, str]]


class ActiveFile(RootModel[ActiveByDataset | dict[str, str]]):
    """``runs/active.json``: ``{"default_dataset", "active": {dataset: {family: run_id}}}``,
    or the older flat family -> run id (still read)."""

    model_config = ConfigDict(strict=True)


class ModelFile(_Stored):
    """``runs/<run_id>/model.json`` (written by ``ItemModel.save``)."""

    family: str = Field(min_length=1)
    params: dict[str, Any]
    coverage: dict[str, Any] = {}


class JobFile(_Stored):
    """``jobs/<job_id>/job.json``."""

    job_id: str = Field(min_length=1)
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
    label: str | None = None
    params: dict[str, Any] = {}
    target: str | None = None
    runner: str | None = None
    progress: dict[str, Any] | None = None
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    pid: int | None = None
    pid_created: float | None = None
    host: str | None = None
    error: str | None = None


class PresetVersion(_Stored):
    version: int
    hash: str | None = None
    created: str | None = None
    filters: dict[str, Any]


class PresetFile(_Stored):
    """``presets/<name>.json``: the whole history of a preset."""

    name: str | None = None
    versions: list[PresetVersion] = Field(min_length=1)


class DatasetSummary(_Stored):
    """The counts pages format as numbers (so never null)."""

    kind: str | None = None
    items: int = 0
    interactions: int = 0
    sequences: int = 0
    users: int = 0
    categories: int = 0
    top_categories: int = 0
    brands: int = 0
    adult_items: int = 0
    items_with_interactions: int = 0


class ReportFile(_Stored):
    """``datasets/<name>/report.json``."""

    name: str = Field(min_length=1)
    kind: str = "sessions"
    fingerprint: str | None = None
    report: dict[str, Any] = {}
    summary: DatasetSummary = DatasetSummary()


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------
def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_JSON_TYPE = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return _JSON_TYPE.get(type(value), type(value).__name__)


def schema_reason(exc: ValidationError) -> str:
    """One line naming each field at fault: ``'created' should be a string, got a number (5)``."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"] if p != "root" and not str(p).startswith("function-"))
        value = err.get("input")
        if err["type"] == "missing":
            parts.append(f"'{loc}' is missing")
            continue
        what = err["msg"].replace("Input should be", "should be")
        if what.startswith("should be a valid "):
            what = "should be a " + what[len("should be a valid ") :]
        where = f"'{loc}' " if loc else "the file "
        if err["type"] in ("model_type", "dict_type", "model_attributes_type") and not loc:
            parts.append(f"should hold a JSON object, got {_json_type(value)}")
        else:
            parts.append(f"{where}{what}, got {_json_type(value)} ({_short(value)})")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_json_text(raw: bytes) -> Any:
    """The JSON value of a file's bytes; ValueError with a reason when it is not JSON."""
    if not raw.strip():
        raise ValueError("is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text (garbage bytes)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON, maybe truncated ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ValueError("is not valid JSON (nested too deeply)") from None


def read_stored(path: str | os.PathLike[str], schema: type[BaseModel] | None = None) -> Any:
    """Read a stored JSON file and check it against ``schema``; return the plain JSON value.

    The value is returned as read (unknown keys included), not as the model, so
    callers keep working with dicts.

    Raises
    ------
    FileNotFoundError
        The file does not exist (callers decide what that means).
    StoredDataError
        Unreadable, not JSON, or not of the schema's shape; ``reason`` says why
        and ``str()`` names the file too.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _damaged(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        value = parse_json_text(raw)
    except ValueError as exc:
        raise _damaged(path, str(exc)) from None
    if schema is not None:
        try:
            schema.model_validate(value)
        except ValidationError as exc:
            raise _damaged(path, schema_reason(exc)) from None
    return value


def _damaged(path: Path, reason: str) -> StoredDataError:
    err = StoredDataError(f"{path} {reason}")
    err.reason = f"{path.name} {reason}"  # type: ignore[attr-defined]
    err.path = path  # type: ignore[attr-defined]
    err.detail = reason  # type: ignore[attr-defined]  # what is wrong, without the file
    return err


def damaged_file(path: str | os.PathLike[str], reason: str) -> StoredDataError:
    """The error for a stored file that is not what was written (``reason``: what is wrong,
    e.g. "is missing"); ``str()`` names the whole path, ``reason`` the file name."""
    return _damaged(Path(path), reason)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]


# ---------------------------------------------------------------------------
# a model's own files (ItemModel.load and the families' _load_state): a damaged one is
# named with what is wrong, not only "the model cannot be loaded (ValueError: ...)"
# ---------------------------------------------------------------------------
def read_json_file(path: str | os.PathLike[str], schema: type[BaseModel] | None = None) -> Any:
    """:func:`read_stored` for a file a model needs: a missing one is damage too."""
    try:
        return read_stored(path, schema)
    except FileNotFoundError:
        raise _damaged(Path(path), "is missing") from None


def read_npy(path: str | os.PathLike[str]) -> Any:
    """An ``.npy`` array a model wrote (no pickle); missing, truncated, not an ``.npy`` file or
    holding Python objects: a :class:`StoredDataError` naming the file and what is wrong."""
    import numpy as np

    path = Path(path)
    try:
        npy_header(path)  # the header only: truncated, garbage and object arrays are named
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise _damaged(path, "is missing") from None
    except (ValueError, EOFError, OSError) as exc:
        raise _damaged(path, f"is not a readable .npy array ({_first_line(exc)})") from None


def read_npz(path: str | os.PathLike[str]) -> Any:
    """A sparse matrix (CSR) a model wrote with ``scipy.sparse.save_npz``; missing, truncated
    or not such a file: a :class:`StoredDataError` naming the file and what is wrong."""
    import zipfile
    import zlib

    import scipy.sparse as sp

    path = Path(path)
    try:
        return sp.load_npz(path).tocsr()
    except FileNotFoundError:
        raise _damaged(path, "is missing") from None
    except (ValueError, EOFError, OSError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise _damaged(path, f"is not a readable sparse matrix (.npz: {_first_line(exc)})") from None


def reason_of(exc: BaseException) -> str:
    """The short reason of an error raised here (the file name, not its whole path)."""
    return str(getattr(exc, "reason", None) or exc)


# ---------------------------------------------------------------------------
# .npy arrays, from their header
# ---------------------------------------------------------------------------
def npy_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], Any]:
    """(shape, dtype) of a ``.npy`` file, checked against the file's length.

    Reads the header only (a few hundred bytes).

    Raises
    ------
    StoredDataError
        Not an ``.npy`` file (garbage), an unreadable header, an array of Python
        objects (which would need pickle), or a file shorter or longer than its
        header says (truncated).
    """
    import numpy as np

    path = Path(path)
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            try:
                version = fmt.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = fmt.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = fmt.read_array_header_2_0(fh)
                else:
                    shape, fortran, dtype = fmt._read_array_header(fh, version)  # noqa: SLF001
            except (ValueError, SyntaxError, TypeError, EOFError) as exc:
                first = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
                raise _damaged(path, f"is not a readable .npy array ({first})") from None
            data_start = fh.tell()
            size = os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _damaged(path, f"cannot be read ({exc.strerror or exc})") from None
    if dtype.hasobject:
        raise _damaged(path, "holds Python objects (pickle), which are never loaded")
    expected = data_start + math.prod(shape) * dtype.itemsize
    if size < expected:
        raise _damaged(path, f"is truncated ({size:,} bytes; its header promises {expected:,})")
    if size > expected:
        raise _damaged(path, f"is longer than its header says ({size:,} bytes, expected {expected:,})")
    return tuple(int(n) for n in shape), dtype


def check_run_files(folder: Path, meta: dict[str, Any]) -> None:
    """Check a run's model files against each other and its (already valid) run.json.

    ``model.json`` (schema, same family), ``item_ids.npy`` (a 1-D array of
    strings), for an embedding run ``vectors.npy`` (2-D floats, one row per
    item) and ``query_vectors.npy`` when present (same shape), and the header
    of every other ``.npy`` file of the folder.

    Raises
    ------
    StoredDataError
        With ``reason`` naming the file.
    """
    try:
        model = read_stored(folder / "model.json", ModelFile)
    except FileNotFoundError:
        raise _damaged(folder / "model.json", "is missing") from None
    if model["family"] != meta["family"]:
        raise _damaged(
            folder / "model.json", f"is of family '{model['family']}' but run.json says '{meta['family']}'"
        )
    headers: dict[str, tuple[tuple[int, ...], Any]] = {}
    for name in sorted(p.name for p in folder.glob("*.npy")):
        headers[name] = npy_header(folder / name)
    if "item_ids.npy" not in headers:
        raise _damaged(folder / "item_ids.npy", "is missing")
    shape, dtype = headers["item_ids.npy"]
    if len(shape) != 1 or dtype.kind not in "US":
        raise _damaged(folder / "item_ids.npy", f"should be a list of ids, holds {dtype} of shape {shape}")
    n_items = shape[0]
    if meta.get("is_embedding", True) and "vectors.npy" not in headers:
        raise _damaged(folder / "vectors.npy", "is missing")
    for name in ("vectors.npy", "query_vectors.npy"):
        if name not in headers:
            continue
        shape, dtype = headers[name]
        if len(shape) != 2 or dtype.kind != "f":
            raise _damaged(
                folder / name, f"should be a table of float vectors, holds {dtype} of shape {shape}"
            )
        if shape[0] != n_items:
            raise _damaged(folder / name, f"has {shape[0]:,} rows but item_ids.npy has {n_items:,} items")
    if "query_vectors.npy" in headers and "vectors.npy" in headers:
        if headers["query_vectors.npy"][0] != headers["vectors.npy"][0]:
            raise _damaged(
                folder / "query_vectors.npy",
                f"has shape {headers['query_vectors.npy'][0]} but vectors.npy has {headers['vectors.npy'][0]}",
            )


# ---------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError meaning "no space left" or "quota exceeded" (and SQLite's "disk is full")."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    return type(exc).__name__ == "OperationalError" and "disk is full" in str(exc)


def disk_full_message(what: str, where: str | os.PathLike[str], exc: BaseException | None = None) -> str:
    quota = isinstance(exc, OSError) and exc.errno == getattr(errno, "EDQUOT", None)
    cause = "the disk quota is exceeded" if quota else "the disk is full"
    return (
        f"{what} was not saved: {cause} at {where}. Nothing half-written was kept; "
        "free some space and try again"
    )


@contextlib.contextmanager
def disk_full_guard(what: str, where: str | os.PathLike[str]) -> Iterator[None]:
    """Turn "no space left on device" / "quota exceeded" inside the block into :class:`DiskFullError`.

    The caller still removes what it half-wrote (its own ``except``/``finally``);
    this only makes the message clear for the CLI, the API (507) and the UI.
    """
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise DiskFullError(
                disk_full_message(what, where, exc),
                getattr(exc, "errno", None),
                str(getattr(exc, "filename", None) or where),
            ) from exc
        raise


# ---------------------------------------------------------------------------
# SQLite files opened by several processes at once
# ---------------------------------------------------------------------------
def open_wal_sqlite(connect: Callable[[], Any], timeout: float, setup: str = "") -> Any:
    """A connection from ``connect()`` switched to WAL mode (then ``setup``'s statements run).

    Processes opening a new file at once race to switch it to WAL; SQLite answers the losers
    "database is locked" at once, without its busy handler (waiting there could deadlock), so
    each tries again with a new connection until ``timeout`` seconds, as a locked write waits.
    Any other error, or a lock past the timeout, is raised as SQLite raised it.
    """
    deadline = time.monotonic() + timeout
    while True:
        con = connect()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            if setup:
                con.executescript(setup)
            return con
        except Exception as exc:
            con.close()
            if (
                type(exc).__name__ != "OperationalError"
                or "locked" not in str(exc)
                or time.monotonic() > deadline
            ):
                raise
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# temporary folders of a save, and what a killed save leaves behind
# ---------------------------------------------------------------------------
#: A hidden temporary folder or file younger than this is never swept (it may be in use).
SWEEP_MIN_AGE_S = 10.0


@contextlib.contextmanager
def saving_dir(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a temporary folder while it is being filled.

    :func:`sweep_leftovers` removes only folders whose lock is free: the lock
    dies with the process, so a save that is still running is never swept.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _in_use(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def sweep_leftovers(root: str | os.PathLike[str], min_age_s: float = SWEEP_MIN_AGE_S) -> list[str]:
    """Remove what saves killed half-way left in the data directory; return what was done.

    - hidden temporary run and dataset folders (``runs/.<run_id>.*``,
      ``datasets/.<name>.*``) and trash folders of a killed delete
      (``.deleted-*``), unless a live save still holds them (:func:`saving_dir`)
      or they are younger than ``min_age_s``;
    - hidden temporary files of atomic writes (``.run.json.*``, ``.job.json.*``,
      ``.<preset>.json.*``, ``.index.bin.*`` in a run folder) older than ``min_age_s``;
    - a dataset whose replacement was killed between its two renames is put
      back from ``datasets/.<name>.old``.
    """
    root = Path(root)
    now = time.time()
    done: list[str] = []

    def old_enough(p: Path) -> bool:
        try:
            return now - p.lstat().st_mtime >= min_age_s
        except OSError:
            return False

    datasets = root / "datasets"
    if datasets.is_dir():
        for p in datasets.iterdir():
            if p.name.startswith(".") and p.name.endswith(".old") and p.is_dir() and old_enough(p):
                final = datasets / p.name[1:-4]
                if not final.exists() and (p / "report.json").exists():
                    p.rename(final)
                    done.append(f"restored dataset {final.name} from an interrupted replacement")
                elif final.exists():
                    shutil.rmtree(p, ignore_errors=True)
                    done.append(f"removed {p.relative_to(root)}")
    for base in (root / "runs", datasets):
        if not base.is_dir():
            continue
        for p in base.iterdir():
            if not p.name.startswith(".") or p.name.endswith(".old") or p.name.endswith(".lock"):
                continue
            if p.is_dir() and not p.is_symlink():
                if old_enough(p) and not _in_use(p):
                    shutil.rmtree(p, ignore_errors=True)
                    done.append(f"removed {p.relative_to(root)}")
            elif p.is_file() and ".json." in p.name and old_enough(p):
                p.unlink(missing_ok=True)
                done.append(f"removed {p.relative_to(root)}")
    # temporary files of atomic writes: "<dot><name>.<random>" beside the file they replace
    leftovers = [p for d in (root, root / "presets") for p in d.glob(".*.json.*")]
    leftovers += [p for d in (root / "jobs").glob("*") if d.is_dir() for p in d.glob(".*.json.*")]
    # a run folder holds no hidden file of its own (.run.json.*, .index.bin.*, .projection.*)
    leftovers += [
        p
        for d in (root / "runs").glob("*")
        if d.is_dir() and not d.name.startswith(".")
        for p in d.glob(".*")
    ]
    for p in leftovers:
        if p.is_file() and not p.name.endswith((".lock", ".pending")) and old_enough(p):
            p.unlink(missing_ok=True)
            done.append(f"removed {p.relative_to(root)}")
    for line in done:
        logger.info("start-up clean-up: %s", line)
    return done


class TableMeta(_Stored):
    """The metadata record of a precomputed top-k table (:mod:`recsys.precompute`)."""

    run_id: str
    preset_hash: str
    preset_name: str | None = None
    k: int = Field(ge=1)
    written_ts: float
    written_at: str | None = None
    run_stamp: float = 0.0
    n_items: int | None = None
    catalog_fingerprint: str | None = None
