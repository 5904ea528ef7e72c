"""Checking an hnswlib index file built elsewhere against the imported vectors (rebuilt when it does not match)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import IndexFileError

logger = logging.getLogger(__name__)

#: Queries sampled to check an index built elsewhere, and the neighbours compared per query.
INDEX_CHECK_QUERIES = 20
INDEX_CHECK_K = 10
#: Recall@10 (against exact search) under which an index built elsewhere is rebuilt: so low that
#: its graph is broken. Higher but low recall is a quality matter (small M or ef_construction, or
#: hard data such as random Gaussian vectors, where even a fresh build reaches ~0.55): kept with a
#: warning, since a rebuild would change nothing the user asked for.
INDEX_MIN_RECALL = 0.1
#: ... and under which it is kept with a warning.
INDEX_WARN_RECALL = 0.9


_HNSW_HEADER = struct.Struct("<QQQQQQiIQQQdQ")  # hnswlib HierarchicalNSW::saveIndex


def read_hnswlib_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Dimension, count and parameters of a raw ``hnswlib.Index.save_index`` file (or of a
    RecSys Lab ``index.bin``), read from its header without loading it.

    hnswlib's own loader accepts a file of another dimension without complaint,
    so the dimension is read here first.

    Raises
    ------
    IndexFileError
        Too short, or a header that is not hnswlib's.
    """
    from recsys.index import MAGIC, HnswIndex

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(max(_HNSW_HEADER.size, len(MAGIC)))
    if head.startswith(MAGIC):
        h = HnswIndex.read_header(path)
        return {
            "kind": "recsys",
            "dim": h["dim"],
            "count": h["count"],
            "space": h["space"],
            "M": h["M"],
            "ef_construction": h["ef_construction"],
            "payload_offset": h["_payload_offset"],
            "payload_size": h["payload_size"],
        }
    if len(head) < _HNSW_HEADER.size:
        raise IndexFileError(
            f"index file {path.name} is too short ({len(head)} bytes) to be an hnswlib index"
        )
    (
        offset0,
        max_el,
        count,
        per_el,
        label_off,
        offset_data,
        _maxlevel,
        _enter,
        _maxM,
        maxM0,
        M,
        _mult,
        efc,
    ) = _HNSW_HEADER.unpack(head[: _HNSW_HEADER.size])
    data_size = label_off - offset_data
    if (
        offset0 != 0
        or count > max_el
        or per_el != label_off + 8
        or data_size <= 0
        or data_size % 4
        or offset_data != maxM0 * 4 + 4
        or M < 1
    ):
        raise IndexFileError(f"{path.name} is not an hnswlib index file (its header does not parse)")
    size = path.stat().st_size
    if size < _HNSW_HEADER.size + count * per_el:
        raise IndexFileError(f"index file {path.name} is truncated ({size:,} bytes for {count:,} items)")
    return {
        "kind": "hnswlib",
        "dim": data_size // 4,
        "count": int(count),
        "space": None,
        "M": int(M),
        "ef_construction": int(efc),
        "payload_offset": 0,
        "payload_size": size,
    }


