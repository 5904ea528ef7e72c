"""Bring your own vectors: import embeddings (and an HNSW index) trained elsewhere, export runs.

Import (:func:`import_vectors`, ``python -m recsys import-vectors``) reads item
vectors from

==================  ==========================================================
``npy``             a 2-D ``.npy`` matrix plus ids (``--ids``: ``.npy`` or one id a line)
``parquet``/``csv`` an ``item_id`` column and either one list column (``[0.1, 0.2]``
                    in CSV) or ``d`` numeric columns
``word2vec``        word2vec text format (gensim's ``KeyedVectors`` reader)
``word2vec-binary`` word2vec binary format (same reader)
``projector``       ``vectors.tsv`` as TensorFlow's Embedding Projector writes it, ids
                    from its ``metadata.tsv`` (``--ids``)
==================  ==========================================================

validates them against the dataset's catalogue (dimension, rows, duplicate
ids, NaN/inf rows, zero rows, ids unknown to the catalogue, catalogue items
without a vector), optionally checks an hnswlib index file built elsewhere
(dimension, count, labels, space, a sample of queries; rebuilt with a warning
when it does not match) and a second, query-side space, and stores the result
as an ordinary run of family ``external`` with its provenance in run.json.
Everything is written into a temporary run folder and renamed into place, so a
failed import stores nothing.

Export (:func:`export_run`, ``python -m recsys runs export``) writes a run's
vectors as ``npy``, ``parquet``, ``word2vec`` text or the Embedding Projector's
``vectors.tsv`` + ``metadata.tsv`` + ``projector_config.json``; importing an
export gives the same run (same ids, vectors and lists).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import struct
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.config import Progress, data_dir, null_progress
from recsys.errors import DataValidationError, IndexFileError, RecsysError
from recsys.topk import topk_rows_unordered

logger = logging.getLogger(__name__)

FORMATS = ("npy", "parquet", "csv", "word2vec", "word2vec-binary", "projector")
EXPORT_FORMATS = ("projector", "parquet", "word2vec", "npy")
METRICS = ("cosine", "ip")
ERRORS = ("raise", "drop")
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
_EXAMPLES = 5

_EXTENSIONS = {
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".gz": "csv",
    ".tsv": "projector",
    ".bin": "word2vec-binary",
    ".txt": "word2vec",
    ".vec": "word2vec",
    ".w2v": "word2vec",
}


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
@dataclass
class VectorTable:
    """Vectors as read from a file, before validation (rows in file order)."""

    ids: np.ndarray  # str, shape (n,)
    vectors: np.ndarray  # float32, shape (n, d)
    fmt: str
    file: str
    duplicates_dropped_by_reader: int = 0


def detect_format(path: str | os.PathLike[str]) -> str:
    """The import format of a file from its name (``.npy``, ``.parquet``, ``.csv``, ``.tsv``,
    ``.bin``, ``.txt``/``.vec``); raises DataValidationError when the name says nothing."""
    name = Path(path).name.lower()
    if name.endswith(".csv.gz"):
        return "csv"
    fmt = _EXTENSIONS.get(Path(name).suffix)
    if fmt is None or (fmt == "csv" and not name.endswith(".csv.gz") and Path(name).suffix == ".gz"):
        raise DataValidationError(
            f"cannot tell the format from the file name; name it .npy, .parquet, .csv, .tsv "
            f"(Projector), .txt/.vec (word2vec text) or .bin (word2vec binary), or give the format "
            f"({', '.join(FORMATS)})",
            file=Path(path).name,
        )
    return fmt


def read_ids(path: str | os.PathLike[str]) -> np.ndarray:
    """Item ids, one per vector row: a 1-D ``.npy`` or a text file with one id a line.

    A ``.tsv`` with several columns is read as the Projector's ``metadata.tsv``
    (a header row; the ``item_id`` column, else the first one).
    """
    path = Path(path)
    label = path.name
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise DataValidationError(
                    "the ids are a Python object array (a pickle), which is never loaded: save them with "
                    "np.save(path, np.asarray(ids, dtype=str)) or as a text file with one id a line",
                    file=label,
                ) from None
            raise DataValidationError(f"not a plain .npy array of ids ({exc})", file=label) from None
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise DataValidationError(f"ids must be a 1-D array, got shape {arr.shape}", file=label)
        if arr.dtype.kind == "S":
            arr = np.char.decode(arr, "utf-8")
        elif arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise DataValidationError("ids are non-integer numbers; give strings or integers", file=label)
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "iuU":
            raise DataValidationError(f"ids have dtype {arr.dtype}; give strings or integers", file=label)
        return arr.astype(str)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=label) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.rstrip("\r") for line in lines]
    if lines and "\t" in lines[0]:  # Projector metadata: a header row, several columns
        header = lines[0].split("\t")
        col = header.index("item_id") if "item_id" in header else 0
        out = []
        for n, line in enumerate(lines[1:], start=1):
            cells = line.split("\t")
            if len(cells) != len(header):
                raise DataValidationError(
                    f"has {len(cells)} fields, the header has {len(header)}", file=label, row=n
                )
            out.append(cells[col])
        lines = out
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataValidationError("empty id", file=label, row=n)
    return np.asarray([line.strip() for line in lines], dtype=str)


def _as_float_matrix(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim != 2:
        raise DataValidationError(
            f"vectors must be a 2-D array (rows, dimension), got shape {arr.shape}", file=label
        )
    if arr.dtype.kind not in "fiu":
        raise DataValidationError(f"vectors have dtype {arr.dtype}; give numbers", file=label)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataValidationError(f"no vectors (shape {arr.shape})", file=label)
    return np.ascontiguousarray(arr, dtype=np.float32)


def _read_npy(path: Path, ids_path: Path | None) -> VectorTable:
    label = path.name
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc)
        if any(w in msg for w in ("reshape", "buffer", "size", "read all data", "not fully written")):
            msg = f"the file is truncated or damaged ({msg})"
        raise DataValidationError(f"not a plain numeric .npy array: {msg}", file=label) from None
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read the .npy file ({exc})", file=label) from None
    vectors = _as_float_matrix(arr, label)
    if ids_path is None:
        raise DataValidationError(
            "a .npy matrix has no ids: give the ids file (--ids: a .npy array or a text file with one "
            "id a line, in row order)",
            file=label,
        )
    ids = read_ids(ids_path)
    return VectorTable(_check_rows(ids, vectors, ids_path.name, label), vectors, "npy", label)


def _check_rows(ids: np.ndarray, vectors: np.ndarray, ids_label: str, label: str) -> np.ndarray:
    if len(ids) != vectors.shape[0]:
        raise DataValidationError(
            f"{len(ids):,} ids for {vectors.shape[0]:,} vector rows in {label}: one id per row is needed",
            file=ids_label,
        )
    return ids


def _parse_list_cell(cell: Any) -> np.ndarray | None:
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return None
    if isinstance(cell, (list, tuple, np.ndarray)):
        return np.asarray(cell, dtype=np.float64)
    text = str(cell).strip().strip("[]()")
    parts = text.replace(",", " ").replace(";", " ").split()
    return np.asarray([float(p) for p in parts], dtype=np.float64)


def _read_table(path: Path, fmt: str, column: str | None) -> VectorTable:
    label = path.name
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            names = table.column_names
        else:
            df = pd.read_csv(path, dtype={"item_id": str}, keep_default_na=False, na_values=[""])
            names = list(df.columns)
    except DataValidationError:
        raise
    except Exception as exc:  # pyarrow / pandas parser errors: say which file
        raise DataValidationError(
            f"cannot read the {fmt} file ({str(exc).splitlines()[0]})", file=label
        ) from None
    if "item_id" not in names:
        raise DataValidationError(
            f"no 'item_id' column (columns found: {', '.join(map(str, names[:12]))})", file=label
        )
    others = [c for c in names if c != "item_id"]
    if column is not None:
        if column not in others:
            raise DataValidationError(
                f"no column '{column}' (columns found: {', '.join(map(str, names[:12]))})", file=label
            )
        others = [column]
    if not others:
        raise DataValidationError("only an 'item_id' column: where are the vectors?", file=label)

    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.compute as pc

        ids_col = table.column("item_id")
        if pa.types.is_floating(ids_col.type):
            raise DataValidationError(
                "item_id holds floating-point numbers; store ids as strings or integers",
                file=label,
                column="item_id",
            )
        if ids_col.null_count:
            row = int(np.flatnonzero(ids_col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
            raise DataValidationError("empty item_id", file=label, row=row, column="item_id")
        ids = np.asarray(ids_col.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=str)
        list_cols = [
            c
            for c in others
            if pa.types.is_list(table.column(c).type)
            or pa.types.is_large_list(table.column(c).type)
            or pa.types.is_fixed_size_list(table.column(c).type)
        ]
        if list_cols:
            if len(others) > 1:
                raise DataValidationError(
                    f"several vector columns ({', '.join(others[:6])}): keep one list column, or "
                    "name it (--column)",
                    file=label,
                )
            col = table.column(list_cols[0]).combine_chunks()
            if col.null_count:
                row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0]) + 1
                raise DataValidationError("empty vector", file=label, row=row, column=list_cols[0])
            lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
            dim = int(lengths[0]) if len(lengths) else 0
            bad = np.flatnonzero(lengths != dim)
            if len(bad):
                raise DataValidationError(
                    f"has {int(lengths[bad[0]])} values, the first row has {dim} (wrong dimension)",
                    file=label,
                    row=int(bad[0]) + 1,
                    column=list_cols[0],
                )
            flat = pc.list_flatten(col)
            if not (pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type)):
                raise DataValidationError(
                    f"holds {flat.type} values; give numbers", file=label, column=list_cols[0]
                )
            values = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            vectors = values.reshape(len(lengths), dim)
        else:
            df = table.select(others).to_pandas()
            vectors = _numeric_columns(df, others, label)
        return VectorTable(ids, _as_float_matrix(vectors, label), fmt, label)

    # CSV
    if df["item_id"].isna().any():
        row = int(np.flatnonzero(df["item_id"].isna().to_numpy())[0]) + 1
        raise DataValidationError("empty item_id", file=label, row=row, column="item_id")
    ids = df["item_id"].astype(str).str.strip().to_numpy(dtype=str)
    if len(others) == 1 and not pd.api.types.is_numeric_dtype(df[others[0]]):
        col = others[0]
        rows = []
        dim = None
        for n, cell in enumerate(df[col].tolist(), start=1):
            try:
                vec = _parse_list_cell(cell)
            except ValueError:
                raise DataValidationError(
                    f"'{str(cell)[:40]}' is not a list of numbers", file=label, row=n, column=col
                ) from None
            if vec is None or vec.size == 0:
                raise DataValidationError("empty vector", file=label, row=n, column=col)
            if dim is None:
                dim = vec.size
            elif vec.size != dim:
                raise DataValidationError(
                    f"has {vec.size} values, the first row has {dim} (wrong dimension)",
                    file=label,
                    row=n,
                    column=col,
                )
            rows.append(vec)
        vectors = np.vstack(rows) if rows else np.zeros((0, 0))
    else:
        vectors = _numeric_columns(df, others, label)
    return VectorTable(ids, _as_float_matrix(vectors, label), fmt, label)


def _numeric_columns(df: pd.DataFrame, columns: list[Any], label: str) -> np.ndarray:
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1 if bad.any() else None
            raise DataValidationError(
                f"is not numeric (e.g. '{str(df[c].iloc[row - 1])[:30]}')" if row else "is not numeric",
                file=label,
                row=row,
                column=str(c),
            )
    return df[columns].to_numpy(dtype=np.float64)


class _DuplicateCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.examples: list[str] = []
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "duplicate word" in str(record.msg):
            self.count += 1
            if len(self.examples) < _EXAMPLES and record.args:
                self.examples.append(str(record.args[0]))


def _read_word2vec(path: Path, binary: bool) -> VectorTable:
    from gensim.models import KeyedVectors

    label = path.name
    counter = _DuplicateCounter()
    glog = logging.getLogger("gensim.models.keyedvectors")
    glog.addHandler(counter)
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    except EOFError:
        raise DataValidationError(
            "the file ends early: it is truncated, or its header counts more vectors than it holds",
            file=label,
        ) from None
    except UnicodeDecodeError as exc:
        hint = " (is it a binary file? use the word2vec-binary format / a .bin name)" if not binary else ""
        raise DataValidationError(f"undecodable text at byte {exc.start}{hint}", file=label) from None
    except (ValueError, IndexError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(
            f"not a valid word2vec {'binary' if binary else 'text'} file ({msg}); wrong dimension on a "
            "line, or a truncated file",
            file=label,
        ) from None
    finally:
        glog.removeHandler(counter)
    ids = np.asarray(kv.index_to_key, dtype=str)
    table = VectorTable(
        ids,
        _as_float_matrix(np.asarray(kv.vectors), label),
        "word2vec-binary" if binary else "word2vec",
        label,
    )
    table.duplicates_dropped_by_reader = counter.count
    return table


def _read_projector(path: Path, ids_path: Path | None) -> VectorTable:
    label = path.name
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1].strip() == b"":
        lines.pop()
    if not lines:
        raise DataValidationError("empty file", file=label)
    fields = np.fromiter((line.count(b"\t") + 1 for line in lines), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero(fields != fields[0])
    if len(bad):
        raise DataValidationError(
            f"has {int(fields[bad[0]])} values, the first row has {int(fields[0])} (wrong dimension)",
            file=label,
            row=int(bad[0]) + 1,
        )
    try:
        df = pd.read_csv(io.BytesIO(raw), sep="\t", header=None, dtype=np.float64, keep_default_na=True)
    except ValueError as exc:
        raise DataValidationError(
            f"holds something other than numbers ({str(exc).splitlines()[0]}); the Projector's vectors.tsv "
            "has one vector a line, tab-separated, no header",
            file=label,
        ) from None
    vectors = _as_float_matrix(df.to_numpy(), label)
    if ids_path is None:
        raise DataValidationError(
            "a Projector vectors.tsv has no ids: give its metadata.tsv (--ids), whose item_id (or first) "
            "column names the rows",
            file=label,
        )
    ids = read_ids(ids_path)
    return VectorTable(_check_rows(ids, vectors, ids_path.name, label), vectors, "projector", label)


def read_vectors(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    ids_path: str | os.PathLike[str] | None = None,
    column: str | None = None,
) -> VectorTable:
    """Read vectors and their ids from a file (see the module docstring for the formats).

    Raises
    ------
    DataValidationError
        Unreadable, truncated or malformed file; rows of different lengths; ids
        missing or not one per row. The message names the file and, when known,
        the row and column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError("no such file", file=str(path))
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataValidationError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    ids_p = Path(ids_path) if ids_path else None
    if ids_p is not None and not ids_p.is_file():
        raise DataValidationError("no such ids file", file=str(ids_p))
    if fmt == "npy":
        table = _read_npy(path, ids_p)
    elif fmt in ("parquet", "csv"):
        table = _read_table(path, fmt, column)
    elif fmt in ("word2vec", "word2vec-binary"):
        table = _read_word2vec(path, binary=fmt == "word2vec-binary")
    else:
        table = _read_projector(path, ids_p)
    if ids_p is not None and fmt in ("parquet", "csv", "word2vec", "word2vec-binary"):
        table.ids = _check_rows(read_ids(ids_p), table.vectors, ids_p.name, table.file)
    return table


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------
def _examples(values: Any) -> list[str]:
    return [str(v) for v in values[:_EXAMPLES]]


