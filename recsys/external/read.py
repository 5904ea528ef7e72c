"""Reading item vectors trained elsewhere: npy, Parquet/CSV, word2vec text/binary, Embedding Projector TSV."""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

FORMATS = ("npy", "parquet", "csv", "word2vec", "word2vec-binary", "projector")
#: how many offending ids or rows a message quotes
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


@dataclass
class VectorTable:
    """Vectors as read from a file, before validation (rows in file order)."""

    ids: np.ndarray  # str, shape (n,)
    vectors: np.ndarray  # float32, shape (n, d)
    fmt: str
    file: str
    duplicates_dropped_by_reader: int = 0
    #: the files ``vectors`` and ``ids`` are mapped from, read-only (:func:`map_npy`), or None
    mapped_file: Path | None = None
    mapped_ids_file: Path | None = None


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
        return arr if arr.dtype.kind == "U" else arr.astype(str)
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


def npy_layout(
    path: str | os.PathLike[str], what: str = "vectors"
) -> tuple[int, tuple[int, ...], np.dtype] | None:
    """Where the data of a plain ``.npy`` file starts, its shape and dtype, when the file can be used
    as is: for ``what="vectors"`` a 2-D little-endian float32 matrix, for ``"ids"`` a 1-D
    little-endian unicode array; C order, not empty, exactly the size its header says. None for
    anything else (``np.load`` then reads it, or says what is wrong with it)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return None
            offset, size = fh.tell(), os.fstat(fh.fileno()).st_size
    except (OSError, ValueError):
        return None
    if what == "vectors":
        plain = len(shape) == 2 and dtype.str == "<f4"
    else:
        plain = len(shape) == 1 and dtype.str.startswith("<U") and dtype.itemsize > 0
    if fortran or not plain or 0 in shape or size != offset + int(np.prod(shape)) * dtype.itemsize:
        return None
    return offset, tuple(int(x) for x in shape), dtype


def map_npy(path: str | os.PathLike[str], what: str = "vectors") -> np.ndarray | None:
    """The array of a plain ``.npy`` file (:func:`npy_layout`) mapped read-only from the page
    cache: no copy into memory, and writing into it raises. None when the file is not plain."""
    import mmap

    layout = npy_layout(path, what)
    if layout is None:
        return None
    offset, shape, dtype = layout
    with open(path, "rb") as fh:
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)  # faulted in at once, not page by page
        mapped = mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
    if len(mapped) != offset + int(np.prod(shape)) * dtype.itemsize:  # rewritten since the header was read
        mapped.close()
        return None
    return np.frombuffer(mapped, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)


def _read_npy(
    path: Path, ids_path: Path | None, staged: Path | None = None, staged_ids: Path | None = None
) -> VectorTable:
    """``staged`` (``staged_ids``): a copy of ``path`` (``ids_path``) to read instead, mapped when
    it is a plain float32 matrix (unicode array); the importer then stores that very file.
    Messages still name ``path`` and ``ids_path``."""
    label = path.name
    mapped = map_npy(staged) if staged is not None else None
    if mapped is not None:
        table = _with_ids(mapped, ids_path, "npy", label, _NPY_NO_IDS, staged_ids)
        table.mapped_file = staged
        return table
    try:
        arr = np.load(staged or path, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc)
        if any(w in msg for w in ("reshape", "buffer", "size", "read all data", "not fully written")):
            msg = f"the file is truncated or damaged ({msg})"
        raise DataValidationError(f"not a plain numeric .npy array: {msg}", file=label) from None
    except (OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read the .npy file ({exc})", file=label) from None
    return _with_ids(_as_float_matrix(arr, label), ids_path, "npy", label, _NPY_NO_IDS)


_NPY_NO_IDS = (
    "a .npy matrix has no ids: give the ids file ('Ids file' on the Data page, --ids on the command "
    "line: a .npy array or a text file with one id a line, in row order)"
)


def _with_ids(
    vectors: np.ndarray,
    ids_path: Path | None,
    fmt: str,
    label: str,
    no_ids: str,
    staged_ids: Path | None = None,
) -> VectorTable:
    """A table of ``vectors`` named by the ids file ``ids_path`` (one id a row), or by its
    plain copy ``staged_ids`` mapped; ``no_ids`` is the message when there is no ids file."""
    if ids_path is None:
        raise DataValidationError(no_ids, file=label)
    mapped = map_npy(staged_ids, "ids") if staged_ids is not None else None
    ids = mapped if mapped is not None else read_ids(ids_path)
    table = VectorTable(_check_rows(ids, vectors, ids_path.name, label), vectors, fmt, label)
    if mapped is not None:
        table.mapped_ids_file = staged_ids
    return table


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
    return _with_ids(
        _as_float_matrix(df.to_numpy(), label),
        ids_path,
        "projector",
        label,
        "a Projector vectors.tsv has no ids: give its metadata.tsv ('Ids file' on the Data page, --ids "
        "on the command line), whose item_id (or first) column names the rows",
    )


def read_vectors(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    ids_path: str | os.PathLike[str] | None = None,
    column: str | None = None,
    staged: str | os.PathLike[str] | None = None,
    staged_ids: str | os.PathLike[str] | None = None,
) -> VectorTable:
    """Read vectors and their ids from a file (see the module docstring for the formats).

    ``staged``, ``staged_ids``: for ``npy``, copies of ``path`` and ``ids_path`` to read
    instead (see :func:`_read_npy`).

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
        table = _read_npy(
            path,
            ids_p,
            Path(staged) if staged is not None else None,
            Path(staged_ids) if staged_ids is not None else None,
        )
    elif fmt in ("parquet", "csv"):
        table = _read_table(path, fmt, column)
    elif fmt in ("word2vec", "word2vec-binary"):
        table = _read_word2vec(path, binary=fmt == "word2vec-binary")
    else:
        table = _read_projector(path, ids_p)
    if ids_p is not None and fmt in ("parquet", "csv", "word2vec", "word2vec-binary"):
        table.ids = _check_rows(read_ids(ids_p), table.vectors, ids_p.name, table.file)
    return table
