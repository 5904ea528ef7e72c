"""Reading JSON (lines or an array) and Excel workbooks into the text table the import reads.

:func:`read_table` (:mod:`recsys.data.tables`) reads CSV itself and hands these formats
here: JSON lines (``.jsonl``, ``.ndjson``, and ``.json`` holding one record a line, as the
Amazon review dumps do, gzipped or not) or a JSON array of records, and ``.xlsx``
workbooks (openpyxl, through pandas) with every sheet that has the first sheet's columns
read as one table. Cells become text as a CSV's would: lists of values are joined with
:data:`recsys.data.values.JOIN_MARK` (a list of category names is a category path; a
list of lists, Amazon's ``categories``, gives its first path), objects are written as
JSON, blanks and nulls are ``""``, date-times ``2010-12-01 08:26:00``.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.values import JOIN_MARK
from recsys.errors import DataValidationError

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def cell_text(value: Any) -> str:
    """One JSON or Excel cell as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        items = [v for v in value if v is not None and v != ""]
        if items and all(isinstance(v, (list, tuple)) for v in items):
            return cell_text(items[0])
        return JOIN_MARK.join(cell_text(v) for v in items)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else str(value)
    if value is pd.NaT:
        return ""
    return str(value)


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {str(c): [cell_text(v) for v in df[c].tolist()] for c in df.columns},
        index=range(len(df)),
        dtype=object,
    )
    return out


def _first_bad_line(path: Path, opener: Any) -> tuple[int | None, str]:
    """The 1-based number and text of the first line that is not a JSON object (None if all are)."""
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                if isinstance(json.loads(line), dict):
                    continue
            except ValueError:
                pass
            return number, line.strip()
    return None, ""


def read_json_frame(path: Path, nrows: int | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """JSON lines or a JSON array of records -> a frame of text cells and what was read."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as fh:  # type: ignore[operator]
            head = fh.read(4096).lstrip()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"not a readable JSON file ({exc})", file=str(path)) from exc
    if not head:
        raise DataValidationError("file is empty (no records)", file=str(path))
    lines = not head.startswith("[")
    try:
        if lines:
            df = pd.read_json(
                path,
                lines=True,
                nrows=nrows,
                dtype=False,  # no type guessing, no date conversion: the loaders read the text
                compression="infer",
                encoding="utf-8",
            )
        else:
            df = pd.read_json(
                path,
                orient="records",
                dtype=False,
                compression="infer",
            )
            df = df.head(nrows) if nrows is not None else df
    except ValueError as exc:
        row, bad = _first_bad_line(path, opener) if lines else (None, "")
        first = head.splitlines()[0][:80] if head else ""
        where = (
            f"; this line is not a JSON object: {bad[:80]!r}" if row else f"; the file starts with {first!r}"
        )
        raise DataValidationError(
            f"not readable as JSON records ({exc}); expected one JSON object a line (JSON lines) or a "
            f"JSON array of objects{where}",
            file=str(path),
            row=row,
        ) from exc
    if df.shape[1] == 0:
        raise DataValidationError("the JSON records have no fields", file=str(path))
    reading = {"format": "JSON lines (one record a line)" if lines else "JSON array of records"}
    from recsys.data.platforms import explode_ga4, is_ga4

    if is_ga4(df):
        df, reading["items"] = explode_ga4(df)
    nested = [str(c) for c in df.columns if df[c].map(lambda v: isinstance(v, (list, dict))).any()]
    if nested:
        reading["nested values"] = (
            f"lists and objects in {', '.join(nested[:6])}{'...' if len(nested) > 6 else ''} written as "
            "text (a list of names is read as a path when mapped to category)"
        )
    return _as_text(df), reading


def _read_sheets(path: Path, header_row: bool, nrows: int | None) -> dict[str, pd.DataFrame]:
    try:
        return pd.read_excel(
            path,
            sheet_name=None,
            dtype=object,
            header=0 if header_row else None,
            nrows=nrows,
            engine="openpyxl",
        )
    except ImportError as exc:  # openpyxl is in requirements.txt; a trimmed install may lack it
        raise DataValidationError(
            "reading .xlsx needs the openpyxl package (pip install openpyxl), or save the sheet as CSV",
            file=str(path),
        ) from exc
    except Exception as exc:  # zipfile/openpyxl raise several types for a broken workbook
        raise DataValidationError(
            f"not a readable Excel workbook ({type(exc).__name__}: {exc})", file=str(path)
        ) from exc


def read_excel_frame(
    path: Path, header: bool | None = None, nrows: int | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """An ``.xlsx`` workbook -> a frame of text cells: the first sheet with data, plus every
    other sheet with the same columns (one sheet a year, as Online Retail II ships). Without
    ``header``, a first row holding a plain number is data, as in a CSV."""
    reading = {"format": "Excel workbook"}
    sheets = _read_sheets(path, header is not False, nrows)
    if header is None and sheets:
        names = next(iter(sheets.values())).columns
        numbers = [c for c in names if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if numbers:  # column names are (almost) never plain numbers
            reading["header"] = (
                f"none (detected: the first row holds values such as {cell_text(numbers[0])!r})"
            )
            sheets = _read_sheets(path, False, nrows)
    elif header is not None:
        reading["header"] = "present (given)" if header else "none (given)"
    filled = {name: df for name, df in sheets.items() if df.shape[1] > 0 and len(df) > 0}
    if not filled:
        raise DataValidationError("the workbook has no sheet with data", file=str(path))
    first_name, first = next(iter(filled.items()))
    names = [str(c).strip() for c in first.columns]
    same = [n for n, df in filled.items() if [str(c).strip() for c in df.columns] == names]
    other = [n for n in filled if n not in same]
    frames = []
    for n in same:
        df = filled[n]
        df.columns = names
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    if nrows is not None:
        df = df.head(nrows)
    if len(same) > 1:
        reading["sheets"] = f"{len(same)} sheets with the same columns read as one table: " + ", ".join(
            f"{n!r} ({len(filled[n]):,} rows)" for n in same
        )
    else:
        reading["sheets"] = f"sheet {first_name!r}"
    if other:
        reading["sheets"] += (
            f"; sheet(s) with other columns not read: {', '.join(map(repr, other))} (save a sheet as CSV "
            "to import it)"
        )
    return _as_text(df), reading
