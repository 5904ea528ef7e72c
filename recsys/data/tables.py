"""Reading a catalogue or interactions file into a frame and applying a column mapping.

:func:`read_table` reads ``.csv``, ``.tsv``, ``.txt``, ``.dat`` (gzipped too) and Parquet
(``.parquet``/``.pq``), and hands JSON lines or arrays and ``.xlsx`` workbooks to
:mod:`recsys.data.formats`; cells as text, with the separator, header and encoding detected
and reported. :func:`apply_mapping` renames the file's columns to schema fields;
:func:`load_catalog` and :func:`load_interactions` do both and check the required columns;
:func:`peek_table` reads the first rows of a typed path (inside the import folder) as the
import would, for the Data page's preview.
Nothing is normalised here (see :func:`recsys.data.loaders.build_dataset`).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.config import resolve_import_path
from recsys.data.mapping import JOINABLE_FIELDS, check_targets, drops
from recsys.data.values import JOIN_MARK, _text
from recsys.errors import DataValidationError

# --------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------


#: File types the import reads (for messages).
FILE_TYPES = (
    ".csv, .tsv, .txt, .dat (gzipped or zipped too), .parquet, .jsonl/.json (JSON lines or an array, gzipped too), "
    ".xlsx, .xml (a product feed)"
)


def file_kind(path: Path) -> str:
    """The reader a file's name asks for ("csv", "tsv", "parquet", "excel", "json", "xml"); "" when
    the import cannot read such a file (see :data:`FILE_TYPES`)."""
    from recsys.data.formats import EXCEL_SUFFIXES, JSON_SUFFIXES

    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(EXCEL_SUFFIXES):
        return "excel"
    if name.endswith(JSON_SUFFIXES + tuple(s + ".gz" for s in JSON_SUFFIXES)):
        return "json"
    if name.endswith((".xml", ".xml.gz")):
        return "xml"
    if name.endswith(".zip"):
        return "zip"
    for suffix in (".csv", ".txt", ".tsv", ".dat"):
        if name.endswith((suffix, suffix + ".gz")):
            return "tsv" if suffix == ".tsv" else "csv"
    return ""


#: Entries of a zip archive that are never its data: the folders and resource forks macOS adds,
#: hidden files.
_ZIP_NOISE = re.compile(r"(^|/)(__MACOSX/|\.)")


def zip_member(path: Path) -> str:
    """The one table file inside a zip archive (a shop's download: ``orders.csv`` zipped).

    Raises
    ------
    DataValidationError
        Not a readable zip archive, no file the import reads inside, several, or one the import
        reads only unzipped (JSON, Excel, Parquet, XML).
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = [
                i.filename for i in zf.infolist() if not i.is_dir() and not _ZIP_NOISE.search(i.filename)
            ]
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataValidationError(f"not a readable zip archive ({exc})", file=str(path)) from exc
    tables = [n for n in names if file_kind(Path(n)) not in ("", "zip")]
    if not tables:
        held = f"it holds {', '.join(names[:5])}" if names else "it is empty"
        raise DataValidationError(
            f"the zip archive holds no file the import reads ({held}); use {FILE_TYPES}", file=str(path)
        )
    if len(tables) > 1:
        raise DataValidationError(
            f"the zip archive holds {len(tables)} data files ({', '.join(tables[:5])}"
            f"{', ...' if len(tables) > 5 else ''}); unzip it and give the events file, and the catalogue "
            "with --catalog",
            file=str(path),
        )
    if file_kind(Path(tables[0])) not in ("csv", "tsv") or tables[0].lower().endswith(".gz"):
        raise DataValidationError(
            f"the zip archive holds {tables[0]}; a zipped file is read when it is a .csv, .tsv, .txt or "
            f".dat: unzip it and give {Path(tables[0]).name} itself",
            file=str(path),
        )
    return tables[0]


def _open_bytes(path: Path, member: str | None = None) -> io.BufferedIOBase:
    """The file's bytes, a .gz one inflated, a .zip one's data file (``member``, when the caller
    has found it already: :func:`zip_member` lists the archive)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".zip"):
        import zipfile

        with zipfile.ZipFile(path) as zf:  # the member stays open after the archive is closed
            return zf.open(member or zip_member(path))  # type: ignore[return-value]
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
    if len(sep) > 1:  # '::': the csv module reads one-character separators
        header, prefix, sep = header.replace(sep, "\x1f"), prefix.replace(sep, "\x1f"), "\x1f"
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


def _name_columns(df: pd.DataFrame, columns: Sequence[str] | None, src: str) -> None:
    """A typed (JSON, Excel, Parquet) frame's column names stripped, or replaced by ``--columns``
    (as many names as the file has columns)."""
    df.columns = [str(c).strip() for c in df.columns]
    if columns:
        if len(columns) != len(df.columns):
            raise DataValidationError(
                f"--columns names {len(columns)} columns but the file has {len(df.columns)}: "
                f"{', '.join(map(str, df.columns))}",
                file=src,
            )
        df.columns = [str(c).strip() for c in columns]


def read_table(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8",
    sep: str | None = None,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    encoding_option: str = "--encoding",
    nrows: int | None = None,
    recognise_layout: bool = True,
) -> pd.DataFrame:
    """Read a CSV (or .tsv/.txt/.dat, gzipped too), JSON, Excel or Parquet file into a DataFrame.

    CSV, JSON and Excel cells are read as text (blank cells are ``""``); Parquet keeps its types.
    The file's path is kept in ``df.attrs["source"]`` so later errors can name it, and
    what was detected (separator, header, unnamed columns) in ``df.attrs["reading"]``.

    Parameters
    ----------
    path : path-like
        ``.csv``, ``.tsv``, ``.txt``, ``.dat`` (each also ``.gz``), ``.parquet``/``.pq``, ``.jsonl``/
        ``.json``/``.ndjson`` (also ``.gz``) or ``.xlsx``.
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
    recognise_layout : bool, default True
        A shop platform's export recognised by its columns is prepared and its columns renamed
        to the schema's fields (:func:`recsys.data.platforms.recognise`; said in the reading notes).

    Returns
    -------
    pandas.DataFrame
        Indexed by data row: data row ``r`` (1-based, as in the file) has index ``r - 1``. Rows
        left out (a header repeated inside the file, a totals row at the end) leave gaps, so the
        index is not always a RangeIndex: messages about later rows keep the file's numbers.

    Raises
    ------
    DataValidationError
        Missing file, unsupported file type, empty file, a header with no rows,
        bytes invalid in ``encoding`` (with byte offset, row and column), a row with
        the wrong number of fields, or an unreadable Parquet or gzip file.
    """
    from recsys.data.reading import (
        DOUBLE_COLON,
        separator_from_option,
        separator_name,
        sniff_header,
        sniff_separator,
        uses_double_colon,
    )

    p = Path(path)
    src = str(p)
    if not p.exists():
        raise DataValidationError("file not found; check the path", file=src)
    if p.is_dir():
        raise DataValidationError(f"is a folder, expected a file ({FILE_TYPES})", file=src)
    kind = file_kind(p)
    if not kind:
        old_excel = " (an old Excel workbook: save it as .xlsx or CSV)" if p.suffix.lower() == ".xls" else ""
        raise DataValidationError(
            f"unsupported file type '{p.suffix}'{old_excel}; use {FILE_TYPES}", file=src
        )
    reading: dict[str, str] = {"file": p.name}
    zipped = kind == "zip"
    member = None
    if zipped:
        member = zip_member(p)
        kind = file_kind(Path(member))
        reading["format"] = f"{member} inside the zip archive"
    if kind == "xml":
        from recsys.data.platforms import read_xml_frame

        if p.stat().st_size == 0:
            raise DataValidationError("file is empty", file=src)
        df, found = read_xml_frame(p, nrows=nrows)
        reading.update(found)
        _name_columns(df, columns, src)
    elif kind in ("json", "excel"):
        from recsys.data.formats import read_excel_frame, read_json_frame

        if p.stat().st_size == 0:
            raise DataValidationError("file is empty", file=src)
        if kind == "json":
            df, found = read_json_frame(p, nrows=nrows)
        else:
            df, found = read_excel_frame(p, header=header, nrows=nrows)
        reading.update(found)
        _name_columns(df, columns, src)
        if kind == "excel":
            df = _drop_totals_rows(df, reading)
        df = _drop_unnamed_columns(df, reading)
    elif kind == "parquet":
        if p.stat().st_size == 0:
            raise DataValidationError("file is empty", file=src)
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types
            raise DataValidationError(f"not a readable Parquet file ({exc})", file=src) from exc
        df = df.reset_index(drop=True)
        if nrows is not None:
            df = df.head(nrows)
        from recsys.data.platforms import explode_ga4, is_ga4

        if is_ga4(df):  # GA4's BigQuery export as Parquet: an items array per event, read as text
            from recsys.data.formats import _as_text

            df, reading["items"] = explode_ga4(df)
            df = _as_text(df)
        _name_columns(df, columns, src)
        reading["format"] = "Parquet"
    else:
        try:
            with _open_bytes(p, member) as fh:
                head = fh.read(65536)
        except (OSError, EOFError, zlib.error) as exc:
            what = "zip archive" if zipped else "gzip file"
            raise DataValidationError(f"not a readable {what} ({exc})", file=src) from exc
        if not head.strip():
            raise DataValidationError("file is empty (no header and no rows)", file=src)
        norm_enc = encoding.lower().replace("_", "-")
        read_encoding = "utf-8-sig" if norm_enc in ("utf-8", "utf8") else encoding
        marked = _bom_encoding(head)
        if marked and norm_enc in ("utf-8", "utf8"):
            # a byte-order mark says the encoding outright (Excel's "Unicode Text" is UTF-16)
            encoding = read_encoding = marked
            reading["encoding"] = f"{marked} (detected from its byte-order mark)"
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
            sep = DOUBLE_COLON if uses_double_colon(sample) else sniff_separator(sample)
            reading["separator"] = f"{separator_name(sep)} (detected)"
        # the csv module reads one-character separators: '::' is looked at as a unit separator
        probe_sep, probe = (
            ("\x1f", sample.replace(DOUBLE_COLON, "\x1f")) if sep == DOUBLE_COLON else (sep, sample)
        )
        reading.setdefault("encoding", encoding)
        if header is None:
            has_header, why = sniff_header(probe, probe_sep)
            reading["header"] = why if not has_header else "present (detected)"
        else:
            has_header = header
            reading["header"] = "present (given)" if header else "none (given)"
        if columns:
            names = [str(c).strip() for c in columns]
            first = next(csv.reader(io.StringIO(probe, newline=""), delimiter=probe_sep), [])
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
        source: Any = _open_bytes(p, member) if zipped else p
        try:
            df = pd.read_csv(
                source,
                sep=sep,
                engine="python" if len(sep) > 1 else None,
                dtype=str,
                keep_default_na=False,
                na_values=[],
                encoding=read_encoding,
                compression=None if zipped else "infer",
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
        finally:
            if zipped:
                source.close()
        if not has_header and not columns:
            df.columns = [str(i) for i in range(df.shape[1])]
        df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
        if has_header:
            head_row = next(csv.reader(io.StringIO(probe, newline=""), delimiter=probe_sep), [])
            df = _drop_repeated_headers(df, head_row, reading)
        df = _drop_totals_rows(df, reading)
        df = _drop_unnamed_columns(df, reading)
    if len(df) == 0:
        cols = ", ".join(map(str, df.columns)) or "none"
        raise DataValidationError(f"file has a header but no data rows (columns: {cols})", file=src)
    df.attrs["source"] = src
    df.attrs["reading"] = reading
    if recognise_layout:
        from recsys.data.platforms import recognise

        df = recognise(df)
    return df


def peek_table(
    path: str | Path, n_rows: int = 5, options: dict[str, Any] | None = None
) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """Columns, first rows and what was detected (separator, header...), read as the import reads.

    ``options`` are the form's reading options (sep, header, columns, encoding). A folder
    gives its ``interactions.*`` file's rows and the columns of both files.

    Raises
    ------
    DataValidationError
        Missing file, a folder, an unsupported type, or an unreadable file.
    """
    options = options or {}
    p = resolve_import_path(str(path), allow_dir=True)
    src = str(p)
    if p.is_dir():
        files = _folder_files(p)
        if "interactions" not in files:
            raise DataValidationError(
                "no interactions.csv (or .csv.gz/.parquet) in this folder; choose the events file itself",
                file=src,
            )
        columns, rows, reading = peek_table(files["interactions"], n_rows, options)
        if "catalog" in files:
            cat_cols, _, _ = peek_table(files["catalog"], n_rows, {})
            columns = columns + [c for c in cat_cols if c not in columns]
        return columns, rows, reading
    try:
        frame = read_table(
            p,
            encoding=options.get("encoding") or "utf-8",
            sep=options.get("sep"),
            header=options.get("header"),
            columns=options.get("columns"),
            nrows=n_rows,
        )
    except DataValidationError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for broken files
        raise DataValidationError(
            f"the file could not be read ({type(exc).__name__}: {exc})", file=src
        ) from exc
    columns = [str(c) for c in frame.columns]
    reading = dict(frame.attrs.get("reading", {}))
    from recsys.data.platforms import layout_of

    layout = layout_of(frame)
    if layout is not None and layout.kind:  # an orders export: the form's Kind follows it
        reading["kind"] = layout.kind
    return columns, frame.astype(str).to_dict("records"), reading


#: Suffixes of the ``interactions.*`` and ``catalog.*`` files a folder import looks for, in order.
FOLDER_SUFFIXES = (
    ".csv",
    ".csv.gz",
    ".parquet",
    ".pq",
    ".tsv",
    ".jsonl",
    ".jsonl.gz",
    ".json",
    ".json.gz",
    ".xlsx",
    ".csv.zip",
    ".zip",
)


def _folder_files(folder: Path) -> dict[str, Path]:
    """``interactions.*`` and ``catalog.*`` in a folder (what the generic import reads there)."""
    found: dict[str, Path] = {}
    for stem in ("catalog", "interactions"):
        for suffix in FOLDER_SUFFIXES:
            try:  # each file is checked like a typed path: a link must not lead out
                found[stem] = resolve_import_path(str(folder / f"{stem}{suffix}"))
            except DataValidationError:
                continue
            break
    return found


_BOMS = (  # longest first: UTF-32's little-endian mark begins with UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _bom_encoding(head: bytes) -> str | None:
    """ "utf-16" or "utf-32" when the bytes start with that encoding's byte-order mark."""
    return next((enc for bom, enc in _BOMS if head.startswith(bom)), None)


def _drop_repeated_headers(df: pd.DataFrame, header: Sequence[str], reading: dict[str, str]) -> pd.DataFrame:
    """Rows that repeat the header row cell for cell (several exports joined into one file, each
    with its header) left out and said in ``reading``; the index keeps the file's row numbers."""
    names = [str(c).strip().lstrip("\ufeff") for c in header][: df.shape[1]]
    if not names or not any(names) or len(df) == 0:
        return df
    same = np.ones(len(df), dtype=bool)
    for i, name in enumerate(names):
        same &= df.iloc[:, i].astype(str).str.strip().str.lstrip("\ufeff").to_numpy() == name
        if not same.any():
            return df
    for i in range(len(names), df.shape[1]):  # columns the header does not name: blank there
        same &= df.iloc[:, i].astype(str).str.strip().to_numpy() == ""
    if not same.any():
        return df
    rows = _row_numbers_of(df)[same]
    shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
    reading["repeated header"] = (
        f"{len(rows):,} row(s) repeating the header left out (row {shown}: the file is several exports "
        "joined, each with its header)"
    )
    out = df[~same]
    out.attrs = dict(df.attrs)
    return out


_TOTAL_WORD = re.compile(r"(?i)^(grand\s+|sub-?\s*)?totals?\s*:?$|^sum\s*:?$")
_NUMBER_CELL = re.compile(r"^[-+(]?\D{0,3}\s?[\d.,\s\u00a0']*\d[\d.,]*\)?\s?\D{0,3}$")


def _drop_totals_rows(df: pd.DataFrame, reading: dict[str, str]) -> pd.DataFrame:
    """The last rows of a report's export that sum it up (``Total,,,,17434``: the word Total,
    Totals, Grand total, Subtotal or Sum in the first filled cell, numbers or nothing in the
    others) left out and said in ``reading``; the index keeps the file's row numbers."""
    if df.shape[1] < 2:
        return df
    cut = len(df)
    while cut > 1 and len(df) - cut < 3:
        cells = [str(v).strip() for v in df.iloc[cut - 1].tolist()]
        filled = [(i, v) for i, v in enumerate(cells) if v and v.lower() not in ("nan", "none")]
        if not filled or not _TOTAL_WORD.match(filled[0][1]):
            break
        word_col, word = filled[0]
        if not all(_NUMBER_CELL.match(v) for _, v in filled[1:]):
            break
        others = df.iloc[: cut - 1, word_col].astype(str).str.strip()
        if (others == word).any():  # the word is a value of that column, not a label
            break
        cut -= 1
    if cut == len(df):
        return df
    rows = _row_numbers_of(df)[cut:]
    firsts = [
        next((str(v).strip() for v in df.iloc[i].tolist() if str(v).strip()), "") for i in range(cut, len(df))
    ]
    reading["totals row"] = (
        f"the last {len(rows)} row(s) summing the file up left out "
        f"({'; '.join(f'row {r}: {w!r}' for r, w in zip(rows, firsts, strict=True))})"
        if len(rows) > 1
        else f"the last row, {firsts[0]!r} followed by numbers only, left out as the file's totals (row {rows[0]})"
    )
    out = df.iloc[:cut]
    out.attrs = dict(df.attrs)
    return out


def _row_numbers_of(df: pd.DataFrame) -> np.ndarray:
    from recsys.data.values import _row_numbers

    return _row_numbers(df)


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


def guessed_mapping(
    frame: pd.DataFrame | None, mapping: dict[str, Any], events: bool = False
) -> dict[str, Any]:
    """``mapping`` (the user's ``--map`` for this file, maybe empty) completed with the guesses of
    :func:`recsys.data.mapping.guess_mapping` for the columns and fields it does not name, and
    the whole reported in the file's reading notes ("title <- product (guessed)"). On an events
    file, a column named like a product attribute (Amazon's review ``title``) whose values
    differ between rows of the same item is left out of the catalogue."""
    from recsys.data.mapping import PRODUCT_TEXT_FIELDS, guess_mapping, item_column, varies_per_item

    if frame is None:
        return mapping
    given = {str(k): (None if drops(v) else v) for k, v in layout_names(mapping, frame).items()}
    head = frame.head(500)
    samples = {str(c): head[c].tolist() for c in head.columns}
    notes: list[str] = []
    guess: dict[str, Any] = guess_mapping(frame.columns, samples=samples, notes=notes, given=given)
    if not events and "item_id" not in {*map(str, frame.columns), *given.values(), *guess.values()}:
        # a product table's own key: a column named just "id" (a feed's or a shop database's)
        key = next(
            (str(c) for c in frame.columns if str(c).strip().lower() == "id" and str(c) not in given), None
        )
        if key is not None:
            guess[key] = "item_id"
    if events:
        item = item_column(list(frame.columns), {**given, **guess})
        for field in PRODUCT_TEXT_FIELDS:
            if field in frame.columns and field not in given and varies_per_item(field, item, samples):
                guess[field] = None
                notes.append(
                    f"'{field}' left out: it differs between rows of the same item, so it describes the "
                    f"event, not the product; pass --map {field}={field} if it is the product's"
                )
    if guess:
        shown = []
        for c in map(str, frame.columns):  # in the file's order
            how, f = ("--map", given[c]) if c in given else ("guessed", guess.get(c, ""))
            if c in given or c in guess:
                shown.append(f"{f} <- {c} ({how})" if f else f"{c} left out ({how})")
        frame.attrs.setdefault("reading", {})["mapping"] = (
            f"{', '.join(shown)}; a column named like a field is taken as it unless --map names the "
            "column or the field: pass --map COLUMN=FIELD to correct a guess (COLUMN=- leaves it out)"
        )
        frame.attrs["guessed"] = {f: c for c, f in guess.items() if f}
    if notes:
        frame.attrs.setdefault("reading", {})["not guessed"] = "; ".join(notes)
    return {**guess, **mapping}


def _unknown_column_message(src: str, df: pd.DataFrame) -> str:
    from recsys.data.mapping import did_you_mean
    from recsys.data.reading import SEPARATORS

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


def layout_names(mapping: Mapping[str, Any], df: pd.DataFrame | None) -> dict[str, Any]:
    """``mapping`` with the file's own column names that a recognised platform layout renamed
    (``Lineitem sku`` -> ``item_id``) written as the frame now names them."""
    renamed = {} if df is None else df.attrs.get("renamed", {})
    return {(renamed.get(str(k), k) if str(k) not in df.columns else k): v for k, v in mapping.items()}  # type: ignore[union-attr]


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
    if not mapping:
        return df
    file = file or df.attrs.get("source")
    mapping = {str(k): (None if drops(v) else v) for k, v in layout_names(mapping, df).items()}
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


_TIME_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{1,2}:\d{2}.*)?$|^\d{9,13}(\.\d+)?$")
_EXAMPLE_FIELDS = {"sequence_id": "a session id", "item_id": "an item id", "category": "a category"}


