"""Validating imported vectors against a dataset's catalogue (the import report)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from recsys.external.read import _EXAMPLES, VectorTable

#: how a user asks for dropping, in the words of where they import: the CLI's flag and the Data
#: page's choice (the Python keyword ``errors="drop"`` read as neither)
DROP_HINT = "--errors drop (on the Data page: 'NaN rows, duplicates: drop')"

logger = logging.getLogger(__name__)


def _examples(values: Any) -> list[str]:
    return [str(v) for v in values[:_EXAMPLES]]


def _arrow_strings(values: Any) -> Any:
    """An Arrow string array of ids: ASCII ids straight from NumPy's fixed-width UTF-32 (a few
    vectorised passes), any others via Python objects (still faster than Arrow's own cast)."""
    import pyarrow as pa

    arr = np.asarray(values)
    fast = _ascii_arrow_strings(arr) if arr.dtype.kind == "U" and arr.ndim == 1 else None
    if fast is not None:
        return fast
    return pa.array(arr.astype(str).astype(object), type=pa.string())


def _ascii_arrow_strings(arr: np.ndarray) -> Any:
    """``arr`` (1-D, dtype ``U``) as an Arrow string array when every character is ASCII, else None.

    Each UTF-32 code point becomes one byte (fixed-width binary, one cast to strings), and the
    NUL padding NumPy adds up to the width is trimmed off the end, as NumPy does on reading.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n, width = len(arr), arr.dtype.itemsize // 4
    if n == 0 or width == 0:
        return None
    codes = np.ascontiguousarray(arr).view(np.uint32).reshape(n, width)
    if codes.max() >= 128:
        return None
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), n, [None, pa.py_buffer(codes.astype(np.uint8))]
    )
    strings = fixed.cast(pa.large_binary() if n * width >= 2**31 else pa.binary()).cast(
        pa.large_string() if n * width >= 2**31 else pa.string()
    )
    return pc.ascii_rtrim(strings, characters="\x00")


def _positions(ids: np.ndarray, value_set: np.ndarray) -> np.ndarray:
    """Position of each id in ``value_set`` (unique), -1 when absent (Arrow hash kernel)."""
    import pyarrow.compute as pc

    pos = pc.index_in(_arrow_strings(ids), value_set=_arrow_strings(value_set))
    return pc.fill_null(pos, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def match_ids(ids: np.ndarray, catalog_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Duplicate rows (all but the first of each id) and each row's position in the catalogue
    (-1: unknown), with Arrow's hash kernels: fast for millions of string ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _arrow_strings(ids)
    cat = catalog_ids if isinstance(catalog_ids, (pa.Array, pa.ChunkedArray)) else _arrow_strings(catalog_ids)
    pos = pc.fill_null(pc.index_in(arr, value_set=cat), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    # duplicates among the known ids from their catalogue positions (one hash pass over the
    # ids, not two); the unknown ones, usually none, are hashed among themselves
    dup_mask = np.zeros(len(pos), dtype=bool)
    known = np.flatnonzero(pos >= 0)
    if len(known) and np.bincount(pos[known], minlength=1).max() > 1:
        _, first = np.unique(pos[known], return_index=True)
        dup_mask[known] = True
        dup_mask[known[first]] = False
    unknown = np.flatnonzero(pos < 0)
    if len(unknown) > 1:
        sub = arr.take(pa.array(unknown))
        slot = pc.index_in(sub, value_set=pc.unique(sub)).to_numpy(zero_copy_only=False)
        _, first = np.unique(slot, return_index=True)
        dup_mask[unknown] = True
        dup_mask[unknown[first]] = False
    return dup_mask, pos


def validate_table(
    table: VectorTable, catalog_ids: Any, errors: str = "raise", what: str = "vectors"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Check vectors against the catalogue; return the rows to keep and the report.

    Unknown ids and zero rows are always left out (they cannot be served);
    NaN/inf rows and duplicate ids fail the import unless ``errors="drop"``
    (then they are left out too, keeping the first of duplicates).

    Returns
    -------
    keep : numpy.ndarray of bool, shape (rows,)
    report : dict
        ``rows``, ``dimension``, ``duplicate_ids``, ``nan_rows``, ``zero_rows``,
        ``unknown_ids`` (each ``{"count", "examples"}``), ``rows_kept``,
        ``warnings``, ``errors``.
    """
    ids, vec = table.ids, table.vectors
    n, dim = vec.shape
    norms = np.einsum("ij,ij->i", vec, vec)  # NaN or inf in a row make its squared norm NaN or inf
    finite = np.isfinite(norms)
    suspect = np.flatnonzero(~finite)
    if len(suspect):  # ... and so may huge (but finite) values: check those rows one by one
        finite[suspect] = np.isfinite(vec[suspect]).all(axis=1)
        norms[suspect] = np.where(finite[suspect], 1.0, np.nan)
    nan_rows = np.flatnonzero(~finite)
    zero_rows = np.flatnonzero(finite & (norms == 0))
    dup_mask, catalog_pos = match_ids(ids, catalog_ids)
    dup_count = int(dup_mask.sum()) + table.duplicates_dropped_by_reader
    known = catalog_pos >= 0
    unknown = np.flatnonzero(~known)

    report: dict[str, Any] = {
        "file": table.file,
        "format": table.fmt,
        "rows": int(n),
        "dimension": int(dim),
        "duplicate_ids": {"count": dup_count, "examples": _examples(pd.unique(ids[dup_mask]))},
        "nan_rows": {
            "count": int(len(nan_rows)),
            "examples": [f"row {r + 1} ({ids[r]})" for r in nan_rows[:_EXAMPLES]],
        },
        "zero_rows": {
            "count": int(len(zero_rows)),
            "examples": [f"row {r + 1} ({ids[r]})" for r in zero_rows[:_EXAMPLES]],
        },
        "unknown_ids": {"count": int(len(unknown)), "examples": _examples(ids[unknown])},
        "warnings": [],
        "errors": [],
    }
    if table.duplicates_dropped_by_reader:
        report["duplicate_ids"]["examples"] = report["duplicate_ids"]["examples"] or []
        report["warnings"].append(
            f"{table.duplicates_dropped_by_reader} duplicate id(s) in the word2vec file: gensim kept the first vector of each"
        )
    keep = finite & (norms > 0) & known & ~dup_mask
    report["_catalog_pos"] = catalog_pos  # popped by import_vectors
    report["_sq_norms"] = norms  # squared row norms (NaN rows: NaN), popped by import_vectors too
    if len(nan_rows):
        msg = f"{len(nan_rows):,} {what} row(s) hold NaN or inf (first: {report['nan_rows']['examples'][0]})"
        _problem(
            report, errors, msg, f"; fix them, or import with {DROP_HINT} to leave them out", ": left out"
        )
    if dup_mask.any():
        msg = f"{int(dup_mask.sum()):,} duplicate id(s) in the {what} (e.g. {', '.join(report['duplicate_ids']['examples'][:3])})"
        _problem(
            report,
            errors,
            msg,
            f"; which vector is meant? dedupe them, or import with {DROP_HINT} to keep the first",
            ": kept the first of each",
        )
    if len(zero_rows):
        report["warnings"].append(
            f"{len(zero_rows):,} all-zero {what} row(s) left out (e.g. {report['zero_rows']['examples'][0]})"
        )
    if len(unknown) == n:
        report["errors"].append(
            f"none of the {n:,} ids is in the catalogue (file ids look like {', '.join(_examples(ids)[:3])}; "
            f"catalogue ids like {', '.join(_examples(catalog_ids[:3]))}): is it the right dataset?"
        )
    elif len(unknown):
        report["warnings"].append(
            f"{len(unknown):,} id(s) unknown to the catalogue left out (e.g. {', '.join(report['unknown_ids']['examples'][:3])})"
        )
    report["rows_kept"] = int(keep.sum())
    if report["rows_kept"] < 2 and not report["errors"]:
        report["errors"].append(
            f"only {report['rows_kept']} usable row(s): a run needs at least 2 items with vectors"
        )
    return keep, report


def _problem(report: dict[str, Any], errors: str, msg: str, fix: str, dropped: str) -> None:
    """An error (``errors="raise"``: ``msg`` + how to fix it) or a warning (``errors="drop"``:
    ``msg`` + what was done instead)."""
    if errors == "raise":
        report["errors"].append(msg + fix)
    else:
        report["warnings"].append(msg + dropped)
