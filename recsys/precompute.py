"""Precomputed top-k tables: the offline phase of serving.

``precompute(root, run_id, preset)`` runs the filtered search of every item of
a run with a saved preset (the same code path as Explore and the live API) and
writes the lists into a key-value table keyed by ``(run_id, preset_hash,
item_id)``: a SQLite file under the data directory by default, or Redis when a
``redis://`` URL is given. The API serves from it with ``source=precomputed``
and reports how stale it is relative to the run (:func:`staleness`).

A table is replaced atomically: readers see the old table until the new one
is complete (one SQLite transaction; a Redis ``RENAME``). The rows stream into a
staging area first (a SQLite TEMP table, a Redis staging key) while the behavioural
checks (:mod:`recsys.checks`) see them chunk by chunk; a table failing a blocking
check is discarded there, before the swap.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recsys._io import file_stamp
from recsys.config import Progress, data_dir, null_progress
from recsys.data.schema import dataset_report_path
from recsys.errors import DatasetNotFoundError, DiskFullError, RecsysError, StoredDataError
from recsys.fallback import MODEL as MODEL_SOURCE
from recsys.stored import disk_full_guard, disk_full_message, is_disk_full, open_wal_sqlite

logger = logging.getLogger(__name__)

DEFAULT_SQLITE_NAME = "precomputed.sqlite"
#: rows a store stages per batch (a SQLite transaction, a Redis pipeline)
STAGE_BATCH = 5000
#: seeds the behavioural checks see per chunk while a table streams into its store
CHECK_CHUNK = 4096
REDIS_PREFIX = "recsys"

#: a stored list entry: ``(item_id, score or None, served_by)``; ``served_by`` says what served the
#: item (``"model"``, a step of the run's fallback chain, ``"pin"``), as a live answer does. The
#: store leaves out ``"model"`` (``[id, score]``): only the items a fallback step or a pin served
#: carry a third element (:func:`stored_json`)
Entry = tuple[str, float | None, str]


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
    """A stored top-k list ``[[item_id, score or null(, served_by)], ...]``, checked; an entry
    without ``served_by`` (the model's own item, or a table written before it was stored) reads
    as ``"model"``."""
    try:
        value = json.loads(raw)
        if not isinstance(value, list):
            raise ValueError(f"a list was expected, got {type(value).__name__}")
        out = []
        for e in value:
            if (
                not isinstance(e, list)
                or len(e) not in (2, 3)
                or not isinstance(e[0], str)
                or not (e[1] is None or (isinstance(e[1], (int, float)) and not isinstance(e[1], bool)))
                or (len(e) == 3 and not (isinstance(e[2], str) and e[2]))
            ):
                raise ValueError(f"an entry is not [item_id, score(, served_by)]: {json.dumps(e)[:60]}")
            out.append((e[0], e[1], e[2] if len(e) == 3 else MODEL_SOURCE))
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
    def write_table(
        self,
        meta: dict[str, Any],
        rows: Iterable[tuple[str, list[Entry]]],
        before_publish: Callable[[], None] | None = None,
    ) -> int:
        """Replace the table of ``(meta["run_id"], meta["preset_hash"])`` atomically.

        The rows stream into a staging area (never all in memory); ``before_publish()`` is
        called once they are all staged, before the swap: when it raises (a blocking check
        failed), the staged rows are discarded and the old table is still served. Older
        tables of the same run and preset name are removed in the swap. Returns the number
        of rows written.
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
            con = open_wal_sqlite(
                lambda: sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True),
                30,
            )
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA temp_store=FILE")  # a table being staged spills to disk, not memory
            self._local.con = con
            self._local.pid = os.getpid()
        return con

    def write_table(
        self,
        meta: dict[str, Any],
        rows: Iterable[tuple[str, list[Entry]]],
        before_publish: Callable[[], None] | None = None,
    ) -> int:
        run_id = meta["run_id"]
        with disk_full_guard(f"the precomputed table of run {run_id}", self.path):
            try:
                return self._stage_and_publish(meta, rows, before_publish)
            except sqlite3.DatabaseError as exc:
                if "disk is full" in str(exc):
                    raise
                raise _damaged_store(self.location, exc) from exc

    def _stage_and_publish(
        self,
        meta: dict[str, Any],
        rows: Iterable[tuple[str, list[Entry]]],
        before_publish: Callable[[], None] | None,
    ) -> int:
        """Rows go into a TEMP table of this connection in batches (no lock on the store: readers
        and other writers wait only for the publishing transaction); SQLite drops the TEMP table
        with the connection, so a killed precompute leaves nothing behind. The TEMP table lives in
        a temporary file (SQLite's temp folder: ``SQLITE_TMPDIR``, else ``TMPDIR`` or /tmp), so
        staging needs disk for one table there, not memory."""
        con = self._con()
        con.execute(
            "CREATE TEMP TABLE IF NOT EXISTS staging (item_id TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
        )
        con.execute("DELETE FROM temp.staging")
        n = 0
        try:
            it = iter(rows)
            while batch := [
                (str(item_id), stored_json(entries)) for item_id, entries in itertools.islice(it, STAGE_BATCH)
            ]:
                con.execute("BEGIN")
                con.executemany("INSERT INTO temp.staging VALUES (?, ?)", batch)
                con.execute("COMMIT")
                n += len(batch)
            if before_publish is not None:
                before_publish()
            return self._publish(meta, n)
        finally:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.execute("DELETE FROM temp.staging")

    def _publish(self, meta: dict[str, Any], n: int) -> int:
        run_id, preset_hash = meta["run_id"], meta["preset_hash"]
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
            con.execute(
                "INSERT INTO topk SELECT ?, ?, item_id, value FROM temp.staging", (run_id, preset_hash)
            )
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

    def write_table(
        self,
        meta: dict[str, Any],
        rows: Iterable[tuple[str, list[Entry]]],
        before_publish: Callable[[], None] | None = None,
    ) -> int:
        run_id, preset_hash = meta["run_id"], meta["preset_hash"]
        tmp = self._key("tmp", run_id, f"{preset_hash}:{os.getpid()}:{time.time_ns()}")
        n = 0
        pipe = self.client.pipeline(transaction=False)
        try:
            for item_id, entries in rows:
                pipe.hset(tmp, str(item_id), stored_json(entries))
                n += 1
                if n % STAGE_BATCH == 0:
                    pipe.execute()
            pipe.execute()
            if before_publish is not None:
                before_publish()  # the rows are in the staging key only
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
    """A search result as stored: ``[(item_id, score or None when not finite, served_by), ...]``
    (``served_by`` "model" for every item of a result that does not say)."""
    scores = np.asarray(res.scores, dtype=np.float64)
    sources = list(res.served_by or []) or [MODEL_SOURCE] * len(res.item_ids)
    return [
        (str(i), float(s) if np.isfinite(s) else None, str(src))
        for i, s, src in zip(res.item_ids, scores, sources, strict=True)
    ]