def check_index(
    path: str | os.PathLike[str],
    vectors: np.ndarray,
    metric: str,
    seed: int = 0,
    vectors_sha256: str | None = None,
    sq_norms: np.ndarray | None = None,
    preloaded: Future[Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Check an index file built elsewhere against the vectors it should hold.

    Checks, in order: the header parses; dimension and count match; hnswlib
    loads it; its labels are the row numbers 0..n-1; a sample of its stored
    vectors equals the vectors (unit rows in the cosine space, so this also
    tells the space); a sample of queries returns ``1 - dot`` distances (not
    another space) with recall@10 of at least :data:`INDEX_MIN_RECALL`
    against exact search.

    ``sq_norms`` (the rows' squared norms, as the validation computed them) spares a pass
    over the vectors in the cosine space. The exact scores of the sampled queries are
    computed in a thread while hnswlib loads the file (BLAS runs without the GIL).
    ``preloaded``: :func:`load_raw_index` of the same file, started earlier in a thread (the
    importer starts it beside the reading and the validation); used once the header matches.

    Returns
    -------
    index : HnswIndex or None
        The loaded index, or None when it does not match (the caller rebuilds).
    info : dict
        ``status`` ("used" or "rebuild"), ``reason``, ``dim``, ``count``,
        ``M``, ``ef_construction``, ``recall@10`` and ``warnings``.
    """

    from recsys.models.base import normalize_rows

    path = Path(path)
    n, dim = vectors.shape
    info: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size, "warnings": []}

    def rebuild(reason: str) -> tuple[None, dict[str, Any]]:
        info.update(status="rebuild", reason=reason)
        return None, info

    try:
        head = read_hnswlib_header(path)
    except IndexFileError as exc:
        return rebuild(str(exc))
    info.update(dim=head["dim"], count=head["count"], M=head["M"], ef_construction=head["ef_construction"])
    if head["dim"] != dim:
        return rebuild(f"the index has dimension {head['dim']}, the vectors have {dim}")
    if head["count"] != n:
        return rebuild(f"the index holds {head['count']:,} items, {n:,} vectors are imported")
    if head["space"] is not None and head["space"] != metric:
        return rebuild(f"the index was built in the {head['space']} space, the import asks for {metric}")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, INDEX_CHECK_QUERIES), replace=False))
    raw_rows = np.asarray(vectors[sample], dtype=np.float32)
    unit_rows = normalize_rows(raw_rows)
    space_rows = unit_rows if metric == "cosine" else raw_rows
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-check") as pool:
        exact_f = pool.submit(_exact_scores, space_rows, vectors, metric, sq_norms)
        loaded = preloaded.result() if preloaded is not None else _load_raw(path, head, metric, dim, n)
        if isinstance(loaded, str):
            return rebuild(loaded)
        if loaded.dim != dim:  # preloaded from a header the file no longer has
            return rebuild(f"index file {path.name} changed while it was imported")
        raw = loaded
        scores = exact_f.result()
    return _check_loaded(
        raw, head, info, rebuild, vectors, metric, sample, raw_rows, unit_rows, scores, vectors_sha256, path
    )


def _exact_scores(
    space_rows: np.ndarray, vectors: np.ndarray, metric: str, sq_norms: np.ndarray | None
) -> np.ndarray:
    """Exact scores of the sampled queries against every row (cosine: divided by the row norms)."""
    scores = space_rows @ np.asarray(vectors, np.float32).T
    if metric == "cosine":
        if sq_norms is None:
            sq_norms = np.einsum("ij,ij->i", vectors, vectors)
        scores *= (1.0 / np.maximum(np.sqrt(np.asarray(sq_norms, np.float32)), np.float32(1e-12)))[None, :]
    return scores


def load_raw_index(path: Path, head: dict[str, Any], metric: str) -> Any:
    """What :func:`check_index` loads, as the header (:func:`read_hnswlib_header`) describes it:
    to be started before the vectors are read (hnswlib holds the GIL while it loads, but the
    copies, hashes and Arrow/NumPy passes beside it do not)."""
    return _load_raw(path, head, metric, head["dim"], head["count"])


def _load_raw(path: Path, head: dict[str, Any], metric: str, dim: int, n: int) -> Any:
    """The raw ``hnswlib.Index`` of the file, or why it cannot be loaded (a str)."""
    import hnswlib

    from recsys.index import HnswIndex

    if head["kind"] == "recsys":
        try:
            return HnswIndex.load(path, expected_dim=dim, expected_count=n)._index
        except IndexFileError as exc:
            return str(exc)
    raw = hnswlib.Index(space=metric, dim=dim)
    try:
        raw.load_index(str(path), max_elements=n)
    except (RuntimeError, ValueError, MemoryError) as exc:
        return f"hnswlib could not load it ({exc})"
    return raw


def file_labels(path: Path, head: dict[str, Any]) -> np.ndarray:
    """The labels of every element of an hnswlib file (its level-0 records, in file order),
    read straight from the page cache: what ``get_ids_list`` returns once hnswlib has loaded
    the file, without a Python list of n ints."""
    import mmap

    start = head["payload_offset"]
    with open(path, "rb") as fh:
        fh.seek(start)
        raw_head = fh.read(_HNSW_HEADER.size)
        if len(raw_head) < _HNSW_HEADER.size:
            return np.zeros(0, dtype=np.int64)
        _, _, count, per_el, label_off, *_ = _HNSW_HEADER.unpack(raw_head)
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    first = start + _HNSW_HEADER.size + label_off
    if count == 0 or first + (count - 1) * per_el + 8 > len(mapped):
        return np.zeros(0, dtype=np.int64)
    view = np.ndarray((count,), dtype="<u8", buffer=mapped, offset=first, strides=(per_el,))
    return view.astype(np.int64)  # a copy: the map may close after this


def _labels_are_rows(labels: np.ndarray, n: int) -> bool:
    """Whether the index's labels are exactly the row numbers 0..n-1 (each once), in O(n)."""
    if labels.shape != (n,) or labels.min() < 0 or labels.max() >= n:
        return False
    seen = np.zeros(n, dtype=bool)
    seen[labels] = True
    return bool(seen.all())


def _check_loaded(
    raw: Any,
    head: dict[str, Any],
    info: dict[str, Any],
    rebuild: Any,
    vectors: np.ndarray,
    metric: str,
    sample: np.ndarray,
    raw_rows: np.ndarray,
    unit_rows: np.ndarray,
    scores: np.ndarray,
    vectors_sha256: str | None,
    path: Path,
) -> tuple[Any, dict[str, Any]]:
    """The checks of :func:`check_index` once hnswlib has loaded the file."""
    from recsys.index import HnswIndex, vectors_checksum

    n, dim = vectors.shape
    if raw.element_count != n:
        return rebuild(f"the index holds {raw.element_count:,} items, {n:,} vectors are imported")
    if not _labels_are_rows(file_labels(path, head), n):
        return rebuild("its labels are not the row numbers 0..n-1 of the vectors file")
    stored = np.asarray(raw.get_items(sample, return_type="numpy"), dtype=np.float32)
    expected, other = (unit_rows, raw_rows) if metric == "cosine" else (raw_rows, unit_rows)
    if not np.allclose(stored, expected, rtol=1e-4, atol=1e-5):
        if np.allclose(stored, other, rtol=1e-4, atol=1e-5):
            built = "ip (or l2)" if metric == "cosine" else "cosine"
            return rebuild(f"it was built in the {built} space, the import asks for {metric}")
        return rebuild("its vectors differ from the imported ones (another model, or another row order)")
    space_rows = unit_rows if metric == "cosine" else raw_rows
    raw.set_ef(max(100, INDEX_CHECK_K))
    k = min(INDEX_CHECK_K, n)
    got, dist = raw.knn_query(space_rows, k=k)
    found = vectors[got.astype(np.int64)]  # (queries, k, dim)
    if metric == "cosine":
        found = found / np.maximum(np.linalg.norm(found, axis=2, keepdims=True), np.float32(1e-12))
    dots = np.einsum("ij,ikj->ik", space_rows, found)
    if not np.allclose(1.0 - dist, dots, rtol=1e-3, atol=1e-3):
        return rebuild("its distances are not 1 - inner product: it was built in another space (l2?)")
    recall = _recall(scores, got.astype(np.int64), k)
    info["recall@10"] = round(recall, 4)
    if recall < INDEX_MIN_RECALL:
        return rebuild(
            f"its recall@{k} on {len(sample)} sampled queries is {recall:.2f} against exact search"
        )
    if recall < INDEX_WARN_RECALL:
        info["warnings"].append(
            f"the index's recall@{k} on {len(sample)} sampled queries is {recall:.2f}: kept, but consider "
            "rebuilding it with a larger M or ef_construction"
        )
    index = HnswIndex(
        raw,
        space=metric,
        dim=dim,
        count=n,
        M=head["M"],
        ef_construction=head["ef_construction"],
        ef=64,
        vectors_sha256=vectors_sha256 or vectors_checksum(vectors),
    )
    raw.set_ef(64)
    info.update(status="used", reason="dimension, count, labels, space and a sample of queries match")
    return index, info


def _recall(scores: np.ndarray, got: np.ndarray, k: int) -> float:
    """Mean recall@k of the index's answers ``got`` (queries, k) against the exact ``scores``
    (queries, n): the share of answers scoring at least the k-th best exact score.

    The k-th best score is at least the lowest score among the k answers, so it is found
    among the few rows scoring that much (one comparison pass, no selection over all n).
    """
    hits = 0
    for q in range(scores.shape[0]):
        row = scores[q]
        answered = row[got[q]]
        floor = answered.min()
        candidates = row[row >= floor]  # holds the exact top k (the k answers are among them)
        kth = np.partition(candidates, len(candidates) - k)[len(candidates) - k]
        hits += int((answered >= kth).sum())
    return hits / (scores.shape[0] * k)


#: Bytes kept for the JSON header in front of a staged payload (the header takes ~350; JSON
#: allows the trailing spaces that pad it, so the payload is copied before the header is known).
_STAGED_HEADER = 1024
_COPY_CHUNK = 1 << 24


def source_stamp(path: Path) -> tuple[int, int, int]:
    """(inode, size, mtime) of a file: whether it changed between two moments of an import."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def stage_index(src: Path, head: dict[str, Any], dest: Path) -> dict[str, Any]:
    """Copy the hnswlib payload of ``src`` into ``dest`` as the body of a RecSys Lab index
    file (room left for the header, written by :func:`finish_staged_index`), and hash the
    copy: the digest is that of the stored bytes, read once from the page cache.

    One kernel-side copy (``copy_file_range``: a reflink on file systems that share
    blocks) and one SHA-256 pass over the copy through ``mmap``: each a single call that
    releases the GIL, so this runs in a thread beside the reading, the validation and the
    index check. Returns where the payload sits, its size and SHA-256, and the stamp of
    ``src`` before the copy (the caller checks it did not change meanwhile).
    """
    import mmap

    from recsys.index import _PREFIX

    offset, size = head["payload_offset"], head["payload_size"]
    stamp = source_stamp(src)
    body = _PREFIX.size + _STAGED_HEADER
    with open(src, "rb") as fin, open(dest, "wb") as out:
        copy_range(fin, out, offset, size, body)
    h = hashlib.sha256()
    with open(dest, "rb") as fh:
        if os.fstat(fh.fileno()).st_size != body + size:
            raise IndexFileError(f"index file {src.name} changed while it was imported")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                h.update(view[body:])
            finally:
                view.release()
    return {"path": dest, "body": body, "size": size, "sha256": h.hexdigest(), "source_stamp": stamp}


def copy_range(fin: Any, out: Any, offset: int, size: int, dest_offset: int) -> None:
    """Copy ``size`` bytes of ``fin`` from ``offset`` to ``out`` at ``dest_offset``."""
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(fin.fileno(), out.fileno(), size - done, offset + done, dest_offset + done)
        except (AttributeError, OSError):  # another file system, or no such call: copy in user space
            fin.seek(offset + done)
            out.seek(dest_offset + done)
            while done < size:
                chunk = fin.read(min(_COPY_CHUNK, size - done))
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
            n = 0
        if n == 0 and done < size:
            raise IndexFileError(f"index file {Path(fin.name).name} changed while it was imported")
        done += n


def finish_staged_index(index: Any, staged: dict[str, Any], dest: Path) -> None:
    """Write the header of a payload staged by :func:`stage_index` and move the file to
    ``dest`` (a rename: the staging folder and the run folder share the data directory)."""
    from recsys.index import _PREFIX, MAGIC

    header = json.dumps(index.header(staged["size"], staged["sha256"]), sort_keys=True).encode()
    if len(header) > _STAGED_HEADER:  # cannot happen with today's header; never write past the room
        raise IndexFileError(f"the index header takes {len(header)} bytes, more than {_STAGED_HEADER}")
    with open(staged["path"], "r+b") as fh:
        fh.write(_PREFIX.pack(MAGIC, _STAGED_HEADER))
        fh.write(header.ljust(_STAGED_HEADER))
    os.replace(staged["path"], dest)
