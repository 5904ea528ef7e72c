"""Reading options for files as shops export them: separators, headers, prices, times.

Everything here is general (no per-dataset code) and each guess is reported, so the
user can see what was detected and override it:

- :func:`sniff_separator`: comma, semicolon, tab or pipe, from the first records;
- :func:`sniff_header`: whether the first row is a header or already data;
- :func:`parse_prices`: ``"£3.42"``, ``"₹1,099"``, ``"1.234,50 €"``, ``"$ 1 234.50"``;
- :func:`parse_timezone` and :func:`parse_duration`: ``--tz UTC+8`` and ``--session-gap 30m``;
- :data:`FIELDS`: the schema fields a column can be mapped to, with their meaning;
- :func:`did_you_mean`: the closest column names to a misspelled one.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

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

#: Schema fields a file column can be mapped to, and what each means.
CATALOG_FIELDS: dict[str, str] = {
    "item_id": "the product's id (SKU, product code); required in a catalogue",
    "title": "the product's name",
    "category": "category path like 'Women > Shoes'; map several columns to join them in order",
    "brand": "brand name",
    "gender": "women, men, unisex or kids (F, M, female, girls... are understood)",
    "price": "unit price; currency symbols and thousands separators are removed",
    "adult": "true/false: an adult-only item",
    "in_stock": "true/false: the item can be bought now (optional; the 'in stock only' filter needs it)",
    "description": "free text about the product",
    "image_url": "link to an image",
}
INTERACTION_FIELDS: dict[str, str] = {
    "sequence_id": "session, order, invoice or basket id; required unless --session-gap cuts sessions",
    "item_id": "the product's id; required in an events file",
    "user_id": "customer or user id",
    "timestamp": "time of the event: ISO 8601, unix seconds or milliseconds",
    "event_type": "view, cart or purchase (or your codes with --event-map)",
    "quantity": "number of units (blank is 1)",
    "position": "order of the event inside its sequence (e.g. add-to-cart order)",
}
FIELDS: dict[str, str] = {**INTERACTION_FIELDS, **{k: v for k, v in CATALOG_FIELDS.items() if k != "item_id"}}
#: Words users write for a field (for "did you mean" on a mapping target).
FIELD_SYNONYMS: dict[str, str] = {
    "session": "sequence_id",
    "session_id": "sequence_id",
    "order": "sequence_id",
    "order_id": "sequence_id",
    "basket": "sequence_id",
    "invoice": "sequence_id",
    "sku": "item_id",
    "product": "item_id",
    "product_id": "item_id",
    "item": "item_id",
    "customer": "user_id",
    "user": "user_id",
    "time": "timestamp",
    "date": "timestamp",
    "datetime": "timestamp",
    "event": "event_type",
    "behavior": "event_type",
    "behaviour": "event_type",
    "action": "event_type",
    "qty": "quantity",
    "name": "title",
    "product_name": "title",
    "cost": "price",
    "amount": "price",
    "department": "category",
    "aisle": "category",
}
#: Column names (lower-cased, letters and digits only) that mean a field, in order of preference.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "sequence_id": ("sequenceid", "sessionid", "usersession", "session", "orderid", "basketid", "invoiceno", "invoiceid", "visitid", "transactionid"),
    "item_id": ("itemid", "productid", "sku", "stockcode", "item", "product", "articleid", "asin"),
    "user_id": ("userid", "customerid", "user", "customer", "visitorid", "clientid", "householdid"),
    "timestamp": ("timestamp", "time", "eventtime", "datetime", "date", "invoicedate", "createdat", "orderdate", "transactiontimestamp"),
    "event_type": ("eventtype", "event", "action", "behaviortype", "behaviourtype", "behavior", "behaviour"),
    "quantity": ("quantity", "qty"),
    "position": ("position", "addtocartorder"),
    "title": ("title", "name", "productname", "itemname"),
    "category": ("category", "categorycode", "categorypath", "categoryname"),
    "brand": ("brand", "brandname", "productbrand"),
    "gender": ("gender", "sex"),
    "price": ("price", "unitprice", "saleprice", "sellingprice"),
    "adult": ("adult",),
    "in_stock": ("instock", "isinstock", "available", "isavailable"),
    "description": ("description", "productdescription"),
    "image_url": ("imageurl", "image", "imagelink"),
}  # fmt: skip


def guess_mapping(columns: Iterable[str], fields: Iterable[str] | None = None) -> dict[str, str]:
    """{file column: field} for columns whose name means a field (a field already present as a
    column is left alone; each column and field is used once)."""
    columns = [str(c) for c in columns]
    present = set(columns)
    norm = {}
    for c in columns:
        norm.setdefault(re.sub(r"[^a-z0-9]", "", c.lower()), c)
    out: dict[str, str] = {}
    for field in fields or FIELD_ALIASES:
        if field in present:
            continue
        for alias in FIELD_ALIASES.get(field, ()):
            col = norm.get(alias)
            if col and col not in out and col not in FIELD_ALIASES:
                out[col] = field
                break
    return out


#: Fields that several columns may be mapped to: their values are joined in order.
JOINABLE_FIELDS = ("category",)
#: Targets that drop a column on purpose.
DROP_TARGETS = ("", "-", "drop")


def fields_help(indent: str = "  ") -> str:
    """The valid mapping targets, one per line, for ``import --help`` and messages."""
    width = max(map(len, FIELDS))
    return "\n".join(f"{indent}{name:<{width}}  {text}" for name, text in FIELDS.items())


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest names among ``choices`` (case and punctuation insensitive)."""
    choices = [str(c) for c in choices]

    def key(s: str) -> str:
        return re.sub(r"[^a-z0-9]", "", s.lower())

    keyed = {key(c): c for c in choices}
    exact = [keyed[key(name)]] if key(name) in keyed and keyed[key(name)] != name else []
    close = difflib.get_close_matches(key(name), list(keyed), n=n, cutoff=0.6)
    out = exact + [keyed[c] for c in close if keyed[c] not in exact]
    return out[:n]


def separator_from_option(value: str | None) -> str | None:
    """``--sep`` value -> the separator character (None: detect)."""
    if value is None or value == "" or value.lower() == "auto":
        return None
    sep = _SEP_NAMES.get(value.lower(), _SEP_NAMES.get(value))
    if sep is None:
        if len(value) == 1:
            return value
        raise DataValidationError(
            f"--sep {value!r} is not a separator; use comma, semicolon, tab, pipe or one character"
        )
    return sep


def separator_name(sep: str) -> str:
    return SEPARATORS.get(sep, repr(sep))


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
