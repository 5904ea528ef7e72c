"""Precomputed top-k tables: the offline phase of serving.

``precompute(root, run_id, preset)`` runs the filtered search of every item of
a run with a saved preset (the same code path as Explore and the live API) and
writes the lists into a key-value table keyed by ``(run_id, preset_hash,
item_id)``: a SQLite file under the data directory by default, or Redis when a
``redis://`` URL is given. The API serves from it with ``source=precomputed``
and reports how stale it is relative to the run (:func:`staleness`).

A table is replaced atomically: readers see the old table until the new one
is complete (one SQLite transaction; a Redis ``RENAME``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recsys._io import file_stamp
from recsys.config import Progress, data_dir, null_progress
from recsys.data.schema import dataset_report_path
from recsys.errors import DatasetNotFoundError, DiskFullError, RecsysError, StoredDataError
from recsys.stored import disk_full_guard, disk_full_message, is_disk_full

logger = logging.getLogger(__name__)

DEFAULT_SQLITE_NAME = "precomputed.sqlite"
REDIS_PREFIX = "recsys"

Entry = tuple[str, float | None]


class PrecomputeError(RecsysError):
    """A precomputed table could not be written or read."""


class PrecomputedStoreError(PrecomputeError, StoredDataError):
    """The precomputed store (the SQLite file, or a table in it) is damaged.

    Only answers with ``source=precomputed`` are affected (the API answers 503
    naming the store or the run's table); live answers still work.
    """


def _damaged_store(location: str, exc: BaseException, what: str = "") -> PrecomputedStoreError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    where = f" ({what})" if what else ""
    return PrecomputedStoreError(
        f"the precomputed store {location} is damaged{where}: {first}; delete it and rerun "
        "'python -m recsys precompute', or ask source=live"
    )


def _table_meta(raw: Any, location: str, where: str) -> dict[str, Any]:
    """A table's metadata record, checked (PrecomputedStoreError when it is damaged)."""
    from pydantic import ValidationError

    from recsys.stored import TableMeta, parse_json_text, schema_reason

    try:
        value = parse_json_text(raw if isinstance(raw, bytes) else str(raw).encode())
        TableMeta.model_validate(value)
    except ValueError as exc:  # not JSON (ValidationError is a ValueError too)
        reason = schema_reason(exc) if isinstance(exc, ValidationError) else f"metadata {exc}"
        raise _damaged_store(location, ValueError(reason), where) from None
    return value


def _entries(raw: Any, location: str, where: str) -> list[Entry]:
    """A stored top-k list ``[[item_id, score or null], ...]``, checked."""
    try:
        value = json.loads(raw)
        if not isinstance(value, list):
            raise ValueError(f"a list was expected, got {type(value).__name__}")
        out = []
        for e in value:
            if (
                not isinstance(e, list)
                or len(e) != 2
                or not isinstance(e[0], str)
                or not (e[1] is None or (isinstance(e[1], (int, float)) and not isinstance(e[1], bool)))
            ):
                raise ValueError(f"an entry is not [item_id, score]: {json.dumps(e)[:60]}")
            out.append((e[0], e[1]))
    except (ValueError, TypeError, RecursionError) as exc:
        raise _damaged_store(location, exc, where) from None
    return out


# ---------------------------------------------------------------------------
# stores
# ---------------------------------------------------------------------------
class TopKStore(ABC):
    """A key-value table ``(run_id, preset_hash, item_id) -> [[item_id, score], ...]``.

    Each ``(run_id, preset_hash)`` table has a metadata record (see
    :func:`precompute`): ``run_id, preset_name, preset_hash, k, n_items,
    written_at, written_ts, run_created, run_stamp, catalog_fingerprint, config``.
    """

    location: str

    @abstractmethod
    def write_table(self, meta: dict[str, Any], rows: Iterable[tuple[str, list[Entry]]]) -> int:
        """Replace the table of ``(meta["run_id"], meta["preset_hash"])`` atomically.

        Older tables of the same run and preset name are removed in the same step.
        Returns the number of rows written.
        """

    @abstractmethod
    def get(self, run_id: str, preset_hash: str, item_id: str) -> list[Entry] | None:
        """The stored list of an item, or None when the table has no row for it."""

    @abstractmethod
    def table_meta(self, run_id: str, preset_hash: str) -> dict[str, Any] | None:
        """The metadata of a table, or None when it does not exist."""

    @abstractmethod
    def list_tables(self) -> list[dict[str, Any]]:
        """Metadata of every table, newest first."""

    def preset_meta(self, run_id: str, preset_name: str | None) -> dict[str, Any] | None:
        """The newest table written for a run and preset name (whatever its hash)."""
        if not preset_name:
            return None
        for meta in self.list_tables():
            if meta["run_id"] == run_id and meta.get("preset_name") == preset_name:
                return meta
        return None

    def close(self) -> None:
        """Release connections."""


class SQLiteStore(TopKStore):
    """The embedded default: one SQLite file (WAL mode, one connection per thread).

    Parameters
    ----------
    path : path-like
        The database file (created with its tables when missing).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            con = self._con()
            with con:
                con.execute(
                    "CREATE TABLE IF NOT EXISTS topk (run_id TEXT NOT NULL, preset_hash TEXT NOT NULL, "
                    "item_id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, preset_hash, item_id)) "
                    "WITHOUT ROWID"
                )
                con.execute(
                    "CREATE TABLE IF NOT EXISTS tables (run_id TEXT NOT NULL, preset_hash TEXT NOT NULL, "
                    "preset_name TEXT, written_ts REAL NOT NULL, meta TEXT NOT NULL, "
                    "PRIMARY KEY (run_id, preset_hash))"
                )
        except sqlite3.DatabaseError as exc:  # garbage, a truncated file, foreign tables
            self.close()
            if is_disk_full(exc):
                raise DiskFullError(disk_full_message("the precomputed store", self.path, exc)) from exc
            raise _damaged_store(self.location, exc) from exc

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None or getattr(self._local, "pid", None) != os.getpid():
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
            self._local.pid = os.getpid()
        return con

    def write_table(self, meta: dict[str, Any], rows: Iterable[tuple[str, list[Entry]]]) -> int:
        run_id, preset_hash = meta["run_id"], meta["preset_hash"]
        # compute every row before taking the write lock, so readers and
        # other writers wait only for the insert itself
        records = [
            (run_id, preset_hash, str(item_id), json.dumps(entries, separators=(",", ":")))
            for item_id, entries in rows
        ]
        with disk_full_guard(f"the precomputed table of run {run_id}", self.path):
            try:
                return self._insert(run_id, preset_hash, meta, records)
            except sqlite3.DatabaseError as exc:
                if "disk is full" in str(exc):
                    raise
                raise _damaged_store(self.location, exc) from exc

    def _insert(self, run_id: str, preset_hash: str, meta: dict[str, Any], records: list[tuple]) -> int:
        n = len(records)
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            old = con.execute(
                "SELECT preset_hash FROM tables WHERE run_id = ? AND (preset_hash = ? OR preset_name = ?)",
                (run_id, preset_hash, meta.get("preset_name")),
            ).fetchall()
            for (h,) in old:
                con.execute("DELETE FROM topk WHERE run_id = ? AND preset_hash = ?", (run_id, h))
                con.execute("DELETE FROM tables WHERE run_id = ? AND preset_hash = ?", (run_id, h))
            con.executemany("INSERT INTO topk VALUES (?, ?, ?, ?)", records)
            meta = {**meta, "n_items": n}
            con.execute(
                "INSERT INTO tables VALUES (?, ?, ?, ?, ?)",
                (run_id, preset_hash, meta.get("preset_name"), meta["written_ts"], json.dumps(meta)),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return n

    def _query(self, sql: str, args: tuple, what: str) -> list[Any]:
        try:
            return self._con().execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _damaged_store(self.location, exc, what) from exc

    def get(self, run_id: str, preset_hash: str, item_id: str) -> list[Entry] | None:
        rows = self._query(
            "SELECT value FROM topk WHERE run_id = ? AND preset_hash = ? AND item_id = ?",
            (run_id, preset_hash, item_id),
            f"table of run {run_id}",
        )
        return None if not rows else _entries(rows[0][0], self.location, f"table of run {run_id}")

    def table_meta(self, run_id: str, preset_hash: str) -> dict[str, Any] | None:
        what = f"table of run {run_id}"
        rows = self._query(
            "SELECT meta FROM tables WHERE run_id = ? AND preset_hash = ?", (run_id, preset_hash), what
        )
        return None if not rows else _table_meta(rows[0][0], self.location, what)

    def list_tables(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT run_id, meta FROM tables ORDER BY written_ts DESC", (), "")
        return [_table_meta(r[1], self.location, f"table of run {r[0]}") for r in rows]

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


class RedisStore(TopKStore):
    """Precomputed tables in Redis (needs the ``redis`` package and a server).

    Keys: ``recsys:topk:<run>:<hash>`` (a hash item_id -> JSON list),
    ``recsys:meta:<run>:<hash>`` (JSON) and the set ``recsys:tables``.

    Parameters
    ----------
    url : str
        ``redis://host:port/db`` (or ``rediss://``, ``unix://``).
    """

    def __init__(self, url: str, prefix: str = REDIS_PREFIX) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise PrecomputeError(
                "a Redis URL was given but the 'redis' package is not installed: pip install redis"
            ) from exc
        self.location = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise PrecomputeError(f"cannot reach Redis at {url}: {exc}") from exc

    def _key(self, kind: str, run_id: str, preset_hash: str) -> str:
        return f"{self.prefix}:{kind}:{run_id}:{preset_hash}"

    def write_table(self, meta: dict[str, Any], rows: Iterable[tuple[str, list[Entry]]]) -> int:
        run_id, preset_hash = meta["run_id"], meta["preset_hash"]
        tmp = self._key("tmp", run_id, f"{preset_hash}:{os.getpid()}:{time.time_ns()}")
        n = 0
        pipe = self.client.pipeline(transaction=False)
        try:
            for item_id, entries in rows:
                pipe.hset(tmp, str(item_id), json.dumps(entries, separators=(",", ":")))
                n += 1
                if n % 5000 == 0:
                    pipe.execute()
            pipe.execute()
            meta = {**meta, "n_items": n}
            stale_keys = [
                (m["run_id"], m["preset_hash"])
                for m in self.list_tables()
                if m["run_id"] == run_id
                and m["preset_hash"] != preset_hash
                and m.get("preset_name") == meta.get("preset_name")
            ]
            tx = self.client.pipeline(transaction=True)
            if n:
                tx.rename(tmp, self._key("topk", run_id, preset_hash))
            else:
                tx.delete(self._key("topk", run_id, preset_hash))
            tx.set(self._key("meta", run_id, preset_hash), json.dumps(meta))
            tx.sadd(f"{self.prefix}:tables", f"{run_id}:{preset_hash}")
            for r, h in stale_keys:
                tx.delete(self._key("topk", r, h), self._key("meta", r, h))
                tx.srem(f"{self.prefix}:tables", f"{r}:{h}")
            tx.execute()
        except BaseException:
            self.client.delete(tmp)
            raise
        return n

    def get(self, run_id: str, preset_hash: str, item_id: str) -> list[Entry] | None:
        raw = self.client.hget(self._key("topk", run_id, preset_hash), item_id)
        return None if raw is None else _entries(raw, self.location, f"table of run {run_id}")

    def table_meta(self, run_id: str, preset_hash: str) -> dict[str, Any] | None:
        raw = self.client.get(self._key("meta", run_id, preset_hash))
        return None if raw is None else _table_meta(raw, self.location, f"table of run {run_id}")

    def list_tables(self) -> list[dict[str, Any]]:
        out = []
        for member in self.client.smembers(f"{self.prefix}:tables"):
            run_id, _, preset_hash = member.decode().rpartition(":")
            meta = self.table_meta(run_id, preset_hash)
            if meta is not None:
                out.append(meta)
        out.sort(key=lambda m: m.get("written_ts", 0), reverse=True)
        return out

    def close(self) -> None:
        self.client.close()


def open_store(location: str | os.PathLike[str] | None = None, root: Any = None) -> TopKStore:
    """Open a precomputed-table store.

    Parameters
    ----------
    location : str or path-like, optional
        A ``redis://`` / ``rediss://`` / ``unix://`` URL (Redis), or a SQLite
        file path; default ``<data_dir>/precomputed.sqlite``.
    root : path-like, optional
        The data directory (for the default location).
    """
    if location is None or str(location) == "":
        return SQLiteStore(data_dir(root) / DEFAULT_SQLITE_NAME)
    loc = str(location)
    if loc.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(loc)
    return SQLiteStore(loc)


# ---------------------------------------------------------------------------
# writing and staleness
# ---------------------------------------------------------------------------
def run_stamp(registry: Any, run_id: str) -> float:
    """Latest modification time of the files that decide a run's answers."""
    return _folder_stamp(registry.run_dir(run_id))


def _folder_stamp(folder: Path) -> float:
    stamps = []
    for name in ("vectors.npy", "index.bin", "item_ids.npy"):
        try:
            stamps.append(os.stat(folder / name).st_mtime)
        except FileNotFoundError:
            pass
    return max(stamps) if stamps else (folder / "run.json").stat().st_mtime


def catalog_fingerprint(root: Any, dataset_name: str | None) -> str | None:
    """The stored fingerprint of a dataset (its catalogue drives the filters), or None."""
    if not dataset_name:
        return None
    from recsys.data.schema import dataset_meta
    from recsys.errors import DatasetNotFoundError

    try:
        return dataset_meta(dataset_name, root).get("fingerprint")
    except (DatasetNotFoundError, StoredDataError):  # gone, or its report.json is damaged
        return None


_STALE_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}
_RUN_INFO: dict[tuple[str, Any], tuple[str | None, str | None]] = {}


