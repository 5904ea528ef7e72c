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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys.data.schema import (
    CATALOG_COLUMNS,
    CATEGORY_SEP,
    INTERACTION_COLUMNS,
    OPTIONAL_CATALOG_COLUMNS,
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
        "unisexkids",
        "kidsunisex",
        "boysgirls",
        "boys&girls",
        "boysandgirls",
        "babyboy",
        "babyboys",
        "babygirl",
        "babygirls",
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


def _diagnose_encoding(
    path: Path, encoding: str, sep: str, exc: UnicodeDecodeError, option: str = "--encoding"
) -> DataValidationError:
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
        f"another encoding: pass {option} cp1252 (or {option} latin-1) if that is what it is, "
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
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    encoding_option: str = "--encoding",
    nrows: int | None = None,
) -> pd.DataFrame:
    """Read a CSV, gzipped CSV or Parquet file into a DataFrame.

    CSV cells are read as text (blank cells are ``""``); Parquet keeps its types.
    The file's path is kept in ``df.attrs["source"]`` so later errors can name it, and
    what was detected (separator, header, unnamed columns) in ``df.attrs["reading"]``.

    Parameters
    ----------
    path : path-like
        ``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.txt``, ``.parquet`` or ``.pq``.
    encoding : str, default "utf-8"
        Text encoding of a CSV file (a UTF-8 byte-order mark is accepted).
    sep : str, optional
        Field separator of a CSV file (a character, or comma/semicolon/tab/pipe);
        detected by default from the first records.
    header : bool, optional
        Whether the first row names the columns; detected by default (a first row
        holding plain numbers is data). Without a header the columns are named
        "0", "1", ... (so a mapping can use positions) unless ``columns`` names them.
    columns : sequence of str, optional
        Column names to use (replacing the header row when there is one).
    encoding_option : str
        The option named in the message when the bytes are not valid in ``encoding``.
    nrows : int, optional
        Read only the first data rows (previews).

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
    from recsys.data.reading import separator_from_option, separator_name, sniff_header, sniff_separator

    p = Path(path)
    src = str(p)
    if not p.exists():
        raise DataValidationError("file not found; check the path", file=src)
    if p.is_dir():
        raise DataValidationError("is a folder, expected a .csv, .csv.gz or .parquet file", file=src)
    kind = _file_kind(p)
    if not kind:
        raise DataValidationError(
            f"unsupported file type '{p.suffix}'; use .csv, .csv.gz, .tsv, .txt or .parquet", file=src
        )
    reading: dict[str, str] = {"file": p.name}
    if kind == "parquet":
        if p.stat().st_size == 0:
            raise DataValidationError("file is empty", file=src)
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types
            raise DataValidationError(f"not a readable Parquet file ({exc})", file=src) from exc
        df = df.reset_index(drop=True)
        if nrows is not None:
            df = df.head(nrows)
        df.columns = [str(c).strip() for c in df.columns]
        if columns:
            if len(columns) != len(df.columns):
                raise DataValidationError(
                    f"--columns names {len(columns)} columns but the file has {len(df.columns)}: "
                    f"{', '.join(map(str, df.columns))}",
                    file=src,
                )
            df.columns = [str(c).strip() for c in columns]
        reading["format"] = "Parquet"
    else:
        try:
            with _open_bytes(p) as fh:
                head = fh.read(65536)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataValidationError(f"not a readable gzip file ({exc})", file=src) from exc
        if not head.strip():
            raise DataValidationError("file is empty (no header and no rows)", file=src)
        norm_enc = encoding.lower().replace("_", "-")
        read_encoding = "utf-8-sig" if norm_enc in ("utf-8", "utf8") else encoding
        try:
            sample = head.decode(read_encoding, errors="replace")
        except LookupError:
            raise DataValidationError(
                f"{encoding_option} {encoding!r} is not a known text encoding; use e.g. utf-8, "
                "cp1252, latin-1 or utf-16",
                file=src,
            ) from None
        given = separator_from_option(sep)
        if given is not None:
            sep = given
            reading["separator"] = f"{separator_name(sep)} (given)"
        elif kind == "tsv":
            sep = "\t"
            reading["separator"] = "tab (from the .tsv name)"
        else:
            sep = sniff_separator(sample)
            reading["separator"] = f"{separator_name(sep)} (detected)"
        reading["encoding"] = encoding
        if header is None:
            has_header, why = sniff_header(sample, sep)
            reading["header"] = why if not has_header else "present (detected)"
        else:
            has_header = header
            reading["header"] = "present (given)" if header else "none (given)"
        if columns:
            names = [str(c).strip() for c in columns]
            first = next(csv.reader(io.StringIO(sample, newline=""), delimiter=sep), [])
            if len(first) != len(names):
                raise DataValidationError(
                    f"--columns names {len(names)} columns but the first row has {len(first)} fields "
                    f"({sep.join(first)[:120]!r}); name every column, in order",
                    file=src,
                )
            reading["columns"] = "named by --columns" + (
                f" (the first row, {sep.join(first)[:80]!r}, was read as a header and replaced; pass "
                "--no-header if it is data)"
                if has_header
                else ""
            )
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
                header=0 if has_header else None,
                names=[str(c).strip() for c in columns] if columns else None,
                index_col=False,
                nrows=nrows,
            )
        except UnicodeDecodeError as exc:
            raise _diagnose_encoding(p, encoding, sep, exc, encoding_option) from exc
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError("file is empty (no header and no rows)", file=src) from exc
        except pd.errors.ParserError as exc:
            msg = str(exc).strip()
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
            if m:
                line = int(m.group(2))
                raise DataValidationError(
                    f"this row has {m.group(3)} fields but the {'header' if has_header else 'first row'} "
                    f"has {m.group(1)} (separator: {reading['separator']}); look for an unquoted "
                    "separator or a missing quote, or pass the right --sep",
                    file=src,
                    row=line - 1 if has_header else line,
                ) from exc
            raise DataValidationError(f"not a readable CSV file ({msg})", file=src) from exc
        except (OSError, EOFError, zlib.error) as exc:
            raise DataValidationError(f"not a readable file ({exc})", file=src) from exc
        if not has_header and not columns:
            df.columns = [str(i) for i in range(df.shape[1])]
        df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
        df = _drop_unnamed_columns(df, reading)
    if len(df) == 0:
        cols = ", ".join(map(str, df.columns)) or "none"
        raise DataValidationError(f"file has a header but no data rows (columns: {cols})", file=src)
    df.attrs["source"] = src
    df.attrs["reading"] = reading
    return df


def _drop_unnamed_columns(df: pd.DataFrame, reading: dict[str, str]) -> pd.DataFrame:
    """Columns with no name in the header (trailing separators): dropped when (almost)
    empty, else kept as ``column_<position>``; either way said in ``reading``."""
    unnamed = [c for c in df.columns if re.fullmatch(r"Unnamed: \d+(\.\d+)?", str(c))]
    if not unnamed:
        return df
    dropped, renamed, stray = [], {}, []
    for c in unnamed:
        pos = int(re.search(r"\d+", str(c)).group(0))  # type: ignore[union-attr]
        filled = df[c].astype(str).str.strip() != ""
        if filled.mean() <= 0.01:
            dropped.append(str(pos))
            for i in np.flatnonzero(filled.to_numpy())[:3]:
                stray.append(f"{df[c].iloc[i]!r} at row {i + 1}")
        else:
            renamed[c] = f"column_{pos}"
    notes = []
    if dropped:
        notes.append(
            f"{len(dropped)} column(s) with no name and (almost) no values ignored (position "
            f"{', '.join(dropped)}{'; stray values: ' + ', '.join(stray) if stray else ''})"
        )
    if renamed:
        notes.append(f"column(s) with no name kept as {', '.join(renamed.values())}")
    reading["unnamed columns"] = "; ".join(notes)
    out = df.drop(columns=[c for c in unnamed if c not in renamed]).rename(columns=renamed)
    out.attrs = dict(df.attrs)
    return out


#: Joins the values of several columns mapped to one path field (split again like the path separator).
JOIN_MARK = "\x1f"


def check_targets(mapping: Mapping[str, Any], *, file: str | None = None) -> None:
    """Refuse a mapping target that is not a schema field, listing the valid ones."""
    from recsys.data.reading import DROP_TARGETS, FIELD_SYNONYMS, FIELDS, did_you_mean, fields_help

    for src, dst in mapping.items():
        if dst is None or (isinstance(dst, str) and dst.strip().lower() in DROP_TARGETS):
            continue
        if not isinstance(dst, str) or dst not in FIELDS:
            close = did_you_mean(str(dst), FIELDS)
            synonym = FIELD_SYNONYMS.get(str(dst).strip().lower())
            if synonym and synonym not in close:
                close = [synonym, *close]
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise DataValidationError(
                f"--map {src}={dst}: '{dst}' is not a field of the schema.{hint} Valid fields:\n"
                f"{fields_help()}\n(columns you do not map are kept as they are, as extra attributes)",
                file=file,
                column=str(src),
            )


def _unknown_column_message(src: str, df: pd.DataFrame) -> str:
    from recsys.data.reading import SEPARATORS, did_you_mean

    present = [str(c) for c in df.columns]
    msg = f"the column mapping names column '{src}', which is not in the file"
    close = did_you_mean(str(src), present)
    if close:
        msg += f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    msg += f"; columns present: {', '.join(present)}"
    reading = df.attrs.get("reading", {})
    if len(present) == 1:
        for sep, name in SEPARATORS.items():
            if sep in present[0]:
                msg += f". The header is one column holding {name}s: pass --sep {name}"
                break
    elif str(reading.get("header", "")).startswith("none"):
        msg += (
            ". The file has no header row, so its columns are numbered from 0: map them by position "
            "(--map 0=item_id) or name them with --columns"
        )
    elif str(src).isdigit():
        msg += ". Map by position only when the file has no header (--no-header)"
    return msg


def apply_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str | None] | None, *, file: str | None = None
) -> pd.DataFrame:
    """Rename columns by ``mapping`` (file column -> schema column; None drops it).

    Several columns mapped to ``category`` are joined into one path, in mapping order
    (``{"department": "category", "aisle": "category"}`` gives "Dept > Aisle").

    Raises
    ------
    DataValidationError
        When the mapping names a column the file does not have (with the closest names),
        maps to something that is not a schema field (with the list of fields), maps two
        columns to the same field, or renames onto a column that is already there.
    """
    from recsys.data.reading import DROP_TARGETS, JOINABLE_FIELDS

    if not mapping:
        return df
    file = file or df.attrs.get("source")
    mapping = {
        str(k): (None if v is None or (isinstance(v, str) and v.strip().lower() in DROP_TARGETS) else v)
        for k, v in mapping.items()
    }
    check_targets(mapping, file=file)
    for src in mapping:
        if src not in df.columns:
            raise DataValidationError(_unknown_column_message(src, df), file=file, column=src)
    targets = [t for t in mapping.values() if t]
    dup = sorted({t for t in targets if targets.count(t) > 1 and t not in JOINABLE_FIELDS})
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
                f"'{dst}'; map that one to another field (or to - to drop it)",
                file=file,
                column=dst,
            )
    out = df.copy()
    for field in JOINABLE_FIELDS:
        sources = [s for s, d in mapping.items() if d == field]
        if len(sources) > 1:
            parts = [_text(df[s]) for s in sources]
            joined = parts[0]
            for part in parts[1:]:
                joined = (joined + JOIN_MARK + part).where((joined != "") & (part != ""), joined + part)
            out = out.drop(columns=sources)
            out[field] = joined
            mapping = {s: d for s, d in mapping.items() if s not in sources}
    drop = [src for src, dst in mapping.items() if not dst]
    out = out.drop(columns=drop).rename(columns={s: d for s, d in mapping.items() if d})
    out.attrs = dict(df.attrs)
    return out


def _require(df: pd.DataFrame, required: tuple[str, ...], file: str | None) -> None:
    for col in required:
        if col not in df.columns:
            present = ", ".join(map(str, df.columns))
            extra = ""
            if col == "sequence_id":
                extra = (
                    "; or, with user_id and timestamp columns, cut sessions on a time gap with "
                    "--session-gap 30m"
                )
            raise DataValidationError(
                f"required column '{col}' is missing; columns present: {present}. Map the column that "
                f"holds it, e.g. --map <your column>={col}{extra}",
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
    parts = str(value).replace(JOIN_MARK, sep or ">").split(sep or ">")
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


_EPOCH = r"-?\d{9,13}(\.\d+)?"
_AWARE = r".*(Z|[+-]\d{2}(:?\d{2})?|\s(UTC|GMT))$"


def _parse_timestamps(s: pd.Series, tz: Any = None) -> tuple[pd.Series, pd.Series, str]:
    """datetime64[ns] (UTC, naive), a mask of non-blank cells that could not be parsed, and
    what was detected ("unix seconds (detected)", "ISO 8601 ...").

    A column is read as unix time when at least half of its filled cells are 9-13 digit
    numbers (seconds or milliseconds by size); the other cells are then bad values, not a
    reason to read every row as bad. Naive date-times are read in ``tz`` (a tzinfo; UTC
    when None) and stored in UTC.
    """
    no_bad = pd.Series(False, index=s.index)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]"), no_bad, "date-times"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        out = s.astype("datetime64[ns]")
        if tz is not None:
            out = out.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
            out = out.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        return out, no_bad, "date-times" + (f" read in {tz}" if tz is not None else "")
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.astype("float64")
        return _from_epoch(v), no_bad, f"unix {_epoch_unit(v)} (detected)"
    t = _text(s)
    blank = t.isin(_BLANKS)
    filled = t[~blank]
    if len(filled):
        is_epoch = filled.str.fullmatch(_EPOCH)
        if is_epoch.mean() >= 0.5:
            v = pd.to_numeric(t.where(~blank).where(t.str.fullmatch(_EPOCH)), errors="coerce")
            bad = v.isna() & ~blank
            note = f"unix {_epoch_unit(v)} (detected; absolute times, --tz does not apply)"
            return _from_epoch(v), bad, note
    t = t.str.replace(r"\s+(UTC|GMT)$", "+00:00", regex=True)
    aware = t.str.fullmatch(_AWARE) & ~blank
    parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if aware.any():
        a = pd.to_datetime(t[aware], errors="coerce", format="ISO8601", utc=True)
        retry = a.isna()
        if retry.any():
            a[retry] = pd.to_datetime(t[aware][retry], errors="coerce", format="mixed", utc=True)
        parsed[aware] = a.dt.tz_convert(None).astype("datetime64[ns]")
    naive = ~aware & ~blank
    if naive.any():
        n = pd.to_datetime(t[naive], errors="coerce", format="ISO8601")
        retry = n.isna()
        if retry.any():
            n = n.astype("datetime64[ns]")
            n[retry] = pd.to_datetime(t[naive][retry], errors="coerce", format="mixed")
        n = pd.Series(n, index=t[naive].index)
        if isinstance(n.dtype, pd.DatetimeTZDtype):
            n = n.dt.tz_convert("UTC").dt.tz_localize(None)
        n = n.astype("datetime64[ns]")
        if tz is not None:
            n = n.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
            n = n.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        parsed[naive] = n
    bad = parsed.isna() & ~blank
    kinds = []
    if aware.any():
        kinds.append("with a time zone (converted to UTC)")
    if naive.any():
        kinds.append(
            f"without a time zone (read in {tz}, stored in UTC)"
            if tz
            else "without a time zone (read as UTC)"
        )
    return parsed, bad, "date-times " + " and ".join(kinds) + " (detected)"


def _epoch_unit(v: pd.Series) -> str:
    return "milliseconds" if v.abs().max() > 1e11 else "seconds"


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
        total = len(self.rows)
        most = n * 2 > total
        if self.errors == "raise":
            from recsys.data.reading import examples

            if values is not None:
                where = examples(values, m, self.rows)
            else:
                rows = self.rows[np.flatnonzero(m)[:3]]
                where = f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}"
            what = hint or "fix the file"
            if most:
                fix = (
                    f"To fix: {what}. This is {n / total:.0%} of the rows, so the column probably does "
                    f"not hold what its mapping says: check the --map of column '{column}', the "
                    "separator (--sep) and the file's format"
                )
            else:
                fix = (
                    f"To fix: {what}; or pass --errors drop to drop "
                    f"{'this row' if n == 1 else f'these {n:,} rows'} ({n / total:.1%}) and count "
                    f"{'it' if n == 1 else 'them'} in the validation report"
                )
            raise DataValidationError(
                f"{n:,} of {total:,} rows: {reason}, e.g. {where}. {fix}",
                file=self.file,
                row=int(self.rows[first]),
                column=column,
            )
        if most and counter is None:
            self.report.warnings.append(
                f"{self.file}: {n:,} of {total:,} {self.table} rows dropped for {reason} (column "
                f"'{column}'): the column probably does not hold what its mapping says"
                + (f". To fix: {hint}" if hint else "")
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
    df: pd.DataFrame, chk: _Checker, *, category_sep: str | None = None, decimal: str | None = None
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
                    "female, male, girls are understood), or leave the column unmapped: it is then kept as "
                    "an extra attribute",
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
        from recsys.data.reading import parse_prices

        price, bad, note = parse_prices(df["price"], decimal, _BLANKS)
        chk.report.reading.setdefault(chk.table, {})["prices"] = note
        chk.flag(
            "non-numeric price",
            "price",
            bad,
            df["price"],
            hint="write prices as numbers like 12.5, £3.42 or 1.234,50 € (pass --decimal , when "
            "the decimal mark is a comma)",
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
    if "in_stock" in df.columns:  # optional: only when the file has it; blank = unknown
        stock, bad = _parse_bools(df["in_stock"])
        blank = df["in_stock"].isna().to_numpy() | _text(df["in_stock"]).isin(_BLANKS).to_numpy()
        chk.flag(
            "unreadable in_stock flag",
            "in_stock",
            bad.to_numpy() & ~blank,
            df["in_stock"],
            hint="use true/false, yes/no or 1/0 (blank: unknown)",
        )
        out["in_stock"] = stock.astype("boolean").mask(blank)
    return pd.DataFrame(out, index=df.index)


def _finish_catalog(cat: pd.DataFrame, extras: pd.DataFrame | None) -> pd.DataFrame:
    cols = {c: cat[c] for c in CATALOG_COLUMNS + OPTIONAL_CATALOG_COLUMNS if c in cat.columns}
    res = pd.DataFrame(cols)
    if extras is not None:
        for c in extras.columns:
            if c not in res.columns:
                col = extras[c]
                text = (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)) and (
                    pd.api.types.infer_dtype(col, skipna=True) == "string"
                )
                res[c] = col.str.strip() if text else col
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
    interactions_df: pd.DataFrame | None,
    kind: str = "sessions",
    *,
    errors: ErrorMode = "raise",
    report: ValidationReport | None = None,
    catalog_source: str | None = None,
    interactions_source: str | None = None,
    category_sep: str | None = None,
    decimal: str | None = None,
    tz: Any = None,
    session_gap: pd.Timedelta | None = None,
    event_map: Mapping[str, str] | None = None,
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
        (columns the interactions do not have are left blank). When given and the
        interactions carry catalogue attributes too (price, category, brand... on order
        lines), those fill the catalogue's empty values (counted per field in
        ``report.filled``).
    interactions_df : pandas.DataFrame or None
        At least ``item_id`` and ``sequence_id`` (or ``user_id`` and ``timestamp`` with
        ``session_gap``). None gives a catalogue-only dataset with no interactions.
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
    decimal : {".", ","}, optional
        Decimal mark of prices; detected per column by default.
    tz : tzinfo, optional
        Time zone of naive timestamps (UTC by default); see
        :func:`recsys.data.reading.parse_timezone`.
    session_gap : pandas.Timedelta, optional
        Cut sessions where a user's (or a sequence's) next event comes later than this.
        Needed when there is no ``sequence_id`` column.
    event_map : dict, optional
        Your event codes -> view/cart/purchase, or "drop" to leave those events out.

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
    """
    _check_kind_errors(name, kind, errors)
    report = report if report is not None else ValidationReport()
    if interactions_df is None:
        if catalog_df is None:
            raise DataValidationError("nothing to import: give an events file, a catalogue or both")
        return _catalog_only(name, catalog_df, kind, errors, report, catalog_source, category_sep, decimal)
    inter_file = interactions_source or interactions_df.attrs.get("source") or "interactions"
    needed = ("item_id",) if session_gap is not None else ("sequence_id", "item_id")
    _require(interactions_df, needed, inter_file)
    if session_gap is not None:
        key = "sequence_id" if "sequence_id" in interactions_df.columns else "user_id"
        for col in (key, "timestamp"):
            if col not in interactions_df.columns:
                raise DataValidationError(
                    f"--session-gap cuts sessions from user_id and timestamp, but there is no '{col}' "
                    f"column; columns present: {', '.join(map(str, interactions_df.columns))}. Map it "
                    f"with --map <your column>={col}",
                    file=inter_file,
                    column=col,
                )
    ichk = _Checker("interactions", inter_file, _row_numbers(interactions_df), errors, report)
    report.rows_read.setdefault("interactions", len(interactions_df))
    if interactions_df.attrs.get("reading"):
        report.reading.setdefault("interactions", {}).update(interactions_df.attrs["reading"])
    idf = interactions_df

    # ---- catalog -------------------------------------------------------------------
    event_attrs = [c for c in CATALOG_COLUMNS if c != "item_id" and c in idf.columns]
    if catalog_df is not None:
        cat_file = catalog_source or catalog_df.attrs.get("source") or "catalog"
        catalog = _build_catalog(catalog_df, cat_file, errors, report, category_sep, decimal)
        # attributes on the events only fill gaps: a bad one is ignored, never costs the event
        scratch = _Checker("interactions", inter_file, ichk.rows, "drop", ValidationReport())
        attrs = (
            _normalise_catalog_columns(idf[event_attrs], scratch, category_sep=category_sep, decimal=decimal)
            if event_attrs
            else None
        )
        attrs_ok = ~scratch.dropped
    else:
        attrs = _normalise_catalog_columns(
            idf.drop(columns=["item_id"]), ichk, category_sep=category_sep, decimal=decimal
        )
        catalog = None

    # ---- interactions --------------------------------------------------------------
    item = _clean_ids(idf["item_id"])
    ichk.flag("missing item_id", "item_id", item == "", hint="give every row an item id")
    n = len(idf)
    user = (
        _clean_ids(idf["user_id"])
        if "user_id" in idf.columns
        else pd.Series([""] * n, index=idf.index, dtype=str)
    )
    if "timestamp" in idf.columns:
        ts, bad, note = _parse_timestamps(idf["timestamp"], tz)
        report.reading.setdefault("interactions", {})["timestamps"] = note
        ichk.flag(
            "unparseable timestamp",
            "timestamp",
            bad,
            idf["timestamp"],
            hint="write times as ISO 8601 like 2024-01-31 14:05:00 (a trailing ' UTC' is fine), "
            "unix seconds or unix milliseconds",
        )
    else:
        ts = pd.Series(pd.NaT, index=idf.index, dtype="datetime64[ns]")
    if "sequence_id" in idf.columns:
        seq = _clean_ids(idf["sequence_id"])
        if session_gap is None:
            ichk.flag("missing sequence_id", "sequence_id", seq == "", hint="give every row a sequence id")
    else:
        seq = user
    if session_gap is not None:
        what = "sequence_id" if "sequence_id" in idf.columns else "user_id"
        ichk.flag(
            f"missing {what} (needed by --session-gap)",
            what,
            seq == "",
            hint=f"give every row a {what}",
        )
        ichk.flag(
            "missing timestamp (needed by --session-gap)",
            "timestamp",
            ts.isna().to_numpy(),
            hint="give every row a time",
        )
    default_event = "purchase" if kind == "baskets" else "view"
    if "event_type" in idf.columns:
        raw_ev = _text(idf["event_type"])
        emap = {str(k).lower(): v for k, v in (event_map or {}).items()}

        def event_of(v: str) -> str | None:
            if v == "":
                return default_event
            if v.lower() in emap:
                return emap[v.lower()]
            return _EVENT_LOOKUP.get(v.lower().replace("-", "_").replace(" ", "_"))

        ev = _map_unique(raw_ev, event_of)
        unknown = ev.isna().to_numpy() & ~ichk.dropped
        if unknown.any():
            counts = raw_ev[unknown].value_counts()
            seen = ", ".join(f"{v} ({c:,})" for v, c in counts.head(8).items())
            pairs = " ".join(f"{v}=view" for v in counts.head(3).index)
            ichk.flag(
                "unknown event_type",
                "event_type",
                unknown,
                raw_ev,
                hint=f"use view, cart or purchase (click, add_to_cart, buy... are understood), or say "
                f"what your codes mean with --event-map, e.g. --event-map {pairs} (codes seen: {seen})",
            )
        dropped_ev = (ev == "drop").to_numpy() & ~ichk.dropped
        if dropped_ev.any():
            for code, c in raw_ev[dropped_ev].value_counts().items():
                report.drop(f"interactions: event type {code} (--event-map {code}=drop)", int(c))
            ichk.dropped |= dropped_ev
        ev = ev.where(ev.notna() & (ev != "drop"), default_event).astype(str)
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
                hint=f"add the {n_items:,} unknown item(s) to the catalog",
            )
        ichk.flag("item not in catalog", "item_id", unknown, counter="unknown_items")

    keep = ~ichk.dropped
    if not keep.any():
        raise DataValidationError(
            f"no valid interaction is left; dropped: {_dropped_text(report)}", file=inter_file
        )
    if catalog is None:
        catalog = _finish_catalog(_derive_catalog(pd.DataFrame({"item_id": item}), attrs, keep), None)
        report.warnings.append(f"no catalog given: {len(catalog)} items derived from the interactions")
    elif attrs is not None:
        catalog = _fill_from_events(catalog, item, attrs, keep & attrs_ok, report)

    if session_gap is not None:
        seq = _cut_sessions(seq, ts, keep, session_gap)
        report.reading.setdefault("interactions", {})["sessions"] = (
            f"cut where the next event of a {'sequence' if 'sequence_id' in idf.columns else 'user'} "
            f"comes more than {_duration_text(session_gap)} later (--session-gap)"
        )

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
    used = set(INTERACTION_COLUMNS) | set(CATALOG_COLUMNS)
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


