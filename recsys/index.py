"""HNSW index over a run's item vectors, plus exact search with NumPy.

:class:`HnswIndex` wraps an ``hnswlib.Index`` (cosine or inner-product space).
Row ``i`` of the vectors it was built from has label ``i``; results are rows,
which callers map to item ids (``HnswIndex.item_ids`` when given).

Similarity, not distance: ``knn`` returns ``1 - hnswlib distance``, which is
the cosine similarity in the cosine space and the dot product in the
inner-product space, the same numbers :func:`exact_search` computes.

File format (``save``/``load``)::

    8 bytes   magic b"RSLHNSW\\x00"
    4 bytes   header length H (uint32, little endian)
    H bytes   JSON header: format_version, dim, count, space, M,
              ef_construction, ef, payload_size, payload_sha256,
              vectors_sha256
    ...       the hnswlib payload (what ``hnswlib.Index.save_index`` writes)

Everything is checked (size, checksum, dimension, count, the vectors the index
was built from) *before* the payload is handed to hnswlib, so a truncated,
corrupted or mismatched file raises :class:`~recsys.errors.IndexFileError`
instead of crashing the process.

Indexes are never mutated while served: hnswlib's ``add_items`` is not safe
beside ``knn_query``. To change the items, build a new index and swap the
reference (``searcher.index = new_index``; readers holding the old object keep
using it until they finish).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys._io import atomic_path
from recsys.errors import IndexFileError
from recsys.hugepages import OWN_MAPPING, base_layer_bytes, collapse, huge_pages
from recsys.topk import topk_rows

logger = logging.getLogger(__name__)

MAGIC = b"RSLHNSW\x00"
FORMAT_VERSION = 1
SPACES = ("cosine", "ip")
_PREFIX = struct.Struct("<8sI")
_MAX_HEADER = 1 << 20
_CHUNK = 1 << 22


def vectors_checksum(vectors: np.ndarray) -> str:
    """SHA-256 of a float32 matrix (shape and bytes), hex.

    Stored in the index header so that :meth:`HnswIndex.load` can refuse an
    index that was built from other vectors.
    """
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256()
    h.update(f"{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def _graph_memory(n: int, dim: int, M: int) -> contextlib.AbstractContextManager[list[tuple[int, int]]]:
    """Around the hnswlib call that maps a graph of ``n`` elements: :func:`~recsys.hugepages.huge_pages`
    when its base layer is a mapping of its own (:data:`~recsys.hugepages.OWN_MAPPING` or more),
    advising only ranges of at least the base layer's size (not the heap that a loaded graph's
    label map grows by: 34 MB at 1M); else nothing. Yields the advised ranges."""
    size = base_layer_bytes(n, dim, M)
    if size < OWN_MAPPING:
        return contextlib.nullcontext([])
    return huge_pages(min_bytes=size)


def _as_matrix(x: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} have dimension {arr.shape[1]}, the index has {dim}")
    return np.ascontiguousarray(arr)


class HnswIndex:
    """An hnswlib index over item vectors, with a checked file format.

    Build one with :meth:`build` or read one with :meth:`load`; do not call
    ``__init__`` directly.

    Attributes
    ----------
    dim, count : int
        Vector dimension and number of items.
    space : str
        ``"cosine"`` or ``"ip"``.
    M, ef_construction, ef : int
        hnswlib parameters (``ef`` is the default query-time beam width; a
        query for more than ``ef`` results widens it for that query only).
    vectors_sha256 : str
        :func:`vectors_checksum` of the vectors the index was built from.
    item_ids : numpy.ndarray of str or None
        Item id of each row, when given to :meth:`build`.
    build_seconds : float
        Wall time of ``add_items`` (0 for a loaded index).
    huge_ranges : list of (int, int)
        The address ranges of the graph's memory advised onto transparent huge pages (a base
        layer of :data:`~recsys.hugepages.OWN_MAPPING` or more, on Linux; else empty): hnswlib's
        own queries answer there in 0.70x to 0.82x the p50 of the same graph on hnswlib's own
        4 KB pages (100k and 1M), and the searcher's idle walk (one read per 2 MB) reads all of
        their memory (issue 18, s41-c, s42-h).
    """

    def __init__(
        self,
        raw: Any,
        *,
        space: str,
        dim: int,
        count: int,
        M: int,
        ef_construction: int,
        ef: int,
        vectors_sha256: str,
        item_ids: np.ndarray | None = None,
    ) -> None:
        self._index = raw
        self.space = space
        self.dim = int(dim)
        self.count = int(count)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef = int(ef)
        self.vectors_sha256 = vectors_sha256
        self.item_ids = item_ids
        self.build_seconds = 0.0
        self.huge_ranges: list[tuple[int, int]] = []

    def __repr__(self) -> str:
        return (
            f"HnswIndex(space={self.space!r}, dim={self.dim}, count={self.count}, M={self.M}, "
            f"ef_construction={self.ef_construction}, ef={self.ef})"
        )

    # -- build ---------------------------------------------------------------
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        item_ids: Sequence[str] | np.ndarray | None = None,
        space: str = "cosine",
        M: int = 16,
        ef_construction: int = 200,
        ef: int = 64,
        num_threads: int = -1,
        seed: int = 100,
    ) -> HnswIndex:
        """Build an index over ``vectors`` (row i gets label i).

        All items are added in one ``add_items`` call with ``num_threads``
        threads, so the build runs at raw hnswlib speed.

        Parameters
        ----------
        vectors : numpy.ndarray, shape (n, dim)
            Item vectors (converted to float32). hnswlib normalises them itself
            in the cosine space.
        item_ids : sequence of str, optional
            Item id of each row (kept in memory for convenience).
        space : {"cosine", "ip"}
        M, ef_construction, ef : int
            Graph degree, build-time and default query-time beam widths.
        num_threads : int
            Build threads; -1 uses every core.
        seed : int
            hnswlib's random seed (level assignment).

        Raises
        ------
        ValueError
            On an empty or non-finite matrix or bad parameters.
        """
        import hnswlib

        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        if M < 2 or ef_construction < 1 or ef < 1:
            raise ValueError(
                f"need M >= 2, ef_construction >= 1, ef >= 1; got M={M}, "
                f"ef_construction={ef_construction}, ef={ef}"
            )
        data = _as_matrix(vectors, "vectors")
        n, dim = data.shape
        if n == 0 or dim == 0:
            raise ValueError(f"cannot build an index over an empty matrix of shape {data.shape}")
        if not np.isfinite(data).all():
            bad = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
            raise ValueError(f"vectors contain NaN or inf (first bad row: {bad})")
        ids = None
        if item_ids is not None:
            ids = np.asarray(item_ids, dtype=str)
            if ids.shape != (n,):
                raise ValueError(
                    f"item_ids has {ids.shape[0] if ids.ndim else 0} entries, vectors has {n} rows"
                )
        raw = hnswlib.Index(space=space, dim=dim)
        with _graph_memory(n, dim, M) as huge:  # add_items writes the graph onto huge pages
            raw.init_index(max_elements=n, M=M, ef_construction=ef_construction, random_seed=seed)
        raw.set_ef(ef)
        t0 = time.perf_counter()
        raw.add_items(data, np.arange(n, dtype=np.int64), num_threads=num_threads)
        elapsed = time.perf_counter() - t0
        out = cls(
            raw,
            space=space,
            dim=dim,
            count=n,
            M=M,
            ef_construction=ef_construction,
            ef=ef,
            vectors_sha256=vectors_checksum(data),
            item_ids=ids,
        )
        out.build_seconds = elapsed
        out.huge_ranges = huge
        logger.info("built %r in %.2fs (%.0f items/s)", out, elapsed, n / max(elapsed, 1e-9))
        return out

    # -- query ---------------------------------------------------------------
    def knn(
        self,
        queries: np.ndarray,
        k: int,
        filter_rows: np.ndarray | None = None,
        num_threads: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k rows of each query, batch-first.

        Parameters
        ----------
        queries : numpy.ndarray, shape (n, dim) or (dim,)
        k : int
            Results per query; more than ``count`` (or than the allowed rows)
            is fine: the rest is padding.
        filter_rows : numpy.ndarray, optional
            Boolean mask of shape (count,) or an array of allowed rows; uses
            hnswlib's filter callback (slow at low selectivity: prefer
            :class:`recsys.search.FilteredSearcher`).
        num_threads : int
            Query threads (forced to 1 with a filter: the callback holds the GIL).

        Returns
        -------
        rows : numpy.ndarray of int64, shape (n, k)
            Padded with -1.
        sims : numpy.ndarray of float32, shape (n, k)
            ``1 - distance`` (cosine similarity or dot product), descending;
            padded with -inf. Never raises hnswlib's "contiguous 2D array"
            error: when hnswlib cannot return ``k`` allowed items, fewer are
            returned (padded).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = _as_matrix(queries, "queries", self.dim)
        n = q.shape[0]
        rows = np.full((n, k), -1, dtype=np.int64)
        sims = np.full((n, k), -np.inf, dtype=np.float32)
        callback = None
        available = self.count
        if filter_rows is not None:
            mask = np.asarray(filter_rows)
            if mask.dtype != np.bool_:
                allowed = mask.astype(np.int64)
                mask = np.zeros(self.count, dtype=bool)
                mask[allowed[(allowed >= 0) & (allowed < self.count)]] = True
            elif mask.shape != (self.count,):
                raise ValueError(f"filter mask has shape {mask.shape}, the index has {self.count} rows")
            available = int(np.count_nonzero(mask))
            callback = mask.__getitem__
            num_threads = 1
        kk = min(k, available)
        if kk == 0 or n == 0:
            return rows, sims
        try:
            labels, dist = self._index.knn_query(q, k=kk, num_threads=num_threads, filter=callback)
            rows[:, :kk] = labels
            sims[:, :kk] = 1.0 - dist
            return rows, sims
        except RuntimeError:
            pass  # hnswlib#444: fewer than kk reachable for some query; go one by one
        for i in range(n):
            k_try = kk
            while k_try >= 1:
                try:
                    labels, dist = self._index.knn_query(
                        q[i : i + 1], k=k_try, num_threads=1, filter=callback
                    )
                except RuntimeError:
                    k_try //= 2
                    continue
                rows[i, :k_try] = labels[0]
                sims[i, :k_try] = 1.0 - dist[0]
                break
        return rows, sims

    def knn_rows(self, query: np.ndarray, k: int) -> np.ndarray:
        """Approximate top-k rows of ONE query, best first: the planner's fast path.

        No padding and no similarities (the caller rescores exactly), one
        thread, no copies beyond hnswlib's own.

        Parameters
        ----------
        query : numpy.ndarray of float32, shape (dim,)
        k : int
            Clipped to ``count``.

        Returns
        -------
        numpy.ndarray of unsigned or signed int
            At most ``k`` rows (fewer only when hnswlib cannot reach k items).
        """
        q = query
        if not (isinstance(q, np.ndarray) and q.dtype == np.float32 and q.shape == (self.dim,)):
            q = np.asarray(query, dtype=np.float32).reshape(-1)
            if q.shape[0] != self.dim:
                raise ValueError(f"query has dimension {q.shape[0]}, the index has {self.dim}")
        k = min(int(k), self.count)
        try:
            labels, _ = self._index.knn_query(q[None, :], k=k, num_threads=1)
            return labels[0]
        except RuntimeError:  # hnswlib#444: fewer than k reachable
            rows, _ = self.knn(q, k)
            return rows[0][rows[0] >= 0]

    def knn_one(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k rows of ONE query and hnswlib's distances, best first.

        The serving hot path: no validation beyond what hnswlib does, one
        thread. Distances are hnswlib's ``1 - dot`` (of unit vectors in the
        cosine space), float32.

        Parameters
        ----------
        query : numpy.ndarray of float32, shape (1, dim)
            C-contiguous (the caller's job).
        k : int
            At most ``count``.

        Returns
        -------
        rows : numpy.ndarray of uint64, shape (m,)
        distances : numpy.ndarray of float32, shape (m,)
            ``m == k`` except when hnswlib cannot reach k items (then fewer).
        """
        try:
            labels, dist = self._index.knn_query(query, k=k, num_threads=1)
            return labels[0], dist[0]
        except RuntimeError:  # hnswlib#444: fewer than k reachable
            rows, sims = self.knn(query.reshape(-1), k)
            ok = rows[0] >= 0
            return rows[0][ok].astype(np.uint64), (1.0 - sims[0][ok]).astype(np.float32)

    # -- persistence -----------------------------------------------------------
    def header(self, payload_size: int = 0, payload_sha256: str = "") -> dict[str, Any]:
        """The JSON header written in front of the hnswlib payload."""
        return {
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "count": self.count,
            "space": self.space,
            "M": self.M,
            "ef_construction": self.ef_construction,
            "ef": self.ef,
            "payload_size": int(payload_size),
            "payload_sha256": payload_sha256,
            "vectors_sha256": self.vectors_sha256,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to ``path`` atomically (temporary file, then rename).

        Returns
        -------
        pathlib.Path
            The file written.
        """
        path = Path(path)
        with atomic_path(path, f"the index {path.name}") as final_tmp:
            fd, payload_tmp = tempfile.mkstemp(prefix=f".{path.name}.payload.", dir=path.parent)
            os.close(fd)
            try:
                self._index.save_index(payload_tmp)
                size = os.path.getsize(payload_tmp)
                digest = _sha256_file(payload_tmp)
                head = json.dumps(self.header(size, digest), sort_keys=True).encode()
                with open(final_tmp, "wb") as out, open(payload_tmp, "rb") as src:
                    out.write(_PREFIX.pack(MAGIC, len(head)))
                    out.write(head)
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
            finally:
                Path(payload_tmp).unlink(missing_ok=True)
        logger.info("saved %r to %s", self, path)
        return path

    @staticmethod
    def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
        """Read and validate the header of an index file (no payload check).

        Raises
        ------
        IndexFileError
            Missing, truncated or not an index file, or an unusable header.
        """
        path = Path(path)
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                prefix = fh.read(_PREFIX.size)
                if len(prefix) < _PREFIX.size:
                    raise IndexFileError(
                        f"index file {path} is truncated ({size} bytes, no header): rebuild it"
                    )
                magic, head_len = _PREFIX.unpack(prefix)
                if magic != MAGIC:
                    raise IndexFileError(
                        f"{path} is not a RecSys Lab index file (bad magic bytes): rebuild it"
                    )
                if head_len <= 0 or head_len > _MAX_HEADER:
                    raise IndexFileError(
                        f"index file {path} is corrupted (header length {head_len}): rebuild it"
                    )
                raw = fh.read(head_len)
        except FileNotFoundError:
            raise IndexFileError(f"index file {path} does not exist") from None
        except OSError as exc:
            raise IndexFileError(f"index file {path} cannot be read: {exc}") from exc
        if len(raw) < head_len:
            raise IndexFileError(f"index file {path} is truncated (header cut short): rebuild it")
        try:
            head = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise IndexFileError(f"index file {path} is corrupted (unreadable header): rebuild it") from None
        if not isinstance(head, dict):
            raise IndexFileError(f"index file {path} is corrupted (header is not an object): rebuild it")
        version = head.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise IndexFileError(f"index file {path} is corrupted (format_version={version!r}): rebuild it")
        if version > FORMAT_VERSION:
            raise IndexFileError(
                f"index file {path} has format version {version}, this library reads "
                f"<= {FORMAT_VERSION}: upgrade recsys or rebuild the index"
            )
        for key in ("dim", "count", "M", "ef_construction", "ef", "payload_size"):
            value = head.get(key)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < (0 if key == "payload_size" else 1)
            ):
                raise IndexFileError(
                    f"index file {path} is corrupted (header field {key}={value!r}): rebuild it"
                )
        if head.get("space") not in SPACES:
            raise IndexFileError(f"index file {path} is corrupted (space={head.get('space')!r}): rebuild it")
        for key in ("payload_sha256", "vectors_sha256"):
            if not isinstance(head.get(key), str):
                raise IndexFileError(
                    f"index file {path} is corrupted (header field {key} missing): rebuild it"
                )
        expected_size = _PREFIX.size + head_len + head["payload_size"]
        if size < expected_size:
            raise IndexFileError(
                f"index file {path} is truncated ({size} of {expected_size} bytes): rebuild it"
            )
        if size > expected_size:
            raise IndexFileError(
                f"index file {path} is corrupted ({size - expected_size} unexpected trailing "
                "bytes): rebuild it"
            )
        head["_payload_offset"] = _PREFIX.size + head_len
        return head

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        expected_dim: int | None = None,
        expected_count: int | None = None,
        vectors_checksum: str | None = None,
        item_ids: Sequence[str] | np.ndarray | None = None,
    ) -> HnswIndex:
        """Read an index written by :meth:`save`, checking it thoroughly first.

        Parameters
        ----------
        path : path-like
        expected_dim, expected_count : int, optional
            Refuse an index of another dimension or size.
        vectors_checksum : str, optional
            :func:`vectors_checksum` of the run's vectors: refuse an index
            built from other vectors.
        item_ids : sequence of str, optional
            Attached as ``item_ids`` (must have ``count`` entries).

        Raises
        ------
        IndexFileError
            Truncated, corrupted, mismatched dimension/count, or built for
            other vectors. The message says which, and to rebuild.
        """
        import hnswlib

        path = Path(path)
        head = cls.read_header(path)
        if expected_dim is not None and head["dim"] != expected_dim:
            raise IndexFileError(
                f"index file {path} has dimension {head['dim']}, the vectors have "
                f"{expected_dim}: it belongs to another run; rebuild it"
            )
        if expected_count is not None and head["count"] != expected_count:
            raise IndexFileError(
                f"index file {path} holds {head['count']} items, the run has {expected_count}: rebuild it"
            )
        if vectors_checksum is not None and head["vectors_sha256"] != vectors_checksum:
            raise IndexFileError(
                f"index file {path} was built for other vectors (checksum mismatch): rebuild it"
            )
        fd, tmp = tempfile.mkstemp(prefix=".index-payload.")
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                src.seek(head["_payload_offset"])
                remaining = head["payload_size"]
                while remaining > 0:
                    chunk = src.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise IndexFileError(
                            f"index file {path} is truncated (payload cut short): rebuild it"
                        )
                    h.update(chunk)
                    out.write(chunk)
                    remaining -= len(chunk)
            if h.hexdigest() != head["payload_sha256"]:
                raise IndexFileError(
                    f"index file {path} is corrupted (payload checksum mismatch): rebuild it"
                )
            raw = hnswlib.Index(space=head["space"], dim=head["dim"])
            try:
                with _graph_memory(head["count"], head["dim"], head["M"]) as huge:
                    raw.load_index(tmp, max_elements=head["count"])
            except (RuntimeError, ValueError, MemoryError) as exc:
                raise IndexFileError(
                    f"index file {path}: hnswlib refused the payload ({exc}): rebuild it"
                ) from exc
        finally:
            Path(tmp).unlink(missing_ok=True)
        if raw.element_count != head["count"]:
            raise IndexFileError(
                f"index file {path} holds {raw.element_count} items, its header says "
                f"{head['count']}: rebuild it"
            )
        # load_index wrote the graph on 4 KB pages before the advice: moved onto huge pages now
        # (1M: 412 MB in 0.3 to 1.4 s), so that a loaded graph is read as fast as a built one
        t0 = time.perf_counter()
        if collapse(huge):
            logger.info("%s: graph collapsed onto huge pages in %.2fs", path, time.perf_counter() - t0)
        raw.set_ef(head["ef"])
        ids = None
        if item_ids is not None:
            ids = np.asarray(item_ids, dtype=str)
            if ids.shape != (head["count"],):
                raise IndexFileError(
                    f"index file {path} holds {head['count']} items, {len(ids)} item ids given"
                )
        out = cls(
            raw,
            space=head["space"],
            dim=head["dim"],
            count=head["count"],
            M=head["M"],
            ef_construction=head["ef_construction"],
            ef=head["ef"],
            vectors_sha256=head["vectors_sha256"],
            item_ids=ids,
        )
        out.huge_ranges = huge
        logger.info("loaded %r from %s", out, path)
        return out


def _sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def exact_search(
    unit_vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    allowed_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by dot product with NumPy (:func:`recsys.topk.topk_rows`), batch-first.

    Parameters
    ----------
    unit_vectors : numpy.ndarray, shape (n_items, dim)
        Item vectors; L2-normalised rows give cosine similarity.
    queries : numpy.ndarray, shape (n, dim) or (dim,)
        Normalise them too for cosine similarity.
    k : int
    allowed_rows : numpy.ndarray, optional
        Boolean mask over items or an array of allowed rows; only these are
        scored.

    Returns
    -------
    rows : numpy.ndarray of int64, shape (n, k)
        Padded with -1 when fewer than k items are allowed.
    sims : numpy.ndarray of float32, shape (n, k)
        Descending (ties by row), padded with -inf.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    items = np.asarray(unit_vectors, dtype=np.float32)
    q = _as_matrix(queries, "queries", items.shape[1])
    n = q.shape[0]
    rows = np.full((n, k), -1, dtype=np.int64)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    if allowed_rows is None:
        subset = None
        candidates = items
    else:
        allowed = np.asarray(allowed_rows)
        subset = np.flatnonzero(allowed) if allowed.dtype == np.bool_ else np.unique(allowed.astype(np.int64))
        candidates = items[subset]
    m = candidates.shape[0]
    kk = min(k, m)
    if kk == 0 or n == 0:
        return rows, sims
    top, top_s = topk_rows(q @ candidates.T, kk)
    rows[:, :kk] = top if subset is None else subset[top]
    sims[:, :kk] = top_s
    return rows, sims
