"""Value parsing and row checking shared by every table of an import (catalogue, interactions).

Vectorised parsers that turn raw cells into schema values and say which cells are bad
(ids, text, numbers, flags, timestamps, category paths, gender and event synonyms), and
:class:`_Checker`, which raises on the first bad row (``errors="raise"``) or drops and
counts bad rows in the :class:`~recsys.data.schema.ValidationReport` (``errors="drop"``).
The rules are described in :mod:`recsys.data.loaders`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys.data.schema import CATEGORY_SEP, ValidationReport
from recsys.errors import DataValidationError

logger = logging.getLogger("recsys.data.loaders")

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
    # GA4's recommended e-commerce events (view_item, select_item, add_to_cart, purchase), Segment's
    # spec (Product Viewed, Product Added, Order Completed) and the click logs' "pv" (page view)
    "view": (
        "view",
        "views",
        "viewed",
        "click",
        "clicked",
        "detail",
        "detail_view",
        "pageview",
        "page_view",
        "pv",
        "view_item",
        "select_item",
        "item_view",
        "product_view",
        "product_viewed",
        "product_clicked",
    ),
    "cart": (
        "cart",
        "add_to_cart",
        "addtocart",
        "add",
        "added_to_cart",
        "basket",
        "add_to_basket",
        "add_to_bag",
        "product_added",
        "added_to_basket",
    ),
    "purchase": (
        "purchase",
        "purchased",
        "buy",
        "bought",
        "order",
        "transaction",
        "checkout",
        "sale",
        "order_completed",
        "ordered",
    ),
}
_EVENT_LOOKUP = {syn: norm for norm, syns in EVENT_SYNONYMS.items() for syn in syns}

_TRUE = ("1", "true", "t", "yes", "y", "1.0")
_FALSE = ("0", "false", "f", "no", "n", "", "0.0", "nan", "none", "null")
_BLANKS = ("", "nan", "NaN", "NAN", "null", "NULL", "None", "none", "NA", "N/A", "n/a", "NaT")
_CATALOG_TEXT = ("title", "brand", "description", "image_url")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

#: Joins the values of several columns mapped to one path field (split again like the path separator).
JOIN_MARK = "\x1f"


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
    bad = num.isna() & ~blank
    if bad.any() and _decimal_comma(t[~blank]):  # "1,5" in a European export: the comma is the decimal mark
        num = pd.to_numeric(t.where(~blank).str.replace(",", ".", regex=False), errors="coerce").astype(
            "float64"
        )
        bad = num.isna() & ~blank
    return num, bad


_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+$")


def _decimal_comma(t: pd.Series) -> bool:
    """A column of numbers written with a decimal comma: no cell has a point, every cell with a
    comma is one number with one comma, and some comma is not a thousands separator ("1,0", "2,25";
    a column of "1,000" alone stays unread: it could be either)."""
    comma = t[t.str.contains(",", regex=False)]
    return (
        not t.str.contains(".", regex=False).any()
        and bool(comma.str.match(_DECIMAL_COMMA).all())
        and not bool(comma.str.match(_THOUSANDS).all())
    )


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


_EPOCH = r"-?\d{9,19}(\.\d+)?"
# a zone after a time of day (a date alone, 2016-05-09, ends in "-09" but has no zone)
_AWARE = r".*\d:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$|.*\s(UTC|GMT)$"


def _parse_timestamps(s: pd.Series, tz: Any = None) -> tuple[pd.Series, pd.Series, str]:
    """datetime64[ns] (UTC, naive), a mask of non-blank cells that could not be parsed, and
    what was detected ("unix seconds (detected)", "ISO 8601 ...").

    A column is read as unix time when at least half of its filled cells are 9-19 digit
    numbers (seconds, milliseconds, microseconds or nanoseconds by size); the other cells
    are then bad values, not a reason to read every row as bad. Naive date-times are read in ``tz`` (a tzinfo; UTC
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
    order = ""
    if naive.any():
        n = pd.to_datetime(t[naive], errors="coerce", format="ISO8601")
        retry = n.isna()
        if retry.any():
            n = n.astype("datetime64[ns]")
            dayfirst, order = _day_first(t[naive][retry])
            n[retry] = pd.to_datetime(t[naive][retry], errors="coerce", format="mixed", dayfirst=dayfirst)
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
    return parsed, bad, "date-times " + " and ".join(kinds) + (f", {order}" if order else "") + " (detected)"


_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})([./-])(\d{1,2})\2\d{2,4}\b")


def _day_first(t: pd.Series) -> tuple[bool, str]:
    """Whether a column's numeric dates (``02.01.2017``, ``13/01/2017``) give the day first, and the
    note saying so. Read from the whole column: a first number over 12 is a day (day first); a
    second over 12 is a day (month first); where neither shows, dotted dates are day first (the
    convention wherever they are written: 02.01.2017 is 2 January) and slashed ones month first
    (the US convention, and pandas'). "" when the column has no such dates."""
    m = t.str.extract(_NUMERIC_DATE)
    m = m[m[0].notna()]
    if m.empty:
        return False, ""
    first, second = m[0].astype(int), m[2].astype(int)
    if (first > 12).any() and not (second > 12).any():
        return True, "numeric dates day first (a first number over 12)"
    if (second > 12).any() and not (first > 12).any():
        return False, "numeric dates month first (a second number over 12)"
    if (m[1] == ".").all():
        return True, "numeric dates day first (dotted: day.month.year)"
    return False, "numeric dates month first (slashed, no number over 12 to tell)"


#: Unix time units by the size of the largest value (after 1973 in seconds: > 1e8 s):
#: seconds up to 1e11 (year 5138), then milliseconds, microseconds, nanoseconds.
_EPOCH_UNITS = ((1e17, "ns", "nanoseconds"), (1e14, "us", "microseconds"), (1e11, "ms", "milliseconds"))


def _epoch_unit_of(v: pd.Series) -> tuple[str, str]:
    top = v.abs().max()
    return next(((code, name) for limit, code, name in _EPOCH_UNITS if top > limit), ("s", "seconds"))


def _epoch_unit(v: pd.Series) -> str:
    return _epoch_unit_of(v)[1]


def _from_epoch(v: pd.Series) -> pd.Series:
    return pd.to_datetime(v, unit=_epoch_unit_of(v)[0], errors="coerce").astype("datetime64[ns]")


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
