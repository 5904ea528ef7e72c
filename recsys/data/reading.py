"""Reading options for files as shops export them: separators, headers, prices, times.

Everything here is general (no per-dataset code) and each guess is reported, so the
user can see what was detected and override it:

- :func:`sniff_separator`: comma, semicolon, tab or pipe, from the first records;
- :func:`sniff_header`: whether the first row is a header or already data;
- :func:`parse_prices`: ``"£3.42"``, ``"₹1,099"``, ``"1.234,50 €"``, ``"$ 1 234.50"``;
- :func:`parse_timezone` and :func:`parse_duration`: ``--tz UTC+8`` and ``--session-gap 30m``;
- :data:`FIELDS` and the column mapping: in :mod:`recsys.data.mapping` (importable from here);
- :func:`did_you_mean` (from :mod:`recsys.data.mapping`): the closest names to a misspelled one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.mapping import (  # noqa: F401  (the mapping's names, kept importable from here)
    CATALOG_FIELDS,
    DROP_TARGETS,
    FIELD_ALIASES,
    FIELD_SYNONYMS,
    FIELDS,
    INTERACTION_FIELDS,
    JOINABLE_FIELDS,
    did_you_mean,
    fields_help,
    guess_mapping,
)
from recsys.errors import DataValidationError

#: Separators tried by :func:`sniff_separator`, in order of preference on a tie.
SEPARATORS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SEP_NAMES = {
    "comma": ",",
    ",": ",",
    "semicolon": ";",
    ";": ";",
    "tab": "\t",
    "\\t": "\t",
    "\t": "\t",
    "pipe": "|",
    "|": "|",
}


#: A two-character separator (MovieLens 1M/10M's ``.dat`` files: ``1::1193::5::978300760``).
DOUBLE_COLON = "::"


def separator_from_option(value: str | None) -> str | None:
    """``--sep`` value -> the separator character (None: detect); ``::`` is the one longer separator."""
    if value is None or value == "" or value.lower() == "auto":
        return None
    if value == DOUBLE_COLON or value.lower() in ("double-colon", "doublecolon"):
        return DOUBLE_COLON
    sep = _SEP_NAMES.get(value.lower(), _SEP_NAMES.get(value))
    if sep is None:
        if len(value) == 1:
            return value
        raise DataValidationError(
            f"--sep {value!r} is not a separator; use comma, semicolon, tab, pipe or one character"
        )
    return sep


def separator_name(sep: str) -> str:
    return "'::'" if sep == DOUBLE_COLON else SEPARATORS.get(sep, repr(sep))


def uses_double_colon(text: str) -> bool:
    """Whether a sample's lines are fields joined by ``::``: nine in ten of its first lines hold
    the same number (one or more) of them."""
    lines = [ln for ln in text.split("\n")[:-1] if ln.strip()][:60]  # the possibly cut last line left out
    if not lines:
        return False
    counts = pd.Series([ln.count(DOUBLE_COLON) for ln in lines])
    mode = int(counts.mode().iloc[0])
    return mode >= 1 and float((counts == mode).mean()) >= 0.9


def _records(text: str, sep: str, limit: int = 60) -> list[list[str]]:
    """The first complete records of ``text`` read with ``sep`` (the possibly cut last one dropped)."""
    cut = text.rfind("\n")
    body = text[: cut + 1] if cut >= 0 else text
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(body, newline=""), delimiter=sep):
            if row:
                rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        return []
    return rows


def sniff_separator(text: str) -> str:
    """The field separator of a CSV sample: the candidate giving the most rows with the same
    number (> 1) of fields; ties go to comma, then semicolon, tab, pipe."""
    best, best_score = ",", (-1.0, 0)
    for sep in SEPARATORS:
        rows = _records(text, sep)
        if not rows:
            continue
        counts = pd.Series([len(r) for r in rows])
        mode = int(counts.mode().iloc[0])
        if mode < 2:
            continue
        score = (float((counts == mode).mean()), mode)
        if score > best_score:
            best, best_score = sep, score
    return best


_NUMBER = re.compile(r"^[-+]?\d+([.,]\d+)?([eE][-+]?\d+)?$")


def sniff_header(text: str, sep: str) -> tuple[bool, str]:
    """Whether the first row of a CSV sample is a header, and why.

    A header names columns; a first row with a number in it (``1,2268318,...,pv``) is
    data, because column names are (almost) never plain numbers. A blank cell is fine
    (trailing separators make unnamed columns).
    """
    rows = _records(text, sep, limit=2)
    if not rows:
        return True, "present"
    first = [c.strip() for c in rows[0]]
    numbers = [c for c in first if _NUMBER.match(c)]
    if numbers:
        return False, f"none (detected: the first row holds values such as {numbers[0]!r})"
    return True, "present"


# --------------------------------------------------------------------------------------
# prices
# --------------------------------------------------------------------------------------

_CURRENCY = re.compile(
    r"(?i)(?:US\$|A\$|C\$|NZ\$|HK\$|R\$|\$|£|€|¥|₹|₽|₩|₺|₪|₫|₱|฿|zł|kč|CHF|EUR|USD|GBP|INR|JPY|CNY|RMB"
    r"|AUD|CAD|SEK|NOK|DKK|PLN|BRL|RUB|Rs\.?|kr\.?)"
)
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009']+")
_THOUSANDS_COMMA = re.compile(r"^\d{1,3}(,\d{2})*,\d{3}$|^\d{1,3}(,\d{3})+$")
_THOUSANDS_DOT = re.compile(r"^\d{1,3}(\.\d{3})+$")


def _price_core(value: str) -> tuple[str, bool, bool]:
    """(digits and separators only, had a currency mark, was negative)."""
    v = value.strip()
    cur = bool(_CURRENCY.search(v))
    if cur:
        v = _CURRENCY.sub("", v)
    v = _SPACES.sub("", v)
    neg = v.startswith("-") or (v.startswith("(") and v.endswith(")"))
    v = v.strip("()").lstrip("+-")
    return v, cur, neg


def detect_decimal(values: Iterable[str]) -> str:
    """ "," when the column's numbers use a decimal comma, else "."."""
    for raw in values:
        v, _, _ = _price_core(str(raw))
        if "," in v and "." in v:
            return "," if v.rfind(",") > v.rfind(".") else "."
        if "," in v and not _THOUSANDS_COMMA.match(v) and re.fullmatch(r"\d+,\d+", v):
            return ","
    return "."