def _dropped_text(report: ValidationReport) -> str:
    return "; ".join(f"{reason}: {n:,} rows" for reason, n in report.rows_dropped.items()) or "nothing"


def _build_catalog(
    catalog_df: pd.DataFrame,
    cat_file: str,
    errors: ErrorMode,
    report: ValidationReport,
    category_sep: str | None,
    decimal: str | None,
) -> pd.DataFrame:
    _require(catalog_df, ("item_id",), cat_file)
    report.rows_read.setdefault("catalog", len(catalog_df))
    if catalog_df.attrs.get("reading"):
        report.reading.setdefault("catalog", {}).update(catalog_df.attrs["reading"])
    cchk = _Checker("catalog", cat_file, _row_numbers(catalog_df), errors, report)
    cat = _normalise_catalog_columns(catalog_df, cchk, category_sep=category_sep, decimal=decimal)
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
            hint="keep one row per item, or map another column (a unique SKU) to item_id",
        )
    cchk.flag("duplicate item_id", "item_id", dup, counter="duplicate_ids")
    extras_cols = [c for c in catalog_df.columns if c not in CATALOG_COLUMNS + OPTIONAL_CATALOG_COLUMNS]
    extras = catalog_df.loc[~cchk.dropped, extras_cols] if extras_cols else None
    catalog = _finish_catalog(cat.loc[~cchk.dropped], extras)
    if len(catalog) == 0:
        raise DataValidationError(
            f"no valid catalog row is left; dropped: {_dropped_text(report)}", file=cat_file
        )
    return catalog