def _run_info(folder: Path) -> tuple[str | None, str | None, Any]:
    """(dataset name, created, run.json's file_stamp) of a run; run.json is parsed once per version."""
    path = folder / "run.json"
    mtime = file_stamp(path)
    if mtime is None:
        raise FileNotFoundError(f"no run.json in {folder}")
    key = (str(path), mtime)
    hit = _RUN_INFO.get(key)
    if hit is None:
        from recsys.errors import DamagedRunError
        from recsys.stored import RunFile, read_stored, reason_of

        try:
            run = read_stored(path, RunFile)
        except StoredDataError as exc:
            raise DamagedRunError(folder.name, reason_of(exc)) from None
        hit = ((run.get("dataset") or {}).get("name"), run.get("created"))
        if len(_RUN_INFO) > 1024:
            _RUN_INFO.clear()
        _RUN_INFO[key] = hit
    return hit[0], hit[1], mtime


def staleness(registry: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """How stale a table is relative to its run and dataset.

    Cheap enough to call per request: files are only stat-ed, and run.json and
    the dataset report are re-read only when their modification time changes.

    Returns
    -------
    dict
        ``written_at``, ``run_created``, ``age_s`` (seconds since written),
        ``k``, ``n_items``, ``stale`` (bool) and ``reasons`` (why it is stale:
        the run's vectors or index changed after the table was written, or the
        catalogue the filters read was re-imported).
    """
    run_id = meta["run_id"]
    folder = registry.run_dir(run_id)
    dataset, created, run_mtime = _run_info(folder)
    stamp = _folder_stamp(folder)
    try:
        report_mtime = file_stamp(dataset_report_path(dataset, registry.root)) if dataset else None
    except DatasetNotFoundError:
        report_mtime = None
    key = (
        str(registry.root),
        run_id,
        meta["preset_hash"],
        meta.get("written_ts"),
        stamp,
        run_mtime,
        report_mtime,
    )
    cached = _STALE_CACHE.get(key)
    if cached is None:
        reasons = []
        if stamp > float(meta.get("run_stamp", 0)) + 1e-6:
            reasons.append("the run's vectors or index changed after the table was written")
        fp = catalog_fingerprint(registry.root, dataset)
        if fp is not None and meta.get("catalog_fingerprint") not in (None, fp):
            reasons.append("the catalogue was re-imported after the table was written")
        cached = {
            "written_at": meta.get("written_at"),
            "run_created": created,
            "k": int(meta["k"]),
            "n_items": meta.get("n_items"),
            "stale": bool(reasons),
            "reasons": reasons,
        }
        if len(_STALE_CACHE) > 1024:
            _STALE_CACHE.clear()
        _STALE_CACHE[key] = cached
    return {
        **cached,
        "reasons": list(cached["reasons"]),
        "age_s": round(time.time() - float(meta.get("written_ts", 0)), 3),
    }


def result_entries(res: Any) -> list[Entry]:
    """A search result as stored: ``[(item_id, score or None when not finite), ...]``."""
    scores = np.asarray(res.scores, dtype=np.float64)
    return [(str(i), float(s) if np.isfinite(s) else None) for i, s in zip(res.item_ids, scores)]


def table_inputs(root: Any, run_id: str, preset: str | None, k: Any) -> tuple[Path, Any, dict[str, Any], Any]:
    """What every precompute (local or Spark) checks and loads first: ``(root, registry, run, config)``.

    Raises PrecomputeError for a k that is not a positive integer or a run without item vectors.
    """
    from recsys.filters import PresetStore
    from recsys.registry import Registry

    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise PrecomputeError(f"k must be a positive integer, got {k!r}")
    root = data_dir(root)
    registry = Registry(root)
    run = registry.get(run_id)
    if not run.get("is_embedding"):
        raise PrecomputeError(
            f"run {run_id} ({run.get('family')}) has no item vectors; pick an embedding run"
        )
    return root, registry, run, PresetStore(root).load(preset)


def make_table_meta(
    root: Path, run_id: str, run: dict[str, Any], preset: str, config: Any, k: int, stamp: float
) -> dict[str, Any]:
    """The metadata record of a table (see :class:`TopKStore`), stamped now.

    Shared by :func:`precompute` and :func:`recsys.spark.spark_precompute`, so the API
    serves and judges the staleness of a table the same way whoever wrote it.
    """
    now = datetime.now(timezone.utc)
    return {
        "run_id": run_id,
        "preset_name": preset,
        "preset_hash": config.config_hash(),
        "k": k,
        "written_at": now.isoformat(timespec="seconds"),
        "written_ts": now.timestamp(),
        "run_created": run.get("created"),
        "run_stamp": stamp,
        "catalog_fingerprint": catalog_fingerprint(root, (run.get("dataset") or {}).get("name")),
        "config": config.canonical(),
    }


def _batched_results(
    registry: Any,
    run_id: str,
    item_ids: Sequence[str],
    config: Any,
    k: int,
    batch_size: int,
    num_threads: int = -1,
) -> Iterator[list[Any]]:
    """Filtered search results per item, in batches (the searcher of Explore and the API)."""
    from recsys.search import get_searcher

    searcher = get_searcher(registry, run_id)
    for start in range(0, len(item_ids), batch_size):
        yield list(
            searcher.search_many(item_ids[start : start + batch_size], config, k, num_threads=num_threads)
        )


def precompute(
    root: str | os.PathLike[str] | None,
    run_id: str,
    preset: str,
    *,
    k: int = 20,
    store: TopKStore | str | None = None,
    batch_size: int = 1024,
    progress: Progress | None = None,
    checks: Any = None,
    num_threads: int = -1,
) -> dict[str, Any]:
    """Write the filtered top-k of every item of a run, for a saved preset.

    The behavioural checks (:mod:`recsys.checks`) run on the lists before anything is
    written: a table failing a blocking check is refused (:class:`recsys.checks.ChecksFailedError`)
    and the store is left as it was.

    Parameters
    ----------
    root : path-like, optional
        The data directory.
    run_id : str
        An embedding run.
    preset : str
        A saved filter preset (:class:`recsys.filters.PresetStore`).
    k : int
        List length stored per item (the API can serve any k up to it).
    store : TopKStore or str, optional
        Where to write (a store, a Redis URL or a SQLite path); default the
        SQLite file ``<root>/precomputed.sqlite``.
    batch_size : int
        Items searched per batch.
    progress : callable, optional
        ``progress(done, total, message)``.
    checks : recsys.checks.CheckThresholds or False, optional
        The checks' thresholds (default: ``<root>/checks.json`` or ``.yaml`` when present,
        else the defaults); False skips the checks.
    num_threads : int
        hnswlib and BLAS threads for the searches (-1: every core).

    Returns
    -------
    dict
        The table's metadata (run, preset name and hash, k, n_items, written_at,
        location, seconds) and ``checks`` (the checks' report and their ``seconds``, when they ran).
    """
    progress = progress or null_progress
    root, registry, run, config = table_inputs(root, run_id, preset, k)
    model = registry.load_model(run_id)
    item_ids = [str(i) for i in np.asarray(model.item_ids_)]
    own_store = not isinstance(store, TopKStore)
    target = store if isinstance(store, TopKStore) else open_store(store, root=root)
    t0 = time.perf_counter()
    stamp = run_stamp(registry, run_id)
    total = len(item_ids)

    def rows() -> Iterator[tuple[str, list[Entry]]]:
        done = 0
        progress(0, total, f"top-{k} of {total} items")
        for results in _batched_results(registry, run_id, item_ids, config, k, batch_size, num_threads):
            for res in results:
                seed = item_ids[done]
                done += 1
                yield seed, result_entries(res)
            progress(done, total, f"{done}/{total} items")

    meta = make_table_meta(root, run_id, run, preset, config, k, stamp)
    try:
        table = list(rows())
        t_checks = time.perf_counter()
        report = _checks(registry, run_id, preset, table, k, checks)
        checks_s = round(time.perf_counter() - t_checks, 3)
        n = target.write_table(meta, table)
    finally:
        if own_store:
            target.close()
    seconds = round(time.perf_counter() - t0, 3)
    logger.info(
        "precomputed top-%d of %d items for run %s preset %s in %.1f s", k, n, run_id, preset, seconds
    )
    out = {**meta, "n_items": n, "location": target.location, "seconds": seconds}
    return out if report is None else {**out, "checks": {**report.to_dict(), "seconds": checks_s}}


def _checks(registry: Any, run_id: str, preset: str, table: list, k: int, checks: Any) -> Any:
    """The checks' report on a table's lists; ChecksFailedError when a blocking check fails."""
    if checks is False:
        return None
    from recsys.checks import ChecksFailedError, checks_for_lists, load_thresholds

    thresholds = load_thresholds(None, registry.root) if checks is None or checks is True else checks
    lists = {seed: [i for i, _ in entries] for seed, entries in table}
    report = checks_for_lists(registry, run_id, lists, k, thresholds, preset=preset)
    if not report.passed:
        raise ChecksFailedError(
            f"the top-{k} table of run {run_id} with preset '{preset}' is not published: "
            f"{report.failure_message()}; fix the preset (or mark the check non-blocking in the "
            "thresholds) and run precompute again",
            report,
        )
    return report