def _price_value(raw: str, decimal: str) -> float | None:
    v, _, neg = _price_core(raw)
    if not v:
        return None
    whole, _, frac = v.partition(decimal)
    thousands = "," if decimal == "." else "."
    if thousands in whole:
        grouped = _THOUSANDS_COMMA if thousands == "," else _THOUSANDS_DOT
        if not grouped.match(whole):
            return None
        whole = whole.replace(thousands, "")
    v = whole + ("." + frac if frac else "")
    if not re.fullmatch(r"\d+(\.\d+)?([eE][-+]?\d+)?|\.\d+", v):
        return None
    out = float(v)
    return -out if neg else out


def parse_prices(
    s: pd.Series, decimal: str | None = None, blanks: Iterable[str] = ()
) -> tuple[pd.Series, pd.Series, str]:
    """Prices as floats, a mask of non-blank cells that are not prices, and a note.

    Parameters
    ----------
    s : pandas.Series
        Text (or already numeric) values.
    decimal : {".", ","}, optional
        The decimal mark; by default detected from the column (a value like ``3,42`` or
        ``1.234,50`` means a decimal comma; ``1,099`` alone reads as one thousand and 99).
    blanks : iterable of str
        Cells meaning "no value".

    Returns
    -------
    (values, bad, note)
        ``note`` says what was detected, e.g. "currency symbols removed; decimal point".
    """
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64"), pd.Series(False, index=s.index), "numbers"
    t = s.astype(object).where(s.notna(), "").astype(str).str.strip()
    blank = t.isin(list(blanks)) | (t == "")
    plain = pd.to_numeric(t.where(~blank), errors="coerce")
    todo = plain.isna() & ~blank
    if decimal is not None and decimal not in (".", ","):
        raise DataValidationError(f"--decimal must be '.' or ',', got {decimal!r}")
    notes = []
    if not todo.any() and decimal != ",":
        return plain.astype("float64"), pd.Series(False, index=s.index), "plain numbers"
    odd = t[todo]
    dec = decimal or detect_decimal(pd.unique(odd.to_numpy())[:2000])
    values = plain.astype("float64").copy()
    if dec == ",":
        # with a decimal comma "1.234" is one thousand two hundred and thirty-four
        todo = ~blank
        odd = t[todo]
    codes, uniques = pd.factorize(odd)
    parsed = np.array([_price_value(u, dec) for u in uniques], dtype=object)
    got = pd.Series(parsed[codes], index=odd.index)
    values[todo] = pd.to_numeric(got, errors="coerce")
    bad = values.isna() & ~blank
    marked = odd[odd.str.contains(_CURRENCY)]
    if len(marked):
        notes.append(f"currency marks removed from {len(marked):,} value(s), e.g. {marked.iloc[0]!r}")
    notes.append(
        ("decimal comma" if dec == "," else "decimal point") + (" (given)" if decimal else " (detected)")
    )
    return values, bad, "; ".join(notes)


