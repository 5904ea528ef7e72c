"""Read catalog and interaction files, then normalise and validate them into a Dataset.

Reading
-------
:func:`read_table` reads ``.csv``, ``.tsv``, gzipped CSV (``.csv.gz``) and Parquet
(``.parquet``/``.pq``). CSV cells are read as text, so that every value is checked by
the same rules whatever the file format, and problems are reported with the 1-based
data row (the header is row 0) and the column. :func:`load_catalog` and
:func:`load_interactions` add a column mapping (``{"your column": "schema column"}``)
and check that the required columns are present. They live in :mod:`recsys.data.tables`
(the value parsers and the row checker in :mod:`recsys.data.values`, what a column mapping
is in :mod:`recsys.data.mapping`) and stay importable from here.

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

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.schema import (
    CATALOG_COLUMNS,
    INTERACTION_COLUMNS,
    OPTIONAL_CATALOG_COLUMNS,
    Dataset,
    ValidationReport,
)

# the reading and parsing stages live in their own modules; their public names (and the
# helpers the importers use) stay importable from here
from recsys.data.tables import (  # noqa: F401
    _require,
    _unknown_column_message,
    apply_mapping,
    check_targets,
    load_catalog,
    load_interactions,
    read_table,
)
from recsys.data.values import (  # noqa: F401
    _BLANKS,
    _CATALOG_TEXT,
    _EVENT_LOOKUP,
    _GENDER_LOOKUP,
    _SAFE_NAME,
    EVENT_SYNONYMS,
    GENDER_SYNONYMS,
    JOIN_MARK,
    KINDS,
    ErrorMode,
    _Checker,
    _clean_ids,
    _map_unique,
    _norm_token,
    _parse_bools,
    _parse_numbers,
    _parse_timestamps,
    _row_numbers,
    _text,
    normalise_category,
)
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)


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
    for col in _CATALOG_TEXT:  # a JSON list (Amazon's description) is joined with spaces
        out[col] = (
            _text(df[col]).str.replace(JOIN_MARK, " ", regex=False)
            if col in df.columns
            else pd.Series([""] * n, index=df.index, dtype=str)
        )
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
                res[c] = col.str.replace(JOIN_MARK, "; ", regex=False).str.strip() if text else col
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
    if not _SAFE_NAME.fullmatch(name or ""):
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
    user = user.where(~user.isin(_BLANKS), "")  # Diginetica's userId is "NA" when not logged in
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
        report.warnings.append(f"no catalog given: {len(catalog):,} items derived from the interactions")
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
    _catalogue_gaps(catalog, report)
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


def _catalogue_gaps(catalog: pd.DataFrame, report: ValidationReport) -> None:
    """Warn when most items end with no title, or with no price though a column kept as an
    attribute looks like one (a guess not taken, or a column not mapped): said, not silent."""
    from recsys.data.mapping import looks_like_names, looks_like_price

    n = len(catalog)
    extras = [c for c in catalog.columns if c not in CATALOG_COLUMNS + OPTIONAL_CATALOG_COLUMNS]
    head = catalog.head(500)
    no_title = int((catalog["title"].astype(str).str.strip() == "").sum())
    if n and no_title * 2 > n:
        # names, mostly distinct (a product's name, not a sub-category's)
        names = [
            c for c in extras if looks_like_names(head[c].tolist()) and head[c].nunique() * 2 > len(head)
        ]
        hint = (
            f"column '{names[0]}' holds names: pass --map {names[0]}=title if they are the products'"
            if names
            else "if a column holds the products' names, map it with --map COLUMN=title"
        )
        report.warnings.append(
            f"no title for {no_title:,} of {n:,} items: the content and tfidf models see only the "
            f"other fields (brand, category); {hint}"
        )
    no_price = int(catalog["price"].isna().sum())
    prices = [c for c in extras if looks_like_price(c, head[c].tolist())]
    if n and no_price * 2 > n and prices:
        report.warnings.append(
            f"no price for {no_price:,} of {n:,} items, though column "
            f"{' and '.join(repr(c) for c in prices)} looks like a price: pass --map {prices[0]}=price "
            "if it is the unit price"
        )


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
    _catalogue_gaps(catalog, report)
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
