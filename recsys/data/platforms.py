"""Shop platforms' own exports, recognised by their columns and read as the schema's fields.

A shop's data comes from its platform's export screens and its analytics warehouse, each with
a documented column layout. :func:`recognise` looks at a table's column names (case, spaces
and punctuation ignored) and, when they are one of :data:`LAYOUTS`' signatures, does what the
layout needs and renames the columns it knows to the schema's field names, so the import's
guessing (the command line) and the Data page's form both find them; every other column keeps
its name (kept as an attribute). What it did is said in the reading notes (``layout: ...``).

- Shopify orders export: one row per line item, the order's fields on its first row only
  (filled down), ``Name`` the order number; a cancelled order's lines are dropped (counted);
- Shopify products export: a product's variants on the rows after it with a blank ``Title``
  (the product's fields filled down), rows holding only an extra image dropped; a variant with
  no SKU named ``Title - Option`` as the orders export names its line;
- WooCommerce orders export, one row per line item (the Customer/Order/Coupon Export's
  ``order_id, item_product_id...`` and the Advanced Order Export's ``Order Number, Item Name...``):
  a guest's email is the user, the unit price is the line total over the quantity,
  cancelled, refunded and failed orders dropped;
- Magento 2 ``sales_order_item`` dump: a configurable parent and its simple child are one
  line (the child's product, the parent's price), ``item_id`` (the line's id) is not the item;
- Google Analytics 4 BigQuery export: JSON lines with an ``items`` array per event
  (:func:`explode_ga4`, one row per item) or flattened by ``UNNEST(items)``; the session is
  the user's ``ga_session_id``, ``event_timestamp`` in microseconds, view_item / select_item /
  add_to_cart / purchase read as view, cart, purchase and the other events left out;
- Google Merchant Center feed (TSV, or RSS/Atom XML with ``g:`` fields, read by
  :func:`read_xml_frame`): ``price`` like ``12.99 USD``, ``product_type`` (else
  ``google_product_category``) the category, ``age_group`` kids read as gender, ``availability``
  as in stock.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataValidationError

_BLANK = ("", "nan", "none", "null", "\\n", "n/a", "na", "(not set)")


def norm(name: Any) -> str:
    """A column name as the layouts compare it: lower-cased, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _text(s: pd.Series) -> pd.Series:
    """Cells as text, missing ones (None, NaN) as ""."""
    return s.astype(object).where(s.notna(), "").astype(str)


def _blank(s: pd.Series) -> pd.Series:
    return _text(s).str.strip().str.lower().isin(_BLANK)


def _fill_down(df: pd.DataFrame, key: str, columns: list[str]) -> int:
    """Blank cells of ``columns`` filled from the first filled row of the same ``key``; how many."""
    filled = 0
    for c in columns:
        blank = _blank(df[c])
        if not blank.any():
            continue
        first = df[c].where(~blank).groupby(df[key]).transform("first")
        fill = blank & first.notna()
        df.loc[fill, c] = first[fill]
        filled += int(fill.sum())
    return filled