def _arrow_strings(values: Any) -> Any:
    """An Arrow string array of ids (via Python objects: much faster than from NumPy's UTF-32)."""
    import pyarrow as pa

    return pa.array(np.asarray(values).astype(str).astype(object), type=pa.string())


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
    uniq = pc.unique(arr)
    dup_mask = np.zeros(len(arr), dtype=bool)
    if len(uniq) != len(arr):
        slot = pc.index_in(arr, value_set=uniq).to_numpy(zero_copy_only=False)
        _, first = np.unique(slot, return_index=True)
        dup_mask[:] = True
        dup_mask[first] = False
    pos = pc.fill_null(pc.index_in(arr, value_set=cat), -1).to_numpy(zero_copy_only=False).astype(np.int64)
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
    if len(nan_rows):
        msg = f"{len(nan_rows):,} {what} row(s) hold NaN or inf (first: {report['nan_rows']['examples'][0]})"
        (report["errors"] if errors == "raise" else report["warnings"]).append(
            msg
            + (
                "; fix them, or import with errors=drop to leave them out"
                if errors == "raise"
                else ": left out"
            )
        )
    if dup_mask.any():
        msg = f"{int(dup_mask.sum()):,} duplicate id(s) in the {what} (e.g. {', '.join(report['duplicate_ids']['examples'][:3])})"
        (report["errors"] if errors == "raise" else report["warnings"]).append(
            msg
            + (
                "; which vector is meant? dedupe them, or import with errors=drop to keep the first"
                if errors == "raise"
                else ": kept the first of each"
            )
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


# ---------------------------------------------------------------------------------------
# an hnswlib index built elsewhere
# ---------------------------------------------------------------------------------------
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
) -> tuple[Any, dict[str, Any]]:
    """Check an index file built elsewhere against the vectors it should hold.

    Checks, in order: the header parses; dimension and count match; hnswlib
    loads it; its labels are the row numbers 0..n-1; a sample of its stored
    vectors equals the vectors (unit rows in the cosine space, so this also
    tells the space); a sample of queries returns ``1 - dot`` distances (not
    another space) with recall@10 of at least :data:`INDEX_MIN_RECALL`
    against exact search.

    Returns
    -------
    index : HnswIndex or None
        The loaded index, or None when it does not match (the caller rebuilds).
    info : dict
        ``status`` ("used" or "rebuild"), ``reason``, ``dim``, ``count``,
        ``M``, ``ef_construction``, ``recall@10`` and ``warnings``.
    """
    import hnswlib

    from recsys.index import HnswIndex, vectors_checksum
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
    if head["kind"] == "recsys":
        try:
            index = HnswIndex.load(path, expected_dim=dim, expected_count=n)
        except IndexFileError as exc:
            return rebuild(str(exc))
        raw = index._index
    else:
        raw = hnswlib.Index(space=metric, dim=dim)
        try:
            raw.load_index(str(path), max_elements=n)
        except (RuntimeError, ValueError, MemoryError) as exc:
            return rebuild(f"hnswlib could not load it ({exc})")
    if raw.element_count != n:
        return rebuild(f"the index holds {raw.element_count:,} items, {n:,} vectors are imported")
    labels = np.sort(np.asarray(raw.get_ids_list(), dtype=np.int64))
    if labels.shape != (n,) or labels[0] != 0 or labels[-1] != n - 1 or not (np.diff(labels) == 1).all():
        return rebuild("its labels are not the row numbers 0..n-1 of the vectors file")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, INDEX_CHECK_QUERIES), replace=False))
    stored = np.asarray(raw.get_items(sample, return_type="numpy"), dtype=np.float32)
    raw_rows = vectors[sample]
    unit_rows = normalize_rows(raw_rows)
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
    # exact top-k of the sampled queries, without a normalised copy of the whole matrix
    scores = space_rows @ np.asarray(vectors, np.float32).T
    if metric == "cosine":
        scores /= np.maximum(np.sqrt(np.einsum("ij,ij->i", vectors, vectors)), np.float32(1e-12))
    truth = topk_rows_unordered(scores, k)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), truth.tolist())]))
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
    index._source = head  # where the hnswlib payload sits in the file
    index._source_path = path
    return index, info