def stored_json(entries: Iterable[Sequence[Any]]) -> str:
    """A list as a store holds it: ``[[item_id, score], ...]``, with ``served_by`` as a third
    element only where it is not the model (a fallback step, a pin): the common entry costs
    nothing more."""
    return json.dumps(
        [[e[0], e[1]] if len(e) < 3 or e[2] in (None, MODEL_SOURCE) else [e[0], e[1], e[2]] for e in entries],
        separators=(",", ":"),
    )


def table_inputs(
    root: Any, run_id: str, preset: str | None, k: Any, need_vectors: bool = False
) -> tuple[Path, Any, dict[str, Any], Any]:
    """What every precompute (local or Spark) checks and loads first: ``(root, registry, run, config)``.

    Raises PrecomputeError for a k that is not a positive integer, or with ``need_vectors``
    (Spark, which ships the run's vectors to its workers) a run without item vectors.
    """
    from recsys.filters import PresetStore
    from recsys.registry import Registry

    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise PrecomputeError(f"k must be a positive integer, got {k!r}")
    root = data_dir(root)
    registry = Registry(root)
    run = registry.get(run_id)
    if need_vectors and not run.get("is_embedding"):
        raise PrecomputeError(
            f"run {run_id} ({run.get('family')}) has no item vectors for Spark's workers to search; "
            f"write its table with 'python -m recsys precompute --run {run_id} --preset {preset}'"
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
    check_chunk: int = CHECK_CHUNK,
    num_threads: int = -1,
) -> dict[str, Any]:
    """Write the filtered top-k of every item of a run, for a saved preset.

    The behavioural checks (:mod:`recsys.checks`) run on the lists as they stream into the
    store's staging area, ``CHECK_CHUNK`` seeds at a time (:class:`PublishChecks`; the table is
    never held in memory): a table failing a blocking check is refused
    (:class:`recsys.checks.ChecksFailedError`) before the swap, and the store is left as it was.

    Parameters
    ----------
    root : path-like, optional
        The data directory.
    run_id : str
        Any run: an embedding run's lists are its filtered searches; a run without item
        vectors (popularity, co-occurrence, tfidf, the session kNN families) stores its own
        lists, completed by its fallback chain under the preset's rules
        (:func:`recsys.search.service.similar_from_lists`), as ``similar_items`` serves them.
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
    check_chunk : int
        Seeds the checks see at a time (what they hold of the table).
    num_threads : int
        hnswlib and BLAS threads for the searches (-1: every core).

    Returns
    -------
    dict
        The table's metadata (run, preset name and hash, k, n_items, written_at,
        location, seconds, ``by_fallback``: the catalogue items without a vector, whose lists
        the run's fallback chain serves as it does live) and ``checks`` (the checks' report and their ``seconds``, when they ran).
    """
    progress = progress or null_progress
    root, registry, run, config = table_inputs(root, run_id, preset, k)
    model = registry.load_model(run_id)
    item_ids = [str(i) for i in np.asarray(model.item_ids_)]
    # catalogue items without a vector: served live by the run's fallback chain, so stored too
    chain = getattr(model, "fallback_chain_", None)
    by_chain = chain.items_beyond(item_ids) if chain is not None else []
    own_store = not isinstance(store, TopKStore)
    target = store if isinstance(store, TopKStore) else open_store(store, root=root)
    t0 = time.perf_counter()
    stamp = run_stamp(registry, run_id)
    total = len(item_ids) + len(by_chain)

    def rows() -> Iterator[tuple[str, list[Entry]]]:
        from recsys.search import similar_from_lists, similar_items

        done = 0
        progress(0, total, f"top-{k} of {total} items")
        if not getattr(model, "is_embedding", False):  # the run's own lists, as similar_items serves them
            seeds = item_ids + by_chain
            for start in range(0, total, batch_size):
                batch = seeds[start : start + batch_size]
                for seed, res in zip(
                    batch, similar_from_lists(registry, run_id, batch, config, k), strict=True
                ):
                    yield seed, result_entries(res)
                done += len(batch)
                progress(done, total, f"{done}/{total} items")
            return
        for results in _batched_results(registry, run_id, item_ids, config, k, batch_size, num_threads):
            for res in results:
                seed = item_ids[done]
                done += 1
                yield seed, result_entries(res)
            progress(done, total, f"{done}/{total} items")
        for seed in by_chain:  # the live path of a seed without a vector (similar_items)
            done += 1
            yield seed, result_entries(similar_items(registry, run_id, seed, config, k))
        if by_chain:
            progress(done, total, f"{done}/{total} items ({len(by_chain)} by the fallback chain)")

    meta = make_table_meta(root, run_id, run, preset, config, k, stamp)
    try:
        gate = (
            None
            if checks is False
            else PublishChecks.for_run(registry, run_id, preset, k, checks, check_chunk)
        )
        stream = rows() if gate is None else gate.rows(rows())
        n = target.write_table(meta, stream, before_publish=gate)
    finally:
        if own_store:
            target.close()
    seconds = round(time.perf_counter() - t0, 3)
    logger.info(
        "precomputed top-%d of %d items for run %s preset %s in %.1f s", k, n, run_id, preset, seconds
    )
    out = {
        **meta,
        "n_items": n,
        "by_fallback": len(by_chain),
        "location": target.location,
        "seconds": seconds,
    }
    return out if gate is None else {**out, "checks": gate.summary()}


