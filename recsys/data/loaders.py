"""Read catalog and interaction files, then normalise and validate them into a Dataset.

Reading
-------
:func:`read_table` reads ``.csv``, ``.tsv``, gzipped CSV (``.csv.gz``) and Parquet
(``.parquet``/``.pq``). CSV cells are read as text, so that every value is checked by
the same rules whatever the file format, and problems are reported with the 1-based
data row (the header is row 0) and the column. :func:`load_catalog` and
:func:`load_interactions` add a column mapping (``{"your column": "schema column"}``)
and check that the required columns are present.

Normalising (:func:`build_dataset`)
-----------------------------------
Catalog: ``item_id`` to text (``"17850.0"`` becomes ``"17850"``); ``category`` split on
``>`` (or on ``category_sep`` when given, e.g. ``"."``) and joined with ``" > "``;
``gender`` synonyms (``"F"``, ``"Women's"``, ``"female"``, ``"girls"``...) mapped to
women/men/unisex/kids; ``price`` to float (blank means missing: NaN, counted as a
missing price); ``adult`` from true/false/yes/no/1/0 (blank is False); text columns
stripped, missing text is ``""``. Other columns are kept as extra attributes.

Interactions: ids to text; ``timestamp`` parsed (ISO 8601, a trailing ``" UTC"``,
time-zone offsets converted to UTC, Unix seconds or milliseconds; blank is NaT);
``event_type`` synonyms (click/detail -> view, add_to_cart -> cart, buy/order ->
purchase; blank -> "purchase" for baskets, "view" for sessions); ``quantity`` to float
(blank -> 1.0); ``position`` is the order of the event inside its sequence: by a given
``position`` column (e.g. Instacart's ``add_to_cart_order``) if any, then by timestamp,
then by file order, renumbered 0, 1, 2...

Strict by default
-----------------
``errors="raise"`` (the default) stops at the first problem with a
:class:`~recsys.errors.DataValidationError` naming the file, the row and the column,
the offending value, how many rows share the problem and what to do. ``errors="drop"``
drops each row that has a problem instead and counts it in the
:class:`~recsys.data.schema.ValidationReport` under ``rows_dropped`` as
``"<table>: <reason>"`` (so one negative price in a 100k-row catalog costs one item,
not the import). Problems that drop rows: a missing id, a non-numeric or negative or
infinite price, an unreadable ``adult`` flag, a duplicate ``item_id`` (the first
occurrence is kept; also counted in ``duplicate_ids``), an unparseable timestamp, an
unknown event type, a non-numeric or non-positive quantity, a non-numeric position and
an interaction whose item is not in the catalog (also counted in ``unknown_items``;
the interactions of a catalog row that was dropped end up here too). One exception:
an unknown ``gender`` value is not worth losing an item for, so in drop mode it is
cleared to ``""`` and listed in ``warnings``. Whatever the mode, a problem with the file
itself always raises: missing file, unsupported type, empty file, header without rows,
bytes that are not valid in the encoding, a row with the wrong number of fields, a
missing required column, a mapping that names a column the file lacks, and an import
where no valid row is left.

Nothing here writes to disk: a failed import leaves every stored dataset as it was,
and :func:`~recsys.data.schema.save_dataset` replaces a stored dataset atomically.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import re
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys.data.schema import (
    CATALOG_COLUMNS,
    CATEGORY_SEP,
    INTERACTION_COLUMNS,
    Dataset,
    ValidationReport,
)
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

ErrorMode = Literal["raise", "drop"]
KINDS = ("sessions", "baskets")

#: Normalised gender -> accepted spellings (compared lower-cased, without "'" and spaces).
GENDER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "women": ("women", "woman", "womens", "female", "females", "f", "w", "ladies", "lady", "her"),
    "men": ("men", "man", "mens", "male", "males", "m", "gentlemen", "gents", "him"),
    "unisex": ("unisex", "u", "all", "both", "any", "neutral", "genderneutral"),
    "kids": (
        "kids",
        "kid",
        "child",
        "children",
        "childrens",
        "boys",
        "boy",
        "girls",
        "girl",
        "baby",
        "babies",
        "junior",
        "juniors",
        "toddler",
        "infant",
        "k",
    ),
    "": ("", "nan", "none", "null", "na", "n/a", "-", "unknown"),
}
_GENDER_LOOKUP = {syn: norm for norm, syns in GENDER_SYNONYMS.items() for syn in syns}

#: Normalised event type -> accepted spellings (lower-cased, "-"/" " read as "_").
EVENT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "view": ("view", "views", "viewed", "click", "clicked", "detail", "detail_view", "pageview", "page_view"),
    "cart": ("cart", "add_to_cart", "addtocart", "add", "added_to_cart", "basket", "add_to_basket"),
    "purchase": ("purchase", "purchased", "buy", "bought", "order", "transaction", "checkout", "sale"),
}
_EVENT_LOOKUP = {syn: norm for norm, syns in EVENT_SYNONYMS.items() for syn in syns}

_TRUE = ("1", "true", "t", "yes", "y", "1.0")
_FALSE = ("0", "false", "f", "no", "n", "", "0.0", "nan", "none", "null")
_BLANKS = ("", "nan", "NaN", "NAN", "null", "NULL", "None", "none", "NA", "N/A", "n/a", "NaT")
_CATALOG_TEXT = ("title", "brand", "description", "image_url")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# --------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    for suffix in (".csv", ".txt", ".tsv"):
        if name.endswith((suffix, suffix + ".gz")):
            return "tsv" if suffix == ".tsv" else "csv"
    return ""


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_all_bytes(path: Path) -> bytes:
    with _open_bytes(path) as fh:
        return fh.read()


def _diagnose_encoding(path: Path, encoding: str, sep: str, exc: UnicodeDecodeError) -> DataValidationError:
    """Find the byte offset, data row and column of the first undecodable byte."""
    raw = _read_all_bytes(path)
    try:
        raw.decode(encoding)
        offset = exc.start
    except UnicodeDecodeError as full:
        offset = full.start
    except LookupError:
        offset = exc.start
    row = raw.count(b"\n", 0, offset)  # header is line 0 = row 0
    column = None
    header_end = raw.find(b"\n")
    header = raw[: header_end if header_end >= 0 else len(raw)].decode(encoding, errors="replace")
    line_start = raw.rfind(b"\n", 0, offset) + 1
    prefix = raw[line_start:offset].decode(encoding, errors="replace")
    try:  # a binary file has stray carriage returns the csv module refuses
        names = next(csv.reader([header.strip("\r")], delimiter=sep), [])
        fields_before = len(next(csv.reader([prefix], delimiter=sep), [""])) - 1 if prefix else 0
    except csv.Error:
        names, fields_before = [], -1
    if 0 <= fields_before < len(names):
        column = names[fields_before].strip().lstrip("\ufeff")
    byte = raw[offset] if offset < len(raw) else 0
    return DataValidationError(
        f"byte 0x{byte:02x} at byte offset {offset} is not valid {encoding}; the file is probably in "
        "another encoding: pass encoding='latin-1' (or 'cp1252') if that is what it is, "
        "or re-save the file as UTF-8",
        file=str(path),
        row=row if row > 0 else None,
        column=column,
    )


def read_table(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a CSV, gzipped CSV or Parquet file into a DataFrame.

    CSV cells are read as text (blank cells are ``""``); Parquet keeps its types.
    The file's path is kept in ``df.attrs["source"]`` so later errors can name it.

    Parameters
    ----------
    path : path-like
        ``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.txt``, ``.parquet`` or ``.pq``.
    encoding : str, default "utf-8"
        Text encoding of a CSV file (a UTF-8 byte-order mark is accepted).
    sep : str, optional
        Field separator of a CSV file; "," by default ("\\t" for ``.tsv``).

    Returns
    -------
    pandas.DataFrame
        With a 0-based RangeIndex: data row ``r`` (1-based) has index ``r - 1``.

    Raises
    ------
    DataValidationError
        Missing file, unsupported file type, empty file, a header with no rows,
        bytes invalid in ``encoding`` (with byte offset, row and column), a row with
        the wrong number of fields, or an unreadable Parquet or gzip file.
    """
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise DataValidationError("file not found; check the path", file=src)
    if p.is_dir():
        raise DataValidationError("is a folder, expected a .csv, .csv.gz or .parquet file", file=src)
    kind = _file_kind(p)
    if not kind:
        raise DataValidationError(
            f"unsupported file type '{p.suffix}'; use .csv, .csv.gz, .tsv or .parquet", file=src
        )
    if kind == "parquet":
        if p.stat().st_size == 0:
            raise DataValidationError("file is empty", file=src)
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types
            raise DataValidationError(f"not a readable Parquet file ({exc})", file=src) from exc
        df = df.reset_index(drop=True)
    else:
        sep = sep or ("\t" if kind == "tsv" else ",")
        try:
            with _open_bytes(p) as fh:
                head = fh.read(65536)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataValidationError(f"not a readable gzip file ({exc})", file=src) from exc
        if not head.strip():
            raise DataValidationError("file is empty (no header and no rows)", file=src)
        read_encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        try:
            df = pd.read_csv(
                p,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[],
                encoding=read_encoding,
                compression="infer",
                skipinitialspace=False,
            )
        except UnicodeDecodeError as exc:
            raise _diagnose_encoding(p, encoding, sep, exc) from exc
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError("file is empty (no header and no rows)", file=src) from exc
        except pd.errors.ParserError as exc:
            msg = str(exc).strip()
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
            if m:
                raise DataValidationError(
                    f"this row has {m.group(3)} fields but the header has {m.group(1)}; "
                    "look for an unquoted separator or a missing quote",
                    file=src,
                    row=int(m.group(2)) - 1,
                ) from exc
            raise DataValidationError(f"not a readable CSV file ({msg})", file=src) from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise DataValidationError(f"not a readable file ({exc})", file=src) from exc
        df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    if len(df) == 0:
        cols = ", ".join(map(str, df.columns)) or "none"
        raise DataValidationError(f"file has a header but no data rows (columns: {cols})", file=src)
    df.attrs["source"] = src
    return df