def _catalog_only(
    name: str,
    catalog_df: pd.DataFrame,
    kind: str,
    errors: ErrorMode,
    report: ValidationReport,
    catalog_source: str | None,
    category_sep: str | None,
    decimal: str | None,
) -> Dataset:
    cat_file = catalog_source or catalog_df.attrs.get("source") or "catalog"
    catalog = _build_catalog(catalog_df, cat_file, errors, report, category_sep, decimal)
    report.missing_prices = int(catalog["price"].isna().sum())
    from recsys.models import catalog_only_families

    report.warnings.append(
        "catalogue only: no interactions, so only models that learn from the catalogue "
        f"({', '.join(catalog_only_families())}) can be trained; add an events file to train the others"
    )
    interactions = pd.DataFrame(
        {
            "sequence_id": pd.Series([], dtype=str),
            "user_id": pd.Series([], dtype=str),
            "item_id": pd.Series([], dtype=str),
            "timestamp": pd.Series([], dtype="datetime64[ns]"),
            "event_type": pd.Series([], dtype=str),
            "quantity": pd.Series([], dtype="float64"),
            "position": pd.Series([], dtype="int64"),
        }
    )
    return Dataset(name=name, catalog=catalog, interactions=interactions, report=report, kind=kind)


def _fill_from_events(
    catalog: pd.DataFrame, item: pd.Series, attrs: pd.DataFrame, keep: np.ndarray, report: ValidationReport
) -> pd.DataFrame:
    """Fill the catalogue's empty attributes from those carried on the events (per field)."""
    derived = _derive_catalog(pd.DataFrame({"item_id": item}), attrs, keep).set_index("item_id")
    out = catalog.copy()
    ids = out["item_id"]
    for col in attrs.columns:
        if col not in derived.columns or col == "adult":
            continue
        if col == "price":
            empty = out[col].isna()
            new = ids.map(derived[col])
            fill = empty & new.notna()
        else:
            empty = out[col].astype(str) == ""
            new = ids.map(derived[col]).fillna("")
            fill = empty & (new != "")
        n = int(fill.sum())
        if n:
            out.loc[fill, col] = new[fill]
            report.filled[col] = n
            report.warnings.append(
                f"{col}: {n:,} of {len(out):,} catalogue items had none; filled from the events"
            )
    out["price"] = out["price"].astype("float64")
    return out


def _cut_sessions(key: pd.Series, ts: pd.Series, keep: np.ndarray, gap: pd.Timedelta) -> pd.Series:
    """Session ids ``<key>~<n>``: a new session where the next event of the same key (user or
    sequence) comes more than ``gap`` after the previous one."""
    frame = pd.DataFrame({"k": key.to_numpy(), "t": ts.to_numpy(), "r": np.arange(len(key))})[keep]
    frame = frame.sort_values(["k", "t", "r"], kind="stable")
    new_key = frame["k"].ne(frame["k"].shift())
    new_gap = frame["t"].diff() > gap
    number = (new_key | new_gap).astype(int).groupby(frame["k"], sort=False).cumsum() - 1
    ids = frame["k"].astype(str) + "~" + number.astype(str)
    out = pd.Series([""] * len(key), index=key.index, dtype=object)
    out.iloc[ids.index.to_numpy()] = ids.to_numpy()
    return out.astype(str)


def _duration_text(gap: pd.Timedelta) -> str:
    seconds = gap.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"