@dataclass
class Found:
    """What a layout's preparation did: the frame, notes for the report, the layout's defaults."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """One platform's export: its signature (normalised column names it always has), each field's
    columns in order of preference (normalised; the first present with a value is used), the
    kind of table it is, and a preparation step (fill-downs, drops, derived columns)."""

    name: str
    signature: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]
    role: str = "events"  # or "catalog"
    kind: str | None = None  # "baskets" for orders
    prepare: Callable[[pd.DataFrame, dict[str, str]], Found] | None = None
    event_map: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# preparation steps (``cols``: normalised name -> the file's column name)
# ---------------------------------------------------------------------------------------------


def _shopify_orders(df: pd.DataFrame, cols: dict[str, str]) -> Found:
    out = Found(df.copy())
    d, order = out.frame, cols["name"]
    order_level = [c for n, c in cols.items() if not n.startswith("lineitem") and n not in ("name", "vendor")]
    n = _fill_down(d, order, order_level)
    if n:
        out.notes.append(f"{n:,} blank order field(s) filled from each order's first row")
    sku, title = cols.get("lineitemsku"), cols["lineitemname"]
    if sku:
        no_sku = _blank(d[sku])
        if no_sku.any():
            d.loc[no_sku, sku] = d.loc[no_sku, title]
            out.notes.append(f"{int(no_sku.sum()):,} line(s) with no SKU identified by their line item name")
    else:
        d["Lineitem sku"] = d[title]
        out.notes.append("no 'Lineitem sku' column: items identified by their line item name")
    cancelled = cols.get("cancelledat")
    if cancelled:
        gone = ~_blank(d[cancelled])
        if gone.any():
            out.notes.append(
                f"{int(gone.sum()):,} line(s) of {d.loc[gone, order].nunique():,} cancelled order(s) dropped"
            )
            out.frame = d = d[~gone]  # the index keeps the file's row numbers
    return out


def _shopify_products(df: pd.DataFrame, cols: dict[str, str]) -> Found:
    out = Found(df.copy())
    d, handle = out.frame, cols["handle"]
    per_variant = ("variant", "option", "image")
    product_level = [c for n, c in cols.items() if n != "handle" and not n.startswith(per_variant)]
    image = cols.get("imagesrc")
    first_image = d[image].where(~_blank(d[image])).groupby(d[handle]).transform("first") if image else None
    variant_cells = [cols[n] for n in ("variantsku", "variantprice", "option1value") if n in cols]
    image_only = pd.concat([_blank(d[c]) for c in variant_cells], axis=1).all(axis=1)
    _fill_down(d, handle, product_level)
    if image:
        d[image] = first_image.where(first_image.notna(), "")
        own = cols.get("variantimage")
        if own:
            d[image] = d[own].where(~_blank(d[own]), d[image])
    if image_only.any():
        out.notes.append(f"{int(image_only.sum()):,} row(s) holding only an extra image left out")
        out.frame = d = d[~image_only]
    sku = cols.get("variantsku")
    if sku is None:
        d["Variant SKU"] = ""
        sku = "Variant SKU"
    no_sku = _blank(d[sku])
    if no_sku.any():  # named as the orders export names its line: "Title - Option1 / Option2"
        options = [cols[n] for n in ("option1value", "option2value", "option3value") if n in cols]
        title = cols.get("title")
        names = _text(d[title]) if title else _text(d[handle])
        names = names.where(names != "", _text(d[handle]))
        if options:
            parts = d[options].apply(_text)
            variant = parts.agg(lambda r: " / ".join(v for v in r if v and v != "Default Title"), axis=1)
            names = names.where(variant == "", names + " - " + variant)
        d.loc[no_sku, sku] = names[no_sku]
        out.notes.append(
            f"{int(no_sku.sum()):,} variant(s) with no SKU identified by their title and options, as the "
            "orders export names its lines ('Title - M / Red')"
        )
    body = cols.get("bodyhtml")
    if body:  # the description's HTML as its text
        text = _text(d[body]).str.replace(r"<[^>]+>", " ", regex=True).map(html.unescape)
        d[body] = text.str.split().str.join(" ")
    out.notes.append("a product's fields filled down to its variants; each variant (its SKU) is one item")
    return out


_WOO_SKIP = ("cancelled", "canceled", "refunded", "failed", "trash", "checkout-draft")


def _woocommerce_orders(df: pd.DataFrame, cols: dict[str, str]) -> Found:
    out = Found(df.copy())
    d = out.frame
    order = cols.get("orderid") or cols["ordernumber"]
    order_level = [c for n, c in cols.items() if not n.startswith("item") and n not in ("sku", "productid")]
    n = _fill_down(d, order, order_level)
    if n:
        out.notes.append(f"{n:,} blank order field(s) filled from each order's first row")
    customer = cols.get("customerid") or cols.get("customeruserid")
    email = cols.get("billingemail") or cols.get("emailbilling")
    if email:
        guest = _blank(d[customer]) | (_text(d[customer]).str.strip() == "0") if customer else None
        if customer is None:
            d["customer"] = d[email]
        else:
            d[customer] = d[customer].where(~guest, d[email])
            if guest.any():
                out.notes.append(
                    f"{int(guest.sum()):,} guest line(s) (customer 0): the billing email is the user"
                )
    status = cols.get("status") or cols.get("orderstatus")
    if status:
        st = _text(d[status]).str.strip().str.lower().str.removeprefix("wc-")
        gone = st.isin(_WOO_SKIP)
        if gone.any():
            shown = ", ".join(f"{k} ({v:,})" for k, v in st[gone].value_counts().items())
            out.notes.append(f"{int(gone.sum()):,} line(s) of orders not sold dropped: {shown}")
            out.frame = d = d[~gone]
    total = cols.get("itemtotal") or cols.get("itemsubtotal")
    qty = cols.get("itemquantity") or cols.get("quantityrefund") or cols.get("quantity")
    if total and qty and "itemcost" not in cols:
        from recsys.data.reading import parse_prices

        line, _, _ = parse_prices(d[total])
        units = pd.to_numeric(d[qty], errors="coerce")
        unit = (line / units.where(units > 0)).round(4)
        d["unit_price"] = unit.map(lambda v: "" if pd.isna(v) else repr(float(v)))
        out.notes.append(f"unit price = {total} / {qty}")
    return out


def _magento_items(df: pd.DataFrame, cols: dict[str, str]) -> Found:
    out = Found(df.replace({"NULL": "", "\\N": ""}))  # a SQL dump's nulls
    d = out.frame
    line, parent, price = cols["itemid"], cols["parentitemid"], cols.get("price")
    d[parent] = d[parent].where(~_blank(d[parent]), "")
    children = d[d[parent] != ""]
    parents = d[line].isin(children[parent])
    if price:
        parent_price = d.set_index(line)[price]
        child = d[parent] != ""
        zero = child & (pd.to_numeric(d[price], errors="coerce").fillna(0) == 0)
        d.loc[zero, price] = d.loc[zero, parent].map(parent_price).fillna("")
    if parents.any():
        out.notes.append(
            f"{int(parents.sum()):,} parent line(s) (configurable or bundle) left out: each child line "
            "(the simple product bought) counts once, priced from its parent when its own price is 0"
        )
        out.frame = d = d[~parents]
    d.rename(columns={line: "order_line_id"}, inplace=True)
    return out


#: GA4's e-commerce events read as the schema's event types; the other events are left out.
GA4_EVENTS = {
    "view_item": "view",
    "select_item": "view",
    "add_to_cart": "cart",
    "purchase": "purchase",
}
_GA4_OTHER = (
    "view_item_list", "view_cart", "remove_from_cart", "begin_checkout", "add_shipping_info",
    "add_payment_info", "add_to_wishlist", "refund", "view_promotion", "select_promotion",
)  # fmt: skip


def _ga4_events(df: pd.DataFrame, cols: dict[str, str]) -> Found:
    out = Found(df.copy())
    d = out.frame
    user, session = cols["userpseudoid"], cols.get("gasessionid")
    if session:
        filled = ~_blank(d[session])
        d["session"] = (_text(d[user]) + ":" + _text(d[session])).where(filled, "")
        out.notes.append(f"session = {user} + {session} (a session id is unique per user only)")
    categories = sorted((n for n in cols if re.fullmatch(r"itemcategory\d?", n)), key=lambda n: (len(n), n))
    if len(categories) > 1:
        parts = d[[cols[n] for n in categories]].apply(_text)
        parts = parts.where(~parts.apply(_blank), "")
        d["category_path"] = parts.agg(lambda r: " > ".join(v for v in r if v), axis=1)
        out.notes.append(f"category = {' > '.join(cols[n] for n in categories)}")
    return out


def _merchant_feed(df: pd.DataFrame, cols: dict[str, str]) -> Found:
    out = Found(df.copy())
    d = out.frame
    age = cols.get("agegroup")
    if age:
        kids = _text(d[age]).str.strip().str.lower().isin(("kids", "toddler", "infant", "newborn"))
        gender = cols.get("gender")
        if gender is None:
            d["gender"], gender = "", "gender"
        d.loc[kids, gender] = "kids"
        if kids.any():
            out.notes.append(
                f"{int(kids.sum()):,} item(s) with age_group kids/toddler/infant/newborn: gender kids"
            )
    avail = cols.get("availability")
    if avail:
        a = _text(d[avail]).str.strip().str.lower().str.replace("_", " ")
        d["in_stock"] = a.map(lambda v: "" if v in _BLANK else str(v == "in stock").lower())
    gpc, ptype = cols.get("googleproductcategory"), cols.get("producttype")
    if gpc and ptype:  # the shop's own type first, Google's taxonomy where it has none
        own = ~_blank(d[ptype])
        d["category_path"] = d[ptype].where(own, d[gpc])
    elif gpc or ptype:
        d["category_path"] = d[gpc or ptype]
    if "category_path" in d.columns:
        numeric = _text(d["category_path"]).str.fullmatch(r"\d+")
        if numeric.any():
            d.loc[numeric, "category_path"] = ""
            out.notes.append(
                f"{int(numeric.sum()):,} google_product_category id(s) (numbers) not read as a category"
            )
    return out


#: The platforms' exports this import recognises, tried in order.
LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "Shopify orders export",
        ("name", "createdat", "lineitemname", "lineitemquantity"),
        {
            "sequence_id": ("name",),
            "item_id": ("lineitemsku",),
            "user_id": ("email", "customerid"),
            "timestamp": ("createdat",),
            "quantity": ("lineitemquantity",),
            "title": ("lineitemname",),
            "price": ("lineitemprice",),
            "brand": ("vendor",),
        },
        kind="baskets",
        prepare=_shopify_orders,
    ),
    Layout(
        "Shopify products export",
        ("handle", "title", "variantprice"),
        {
            "item_id": ("variantsku",),
            "title": ("title",),
            "brand": ("vendor",),
            "category": ("productcategory", "type"),
            "price": ("variantprice",),
            "image_url": ("imagesrc",),
            "description": ("bodyhtml",),
        },
        role="catalog",
        prepare=_shopify_products,
    ),
    Layout(
        "WooCommerce orders export (Customer/Order/Coupon Export, one row per line item)",
        ("orderid", "orderdate", "itemproductid", "itemquantity"),
        {
            "sequence_id": ("orderid",),
            "item_id": ("itemproductid", "itemsku"),
            "user_id": ("customerid", "customer"),
            "timestamp": ("orderdate",),
            "quantity": ("itemquantity",),
            "title": ("itemname",),
            "price": ("unitprice",),
        },
        kind="baskets",
        prepare=_woocommerce_orders,
    ),
    Layout(
        "WooCommerce orders export (Advanced Order Export, one row per line item)",
        ("ordernumber", "orderdate", "itemname"),
        {
            "sequence_id": ("ordernumber",),
            "item_id": ("productid", "sku"),
            "user_id": ("customeruserid", "customer"),
            "timestamp": ("orderdate",),
            "quantity": ("quantityrefund", "quantity", "qty"),
            "title": ("itemname",),
            "price": ("itemcost", "unitprice"),
        },
        kind="baskets",
        prepare=_woocommerce_orders,
    ),
    Layout(
        "Magento 2 sales_order_item",
        ("itemid", "orderid", "parentitemid", "productid", "qtyordered"),
        {
            "sequence_id": ("orderid",),
            "item_id": ("productid",),
            "timestamp": ("createdat",),
            "quantity": ("qtyordered",),
            "title": ("name",),
            "price": ("price",),
        },
        kind="baskets",
        prepare=_magento_items,
    ),
    Layout(
        "Google Analytics 4 BigQuery export",
        ("eventname", "eventtimestamp", "userpseudoid", "itemid"),
        {
            "sequence_id": ("session",),
            "user_id": ("userid", "userpseudoid"),
            "item_id": ("itemid",),
            "timestamp": ("eventtimestamp",),
            "event_type": ("eventname",),
            "quantity": ("quantity",),
            "title": ("itemname",),
            "brand": ("itembrand",),
            "category": ("categorypath", "itemcategory"),
            "price": ("price",),
        },
        prepare=_ga4_events,
        event_map={**GA4_EVENTS, **{e: "drop" for e in _GA4_OTHER}},
    ),
    Layout(
        "Google Merchant Center product feed",
        ("id", "title", "price", "link"),
        {
            "item_id": ("id",),
            "title": ("title",),
            "description": ("description",),
            "image_url": ("imagelink",),
            "price": ("price",),
            "brand": ("brand",),
            "category": ("categorypath",),
            "gender": ("gender",),
            "in_stock": ("instock",),
        },
        role="catalog",
        prepare=_merchant_feed,
    ),
)


def recognise(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as the schema reads it when its columns are one of :data:`LAYOUTS` (prepared, the
    columns it knows renamed to field names, ``attrs["layout"]`` its name (:func:`layout_of`), the reading
    note ``layout``), else ``df`` unchanged. A column already named like a field it would get is
    renamed away first (Magento's ``item_id`` is the order line's id)."""
    cols: dict[str, str] = {}
    for c in df.columns:
        cols.setdefault(norm(c), str(c))
    layout = next((lay for lay in LAYOUTS if all(s in cols for s in lay.signature)), None)
    if layout is None:
        return df
    attrs = dict(df.attrs)
    found = layout.prepare(df, cols) if layout.prepare else Found(df.copy())
    d = found.frame
    cols = {}
    for c in d.columns:
        cols.setdefault(norm(c), str(c))
    renames: dict[str, str] = {}
    for target, names in layout.fields.items():
        for n in names:
            col = cols.get(n)
            if col and col not in renames and not _blank(d[col]).all():
                renames[col] = target
                break
    taken = [c for c in d.columns if c in renames.values() and c not in renames]
    d = d.rename(columns={c: f"{c}_original" for c in taken}).rename(columns=renames)
    shown = ", ".join(f"{c} -> {f}" for c, f in renames.items() if c != f)
    note = f"{layout.name} (recognised from its columns): {shown}"
    if found.notes:
        note += "; " + "; ".join(found.notes)
    if layout.kind:
        note += f"; a table of {layout.kind} (orders)"
    d.attrs = attrs
    d.attrs["layout"] = layout.name  # attrs stay plain data (pandas copies them, Parquet may store them)
    d.attrs["renamed"] = renames
    d.attrs.setdefault("reading", {})
    d.attrs["reading"] = {**d.attrs["reading"], "layout": note}
    return d