def apply_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str | None] | None, *, file: str | None = None
) -> pd.DataFrame:
    """Rename columns by ``mapping`` (file column -> schema column; None drops it).

    Raises
    ------
    DataValidationError
        When the mapping names a column the file does not have, maps two columns to
        the same name, or renames onto a column that is already there.
    """
    if not mapping:
        return df
    file = file or df.attrs.get("source")
    present = [str(c) for c in df.columns]
    for src in mapping:
        if src not in df.columns:
            raise DataValidationError(
                f"the column mapping names column '{src}', which is not in the file; "
                f"columns present: {', '.join(present)}",
                file=file,
                column=src,
            )
    targets = [t for t in mapping.values() if t]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise DataValidationError(
            f"the column mapping maps several columns to '{dup[0]}'; map exactly one",
            file=file,
            column=dup[0],
        )
    for src, dst in mapping.items():
        if dst and dst != src and dst in df.columns and dst not in mapping:
            raise DataValidationError(
                f"the column mapping renames '{src}' to '{dst}', but the file already has a column "
                f"'{dst}'; map that one to another name (or to None to drop it)",
                file=file,
                column=dst,
            )
    drop = [src for src, dst in mapping.items() if not dst]
    out = df.drop(columns=drop).rename(columns={s: d for s, d in mapping.items() if d})
    out.attrs = dict(df.attrs)
    return out


