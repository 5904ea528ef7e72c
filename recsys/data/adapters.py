"""Importers for real datasets, a generic CSV/Parquet import, and the CLI entry point.

Each importer turns a public dataset's own files into a validated
:class:`~recsys.data.schema.Dataset` and counts everything it drops in the
:class:`~recsys.data.schema.ValidationReport`: ``rows_read["interactions"]`` is the
number of event lines in the source, and ``sum(rows_dropped.values()) +
len(interactions)`` equals it. Real data quirks are reported, never fatal: the
importers run :func:`~recsys.data.loaders.build_dataset` with ``errors="drop"``.
The generic import is strict by default (``errors="raise"``).

Nothing is written until the whole dataset is built and validated;
:func:`import_dataset` then stores it with the atomic
:func:`~recsys.data.schema.save_dataset`, so a failed import never touches an
existing dataset of the same name.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.loaders import (
    _map_unique,
    _require,
    apply_mapping,
    build_dataset,
    read_table,
)
from recsys.data.mapping import drops
from recsys.data.schema import CATEGORY_SEP, Dataset, ValidationReport, save_dataset
from recsys.data.tables import FOLDER_SUFFIXES, guessed_mapping
from recsys.errors import DataValidationError

logger = logging.getLogger(__name__)

SOURCES = ("online_retail", "instacart", "rees46", "csv")

# ---------------------------------------------------------------------------------------
# Online Retail (UCI)
# ---------------------------------------------------------------------------------------

#: StockCodes that are not products: postage, fees, manual adjustments, samples...
NON_PRODUCT_CODES = frozenset(
    {
        "POST",
        "DOT",
        "M",
        "C2",
        "D",
        "S",
        "B",
        "BANK CHARGES",
        "AMAZONFEE",
        "CRUK",
        "PADS",
        "ADJUST",
        "ADJUST2",
    }
)

#: Rough categories for Online Retail from description keywords (first match wins).
ONLINE_RETAIL_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Seasonal > Christmas", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "NATIVITY")),
    ("Seasonal > Easter", ("EASTER", "EGG")),
    ("Kitchen > Baking", ("CAKE", "BAKING", "CUPCAKE", "COOKIE CUTTER", "MOULD", "BAKE")),
    ("Kitchen > Lunch & Storage", ("LUNCH BOX", "LUNCH BAG", "JAR", "STORAGE", "TIN", "TINS", "CONTAINER")),
    (
        "Kitchen > Tableware",
        (
            "MUG",
            "CUP",
            "CUPS",
            "SAUCER",
            "PLATE",
            "PLATES",
            "BOWL",
            "TEAPOT",
            "CUTLERY",
            "NAPKINS",
            "TEA TOWEL",
        )
        + ("COASTER", "COASTERS", "TRAY", "JUG", "GLASS", "BEAKER", "STRAWS", "PARTY"),
    ),
    ("Bags", ("BAG", "BAGS", "SHOPPER", "TOTE")),
    (
        "Stationery > Cards & Wrap",
        ("CARD", "CARDS", "WRAP", "GIFT TAG", "TAGS", "ENVELOPE", "RIBBON", "RIBBONS"),
    ),
    (
        "Stationery > Office",
        (
            "PENCIL",
            "PENCILS",
            "PEN",
            "PENS",
            "NOTEBOOK",
            "ERASER",
            "STICKER",
            "STICKERS",
            "CALENDAR",
            "JOURNAL",
        ),
    ),
    (
        "Home Decor > Candles & Lights",
        ("CANDLE", "CANDLES", "T-LIGHT", "TEALIGHT", "LANTERN", "LIGHTS", "LIGHT", "LAMP", "INCENSE"),
    ),
    ("Home Decor > Signs & Frames", ("SIGN", "FRAME", "PLAQUE", "CLOCK", "MIRROR", "PICTURE")),
    ("Home Decor > Textiles", ("CUSHION", "THROW", "BLANKET", "DOORMAT", "APRON", "QUILT")),
    (
        "Home Decor > Ornaments",
        ("HANGING", "DECORATION", "ORNAMENT", "HEART", "BUNTING", "GARLAND", "WREATH", "VASE", "DOORSTOP"),
    ),
    ("Garden", ("GARDEN", "PLANT", "BIRD", "WATERING", "PLANTER", "FLOWER POT", "HERB")),
    (
        "Toys & Games",
        ("TOY", "GAME", "GAMES", "PUZZLE", "DOLL", "SPACEBOY", "SKIPPING ROPE", "BALLOON", "KIT"),
    ),
    (
        "Jewellery & Accessories",
        (
            "NECKLACE",
            "NECKLACE,",
            "EARRINGS",
            "BRACELET",
            "RING",
            "HAIR",
            "CLIP",
            "UMBRELLA",
            "PURSE",
            "BROOCH",
        ),
    ),
    ("Bathroom", ("SOAP", "BATH", "TOWEL", "HOT WATER BOTTLE", "WASHBAG", "TOILET")),
)


def _keyword_category(description: str) -> str:
    words = f" {re.sub(r'[^A-Z0-9-]+', ' ', description.upper())} "
    for category, keys in ONLINE_RETAIL_KEYWORDS:
        for key in keys:
            if f" {key} " in words:
                return category
    return ""


def _title_case(text: str) -> str:
    """``"CHILD'S T-LIGHT HOLDER"`` -> ``"Child's T-Light Holder"`` (no "Child'S")."""
    return re.sub(r"(^|[\s\-/(&+])([a-z])", lambda m: m.group(1) + m.group(2).upper(), text.strip().lower())


#: Online Retail II's column names -> Online Retail's.
ONLINE_RETAIL_II_NAMES = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}


def import_online_retail(path: str | os.PathLike[str], name: str = "online_retail") -> Dataset:
    """Import the UCI Online Retail file: one basket per invoice.

    Dropped and counted, in this order: cancellations (``InvoiceNo`` starting with
    "C"), lines with a non-product StockCode (``POST``, ``DOT``, ``M``, ``BANK
    CHARGES``, ``AMAZONFEE``, ``CRUK``, ``PADS``, gift vouchers ``gift_0001_*``...,
    one reason per code), other non-positive quantities (stock adjustments) and zero or
    negative unit prices (adjustments and free items). ``CustomerID`` ``"17850.0"``
    becomes ``"17850"`` (blank stays ``""``; counted in ``warnings``). StockCodes are
    upper-cased (``85049c`` and ``85049C`` are one product).

    The catalog has one row per StockCode: the most frequent description as title
    (title-cased), the median unit price, and a rough category from description
    keywords (:data:`ONLINE_RETAIL_KEYWORDS`; ``""`` when none matches). No brand,
    gender or adult information exists in this dataset.

    Parameters
    ----------
    path : path-like
        ``online_retail.csv.gz`` (or an uncompressed/Parquet copy with the same columns), or
        Online Retail II as published (``online_retail_II.xlsx``, both sheets, or its CSV).
    name : str, default "online_retail"

    Returns
    -------
    Dataset
        ``kind="baskets"``, events of type "purchase" with quantities and times.
    """
    src = str(path)
    df = read_table(path)
    # Online Retail II (2009-2011, .xlsx with a sheet a year) names three columns differently
    df = df.rename(columns={k: v for k, v in ONLINE_RETAIL_II_NAMES.items() if k in df and v not in df})
    needed = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
    _require(df, needed, src)
    report = ValidationReport(rows_read={"interactions": len(df)})
    inv = df["InvoiceNo"].astype(str).str.strip()
    code = df["StockCode"].astype(str).str.strip().str.upper()
    qty = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")

    drop = np.zeros(len(df), dtype=bool)

    def take(reason: str, mask: pd.Series | np.ndarray) -> None:
        nonlocal drop
        m = np.asarray(mask, dtype=bool) & ~drop
        report.drop(reason, int(m.sum()))
        drop |= m

    take("cancellation (InvoiceNo starts with 'C')", inv.str.startswith("C"))
    nonprod = (code.isin(NON_PRODUCT_CODES) | code.str.startswith("GIFT_")).to_numpy() & ~drop
    if nonprod.any():
        for c, n in code[nonprod].value_counts().sort_index().items():
            label = "GIFT_* (gift voucher)" if str(c).startswith("GIFT_") else c
            report.drop(f"non-product code {label}", int(n))
        drop |= nonprod
    take("non-positive quantity (stock adjustment)", (qty <= 0).to_numpy())
    take("zero or negative unit price (adjustment or free item)", (price <= 0).to_numpy())

    keep = ~drop
    desc = df.loc[keep, "Description"].astype(str)
    no_customer = int((df.loc[keep, "CustomerID"].astype(str).str.strip() == "").sum())
    if no_customer:
        report.warnings.append(f"{no_customer:,} invoice lines have no CustomerID (kept, user_id '')")
    inter = pd.DataFrame(
        {
            "sequence_id": inv[keep],
            "item_id": code[keep],
            "user_id": df.loc[keep, "CustomerID"],
            "timestamp": df.loc[keep, "InvoiceDate"],
            "quantity": df.loc[keep, "Quantity"],
            "event_type": "purchase",
            "title": _map_unique(desc, _title_case).astype(str),
            "category": _map_unique(desc, _keyword_category).astype(str),
            "price": df.loc[keep, "UnitPrice"],
        }
    )
    ds = build_dataset(
        name, None, inter, kind="baskets", errors="drop", report=report, interactions_source=src
    )
    _drop_derived_warning(ds.report)
    with_cat = float((ds.catalog["category"] != "").mean())
    ds.report.warnings.append(
        f"categories are rough guesses from description keywords; {with_cat:.0%} of items got one"
    )
    return ds


def _drop_derived_warning(report: ValidationReport) -> None:
    report.warnings[:] = [w for w in report.warnings if not w.startswith("no catalog given")]


# ---------------------------------------------------------------------------------------
# Instacart
# ---------------------------------------------------------------------------------------

INSTACART_START = pd.Timestamp("2017-01-01")
INSTACART_SPAN_DAYS = 90


#: Kaggle's own layout splits the order lines in two files (``test`` orders have none)
INSTACART_KAGGLE_LINES = ("order_products__prior", "order_products__train")
#: Kaggle's layout: each user's last order is placed on this day, earlier ones back from it
INSTACART_KAGGLE_END = pd.Timestamp("2017-12-31")


def import_instacart(folder: str | os.PathLike[str], name: str = "instacart") -> Dataset:
    """Import Instacart: one basket per order, in the sample's layout or Kaggle's own.

    Catalog from ``products.csv`` joined with ``aisles.csv`` and ``departments.csv``:
    category ``"Department > Aisle"`` title-cased (``"Frozen > Frozen Pizza"``; a
    "missing" department or aisle gives ``""``), no prices (NaN), brands or genders;
    ``aisle_id`` and ``department_id`` are kept as extra columns. Every product of the
    catalogue is kept, ordered or not.

    Interactions: the sample's ``order_products.csv``, or Kaggle's
    ``order_products__prior.csv`` and ``order_products__train.csv`` (both read, one after the
    other; either alone works); ``position`` is ``add_to_cart_order``. Neither layout has
    dates:

    - with Kaggle's ``orders.csv`` (``order_id, user_id, order_number,
      days_since_prior_order``, optional ``order_hour_of_day``) each line gets its order's
      ``user_id`` and a **synthetic time**: each user's last order on 2017-12-31 at its hour,
      earlier orders back from it by their ``days_since_prior_order`` (kept monotone in
      ``order_number``), so a time split holds out users' last orders, as Kaggle's ``train``
      set does. A line whose order is not in ``orders.csv`` is dropped and counted;
    - without it (the sample), orders are spread evenly, in ``order_id`` order, over 90 days
      from 2017-01-01 (all lines of an order share its time); a time split then holds out
      the highest order ids.

    Either way the report's warnings say the time is synthetic.

    Parameters
    ----------
    folder : path-like
        Folder with ``products.csv``, ``aisles.csv``, ``departments.csv`` and the order lines
        (``order_products.csv``, or ``order_products__prior.csv`` / ``__train.csv`` and
        ``orders.csv``); ``.csv.gz`` or ``.parquet`` versions also work.
    name : str, default "instacart"
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataValidationError(
            "not a folder; pass the folder holding the Instacart CSV files", file=str(folder)
        )
    products = read_table(_find(folder, "products"))
    aisles = read_table(_find(folder, "aisles"))
    departments = read_table(_find(folder, "departments"))
    lines, orders_path = _instacart_lines(folder)
    _require(products, ("product_id", "product_name", "aisle_id", "department_id"), products.attrs["source"])
    _require(aisles, ("aisle_id", "aisle"), aisles.attrs["source"])
    _require(departments, ("department_id", "department"), departments.attrs["source"])

    def names(frame: pd.DataFrame, key: str, col: str) -> dict[str, str]:
        vals = frame[col].astype(str).str.strip()
        return dict(zip(frame[key].astype(str).str.strip(), vals.where(vals.str.lower() != "missing", "")))

    aisle = products["aisle_id"].astype(str).str.strip().map(names(aisles, "aisle_id", "aisle")).fillna("")
    dept = (
        products["department_id"]
        .astype(str)
        .str.strip()
        .map(names(departments, "department_id", "department"))
    ).fillna("")
    both = (aisle != "") & (dept != "")
    category = (dept.map(_title_case) + CATEGORY_SEP + aisle.map(_title_case)).where(both, "")
    catalog = pd.DataFrame(
        {
            "item_id": products["product_id"],
            "title": products["product_name"],
            "category": category,
            "aisle_id": products["aisle_id"].astype(str),
            "department_id": products["department_id"].astype(str),
        },
        index=products.index,
    )
    report = ValidationReport()
    orders_file = _find_optional(folder, "orders")
    if orders_file is not None:
        user, when = _instacart_order_times(lines, orders_file)
        report.warnings.append(
            "Instacart has no dates: timestamps are synthetic, each user's last order on "
            f"{INSTACART_KAGGLE_END.date()} and earlier ones back from it by days_since_prior_order "
            f"({Path(orders_file).name}); a time split holds out users' last orders"
        )
    else:
        order_num = pd.to_numeric(lines["order_id"], errors="coerce")
        uniq = np.unique(order_num.dropna().to_numpy())
        rank = np.searchsorted(uniq, order_num.fillna(-1).to_numpy())
        step = pd.Timedelta(days=INSTACART_SPAN_DAYS) / max(len(uniq), 1)
        when = pd.Series(INSTACART_START + step * rank, index=lines.index).where(order_num.notna())
        user = None
        report.warnings.append(
            "Instacart has no timestamps: timestamps are synthetic, orders spread evenly in order_id order "
            f"over {INSTACART_SPAN_DAYS} days from {INSTACART_START.date()}"
        )
    inter = pd.DataFrame(
        {
            "sequence_id": lines["order_id"],
            "item_id": lines["product_id"],
            "position": lines["add_to_cart_order"],
            "timestamp": when,
            "event_type": "purchase",
        },
        index=lines.index,
    )
    if user is not None:
        inter["user_id"] = user
        report.rows_read["interactions"] = len(inter)
        orphan = when.isna().to_numpy()
        if orphan.any():
            report.drop(f"order not in {Path(str(orders_file)).name}", int(orphan.sum()))
            inter = inter.loc[~orphan]
    return build_dataset(
        name,
        catalog,
        inter,
        kind="baskets",
        errors="drop",
        report=report,
        catalog_source=products.attrs["source"],
        interactions_source=orders_path,
    )