_HASH_CHUNK = 1 << 26  # 64 MiB: hashlib releases the GIL per update, so few, large updates


def _sha256_range(path: Path, offset: int, size: int) -> str:
    """SHA-256 of ``size`` bytes of a file from ``offset`` (run in a thread beside other work)."""
    h = hashlib.sha256()
    with open(path, "rb") as src:
        src.seek(offset)
        remaining = size
        while remaining > 0:
            chunk = src.read(min(_HASH_CHUNK, remaining))
            if not chunk:
                raise IndexFileError(f"index file {path.name} changed while it was imported")
            h.update(chunk)
            remaining -= len(chunk)
    return h.hexdigest()


def _write_index_from_source(index: Any, dest: Path, payload_sha256: str | None = None) -> int:
    """Write ``index`` as a RecSys Lab index file, copying the hnswlib payload straight
    from the file it was loaded from (no re-serialisation). Returns the payload size."""
    from recsys.index import _PREFIX, MAGIC

    src_path, head = index._source_path, index._source
    offset, size = head["payload_offset"], head["payload_size"]
    digest = payload_sha256 or _sha256_range(src_path, offset, size)
    if os.path.getsize(src_path) != offset + size:
        raise IndexFileError(f"index file {src_path.name} changed while it was imported")
    header = json.dumps(index.header(size, digest), sort_keys=True).encode()
    with open(dest, "wb") as out, open(src_path, "rb") as src:
        out.write(_PREFIX.pack(MAGIC, len(header)))
        out.write(header)
        out.flush()
        src.seek(offset)
        remaining = size
        pos = out.tell()
        while remaining > 0:  # copy_file_range: kernel-side copy where the file system allows
            try:
                n = os.copy_file_range(src.fileno(), out.fileno(), remaining, offset + size - remaining, pos)
            except (AttributeError, OSError):
                src.seek(offset + size - remaining)
                out.seek(pos)
                shutil.copyfileobj(src, out, length=_HASH_CHUNK)
                break
            if n == 0:
                raise IndexFileError(f"index file {src_path.name} changed while it was imported")
            remaining -= n
            pos += n
    return size