def _require(df: pd.DataFrame, required: tuple[str, ...], file: str | None) -> None:
    for col in required:
        if col not in df.columns:
            present = ", ".join(map(str, df.columns))
            raise DataValidationError(
                f"required column '{col}' is missing; columns present: {present}. Map the column that "
                f"holds it, e.g. mapping={{'<your column>': '{col}'}}",
                file=file,
                column=col,
            )


def load_catalog(
    path: str | os.PathLike[str],
    mapping: Mapping[str, str | None] | None = None,
    *,
    encoding: str = "utf-8",
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a catalog file and apply a column mapping (no normalisation yet).

    Parameters
    ----------
    path : path-like
        CSV, gzipped CSV or Parquet file with one row per item.
    mapping : dict, optional
        ``{"file column": "schema column"}``, e.g. ``{"sku": "item_id", "name": "title"}``.
    encoding, sep : str
        See :func:`read_table`.

    Returns
    -------
    pandas.DataFrame
        Raw values, to be passed to :func:`build_dataset`.

    Raises
    ------
    DataValidationError
        As :func:`read_table`, plus a missing ``item_id`` column or a bad mapping.
    """
    df = read_table(path, encoding=encoding, sep=sep)
    df = apply_mapping(df, mapping, file=str(path))
    _require(df, ("item_id",), str(path))
    return df


def load_interactions(
    path: str | os.PathLike[str],
    mapping: Mapping[str, str | None] | None = None,
    *,
    encoding: str = "utf-8",
    sep: str | None = None,
) -> pd.DataFrame:
    """Read an interactions file and apply a column mapping (no normalisation yet).

    Required columns (after mapping): ``sequence_id`` and ``item_id``.

    Raises
    ------
    DataValidationError
        As :func:`read_table`, plus a missing required column or a bad mapping.
    """
    df = read_table(path, encoding=encoding, sep=sep)
    df = apply_mapping(df, mapping, file=str(path))
    _require(df, ("sequence_id", "item_id"), str(path))
    return df


# --------------------------------------------------------------------------------------
# value normalisation helpers (vectorised)
# --------------------------------------------------------------------------------------


def _is_textual(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or s.dtype == object


def _text(s: pd.Series) -> pd.Series:
    """Text with missing values as "" and surrounding whitespace removed."""
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object:
        out = s.fillna("")
    else:
        out = s.astype(object).where(s.notna(), "").astype(str)
    return out.astype(str).str.strip()


def _clean_ids(s: pd.Series) -> pd.Series:
    """Ids as text: integral floats lose their ".0" (CustomerID "17850.0" -> "17850")."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(str)
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("int64").astype(str) if not s.isna().any() else _text(s.astype("Int64").astype(str))
    if pd.api.types.is_float_dtype(s.dtype):
        vals = s.to_numpy(dtype="float64")
        ok = np.isfinite(vals)
        integral = ok & (vals == np.round(vals))
        out = np.where(ok, s.astype(object).astype(str), "").astype(object)
        out[integral] = vals[integral].astype("int64").astype(str)
        return pd.Series(out, index=s.index, dtype=str)
    out = _text(s)
    if out.str.endswith(".0").any():
        out = out.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return out


def _map_unique(s: pd.Series, func: Callable[[str], Any]) -> pd.Series:
    """Apply ``func`` once per distinct value (fast on columns with few distinct values)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=False)
    mapped = np.empty(len(uniques), dtype=object)
    for i, u in enumerate(uniques):
        mapped[i] = func(u)
    return pd.Series(mapped[codes], index=s.index)


def normalise_category(value: str, sep: str | None = None) -> str:
    """One category path in the schema's form, e.g. ``"women>shoes"`` -> ``"women > shoes"``.

    Parameters
    ----------
    value : str
        The path as found in the file.
    sep : str, optional
        The separator used in the file (">" by default; e.g. "." or "/").
    """
    parts = str(value).split(sep or ">")
    return CATEGORY_SEP.join(p.strip() for p in parts if p.strip())


def _norm_token(value: str) -> str:
    return str(value).strip().lower().replace("'", "").replace("\u2019", "").replace(" ", "")


def _parse_numbers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values and a mask of non-blank cells that are not numbers."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64"), pd.Series(False, index=s.index)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64"), pd.Series(False, index=s.index)
    t = _text(s)
    blank = t.isin(_BLANKS)
    num = pd.to_numeric(t.where(~blank), errors="coerce").astype("float64")
    return num, num.isna() & ~blank


def _parse_bools(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).astype(bool), pd.Series(False, index=s.index)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.astype("float64")
        return (v.fillna(0) != 0), pd.Series(False, index=s.index)
    t = _text(s).str.lower()
    truthy = t.isin(_TRUE)
    bad = ~truthy & ~t.isin(_FALSE)
    return truthy, bad


def _parse_timestamps(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """datetime64[ns] (UTC, naive) and a mask of non-blank cells that could not be parsed."""
    no_bad = pd.Series(False, index=s.index)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]"), no_bad
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("datetime64[ns]"), no_bad
    if pd.api.types.is_numeric_dtype(s.dtype):
        return _from_epoch(s.astype("float64")), no_bad
    t = _text(s)
    blank = t.isin(_BLANKS)
    filled = t[~blank]
    if len(filled) and filled.str.fullmatch(r"\d{9,13}(\.\d+)?").all():
        return _from_epoch(pd.to_numeric(t.where(~blank), errors="coerce")), no_bad
    if filled.str.endswith((" UTC", " GMT")).any():
        t = t.str.replace(r"\s+(UTC|GMT)$", "", regex=True)
    parsed = pd.to_datetime(t.where(~blank), errors="coerce", format="ISO8601", utc=True)
    retry = parsed.isna() & ~blank
    if retry.any():
        again = pd.to_datetime(t[retry], errors="coerce", format="mixed", utc=True)
        parsed = parsed.copy()
        parsed[retry] = again
    bad = parsed.isna() & ~blank
    return parsed.dt.tz_convert(None).astype("datetime64[ns]"), bad


def _from_epoch(v: pd.Series) -> pd.Series:
    unit = "ms" if v.abs().max() > 1e11 else "s"
    return pd.to_datetime(v, unit=unit, errors="coerce").astype("datetime64[ns]")


def _row_numbers(df: pd.DataFrame) -> np.ndarray:
    """1-based data rows: index label + 1 for integer-indexed frames, else position + 1."""
    if pd.api.types.is_integer_dtype(df.index.dtype):
        return df.index.to_numpy(dtype="int64") + 1
    return np.arange(1, len(df) + 1, dtype="int64")


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


class _Checker:
    """Flags bad rows of one table: raises in "raise" mode, accumulates drops otherwise."""

    def __init__(
        self, table: str, file: str, rows: np.ndarray, errors: ErrorMode, report: ValidationReport
    ) -> None:
        self.table = table
        self.file = file
        self.rows = rows
        self.errors = errors
        self.report = report
        self.dropped = np.zeros(len(rows), dtype=bool)

    def flag(
        self,
        reason: str,
        column: str,
        mask: pd.Series | np.ndarray,
        values: pd.Series | None = None,
        hint: str = "",
        counter: str | None = None,
    ) -> int:
        m = np.asarray(mask, dtype=bool) & ~self.dropped
        n = int(m.sum())
        if not n:
            return 0
        first = int(np.flatnonzero(m)[0])
        if self.errors == "raise":
            shown = ""
            if values is not None:
                value = values.iloc[first]
                # a NumPy scalar would show as np.float64(-1.0) in the message
                shown = f": {value.item() if isinstance(value, np.generic) else value!r}"
            many = f" ({n} rows have this problem; the first is shown)" if n > 1 else ""
            what = hint or "fix the file"
            raise DataValidationError(
                f"{reason}{shown}{many}. To fix: {what}; or pass errors='drop' to drop such rows "
                "and count them in the validation report",
                file=self.file,
                row=int(self.rows[first]),
                column=column,
            )
        self.dropped |= m
        self.report.drop(f"{self.table}: {reason}", n)
        if counter == "unknown_items":
            self.report.unknown_items += n
        elif counter == "duplicate_ids":
            self.report.duplicate_ids += n
        logger.info("%s: dropped %d rows (%s), first at row %d", self.file, n, reason, self.rows[first])
        return n


def _normalise_catalog_columns(
    df: pd.DataFrame, chk: _Checker, *, category_sep: str | None = None
) -> pd.DataFrame:
    """Normalised catalog columns, row for row (bad rows flagged on ``chk``)."""
    n = len(df)
    out: dict[str, Any] = {}
    if "item_id" in df.columns:
        item = _clean_ids(df["item_id"])
        chk.flag("missing item_id", "item_id", item == "", hint="give every row an item id")
        out["item_id"] = item
    for col in _CATALOG_TEXT:
        out[col] = _text(df[col]) if col in df.columns else pd.Series([""] * n, index=df.index, dtype=str)
    if "category" in df.columns:
        cat = _text(df["category"])
        out["category"] = _map_unique(cat, lambda v: normalise_category(v, category_sep)).astype(str)
    else:
        out["category"] = pd.Series([""] * n, index=df.index, dtype=str)
    if "gender" in df.columns:
        g = _text(df["gender"])
        norm = _map_unique(g, lambda v: _GENDER_LOOKUP.get(_norm_token(v)))
        unknown = norm.isna().to_numpy()
        if unknown.any():
            if chk.errors == "raise":
                chk.flag(
                    "unknown gender value",
                    "gender",
                    unknown,
                    g,
                    hint="use one of women, men, unisex, kids or blank (synonyms such as F, M, "
                    "female, male, girls are understood), or map the column to another name",
                )
            else:
                bad_vals = sorted(set(g[unknown].tolist()))[:5]
                chk.report.warnings.append(
                    f"{chk.file}: {int(unknown.sum())} {chk.table} rows had an unknown gender "
                    f"(e.g. {', '.join(map(repr, bad_vals))}); set to ''"
                )
        out["gender"] = norm.where(~unknown, "").astype(str)
    else:
        out["gender"] = pd.Series([""] * n, index=df.index, dtype=str)
    if "price" in df.columns:
        price, bad = _parse_numbers(df["price"])
        chk.flag(
            "non-numeric price", "price", bad, df["price"], hint="write prices as plain numbers like 12.5"
        )
        v = price.to_numpy()
        with np.errstate(invalid="ignore"):
            chk.flag("negative price", "price", v < 0, df["price"], hint="correct or blank the price")
            chk.flag("infinite price", "price", np.isinf(v), df["price"], hint="correct or blank the price")
        out["price"] = price
    else:
        out["price"] = pd.Series(np.nan, index=df.index, dtype="float64")
    if "adult" in df.columns:
        adult, bad = _parse_bools(df["adult"])
        chk.flag("unreadable adult flag", "adult", bad, df["adult"], hint="use true/false, yes/no or 1/0")
        out["adult"] = adult.astype(bool)
    else:
        out["adult"] = pd.Series(False, index=df.index, dtype=bool)
    return pd.DataFrame(out, index=df.index)


def _finish_catalog(cat: pd.DataFrame, extras: pd.DataFrame | None) -> pd.DataFrame:
    cols = {c: cat[c] for c in CATALOG_COLUMNS}
    res = pd.DataFrame(cols)
    if extras is not None:
        for c in extras.columns:
            if c not in res.columns:
                res[c] = extras[c]
    res["price"] = res["price"].astype("float64")
    res["adult"] = res["adult"].astype(bool)
    return res.reset_index(drop=True)


def _derive_catalog(inter: pd.DataFrame, attrs: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """One catalog row per item of the interactions: the most frequent non-empty value of
    each text attribute, the median price, adult if any event says so."""
    a = attrs.loc[keep].copy()
    a["item_id"] = inter.loc[keep, "item_id"].to_numpy()
    items = pd.Index(pd.unique(a["item_id"]))
    res = pd.DataFrame({"item_id": items.astype(str)})
    for col in ("title", "category", "brand", "gender", "description", "image_url"):
        sub = a.loc[a[col] != "", ["item_id", col]]
        if len(sub) == 0:
            res[col] = ""
            continue
        counts = sub.groupby(["item_id", col], sort=False).size().reset_index(name="_n")
        best = counts.sort_values("_n", ascending=False, kind="stable").drop_duplicates("item_id")
        res[col] = res["item_id"].map(best.set_index("item_id")[col]).fillna("").astype(str)
    res["price"] = res["item_id"].map(a.groupby("item_id")["price"].median()).astype("float64")
    res["adult"] = res["item_id"].map(a.groupby("item_id")["adult"].any()).fillna(False).astype(bool)
    return res


def _check_kind_errors(name: str, kind: str, errors: str) -> None:
    if not _SAFE_NAME.match(name or ""):
        raise DataValidationError(
            f"dataset name {name!r} is not allowed: use letters, digits, '_', '-' or '.' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    if kind not in KINDS:
        raise DataValidationError(f"kind must be one of {KINDS}, got {kind!r}")
    if errors not in ("raise", "drop"):
        raise DataValidationError(f"errors must be 'raise' or 'drop', got {errors!r}")


def build_dataset(
    name: str,
    catalog_df: pd.DataFrame | None,
    interactions_df: pd.DataFrame,
    kind: str = "sessions",
    *,
    errors: ErrorMode = "raise",
    report: ValidationReport | None = None,
    catalog_source: str | None = None,
    interactions_source: str | None = None,
    category_sep: str | None = None,
) -> Dataset:
    """Normalise and validate a catalog and interactions into a :class:`Dataset`.

    See the module docstring for the normalisation rules and which problems drop rows.

    Parameters
    ----------
    name : str
        Dataset name (letters, digits, ``_``, ``-``, ``.``); also its folder name.
    catalog_df : pandas.DataFrame or None
        One row per item with at least ``item_id``. When None, a minimal catalog is
        derived from the interactions: one row per item, with the most frequent
        non-empty title/category/brand/gender found on its events and the median price
        (columns the interactions do not have are left blank).
    interactions_df : pandas.DataFrame
        At least ``sequence_id`` and ``item_id``.
    kind : {"sessions", "baskets"}
        Ordered sessions or unordered baskets (orders, invoices).
    errors : {"raise", "drop"}, default "raise"
        Stop at the first bad row, or drop bad rows and count them in the report.
    report : ValidationReport, optional
        A report to add to (importers pass the one holding their own drops). Its
        ``rows_read["catalog"]`` / ``["interactions"]`` are set to the frames' lengths
        unless already set (an importer that filtered rows first sets the file's count).
    catalog_source, interactions_source : str, optional
        File names used in messages; default ``df.attrs["source"]`` or the table name.
    category_sep : str, optional
        Separator of the category paths in the input (">" by default).

    Returns
    -------
    Dataset
        Catalog with CATALOG_COLUMNS first (then extras), interactions with exactly
        INTERACTION_COLUMNS sorted by (sequence_id, position).

    Raises
    ------
    DataValidationError
        Naming file, 1-based data row and column, for the problems listed in the module
        docstring, or when no valid catalog row or interaction is left.
    ValueError
        For an invalid ``name``, ``kind`` or ``errors``.
    """
    _check_kind_errors(name, kind, errors)
    report = report if report is not None else ValidationReport()
    inter_file = interactions_source or interactions_df.attrs.get("source") or "interactions"
    _require(interactions_df, ("sequence_id", "item_id"), inter_file)
    ichk = _Checker("interactions", inter_file, _row_numbers(interactions_df), errors, report)
    report.rows_read.setdefault("interactions", len(interactions_df))
    idf = interactions_df

    # ---- catalog -------------------------------------------------------------------
    if catalog_df is not None:
        cat_file = catalog_source or catalog_df.attrs.get("source") or "catalog"
        _require(catalog_df, ("item_id",), cat_file)
        report.rows_read.setdefault("catalog", len(catalog_df))
        cchk = _Checker("catalog", cat_file, _row_numbers(catalog_df), errors, report)
        cat = _normalise_catalog_columns(catalog_df, cchk, category_sep=category_sep)
        dup = cat["item_id"].duplicated(keep="first").to_numpy() & ~cchk.dropped
        if dup.any() and errors == "raise":
            first = int(np.flatnonzero(dup)[0])
            dup_id = cat["item_id"].iloc[first]
            orig = int(cchk.rows[np.flatnonzero((cat["item_id"] == dup_id).to_numpy())[0]])
            cchk.flag(
                f"duplicate item_id (first seen at row {orig})",
                "item_id",
                dup,
                cat["item_id"],
                hint="keep one row per item",
            )
        cchk.flag("duplicate item_id", "item_id", dup, counter="duplicate_ids")
        extras_cols = [c for c in catalog_df.columns if c not in CATALOG_COLUMNS]
        extras = catalog_df.loc[~cchk.dropped, extras_cols] if extras_cols else None
        catalog = _finish_catalog(cat.loc[~cchk.dropped], extras)
        if len(catalog) == 0:
            raise DataValidationError(
                f"no valid catalog row is left (dropped: {report.rows_dropped})", file=cat_file
            )
        attrs = None
    else:
        attrs = _normalise_catalog_columns(idf.drop(columns=["item_id"]), ichk, category_sep=category_sep)
        catalog = None

    # ---- interactions --------------------------------------------------------------
    seq = _clean_ids(idf["sequence_id"])
    ichk.flag("missing sequence_id", "sequence_id", seq == "", hint="give every row a sequence id")
    item = _clean_ids(idf["item_id"])
    ichk.flag("missing item_id", "item_id", item == "", hint="give every row an item id")
    n = len(idf)
    user = (
        _clean_ids(idf["user_id"])
        if "user_id" in idf.columns
        else pd.Series([""] * n, index=idf.index, dtype=str)
    )
    if "timestamp" in idf.columns:
        ts, bad = _parse_timestamps(idf["timestamp"])
        ichk.flag(
            "unparseable timestamp",
            "timestamp",
            bad,
            idf["timestamp"],
            hint="write times as ISO 8601 like 2024-01-31 14:05:00 (a trailing ' UTC' is fine)",
        )
    else:
        ts = pd.Series(pd.NaT, index=idf.index, dtype="datetime64[ns]")
    default_event = "purchase" if kind == "baskets" else "view"
    if "event_type" in idf.columns:
        raw_ev = _text(idf["event_type"])
        ev = _map_unique(
            raw_ev,
            lambda v: (
                default_event if v == "" else _EVENT_LOOKUP.get(v.lower().replace("-", "_").replace(" ", "_"))
            ),
        )
        ichk.flag(
            "unknown event_type",
            "event_type",
            ev.isna().to_numpy(),
            raw_ev,
            hint="use view, cart or purchase (click, add_to_cart, buy... are understood)",
        )
        ev = ev.where(ev.notna(), default_event).astype(str)
    else:
        ev = pd.Series([default_event] * n, index=idf.index, dtype=str)
    if "quantity" in idf.columns:
        qty, bad = _parse_numbers(idf["quantity"])
        ichk.flag(
            "non-numeric quantity", "quantity", bad, idf["quantity"], hint="write quantities as numbers"
        )
        with np.errstate(invalid="ignore"):
            ichk.flag(
                "non-positive quantity", "quantity", qty.to_numpy() <= 0, idf["quantity"], hint="drop returns"
            )
        qty = qty.fillna(1.0)
    else:
        qty = pd.Series(1.0, index=idf.index, dtype="float64")
    if "position" in idf.columns:
        pos_key, bad = _parse_numbers(idf["position"])
        ichk.flag("non-numeric position", "position", bad, idf["position"], hint="write positions as numbers")
    else:
        pos_key = None

    if catalog is not None:
        known = item.isin(pd.Index(catalog["item_id"])).to_numpy()
        unknown = ~known & ~ichk.dropped & (item != "").to_numpy()
        if unknown.any() and errors == "raise":
            n_items = int(item[unknown].nunique())
            ichk.flag(
                "item_id not in the catalog",
                "item_id",
                unknown,
                item,
                hint=f"add the {n_items} unknown item(s) to the catalog",
            )
        ichk.flag("item not in catalog", "item_id", unknown, counter="unknown_items")

    keep = ~ichk.dropped
    if not keep.any():
        raise DataValidationError(
            f"no valid interaction is left (dropped: {report.rows_dropped})", file=inter_file
        )
    if catalog is None:
        catalog = _finish_catalog(_derive_catalog(pd.DataFrame({"item_id": item}), attrs, keep), None)
        report.warnings.append(f"no catalog given: {len(catalog)} items derived from the interactions")

    frame = pd.DataFrame(
        {
            "sequence_id": seq[keep].astype(str),
            "user_id": user[keep].astype(str),
            "item_id": item[keep].astype(str),
            "timestamp": ts[keep].astype("datetime64[ns]"),
            "event_type": ev[keep].astype(str),
            "quantity": qty[keep].astype("float64"),
        }
    )
    order_cols = ["sequence_id"]
    frame["_row"] = np.arange(len(frame))
    if pos_key is not None:
        frame["_pos"] = pos_key[keep].to_numpy()
        order_cols.append("_pos")
    order_cols += ["timestamp", "_row"]
    frame = frame.sort_values(order_cols, kind="stable", na_position="last")
    frame["position"] = frame.groupby("sequence_id", sort=False).cumcount().astype("int64")
    interactions = frame[list(INTERACTION_COLUMNS)].reset_index(drop=True)

    report.missing_prices = int(catalog["price"].isna().sum())
    used = set(INTERACTION_COLUMNS) | (set(CATALOG_COLUMNS) if catalog_df is None else set())
    ignored = [c for c in interactions_df.columns if c not in used]
    if ignored:
        report.warnings.append(
            f"{inter_file}: columns not in the schema were ignored: {', '.join(map(str, ignored))}"
        )
    logger.info(
        "dataset %s: %d items, %d interactions in %d sequences; dropped %s",
        name,
        len(catalog),
        len(interactions),
        interactions["sequence_id"].nunique(),
        report.rows_dropped or "nothing",
    )
    return Dataset(name=name, catalog=catalog, interactions=interactions, report=report, kind=kind)