def layout_of(df: pd.DataFrame | None) -> Layout | None:
    """The :class:`Layout` :func:`recognise` found in ``df`` (None: none, or no frame)."""
    name = None if df is None else df.attrs.get("layout")
    return next((lay for lay in LAYOUTS if lay.name == name), None)


def platform_roles(
    inter: pd.DataFrame | None, cat: pd.DataFrame | None, inter_src: str | None, cat_src: str | None
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None, str | None]:
    """A platform's product export given as the events file is the catalogue (when no other is
    given); an orders or events export given as the catalogue is refused, naming the order."""
    layout = layout_of(inter)
    if layout is not None and layout.role == "catalog":
        if cat is not None:
            raise DataValidationError(
                f"this is a {layout.name} (a catalogue), given as the events file; give the events "
                "file first and this one with --catalog",
                file=inter_src,
            )
        inter.attrs["reading"]["role"] = f"read as the catalogue ({layout.name}; no events file)"  # type: ignore[union-attr]
        return None, inter, None, inter_src
    cat_layout = layout_of(cat)
    if cat_layout is not None and cat_layout.role != "catalog":
        raise DataValidationError(
            f"this is a {cat_layout.name} (events or orders), given with --catalog; give it as the "
            "events file (the first argument) and the products export with --catalog",
            file=cat_src,
        )
    return inter, cat, inter_src, cat_src