def _instacart_lines(folder: Path) -> tuple[pd.DataFrame, str]:
    """The order lines and where they come from: Kaggle's prior and train files (both, in that
    order; either alone), else the sample's ``order_products`` file."""
    need = ("order_id", "product_id", "add_to_cart_order")
    kaggle = [p for p in (_find_optional(folder, stem) for stem in INSTACART_KAGGLE_LINES) if p]
    if not kaggle:
        path = _find_optional(folder, "order_products")
        if path is None:
            raise DataValidationError(
                "no order lines in this folder: Instacart's are order_products.csv (the sample) or "
                "order_products__prior.csv and order_products__train.csv with orders.csv (Kaggle's "
                f"layout), .csv.gz or .parquet too; it holds: {_present(folder)}",
                file=str(folder),
            )
        lines = read_table(path)
        _require(lines, need, path)
        return lines, path
    frames = []
    for path in kaggle:
        frame = read_table(path)
        _require(frame, need, path)
        frames.append(frame[list(need)])
    lines = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return lines, " + ".join(kaggle)


def _instacart_order_times(lines: pd.DataFrame, orders_file: str) -> tuple[pd.Series, pd.Series]:
    """``(user_id, synthetic time)`` per order line from Kaggle's ``orders.csv`` (NaT and ``""``
    for a line whose order it does not list)."""
    orders = read_table(orders_file)
    _require(orders, ("order_id", "user_id", "order_number", "days_since_prior_order"), orders_file)
    o = pd.DataFrame(
        {
            "order_id": orders["order_id"].astype(str).str.strip(),
            "user_id": orders["user_id"].astype(str).str.strip(),
            "n": pd.to_numeric(orders["order_number"], errors="coerce"),
            "gap": pd.to_numeric(orders["days_since_prior_order"], errors="coerce").fillna(0.0),
            "hour": pd.to_numeric(orders.get("order_hour_of_day", 0), errors="coerce"),
        }
    )
    o["hour"] = o["hour"].fillna(0.0).clip(0, 23)
    o = o.sort_values(["user_id", "n"], kind="stable")
    day = o.groupby("user_id", sort=False)["gap"].cumsum()
    back = day.groupby(o["user_id"], sort=False).transform("max") - day  # days before the last order
    when = INSTACART_KAGGLE_END - pd.to_timedelta(back, unit="D") + pd.to_timedelta(o["hour"], unit="h")
    # two orders on one day keep their order_number order, whatever their hours
    o["when"] = when.groupby(o["user_id"], sort=False).cummax()
    o = o.drop_duplicates("order_id").set_index("order_id")
    key = lines["order_id"].astype(str).str.strip()
    return key.map(o["user_id"]).fillna(""), key.map(o["when"])