# --------------------------------------------------------------------------------------
# time zones and durations
# --------------------------------------------------------------------------------------

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.I)


def parse_timezone(value: str | None) -> Any:
    """``--tz`` value -> a tzinfo: ``UTC+8``, ``+08:00``, ``-0500``, ``UTC`` or an IANA name."""
    if value is None or value == "":
        return None
    v = value.strip()
    if v.upper() in ("UTC", "GMT", "Z"):
        return dt.timezone.utc
    m = _OFFSET.match(v)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            raise DataValidationError(f"--tz {value!r} is not a valid UTC offset")
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(v)
    except Exception:  # ZoneInfoNotFoundError, ValueError on odd names
        raise DataValidationError(
            f"--tz {value!r} is not a time zone; use an offset like UTC+8 or +05:30, "
            "or a name like Europe/London or Asia/Shanghai"
        ) from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|hours?|d|days?)?\s*$", re.I)


def parse_duration(value: str | None) -> pd.Timedelta | None:
    """``--session-gap`` value -> Timedelta: ``30m``, ``90s``, ``1h``, ``1d``, ``45`` (minutes)."""
    if value is None or value == "":
        return None
    m = _DURATION.match(str(value))
    if not m:
        raise DataValidationError(
            f"--session-gap {value!r} is not a duration; write it like 30m, 90s, 2h or 1d"
        )
    n = float(m.group(1))
    unit = (m.group(2) or "m").lower()
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit[0]] * n
    if seconds <= 0:
        raise DataValidationError(f"--session-gap {value!r} must be longer than zero")
    return pd.Timedelta(seconds=seconds)


def parse_event_map(pairs: Any) -> dict[str, str]:
    """``--event-map pv=view buy=purchase`` (or a dict) -> {code: event type or "drop"}."""
    from recsys.data.schema import EVENT_TYPES

    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, dict) else (str(p).partition("=")[::2] for p in pairs)
    out: dict[str, str] = {}
    for code, target in items:
        code, target = str(code).strip(), str(target).strip().lower()
        if not code or not target:
            raise DataValidationError(f"--event-map needs CODE=TYPE pairs like pv=view, got {code}={target}")
        if target not in (*EVENT_TYPES, "drop"):
            raise DataValidationError(
                f"--event-map {code}={target}: the event type must be one of "
                f"{', '.join(EVENT_TYPES)} (or drop, to leave these events out)"
            )
        out[code.lower()] = target
    return out


def examples(
    values: pd.Series, mask: np.ndarray, rows: np.ndarray, n_values: int = 3, n_rows: int = 3
) -> str:
    """``'N/A' at rows 17, 90; 'x' at row 5``: a few bad values and where they are."""
    idx = np.flatnonzero(mask)
    seen: dict[Any, list[int]] = {}
    for i in idx[:5000]:
        v = values.iloc[i]
        v = v.item() if isinstance(v, np.generic) else v
        key = repr(v)
        if key not in seen:
            if len(seen) >= n_values:
                continue
            seen[key] = []
        if len(seen[key]) < n_rows:
            seen[key].append(int(rows[i]))
    parts = []
    for key, where in seen.items():
        label = "row" if len(where) == 1 else "rows"
        parts.append(f"{key} at {label} {', '.join(map(str, where))}")
    return "; ".join(parts)