# ---------------------------------------------------------------------------------------------
# nested records: GA4's JSON export, Merchant Center's XML feed
# ---------------------------------------------------------------------------------------------


def is_ga4(df: pd.DataFrame) -> bool:
    return {"event_name", "event_timestamp", "items"} <= set(map(str, df.columns))


def _param(params: Any, key: str) -> Any:
    """The value of ``key`` in GA4's ``event_params`` (key / value structs with one typed value)."""
    for p in params if isinstance(params, (list, tuple, np.ndarray)) else ():
        if isinstance(p, dict) and p.get("key") == key:
            value = p.get("value") or {}
            for kind in ("string_value", "int_value", "double_value", "float_value"):
                v = value.get(kind)
                if v is not None and not (isinstance(v, float) and np.isnan(v)):
                    return int(v) if kind == "int_value" else v  # Parquet's nullable ints read as floats
    return None


def explode_ga4(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """GA4's BigQuery JSON export (one event a row, an ``items`` array of structs) -> one row per
    item of each event, with ``ga_session_id`` taken out of ``event_params``, and a note."""
    events = len(df)
    d = df.copy()
    if "event_params" in d.columns:
        sessions = d["event_params"].map(lambda p: _param(p, "ga_session_id"))
        d["ga_session_id"] = sessions.map(lambda v: "" if v is None else str(v))
    d = d.explode("items", ignore_index=True)
    has_item = d["items"].map(lambda v: isinstance(v, dict))
    d = d[has_item].reset_index(drop=True)
    items = pd.json_normalize(d["items"].tolist()).set_index(d.index)
    keep = [c for c in ("event_date", "event_timestamp", "event_name", "user_pseudo_id", "user_id",
                        "ga_session_id") if c in d.columns]  # fmt: skip
    items = items.drop(columns=[c for c in keep if c in items.columns])
    out = pd.concat([d[keep], items], axis=1)
    dropped = int((~has_item).sum())
    note = (
        f"Google Analytics 4 events: {events:,} events, {len(out):,} item rows (one per item of an event's "
        f"items array); {dropped:,} event row(s) without items left out"
    )
    return out, note


#: Merchant Center's namespace for the ``g:`` fields of an RSS or Atom feed.
G_NS = "http://base.google.com/ns/1.0"
_ATOM = "http://www.w3.org/2005/Atom"


def read_xml_frame(path: Path, nrows: int | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """A product feed in XML (RSS 2.0 ``<item>`` or Atom ``<entry>`` elements, fields plain or in
    Merchant Center's ``g:`` namespace) -> a frame of text cells, one row per item. Read by
    pandas with the standard library's ElementTree."""
    tries = ((".//item", None, "RSS <item>"), (".//a:entry", {"a": _ATOM}, "Atom <entry>"))
    last: Exception | None = None
    for xpath, ns, what in tries:
        try:
            df = pd.read_xml(path, xpath=xpath, namespaces=ns, dtype=str, parser="etree", compression="infer")
        except (ValueError, SyntaxError) as exc:  # no such element: pandas raises ValueError
            last = exc
            continue
        except Exception as exc:  # ParseError and OSError for a broken file
            raise DataValidationError(f"not a readable XML file ({exc})", file=str(path)) from exc
        df.columns = [re.sub(r"^\{[^}]*\}", "", str(c)) for c in df.columns]
        df = df.fillna("").astype(str).map(str.strip)
        df = df.loc[:, [c for c in df.columns if (df[c] != "").any()]]
        if nrows is not None:
            df = df.head(nrows)
        return df.reset_index(drop=True), {"format": f"XML feed, one row per {what} element"}
    raise DataValidationError(
        f"no <item> (RSS) or <entry> (Atom) elements found in this XML file ({last}); a product feed holds "
        "one of them per product",
        file=str(path),
    )