def _find_optional(folder: Path, stem: str) -> str | None:
    for suffix in (".csv", ".csv.gz", ".parquet", ".tsv"):
        p = folder / f"{stem}{suffix}"
        if p.exists():
            return str(p)
    return None


def _find(folder: Path, stem: str) -> str:
    path = _find_optional(folder, stem)
    if path is None:
        raise DataValidationError(
            f"no {stem}.csv (or .csv.gz/.parquet) in this folder; it holds: {_present(folder)}",
            file=str(folder),
        )
    return path


def _present(folder: Path) -> str:
    """What a folder holds, for a message naming a file it lacks."""
    return ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"


# ---------------------------------------------------------------------------------------
# REES46
# ---------------------------------------------------------------------------------------


def rees46_category(code: str) -> str:
    """``"appliances.kitchen.washer"`` -> ``"Appliances > Kitchen > Washer"``; blank -> ``""``."""
    parts = [p.replace("_", " ").strip() for p in str(code).split(".")]
    return CATEGORY_SEP.join(_title_case(p) for p in parts if p)


def import_rees46(path: str | os.PathLike[str], name: str = "rees46") -> Dataset:
    """Import a REES46 multi-category store event file: one session per ``user_session``.

    ``category_code`` ``"a.b_c"`` becomes ``"A > B C"`` (blank stays ``""``; the raw
    ``category_id`` is kept as an extra catalog column), ``brand`` is kept as given
    (lower-case; blank -> ``""``), the item's price is the median of its events' prices,
    ``event_time`` ``"... UTC"`` is parsed as UTC. The data has no titles: an item's title
    is its brand and the last category level plus its id, e.g. ``"Lenovo Notebook
    (1307067)"`` (``"Product 1307067"`` when both are blank). Events other than
    view/cart/purchase (``remove_from_cart`` in later months) and events without a
    session are dropped and counted.

    Parameters
    ----------
    path : path-like
        ``events.csv`` (or ``.csv.gz``/``.parquet`` with the same columns).
    name : str, default "rees46"

    Returns
    -------
    Dataset
        ``kind="sessions"``.
    """
    src = str(path)
    df = read_table(path)
    needed = (
        "event_time",
        "event_type",
        "product_id",
        "category_code",
        "brand",
        "price",
        "user_id",
        "user_session",
    )
    _require(df, needed, src)
    report = ValidationReport(rows_read={"interactions": len(df)})
    etype = df["event_type"].astype(str).str.strip().str.lower()
    other = ~etype.isin(["view", "cart", "purchase"])
    for ev, n in etype[other].value_counts().sort_index().items():
        report.drop(f"event type {ev}", int(n))
    no_session = (df["user_session"].astype(str).str.strip() == "") & ~other
    report.drop("no user_session", int(no_session.sum()))
    keep = (~other & ~no_session).to_numpy()
    d = df.loc[keep]
    category = _map_unique(d["category_code"].astype(str), rees46_category).astype(str)
    brand = d["brand"].astype(str).str.strip()
    pid = d["product_id"].astype(str).str.strip()
    leaf = category.str.rsplit(CATEGORY_SEP, n=1).str[-1]
    stem = (brand.map(_title_case) + " " + leaf).str.strip()
    title = (stem + " (" + pid + ")").where(stem != "", "Product " + pid)
    inter = pd.DataFrame(
        {
            "sequence_id": d["user_session"],
            "user_id": d["user_id"],
            "item_id": d["product_id"],
            "timestamp": d["event_time"],
            "event_type": etype[keep],
            "title": title,
            "category": category,
            "brand": brand,
            "price": d["price"],
        },
        index=d.index,
    )
    ds = build_dataset(
        name, None, inter, kind="sessions", errors="drop", report=report, interactions_source=src
    )
    _drop_derived_warning(ds.report)
    if "category_id" in d.columns:
        cid = d.groupby(d["product_id"].astype(str).str.strip())["category_id"].first()
        ds.catalog["category_id"] = ds.catalog["item_id"].map(cid).fillna("").astype(str)
    return ds