# ---------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------
def _file_info(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "name": path.name,
        "path": str(path.resolve()),
        "bytes": st.st_size,
        "modified": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat(timespec="seconds"),
    }


class ImportVectorsError(DataValidationError):
    """The vectors failed validation; ``report`` holds the full validation report."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def import_vectors(
    dataset: str,
    name: str,
    path: str | os.PathLike[str],
    *,
    ids: str | os.PathLike[str] | None = None,
    index: str | os.PathLike[str] | None = None,
    query_vectors: str | os.PathLike[str] | None = None,
    query_ids: str | os.PathLike[str] | None = None,
    metric: str = "cosine",
    fmt: str | None = None,
    query_fmt: str | None = None,
    column: str | None = None,
    errors: str = "raise",
    evaluate: bool = True,
    activate: bool | None = None,
    index_params: dict[str, Any] | None = None,
    source: str = "cli",
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import vectors trained elsewhere as a run of family ``external``.

    Parameters
    ----------
    dataset : str
        The stored dataset whose catalogue the ids refer to.
    name : str
        A readable name (the run's label).
    path : path-like
        The vectors file (format from its name, or ``fmt``).
    ids : path-like, optional
        Ids in row order (needed for ``npy`` and ``projector``; overrides a table's).
    index : path-like, optional
        An hnswlib index over the same rows (``hnswlib.Index.save_index``); checked
        by :func:`check_index`, and rebuilt with a warning when it does not match.
    query_vectors, query_ids : path-like, optional
        A second space seeds are looked up by (e.g. a user tower's item-side
        inputs), matched to the item vectors by id; same dimension.
    metric : {"cosine", "ip"}
    errors : {"raise", "drop"}
        What to do with NaN/inf rows and duplicate ids.
    evaluate : bool
        Compute the offline metrics on the dataset's split (as ``train`` does; the
        vectors may have seen the held-out part, which run.json says).
    source : str
        Who asked ("cli", "ui", "rest"), recorded in the provenance.

    Returns
    -------
    dict
        ``{"run": run.json, "report": validation report}``.

    Raises
    ------
    ImportVectorsError
        The vectors failed validation (the report says why); nothing is stored.
    DataValidationError, DatasetNotFoundError
        Unreadable files, an unknown dataset.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.data.schema import _stored_folder, dataset_meta
    from recsys.index import HnswIndex, vectors_checksum
    from recsys.models.external import ExternalModel
    from recsys.registry import Registry

    progress = progress or null_progress
    if metric not in METRICS:
        raise DataValidationError(f"metric must be one of {METRICS}, got {metric!r}")
    if errors not in ERRORS:
        raise DataValidationError(f"errors must be one of {ERRORS}, got {errors!r}")
    if not isinstance(name, str) or not name.strip():
        raise DataValidationError("give the imported run a name")
    root = data_dir(root)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    meta_ds = dataset_meta(dataset, root)
    # only the id column: the titles and descriptions of a large catalogue are not needed here
    catalog_ids = (
        pq.read_table(_stored_folder(dataset, root) / "catalog.parquet", columns=["item_id"])
        .column("item_id")
        .combine_chunks()
        .cast(pa.string())
    )

    progress(0, 100, f"reading {Path(path).name}")
    t0 = time.perf_counter()
    table = read_vectors(path, fmt, ids, column)
    timings["read_s"] = round(time.perf_counter() - t0, 3)
    progress(30, 100, "validating")
    t0 = time.perf_counter()
    keep, report = validate_table(table, catalog_ids, errors)
    catalog_pos = report.pop("_catalog_pos")
    report["errors"] = list(report["errors"])

    qtable = None
    if query_vectors is not None:
        qtable = read_vectors(query_vectors, query_fmt, query_ids, column)
        if qtable.vectors.shape[1] != table.vectors.shape[1]:
            report["errors"].append(
                f"the query vectors ({qtable.file}) have dimension {qtable.vectors.shape[1]}, the item "
                f"vectors {table.vectors.shape[1]}: both sides must share one space"
            )
        else:
            qkeep, qreport = validate_table(qtable, catalog_ids, errors, what="query vectors")
            qreport.pop("_catalog_pos")
            report["query_vectors"] = {k: v for k, v in qreport.items() if k not in ("errors", "warnings")}
            report["errors"] += [e for e in qreport["errors"] if "catalogue" not in e]
            report["warnings"] += qreport["warnings"]
            qrows = np.flatnonzero(qkeep)  # usable query rows
            qpos = _positions(table.ids, qtable.ids[qrows])
            lacking = keep & (qpos < 0)
            if lacking.any():
                ex = ", ".join(_examples(table.ids[lacking]))
                msg = f"{int(lacking.sum()):,} item(s) have no query vector (e.g. {ex})"
                if errors == "raise":
                    report["errors"].append(msg + "; give one for every item, or import with errors=drop")
                else:
                    report["warnings"].append(msg + ": left out")
                    keep &= ~lacking
    report["rows_kept"] = int(keep.sum())
    catalog_missing = np.ones(len(catalog_ids), dtype=bool)
    catalog_missing[catalog_pos[keep]] = False
    missing_rows = np.flatnonzero(catalog_missing)
    report["catalog_items_without_vector"] = {
        "count": int(len(missing_rows)),
        "of": int(len(catalog_ids)),
        "examples": _examples(catalog_ids.take(pa.array(missing_rows[:_EXAMPLES]))),
    }
    if catalog_missing.any():
        report["warnings"].append(
            f"{int(catalog_missing.sum()):,} of {len(catalog_ids):,} catalogue items have no vector "
            "(they are not recommended, and get no list)"
        )
    timings["validate_s"] = round(time.perf_counter() - t0, 3)
    if report["errors"]:
        raise ImportVectorsError("the vectors cannot be imported: " + "; ".join(report["errors"]), report)

    all_kept = bool(keep.all())
    item_ids = table.ids if all_kept else table.ids[keep]
    vectors = table.vectors if all_kept else table.vectors[keep]
    qvec = None
    if qtable is not None:
        qvec = qtable.vectors[qrows[_positions(item_ids, qtable.ids[qrows])]]

    index_params = {"space": metric, **(index_params or {})}
    index_params["space"] = metric
    adopted = None
    index_info: dict[str, Any] | None = None
    # The two checksums (the vectors', for the index header; the index payload's) run in
    # threads beside the index check and the writes: hashlib and NumPy release the GIL.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="import-hash")
    checksum_f = pool.submit(vectors_checksum, vectors)
    try:
        payload_f = None
        if index is not None and all_kept and Path(index).is_file():
            try:
                head = read_hnswlib_header(index)
                payload_f = pool.submit(
                    _sha256_range, Path(index), head["payload_offset"], head["payload_size"]
                )
            except IndexFileError:
                pass  # check_index says why
        if index is not None:
            progress(45, 100, "checking the index")
            t0 = time.perf_counter()
            index_path = Path(index)
            if not index_path.is_file():
                raise DataValidationError("no such index file", file=str(index_path))
            if not all_kept:
                index_info = {
                    "file": index_path.name,
                    "bytes": index_path.stat().st_size,
                    "warnings": [],
                    "status": "rebuild",
                    "reason": f"{int((~keep).sum()):,} row(s) were left out, so the index no longer "
                    "matches the vectors row for row",
                }
            else:
                adopted, index_info = check_index(index_path, vectors, metric, vectors_sha256="pending")
            if adopted is None:
                report["warnings"].append(
                    f"index {index_path.name} not used: {index_info['reason']}; rebuilt"
                )
            report["warnings"] += index_info.pop("warnings", [])
            report["index"] = index_info
            timings["index_check_s"] = round(time.perf_counter() - t0, 3)

        n_catalog, n_missing = len(catalog_ids), int(catalog_missing.sum())
        coverage = {
            "catalog_items": n_catalog,
            "items_with_vector": n_catalog - n_missing,
            "coverage": (n_catalog - n_missing) / n_catalog if n_catalog else 0.0,
            "missing_examples": [str(v) for v in catalog_ids.take(pa.array(missing_rows[:10]))],
        }
        model = ExternalModel.from_arrays(item_ids, vectors, qvec, metric=metric, coverage=coverage)
        checksum = checksum_f.result()
        if adopted is not None:
            adopted.vectors_sha256 = checksum

        def write_index(folder: os.PathLike[str]) -> dict[str, Any]:
            t = time.perf_counter()
            dest = Path(folder) / "index.bin"
            if adopted is not None:
                _write_index_from_source(adopted, dest, payload_f.result() if payload_f is not None else None)
                out = {
                    "file": "index.bin",
                    "source": "imported",
                    "M": adopted.M,
                    "ef_construction": adopted.ef_construction,
                    "space": metric,
                }
            else:
                progress(55, 100, "building the index")
                built = HnswIndex.build(vectors, **index_params)
                built.save(dest)
                out = {"file": "index.bin", "source": "built", **index_params}
            return {"index": {**out, "build_s": round(time.perf_counter() - t, 3)}}

        metrics: dict[str, Any] = {}
        split_info: dict[str, Any] = {}
        if evaluate and int(meta_ds.get("summary", {}).get("interactions") or 0) > 0:
            progress(60, 100, "evaluating")
            t0 = time.perf_counter()
            metrics, split_info = _evaluate(model, dataset, root)
            timings["evaluate_s"] = round(time.perf_counter() - t0, 3)

        provenance = {
            "source": source,
            "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "format": table.fmt,
            "metric": metric,
            "vectors_sha256": checksum,
            "files": {
                k: _file_info(Path(p))
                for k, p in (
                    ("vectors", path),
                    ("ids", ids),
                    ("index", index),
                    ("query_vectors", query_vectors),
                    ("query_ids", query_ids),
                )
                if p is not None
            },
        }
        progress(80, 100, "saving the run")
        timings["import_s"] = round(time.perf_counter() - t_all, 3)
        registry = Registry(root)
        extra: dict[str, Any] = {
            "provenance": provenance,
            "import_report": report,
            "device": {"device": "CPU"},
        }
        if split_info:
            extra["split"] = split_info
            extra["metrics_note"] = (
                "the vectors were trained outside RecSys Lab: they may have seen the held-out part of the split"
            )
        run = registry.create_run(
            model,
            dataset_name=dataset,
            dataset_fingerprint=str(meta_ds.get("fingerprint", "")),
            metrics=metrics,
            timings=timings,
            extra=extra,
            writers=[write_index],
            label=name.strip(),
        )
        if activate or (activate is None and "external" not in registry.active(dataset)):
            registry.activate(run["run_id"])
            run["active"] = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    from recsys import tracking

    info = tracking.log_run(run, root)  # never raises: a tracking failure is a warning
    if info:
        run["mlflow"] = info
    progress(100, 100, f"run {run['run_id']} ready")
    return {"run": run, "report": report}


def _evaluate(model: Any, dataset_name: str, root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from recsys.data.schema import load_dataset
    from recsys.evaluation import evaluate, split

    ds = load_dataset(dataset_name, root)
    train, test = split(ds, method="time")
    basket_targets = "next" if ds.kind == "baskets" else "rest"
    metrics = evaluate(
        model, train, test, k=10, max_cases=3000, catalog=ds.catalog, basket_targets=basket_targets
    )
    return metrics, {"method": "time", "k": 10, "max_cases": 3000, "basket_targets": basket_targets}


def import_vectors_job(
    dataset: str,
    name: str,
    path: str,
    *,
    root: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The background-job (and REST) form of :func:`import_vectors`: every path is resolved
    inside the import folder (:func:`recsys.config.resolve_import_path`) first."""
    from recsys.config import resolve_import_path

    resolved = {"path": resolve_import_path(path, root)}
    for key in ("ids", "index", "query_vectors", "query_ids"):
        if options.get(key):
            resolved[key] = resolve_import_path(options[key], root)
        else:
            options.pop(key, None)
    options.update({k: v for k, v in resolved.items() if k != "path"})
    options.setdefault("source", "ui")
    try:
        out = import_vectors(dataset, name, resolved["path"], root=root, progress=progress, **options)
    except ImportVectorsError as exc:
        raise DataValidationError(str(exc)) from None
    run = out["run"]
    return {"run_id": run["run_id"], "label": run["label"], "report": out["report"]}