def _headerless_message(df: pd.DataFrame, col: str) -> str:
    """What a file with no header row holds, column by column, and the --columns that names it."""
    parts, example, said = [], [], []
    fillers = iter(_EXAMPLE_FIELDS)
    for c in df.columns:
        values = [str(v) for v in df[c].head(50) if str(v).strip()]
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(values))[:3])
        timed = bool(values) and all(_TIME_LIKE.match(v) for v in values)
        parts.append(f"{c} = {shown}{' (times)' if timed else ''}")
        name = "timestamp" if timed and "timestamp" not in example else next(fillers, f"col{c}")
        example.append(name)
        said.append(
            "a time" if name == "timestamp" else _EXAMPLE_FIELDS.get(name, f"column {c} kept as {name}")
        )
    return (
        f"required column '{col}' is missing: the file has no header row, so its columns are numbered "
        f"from 0 ({'; '.join(parts)}). Name them in order with --columns, using field names for the "
        f"columns that are fields, e.g. --columns {','.join(example)} if they hold {', '.join(said)}; or "
        f"map them by position: --map 0=sequence_id 2=item_id"
    )


def _require(df: pd.DataFrame, required: tuple[str, ...], file: str | None) -> None:
    for col in required:
        if col not in df.columns:
            reading = df.attrs.get("reading", {})
            if str(reading.get("header", "")).startswith("none") and all(
                str(c).isdigit() for c in df.columns
            ):
                raise DataValidationError(_headerless_message(df, col), file=file, column=col)
            guessed = df.attrs.get("guessed", {})
            present = ", ".join(
                f"{c} (guessed from '{guessed[c]}')" if c in guessed else str(c) for c in df.columns
            )
            described = [c for c in ("title", "category", "brand", "price") if c in df.columns]
            if (
                col == "sequence_id"
                and "item_id" in df.columns
                and described
                and not {"user_id", "timestamp", "event_type"} & set(df.columns)
            ):
                # a product table given as the events (s41-w's walk): one row per item, no event column
                raise DataValidationError(
                    f"required column 'sequence_id' is missing (columns present: {present}). This looks like "
                    f"a catalogue (item_id with {', '.join(described)}, and no user, time or event column): "
                    "pass it as the catalogue, with --catalog (alone, it stores a catalogue-only dataset), or map the column "
                    "that holds sessions with --map <your column>=sequence_id",
                    file=file,
                    column=col,
                )
            if col == "sequence_id" and {"user_id", "timestamp"} <= set(df.columns):
                raise DataValidationError(
                    f"required column 'sequence_id' is missing: no column holds a session, order or basket "
                    f"id (columns present: {present}). Cut each user's events into sessions on a time gap with "
                    "--session-gap 30m (a longer gap such as 1d for reviews or ratings), or map the column "
                    "that holds sessions with --map <your column>=sequence_id",
                    file=file,
                    column=col,
                )
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