# ---------------------------------------------------------------------------------------
# generic files and the CLI entry point
# ---------------------------------------------------------------------------------------


def _split_mapping(
    mapping: Mapping[str, Any] | None,
    catalog: pd.DataFrame | None,
    interactions: pd.DataFrame | None,
    files: tuple[str | None, str | None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-file mappings from a flat mapping or ``{"catalog": {...}, "interactions": {...}}``."""
    from recsys.data.mapping import check_targets
    from recsys.data.tables import _unknown_column_message, layout_names

    if not mapping:
        return {}, {}
    if set(mapping) <= {"catalog", "interactions"} and all(isinstance(v, Mapping) for v in mapping.values()):
        return dict(mapping.get("catalog", {})), dict(mapping.get("interactions", {}))
    check_targets(mapping)
    cat_map: dict[str, Any] = {}
    int_map: dict[str, Any] = {}
    for src, dst in mapping.items():
        in_cat = catalog is not None and [*layout_names({src: dst}, catalog)][0] in catalog.columns
        in_int = (
            interactions is not None and [*layout_names({src: dst}, interactions)][0] in interactions.columns
        )
        if not (in_cat or in_int):
            frames = [f for f in (interactions, catalog) if f is not None]
            cols: list[str] = []
            for f in frames:
                cols += [str(c) for c in f.columns if str(c) not in cols]
            probe = pd.DataFrame(columns=cols)
            probe.attrs = dict(frames[0].attrs) if len(frames) == 1 else {}
            where = " or ".join(str(f) for f in files if f)
            message = _unknown_column_message(src, probe)
            if len(frames) > 1:
                message = message.replace("which is not in the file", "which is in neither file")
            raise DataValidationError(message, file=where, column=src)
        if in_cat:
            cat_map[src] = dst
        if in_int:
            int_map[src] = dst
    return cat_map, int_map


#: Options of :func:`import_generic` that say how to read the files (the CLI and the Data page pass them).
READ_OPTIONS = (
    "sep",
    "header",
    "columns",
    "catalog_header",
    "catalog_columns",
    "catalog_encoding",
    "decimal",
    "tz",
    "session_gap",
    "event_map",
    "preview_rows",
    "guess",
    "infer_category",
)


def import_generic(
    catalog_path: str | os.PathLike[str] | None,
    interactions_path: str | os.PathLike[str] | None,
    mapping: Mapping[str, Any] | None = None,
    *,
    name: str = "imported",
    kind: str | None = None,
    errors: str = "raise",
    encoding: str = "utf-8",
    category_sep: str | None = None,
    sep: str | None = None,
    header: bool | None = None,
    columns: list[str] | None = None,
    catalog_header: bool | None = None,
    catalog_columns: list[str] | None = None,
    catalog_encoding: str | None = None,
    decimal: str | None = None,
    tz: str | None = None,
    session_gap: str | None = None,
    event_map: Any = None,
    preview_rows: int | None = None,
    guess: bool = True,
    infer_category: bool = True,
) -> Dataset:
    """Import your own catalog and/or interactions (CSV/TSV/.dat, gzipped too, JSON lines, .xlsx or Parquet).

    Parameters
    ----------
    catalog_path : path-like or None
        One row per item; None derives a minimal catalog from the interactions (see
        :func:`~recsys.data.loaders.build_dataset`).
    interactions_path : path-like or None
        One row per event; needs ``sequence_id`` (or ``session_gap``) and ``item_id``
        after mapping. None imports a catalogue only (no interactions).
    mapping : dict, optional
        ``{"file column": "schema field"}`` applied to whichever file has the column
        (each named column must be in at least one file), or
        ``{"catalog": {...}, "interactions": {...}}`` per file. Targets must be schema
        fields (see :data:`recsys.data.reading.FIELDS`); several columns mapped to
        ``category`` are joined into one path in mapping order.
    name : str, default "imported"
    kind : {"sessions", "baskets"}, optional
        Default: "baskets" for a shop platform's orders export (Shopify, WooCommerce, Magento;
        :mod:`recsys.data.platforms`), else "sessions".
    errors : {"raise", "drop"}, default "raise"
        Strict (first bad row raises) or drop-and-report.
    encoding : str, default "utf-8"
        Encoding of the events file (and of the catalogue unless ``catalog_encoding``).
    category_sep : str, optional
        Separator of category paths in the file (">" by default).
    sep : str, optional
        Field separator of both files (comma, semicolon, tab, pipe or a character);
        detected per file by default.
    header, columns : optional
        Whether the events file (or the catalogue when it is the only file) has a
        header row (detected by default), and names for its columns.
    catalog_header, catalog_columns : optional
        The same for the catalogue when both files are given.
    catalog_encoding : str, optional
    decimal : {".", ","}, optional
        Decimal mark of prices (detected per column by default).
    tz : str, optional
        Time zone of naive timestamps, e.g. "UTC+8" or "Europe/London" (UTC by default).
    session_gap : str, optional
        Cut sessions on this gap between a user's events, e.g. "30m".
    event_map : dict or list of "code=type", optional
        Your event codes -> view/cart/purchase (or drop).
    preview_rows : int, optional
        Read only the first rows of the events file (of the catalogue when it is alone):
        a quick preview of what the import would give.
    guess : bool, default True
        Columns and fields the mapping does not name are mapped by the names' guess
        (:func:`recsys.data.tables.guessed_mapping`: the same guesses the messages list).
        False: the mapping is the whole mapping (the Data page's form, whose dropdowns were
        pre-filled with the guesses and then chosen by the user).
    infer_category : bool, default True
        When no column is mapped to ``category`` (none in the files, none in the mapping), the
        product type read off the titles is stored as the category
        (:func:`recsys.data.product_types.infer_product_types`) and the report says so. False,
        or a mapping ``category=-`` (the command line's ``--map category=-``): no category.

    Raises
    ------
    DataValidationError
        Naming file, row and column for any malformed input (see
        :mod:`recsys.data.loaders`).
    """
    from recsys.data.reading import parse_duration, parse_event_map, parse_timezone

    if interactions_path is None and catalog_path is None:
        raise DataValidationError("nothing to import: give an events file, a catalogue (--catalog) or both")
    tzinfo = parse_timezone(tz)
    gap = parse_duration(session_gap)
    emap = parse_event_map(event_map)
    if decimal not in (None, ".", ","):
        raise DataValidationError(f"--decimal must be . or , (got {decimal!r})")
    inter_src = str(interactions_path) if interactions_path is not None else None
    cat_src = str(catalog_path) if catalog_path is not None else None
    inter = None
    if interactions_path is not None:
        inter = read_table(
            interactions_path, encoding=encoding, sep=sep, header=header, columns=columns, nrows=preview_rows
        )
    cat = None
    if catalog_path is not None:
        alone = interactions_path is None
        cat = read_table(
            catalog_path,
            encoding=catalog_encoding or encoding,
            sep=sep,
            header=header if alone and catalog_header is None else catalog_header,
            columns=columns if alone and not catalog_columns else catalog_columns,
            encoding_option="--catalog-encoding" if not alone else "--encoding",
            nrows=preview_rows if alone else None,
        )
    from recsys.data.platforms import layout_of, platform_roles

    inter, cat, inter_src, cat_src = platform_roles(inter, cat, inter_src, cat_src)
    layout = layout_of(inter)
    if layout is not None:
        if kind and layout.kind and kind != layout.kind:
            inter.attrs["reading"]["kind"] = (  # type: ignore[union-attr]
                f"{kind} as given, though a {layout.name} is a table of {layout.kind} (orders): choose "
                f"--kind {layout.kind} (Kind: {layout.kind.capitalize()} on the Data page) to read it as orders"
            )
        kind = kind or layout.kind
        if layout.event_map and "event_type" in inter.columns:  # type: ignore[union-attr]
            emap = {**layout.event_map, **emap}
            inter.attrs["reading"]["events"] = (  # type: ignore[union-attr]
                f"{layout.name}'s events read as "
                + ", ".join(f"{k} -> {v}" for k, v in layout.event_map.items() if v != "drop")
                + "; the others left out (say otherwise with --event-map)"
            )
    kind = kind or "sessions"
    mapping, opted_out = _category_opt_out(mapping, cat, inter)
    infer_category = infer_category and not opted_out
    cat_map, int_map = _split_mapping(mapping, cat, inter, (cat_src, inter_src))
    if guess:
        # columns and fields the mapping does not name keep the guess their names give (reported)
        cat_map = guessed_mapping(cat, cat_map)
        int_map = guessed_mapping(inter, int_map, events=True)
    if inter is not None:
        inter = apply_mapping(inter, int_map, file=inter_src)
        _require(inter, ("item_id",) if gap is not None else ("sequence_id", "item_id"), inter_src)
    if cat is not None:
        cat = apply_mapping(cat, cat_map, file=cat_src)
        _require(cat, ("item_id",), cat_src)
    has_category = any(f is not None and "category" in f.columns for f in (cat, inter))
    ds = build_dataset(
        name,
        cat,
        inter,
        kind=kind,
        errors=errors,  # type: ignore[arg-type]
        catalog_source=cat_src,
        interactions_source=inter_src,
        category_sep=category_sep,
        decimal=decimal,
        tz=tzinfo,
        session_gap=gap,
        event_map=emap,
    )
    if infer_category and not has_category:
        _infer_category(ds, "catalog" if cat is not None else "interactions")
    return ds


def _category_opt_out(
    mapping: Mapping[str, Any] | None, cat: pd.DataFrame | None, inter: pd.DataFrame | None
) -> tuple[Mapping[str, Any] | None, bool]:
    """(the mapping, whether it says "no category"): ``category=-`` (a column of that name left
    out, or, when no file has one, no product type inferred from the titles). The entry is taken
    out of the mapping when no file has such a column (it names no column to drop)."""
    if not mapping:
        return mapping, False
    nested = set(mapping) <= {"catalog", "interactions"} and all(
        isinstance(v, Mapping) for v in mapping.values()
    )
    frames = {"catalog": cat, "interactions": inter}
    out: dict[str, Any] = {}
    opted = False
    for part, sub in mapping.items() if nested else [(None, mapping)]:
        kept = {}
        for src, dst in sub.items():
            if str(src) == "category" and drops(dst):
                opted = True
                where = [frames[part]] if part else list(frames.values())
                if not any(f is not None and "category" in f.columns for f in where):
                    continue
            kept[src] = dst
        if part is None:
            out = kept
        else:
            out[part] = kept
    return out, opted


def _infer_category(ds: Dataset, table: str) -> None:
    """Store the product type read off the titles as the category of a catalogue that has none,
    and say so in the report (the file's reading notes and the mapping line)."""
    from recsys.data.product_types import MIN_TITLES, infer_product_types

    titles = ds.catalog["title"].astype(str)
    if not (titles.str.strip() != "").any():
        return
    inferred = infer_product_types(titles)
    notes = ds.report.reading.setdefault(table, {})
    how = "leave it out with --map category=-, or use a column of yours with --map COLUMN=category"
    if inferred.n_types == 0:
        notes["category"] = (
            f"none: the file has no category column, and no word ends {MIN_TITLES} distinct titles"
        )
        return
    ds.catalog["category"] = inferred.types.to_numpy()
    types = f"{inferred.n_types:,} type{'' if inferred.n_types == 1 else 's'}"
    said = f"inferred from title: {types}, {inferred.coverage:.0%} of items"
    notes["category"] = (
        f"{said} (the file has no category column: each title's last word shared by at least "
        f"{MIN_TITLES} titles, colours, sizes and units left out; items with none have no category); {how}"
    )
    if "mapping" in notes:
        head, sep, tail = notes["mapping"].partition("; ")
        notes["mapping"] = f"{head}, category ({said}){sep}{tail}"


def _resolve_csv_paths(
    path: Path | None, catalog_path: str | os.PathLike[str] | None
) -> tuple[Path | None, Path | None]:
    if path is None:
        return Path(catalog_path) if catalog_path is not None else None, None
    if path.is_dir():
        found: dict[str, Path] = {}
        for stem in ("catalog", "interactions"):
            for suffix in FOLDER_SUFFIXES:
                if (path / f"{stem}{suffix}").exists():
                    found[stem] = path / f"{stem}{suffix}"
                    break
        if "interactions" not in found and "catalog" in found and catalog_path is None:
            return found["catalog"], None
        if "interactions" not in found:
            raise DataValidationError(
                "no interactions.csv (or .csv.gz/.parquet) in this folder; pass the interactions file itself",
                file=str(path),
            )
        cat = Path(catalog_path) if catalog_path is not None else found.get("catalog")
        return cat, found["interactions"]
    return (Path(catalog_path) if catalog_path is not None else None), path


def import_dataset(
    source: str,
    path: str | os.PathLike[str] | None,
    name: str | None = None,
    root: str | os.PathLike[str] | None = None,
    mapping: Mapping[str, Any] | None = None,
    *,
    catalog_path: str | os.PathLike[str] | None = None,
    kind: str | None = None,
    errors: str = "raise",
    encoding: str = "utf-8",
    category_sep: str | None = None,
    progress: Any = None,
    dry_run: bool = False,
    **read_options: Any,
) -> Dataset:
    """Import a dataset and store it under ``<root>/datasets/<name>`` (for the CLI and the Data page).

    Parameters
    ----------
    source : {"online_retail", "instacart", "rees46", "csv"}
        Which importer. "csv" is the generic import (see :data:`recsys.data.tables.FILE_TYPES`).
    path : path-like or None
        The dataset's file (online_retail, rees46), folder (instacart), or for "csv":
        the interactions file, or a folder holding ``interactions.*`` and optionally
        ``catalog.*``. None (csv only) with ``catalog_path`` imports a catalogue alone.
    name : str, optional
        Dataset name; default the source name ("imported" for csv).
    root : path-like, optional
        Data directory; default :func:`recsys.config.data_dir`.
    mapping : dict, optional
        Column mapping for "csv" (see :func:`import_generic`); refused for the others.
    catalog_path : path-like, optional
        Catalog file for "csv" (default ``catalog.*`` beside a folder's interactions).
    kind, errors, encoding, category_sep
        For "csv", see :func:`import_generic`.
    progress : callable, optional
        ``progress(done, total, message)``; the background job runner passes one.
    dry_run : bool, default False
        Read and validate only; store nothing.
    **read_options
        For "csv": the reading options of :func:`import_generic` (:data:`READ_OPTIONS`).

    Returns
    -------
    Dataset
        As stored. Nothing is written when the import fails, and an existing dataset of
        the same name is replaced atomically only after the new one is complete.
    """
    from recsys.config import data_dir

    if source not in SOURCES:
        raise DataValidationError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if mapping and source != "csv":
        raise DataValidationError(
            f"a column mapping (--map) only applies to source 'csv', not {source!r}; drop it"
        )
    unknown = sorted(set(read_options) - set(READ_OPTIONS))
    if unknown:
        raise DataValidationError(f"unknown import option(s): {', '.join(unknown)}")
    given = sorted(k for k, v in read_options.items() if v not in (None, "", [], {}, False))
    if given and source != "csv":
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise DataValidationError(
            f"{flags} only appl{'y' if len(given) > 1 else 'ies'} to source 'csv', not {source!r}"
        )
    if path is None or str(path) == "":
        if source != "csv" or catalog_path is None:
            raise DataValidationError("give the file to import (or, for csv, a catalogue with --catalog)")
        p = None
    else:
        p = Path(path)
        if not p.exists():
            raise DataValidationError("file or folder not found; check the path", file=str(p))
    if catalog_path is not None and not Path(catalog_path).exists():
        raise DataValidationError("catalogue file not found; check the path", file=str(catalog_path))
    default_name = "imported" if source == "csv" else source
    ds_name = name or default_name
    shown = p.name if p is not None else Path(str(catalog_path)).name
    if progress is not None:
        progress(0, 2, f"reading and validating {shown}")
    if source == "online_retail":
        ds = import_online_retail(p, name=ds_name)  # type: ignore[arg-type]
    elif source == "instacart":
        ds = import_instacart(p, name=ds_name)  # type: ignore[arg-type]
    elif source == "rees46":
        ds = import_rees46(p, name=ds_name)  # type: ignore[arg-type]
    else:
        cat, inter = _resolve_csv_paths(p, catalog_path)
        ds = import_generic(
            cat,
            inter,
            mapping,
            name=ds_name,
            kind=kind,
            errors=errors,
            encoding=encoding,
            category_sep=category_sep,
            **read_options,
        )
    if dry_run:
        return ds
    if progress is not None:
        progress(1, 2, f"storing dataset {ds.name}")
    folder = save_dataset(ds, data_dir(root))
    logger.info("stored dataset %s in %s", ds.name, folder)
    if progress is not None:
        progress(2, 2, f"dataset {ds.name} stored")
    return ds