# ---------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------
def _tsv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _write_matrix_text(
    path: Path, ids: np.ndarray | None, vectors: np.ndarray, sep: str, header: str | None
) -> None:
    df = pd.DataFrame(np.asarray(vectors, dtype=np.float32))
    if ids is not None:
        df.insert(0, "_id", ids)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        if header is not None:
            fh.write(header + "\n")
        # %.9g: nine significant digits give back every float32 exactly
        df.to_csv(fh, sep=sep, header=False, index=False, float_format="%.9g", lineterminator="\n")


def export_run(
    run_id: str,
    fmt: str,
    out: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write a run's vectors to the folder ``out`` in ``fmt``.

    ``npy``: ``vectors.npy``, ``item_ids.npy``, ``item_ids.txt``; ``parquet``:
    ``vectors.parquet`` (``item_id``, ``vector``); ``word2vec``: ``vectors.txt``
    (text format); ``projector``: ``vectors.tsv``, ``metadata.tsv`` (item_id,
    title, category, brand, price) and ``projector_config.json``. A run with a
    second (query) space also gets ``query_vectors.*``. Every export holds an
    ``export.json`` saying how to import it back. Files are written to a
    temporary folder first and moved into ``out`` once all are complete.

    Returns
    -------
    dict
        ``{"run_id", "format", "rows", "dimension", "files": [names], "folder"}``.

    Raises
    ------
    RunNotFoundError, RunNotSearchableError
        Unknown run, or a run without vectors (a baseline).
    DataValidationError
        Unknown format; ids a word2vec file cannot hold (with whitespace).
    """
    from recsys.errors import RunNotSearchableError
    from recsys.registry import Registry

    if fmt not in EXPORT_FORMATS:
        raise DataValidationError(
            f"unknown export format '{fmt}'; choose one of: {', '.join(EXPORT_FORMATS)}"
        )
    registry = Registry(root)
    meta = registry.get(run_id)
    model = registry.load_model(run_id) if meta.get("is_embedding", True) else None
    if getattr(model, "vectors_", None) is None:
        raise RunNotSearchableError(f"run '{run_id}' ({meta.get('family')}) has no item vectors to export")
    ids = np.asarray(model.item_ids_, dtype=str)
    vec = np.asarray(model.vectors_, dtype=np.float32)
    qvec = getattr(model, "query_vectors_", None)
    metric = (
        (meta.get("params") or {}).get("metric")
        or ((meta.get("artifacts") or {}).get("index") or {}).get("space")
        or "cosine"
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    files: list[str] = []
    import_cmd = ""
    try:
        if fmt == "npy":
            np.save(tmp / "vectors.npy", vec, allow_pickle=False)
            np.save(tmp / "item_ids.npy", ids, allow_pickle=False)
            (tmp / "item_ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
            files += ["vectors.npy", "item_ids.npy", "item_ids.txt"]
            if qvec is not None:
                np.save(tmp / "query_vectors.npy", np.asarray(qvec, np.float32), allow_pickle=False)
                files.append("query_vectors.npy")
            import_cmd = "vectors.npy --ids item_ids.npy" + (
                " --query-vectors query_vectors.npy --query-ids item_ids.npy" if qvec is not None else ""
            )
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            def table_of(m: np.ndarray) -> Any:
                flat = pa.array(np.ascontiguousarray(m, np.float32).reshape(-1))
                col = pa.FixedSizeListArray.from_arrays(flat, m.shape[1])
                return pa.table({"item_id": pa.array(ids), "vector": col})

            pq.write_table(table_of(vec), tmp / "vectors.parquet")
            files.append("vectors.parquet")
            if qvec is not None:
                pq.write_table(table_of(np.asarray(qvec)), tmp / "query_vectors.parquet")
                files.append("query_vectors.parquet")
            import_cmd = "vectors.parquet" + (
                " --query-vectors query_vectors.parquet" if qvec is not None else ""
            )
        elif fmt == "word2vec":
            bad = [i for i in ids if any(c.isspace() for c in i)]
            if bad:
                raise DataValidationError(
                    f"{len(bad)} item id(s) hold whitespace (e.g. '{bad[0]}'), which the word2vec format "
                    "cannot hold: export as parquet, npy or projector instead"
                )
            _write_matrix_text(tmp / "vectors.txt", ids, vec, " ", f"{len(ids)} {vec.shape[1]}")
            files.append("vectors.txt")
            if qvec is not None:
                _write_matrix_text(
                    tmp / "query_vectors.txt", ids, np.asarray(qvec), " ", f"{len(ids)} {vec.shape[1]}"
                )
                files.append("query_vectors.txt")
            import_cmd = "vectors.txt" + (" --query-vectors query_vectors.txt" if qvec is not None else "")
        else:  # projector
            _write_matrix_text(tmp / "vectors.tsv", None, vec, "\t", None)
            files += ["vectors.tsv", "metadata.tsv", "projector_config.json"]
            cols = ["item_id", "title", "category", "brand", "price"]
            try:
                from recsys.data.schema import load_stored_catalog

                cat = load_stored_catalog(meta["dataset"]["name"], registry.root).set_index("item_id")
                cat.index = cat.index.astype(str)
                cat = cat.reindex(ids)
            except RecsysError:
                cat = pd.DataFrame(index=ids)
            with open(tmp / "metadata.tsv", "w", encoding="utf-8", newline="\n") as fh:
                fh.write("\t".join(cols) + "\n")
                columns = [cat[c].tolist() if c in cat.columns else [None] * len(ids) for c in cols[1:]]
                for row, item in enumerate(ids):
                    fh.write("\t".join([_tsv_cell(item)] + [_tsv_cell(c[row]) for c in columns]) + "\n")
            name = meta.get("label") or run_id
            embeddings = [
                {
                    "tensorName": name,
                    "tensorShape": [int(vec.shape[0]), int(vec.shape[1])],
                    "tensorPath": "vectors.tsv",
                    "metadataPath": "metadata.tsv",
                }
            ]
            if qvec is not None:
                _write_matrix_text(tmp / "query_vectors.tsv", None, np.asarray(qvec), "\t", None)
                files.append("query_vectors.tsv")
                embeddings.append(
                    {
                        "tensorName": f"{name} (query space)",
                        "tensorShape": embeddings[0]["tensorShape"],
                        "tensorPath": "query_vectors.tsv",
                        "metadataPath": "metadata.tsv",
                    }
                )
            (tmp / "projector_config.json").write_text(json.dumps({"embeddings": embeddings}, indent=2))
            import_cmd = "vectors.tsv --ids metadata.tsv" + (
                " --query-vectors query_vectors.tsv --query-ids metadata.tsv" if qvec is not None else ""
            )
        manifest = {
            "run_id": run_id,
            "label": meta.get("label"),
            "family": meta.get("family"),
            "dataset": meta.get("dataset"),
            "format": fmt,
            "rows": int(vec.shape[0]),
            "dimension": int(vec.shape[1]),
            "metric": metric,
            "files": files,
            "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "import_back": f"python -m recsys import-vectors --dataset {meta['dataset']['name']} --name NAME "
            f"--metric {metric} {import_cmd}",
        }
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2, default=str))
        files.append("export.json")
        for f in files:
            os.replace(tmp / f, out / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "run_id": run_id,
        "format": fmt,
        "rows": int(vec.shape[0]),
        "dimension": int(vec.shape[1]),
        "files": files,
        "folder": str(out),
    }


def export_zip(run_id: str, fmt: str, root: str | os.PathLike[str] | None = None) -> tuple[str, bytes]:
    """An export as a zip archive in memory: ``(file name, bytes)`` (the Runs page download)."""
    with tempfile.TemporaryDirectory(prefix="recsys-export-") as tmp:
        result = export_run(run_id, fmt, tmp, root)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in result["files"]:
                zf.write(Path(tmp) / f, arcname=f"{run_id}-{fmt}/{f}")
    return f"{run_id}-{fmt}.zip", buf.getvalue()