class PublishChecks:
    """The behavioural checks (:mod:`recsys.checks`) of a table as it streams into its store.

    Shared by :func:`precompute` and :func:`recsys.spark.spark_precompute`: :meth:`rows` passes
    the rows through unchanged and feeds their lists to the checks ``chunk`` seeds at a time, so
    memory stays bounded by a chunk (see :class:`recsys.checks.ListChecks`); the store calls
    the object itself once every row is staged, before the swap (``before_publish``), and it
    raises :class:`recsys.checks.ChecksFailedError` when a blocking check fails, so the store
    discards the staged rows and the old table is still served.

    ``checks``: the thresholds (:class:`recsys.checks.CheckThresholds`), or None/True for
    ``<data_dir>/checks.json|yaml`` when present, else the defaults.
    """

    def __init__(self, checks: Any, chunk: int = CHECK_CHUNK) -> None:
        self.checks = checks  # a recsys.checks.ListChecks
        self.chunk = max(1, int(chunk))
        self.report: Any = None
        self.seconds = 0.0

    @classmethod
    def for_run(
        cls, registry: Any, run_id: str, preset: str, k: int, checks: Any = None, chunk: int = CHECK_CHUNK
    ) -> PublishChecks:
        """The checks of a run's table under a preset, with its dataset's baskets and held-out cases."""
        from recsys.checks import load_thresholds, table_checks

        t0 = time.perf_counter()
        thresholds = load_thresholds(None, registry.root) if checks is None or checks is True else checks
        gate = cls(table_checks(registry, run_id, k, thresholds, preset=preset), chunk)
        gate.seconds = time.perf_counter() - t0
        return gate

    def rows(self, rows: Iterable[tuple[str, list[Entry]]]) -> Iterator[tuple[str, list[Entry]]]:
        """``rows`` unchanged, each chunk of ``chunk`` seeds checked as it passes."""
        chunk: dict[str, list[str]] = {}
        for seed, entries in rows:
            chunk[str(seed)] = [str(e[0]) for e in entries]
            yield seed, entries
            if len(chunk) >= self.chunk:
                self._add(chunk)
                chunk = {}
        if chunk:
            self._add(chunk)

    def _add(self, chunk: dict[str, list[str]]) -> None:
        t0 = time.perf_counter()
        self.checks.add(chunk)
        self.seconds += time.perf_counter() - t0

    def __call__(self) -> None:
        """The report of every row seen; ChecksFailedError when a blocking check fails."""
        from recsys.checks import ChecksFailedError

        t0 = time.perf_counter()
        self.report = report = self.checks.report()
        self.seconds += time.perf_counter() - t0
        if not report.passed:
            raise ChecksFailedError(
                f"the top-{report.k} table of run {report.run} with preset '{report.preset}' is not published: "
                f"{report.failure_message()}; fix the preset (or mark the check non-blocking in the "
                "thresholds) and run precompute again",
                report,
            )

    def summary(self) -> dict[str, Any]:
        """The report as a dict, with the seconds the checks took."""
        return {**self.report.to_dict(), "seconds": round(self.seconds, 3)}
