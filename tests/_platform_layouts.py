"""Small files shaped like shop platforms' own exports, written inside the tests.

Each writer lays out one export as its platform documents it (column names and order,
separator, quoting, which fields are on which rows, time and price formats); the values are
invented here, a few rows, never copied from a real shop. Every writer returns the paths it wrote.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

#: Invented products: (handle, title, vendor, Shopify taxonomy, type, variants (option, sku, price)).
PRODUCTS = [
    ("blue-mug", "Blue Mug", "Acme", "Home & Garden > Kitchen & Dining > Tableware > Drinkware > Mugs", "Mug",
     [("Small", "MUG-B-S", "12.00"), ("Large", "MUG-B-L", "14.50")]),
    ("red-kettle", "Red Kettle", "Bolt", "Home & Garden > Kitchen & Dining > Kitchen Appliances", "Kettle",
     [("Default Title", "KET-R", "39.90")]),
    ("linen-shirt", "Linen Shirt", "Acme", "Apparel & Accessories > Clothing > Shirts & Tops", "Shirt",
     [("S", "SHI-L-S", "45.00"), ("M", "SHI-L-M", "45.00"), ("L", "SHI-L-L", "47.00")]),
    ("oak-board", "Oak Board", "Cork & Co", "Home & Garden > Kitchen & Dining > Cutting Boards", "Board",
     [("Default Title", "OAK-1", "1,099.00")]),
]  # fmt: skip
SKUS = [sku for *_, variants in PRODUCTS for _, sku, _ in variants]
LINE_NAMES = {
    sku: f"{title} - {opt}" if opt != "Default Title" else title
    for _, title, *_, variants in PRODUCTS
    for opt, sku, _ in variants
}
PRICES = {sku: price for *_, variants in PRODUCTS for _, sku, price in variants}


def _csv(path: Path, header: list[str], rows: list[dict], sep: str = ",", null: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=sep, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([null if r.get(c) is None else r.get(c) for c in header])
    return path


SHOPIFY_ORDER_COLUMNS = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
    "Billing Name", "Billing Street", "Billing City", "Billing Zip", "Billing Country", "Shipping Name",
    "Shipping City", "Shipping Country", "Notes", "Note Attributes", "Cancelled at", "Payment Method",
    "Refunded Amount", "Vendor", "Outstanding Balance", "Employee", "Location", "Device ID", "Id", "Tags",
    "Risk Level", "Source", "Lineitem discount", "Tax 1 Name", "Tax 1 Value", "Phone", "Receipt Number",
]  # fmt: skip

#: Orders: (number, email, created at, cancelled, lines (sku, quantity)).
SHOPIFY_ORDERS = [
    (1001, "ana@example.invalid", "2024-03-01 10:15:00 -0500", False, [("MUG-B-S", 2), ("KET-R", 1)]),
    (1002, "bo@example.invalid", "2024-03-01 23:40:12 +0100", False, [("SHI-L-M", 1), ("MUG-B-L", 1), ("OAK-1", 1)]),
    (1003, "ana@example.invalid", "2024-03-02 08:05:00 -0500", True, [("KET-R", 1)]),
    (1004, "cy@example.invalid", "2024-03-03 14:00:00 -0800", False, [("SHI-L-S", 1), ("SHI-L-L", 1)]),
    (1005, "bo@example.invalid", "2024-03-04 09:30:00 +0100", False, [("OAK-1", 1), ("MUG-B-S", 4)]),
]  # fmt: skip


def shopify_orders(folder: Path, gift_card: bool = False, no_sku: str = "") -> dict[str, Path]:
    """Shopify's orders export (Orders > Export > CSV): one row per line item; the order's
    fields (Email, Financial Status, Created at, totals, Cancelled at...) on its first row only,
    the line's fields (Lineitem *, Vendor) on every row; ``Name`` the order number like #1001,
    ``Created at`` with the shop's UTC offset. ``gift_card`` adds a line with no SKU; ``no_sku``:
    a product (its SKUs' prefix) sold with no SKU."""
    vendor = {sku: v for _, _, v, *_, variants in PRODUCTS for _, sku, _ in variants}
    rows = []
    for number, email, created, cancelled, lines in SHOPIFY_ORDERS:
        if gift_card and number == 1004:
            lines = [*lines, ("", 1)]
        for k, (sku, qty) in enumerate(lines):
            row = {
                "Name": f"#{number}",
                "Created at": created if k == 0 else "",
                "Lineitem quantity": qty,
                "Lineitem name": LINE_NAMES.get(sku, "Gift Card - $25"),
                "Lineitem price": PRICES.get(sku, "25.00").replace(",", ""),
                "Lineitem sku": "" if no_sku and sku.startswith(no_sku) else sku,
                "Lineitem requires shipping": "true",
                "Lineitem taxable": "true",
                "Lineitem fulfillment status": "fulfilled",
                "Vendor": vendor.get(sku, "Acme"),
                "Lineitem discount": "0.00",
            }
            if k == 0:
                row.update(
                    {
                        "Email": email,
                        "Financial Status": "refunded" if cancelled else "paid",
                        "Paid at": created,
                        "Fulfillment Status": "fulfilled",
                        "Accepts Marketing": "no",
                        "Currency": "USD",
                        "Subtotal": "10.00",
                        "Total": "10.00",
                        "Shipping Method": "Standard",
                        "Billing Name": "A. Person",
                        "Billing City": "Springfield, OR",
                        "Cancelled at": "2024-03-02 09:00:00 -0500" if cancelled else "",
                        "Payment Method": "Shopify Payments",
                        "Id": 5_000_000_000 + number,
                        "Risk Level": "Low",
                        "Source": "web",
                    }
                )
            rows.append(row)
    return {"events": _csv(folder / "orders_export_1.csv", SHOPIFY_ORDER_COLUMNS, rows)}


SHOPIFY_PRODUCT_COLUMNS = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
    "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value", "Option3 Name", "Option3 Value",
    "Variant SKU", "Variant Grams", "Variant Inventory Tracker", "Variant Inventory Qty",
    "Variant Inventory Policy", "Variant Fulfillment Service", "Variant Price", "Variant Compare At Price",
    "Variant Requires Shipping", "Variant Taxable", "Variant Barcode", "Image Src", "Image Position",
    "Image Alt Text", "Gift Card", "SEO Title", "SEO Description", "Variant Image", "Variant Weight Unit",
    "Variant Tax Code", "Cost per item", "Status",
]  # fmt: skip


def shopify_products(folder: Path, no_sku: str = "") -> dict[str, Path]:
    """Shopify's products export (Products > Export > CSV): a product's first row holds its
    fields (Title, Body (HTML), Vendor, Product Category, Type, Tags) and its first variant; each
    further variant on a row with the same Handle and a blank Title; a further image on a row
    holding only Handle, Image Src and Image Position. ``no_sku``: a handle whose variants
    have no SKU."""
    rows = []
    for handle, title, vendor, taxonomy, kind, variants in PRODUCTS:
        img = f"https://cdn.example.invalid/files/{handle}"
        for k, (opt, sku, price) in enumerate(variants):
            row = {
                "Handle": handle,
                "Option1 Value": opt,
                "Variant SKU": "" if handle == no_sku else sku,
                "Variant Grams": 350,
                "Variant Inventory Tracker": "shopify",
                "Variant Inventory Qty": 7,
                "Variant Inventory Policy": "deny",
                "Variant Fulfillment Service": "manual",
                "Variant Price": price.replace(",", ""),
                "Variant Requires Shipping": "true",
                "Variant Taxable": "true",
                "Variant Image": f"{img}-{opt.lower()}.jpg" if kind == "Shirt" else "",
                "Variant Weight Unit": "kg",
            }
            if k == 0:
                row.update(
                    {
                        "Title": title,
                        "Body (HTML)": f"<p>A <strong>{title.lower()}</strong> &amp; more.</p>",
                        "Vendor": vendor,
                        "Product Category": taxonomy,
                        "Type": kind,
                        "Tags": "new, spring",
                        "Published": "true",
                        "Option1 Name": "Size" if opt != "Default Title" else "Title",
                        "Image Src": f"{img}-1.jpg",
                        "Image Position": 1,
                        "Gift Card": "false",
                        "Status": "active",
                    }
                )
            elif k == 1:
                row.update({"Image Src": f"{img}-2.jpg", "Image Position": 2})
            rows.append(row)
        if len(variants) == 1:  # a further image on a row of its own
            rows.append({"Handle": handle, "Image Src": f"{img}-2.jpg", "Image Position": 2})
    return {"catalog": _csv(folder / "products_export_1.csv", SHOPIFY_PRODUCT_COLUMNS, rows)}


def shopify(folder: Path) -> dict[str, Path]:
    """Both Shopify exports of one shop (the orders' ``Lineitem sku`` is the products' ``Variant SKU``)."""
    return {**shopify_orders(folder), **shopify_products(folder)}


WOO_COLUMNS = [
    "order_id", "order_number", "order_number_formatted", "order_date", "status", "shipping_total",
    "tax_total", "discount_total", "order_total", "refunded_total", "order_currency", "payment_method",
    "shipping_method", "customer_id", "billing_first_name", "billing_last_name", "billing_email",
    "billing_phone", "billing_city", "billing_country", "customer_note", "item_id", "item_product_id",
    "item_name", "item_sku", "item_quantity", "item_subtotal", "item_subtotal_tax", "item_total",
    "item_total_tax", "item_refunded", "item_refunded_qty", "item_meta", "coupon_items", "order_notes",
]  # fmt: skip

#: WooCommerce orders: (id, date, status, customer id (0 = guest), email, lines (product id, sku, qty)).
WOO_ORDERS = [
    (4711, "2024-03-01 10:15:00", "completed", 12, "ana@example.invalid", [(101, "MUG-B", 2), (205, "KET-R", 1)]),
    (4712, "2024-03-01 11:02:00", "processing", 0, "guest@example.invalid", [(205, "KET-R", 1), (310, "", 1)]),
    (4713, "2024-03-02 09:00:00", "cancelled", 12, "ana@example.invalid", [(101, "MUG-B", 1)]),
    (4714, "2024-03-03 17:45:00", "completed", 15, "bo@example.invalid", [(310, "", 2), (101, "MUG-B", 1)]),
]  # fmt: skip
WOO_NAMES = {101: "Blue Mug", 205: "Red Kettle", 310: "Linen Shirt - M"}
WOO_UNIT = {101: 12.0, 205: 39.9, 310: 45.0}


def woocommerce_orders(folder: Path) -> dict[str, Path]:
    """WooCommerce's Customer/Order/Coupon Export CSV in its "one row per item" format: the
    order's fields repeated on each of its lines, ``customer_id`` 0 for a guest, ``item_id``
    the line's own id (not the product's: ``item_product_id``), ``item_total`` the line's total."""
    rows = []
    line_id = 900
    for oid, date, status, customer, email, lines in WOO_ORDERS:
        for pid, sku, qty in lines:
            line_id += 1
            rows.append(
                {
                    "order_id": oid, "order_number": oid, "order_number_formatted": f"#{oid}", "order_date": date,
                    "status": status, "shipping_total": "4.99", "tax_total": "0.00", "discount_total": "0.00",
                    "order_total": "99.00", "refunded_total": "0.00", "order_currency": "EUR",
                    "payment_method": "stripe", "shipping_method": "Flat rate", "customer_id": customer,
                    "billing_first_name": "A", "billing_last_name": "Person", "billing_email": email,
                    "billing_city": "Lyon", "billing_country": "FR", "item_id": line_id, "item_product_id": pid,
                    "item_name": WOO_NAMES[pid], "item_sku": sku, "item_quantity": qty,
                    "item_subtotal": f"{WOO_UNIT[pid] * qty:.2f}", "item_subtotal_tax": "0.00",
                    "item_total": f"{WOO_UNIT[pid] * qty:.2f}", "item_total_tax": "0.00", "item_refunded": "0.00",
                    "item_refunded_qty": 0, "item_meta": "pa_size=M" if pid == 310 else "",
                }
            )  # fmt: skip
    return {"events": _csv(folder / "orders-export-2024_03_05.csv", WOO_COLUMNS, rows)}


WOO_ADVANCED_COLUMNS = [
    "Order Number", "Order Status", "Order Date", "Customer Note", "First Name (Billing)", "Last Name (Billing)",
    "Company (Billing)", "Address 1&2 (Billing)", "City (Billing)", "State Code (Billing)", "Postcode (Billing)",
    "Country Code (Billing)", "Email (Billing)", "Phone (Billing)", "First Name (Shipping)",
    "Last Name (Shipping)", "Address 1&2 (Shipping)", "City (Shipping)", "Country Code (Shipping)",
    "Payment Method Title", "Cart Discount Amount", "Order Subtotal Amount", "Shipping Method Title",
    "Order Shipping Amount", "Order Refund Amount", "Order Total Amount", "Order Total Tax Amount", "SKU",
    "Item #", "Item Name", "Quantity (- Refund)", "Item Cost", "Coupon Code", "Discount Amount",
    "Discount Amount Tax",
]  # fmt: skip


def woocommerce_advanced(folder: Path) -> dict[str, Path]:
    """WooCommerce's Advanced Order Export (its default fields, "fill order columns" for the first
    row only): ``Order Number``, ``Order Date`` like 2024-03-01 10:15, ``Email (Billing)``, the
    line's ``SKU``, ``Item Name``, ``Quantity (- Refund)``, ``Item Cost`` (unit price)."""
    rows = []
    for oid, date, status, _customer, email, lines in WOO_ORDERS:
        for k, (pid, sku, qty) in enumerate(lines):
            row = {
                "SKU": sku or f"SHI-{pid}", "Item #": k + 1, "Item Name": WOO_NAMES[pid],
                "Quantity (- Refund)": qty, "Item Cost": f"{WOO_UNIT[pid]:.2f}", "Order Number": oid,
            }  # fmt: skip
            if k == 0:
                row.update(
                    {
                        "Order Status": status.capitalize(), "Order Date": date[:16], "Email (Billing)": email,
                        "First Name (Billing)": "A", "City (Billing)": "Lyon", "Country Code (Billing)": "FR",
                        "Payment Method Title": "Credit card", "Order Total Amount": "99.00",
                    }
                )  # fmt: skip
            rows.append(row)
    return {"events": _csv(folder / "orders-2024-03-05.csv", WOO_ADVANCED_COLUMNS, rows)}


MAGENTO_COLUMNS = [
    "item_id", "order_id", "parent_item_id", "quote_item_id", "store_id", "created_at", "updated_at",
    "product_id", "product_type", "product_options", "weight", "is_virtual", "sku", "name", "description",
    "applied_rule_ids", "additional_data", "is_qty_decimal", "no_discount", "qty_backordered", "qty_canceled",
    "qty_invoiced", "qty_ordered", "qty_refunded", "qty_shipped", "base_cost", "price", "base_price",
    "original_price", "base_original_price", "tax_percent", "tax_amount", "discount_percent",
    "discount_amount", "row_total", "base_row_total", "price_incl_tax", "row_total_incl_tax", "free_shipping",
]  # fmt: skip

#: Magento lines: (order id, created at, [(configurable parent product id or None, product id, sku, name, qty, price)]).
MAGENTO_ORDERS = [
    (1, "2024-03-01 15:15:00", [(None, 11, "MUG-B", "Blue Mug", 2, 12.0), (70, 71, "SHI-L-M", "Linen Shirt-M", 1, 45.0)]),
    (2, "2024-03-02 09:01:44", [(70, 73, "SHI-L-L", "Linen Shirt-L", 1, 47.0), (None, 12, "KET-R", "Red Kettle", 1, 39.9)]),
    (3, "2024-03-02 18:30:00", [(70, 71, "SHI-L-M", "Linen Shirt-M", 2, 45.0), (None, 11, "MUG-B", "Blue Mug", 1, 12.0)]),
]  # fmt: skip


def magento_order_items(folder: Path, tsv: bool = False) -> dict[str, Path]:
    """Magento 2's ``sales_order_item`` table dumped with its header (phpMyAdmin's CSV, or
    ``mysql --batch``'s tab-separated output with ``tsv``; NULL written ``NULL``): a configurable
    product bought is two rows, the configurable parent (its product id, the child's SKU, the
    price) and the simple child (``parent_item_id`` = the parent's ``item_id``, price 0)."""
    rows, line = [], 0
    for order, created, lines in MAGENTO_ORDERS:
        for parent, pid, sku, name, qty, price in lines:
            base = {
                "order_id": order, "quote_item_id": 300 + line, "store_id": 1, "created_at": created,
                "updated_at": created, "weight": "0.5000", "is_virtual": 0, "sku": sku, "description": None,
                "is_qty_decimal": 0, "no_discount": 0, "qty_canceled": "0.0000", "qty_invoiced": f"{qty}.0000",
                "qty_ordered": f"{qty}.0000", "qty_refunded": "0.0000", "qty_shipped": f"{qty}.0000",
                "tax_percent": "0.0000", "tax_amount": "0.0000", "discount_percent": "0.0000",
                "discount_amount": "0.0000", "free_shipping": 0,
            }  # fmt: skip
            money = {k: f"{price:.4f}" for k in ("price", "base_price", "original_price", "base_original_price",
                                                 "price_incl_tax")}  # fmt: skip
            money.update(
                {k: f"{price * qty:.4f}" for k in ("row_total", "base_row_total", "row_total_incl_tax")}
            )
            zero = {k: "0.0000" for k in money}
            if parent is None:
                line += 1
                rows.append({**base, **money, "item_id": line, "product_id": pid, "product_type": "simple",
                             "name": name, "product_options": '{"info_buyRequest":{"qty":"1"}}'})  # fmt: skip
            else:
                line += 1
                parent_line = line
                rows.append({**base, **money, "item_id": line, "product_id": parent, "product_type": "configurable",
                             "name": "Linen Shirt", "product_options": json.dumps({"simple_sku": sku, "attributes_info":
                             [{"label": "Size", "value": "M"}]})})  # fmt: skip
                line += 1
                rows.append({**base, **zero, "item_id": line, "parent_item_id": parent_line, "product_id": pid,
                             "product_type": "simple", "name": name, "product_options": "{}"})  # fmt: skip
    name = "sales_order_item.tsv" if tsv else "sales_order_item.csv"
    return {"events": _csv(folder / name, MAGENTO_COLUMNS, rows, sep="\t" if tsv else ",", null="NULL")}


GA4_T0 = 1_709_288_100_123_456  # event_timestamp, microseconds (2024-03-01 10:15:00.123456 UTC)


def _ga4_item(sku: str, qty: int | None) -> dict:
    title = LINE_NAMES[sku]
    return {
        "item_id": sku, "item_name": title, "item_brand": "Acme" if sku.startswith(("MUG", "SHI")) else "Bolt",
        "item_variant": "(not set)", "item_category": "Home" if not sku.startswith("SHI") else "Apparel",
        "item_category2": "Kitchen" if not sku.startswith("SHI") else "Shirts", "item_category3": None,
        "item_category4": None, "item_category5": None, "price_in_usd": float(PRICES[sku].replace(",", "")),
        "price": float(PRICES[sku].replace(",", "")), "quantity": qty, "item_revenue_in_usd": None,
        "item_revenue": None, "item_refund": None, "coupon": None, "affiliation": None, "location_id": None,
        "item_list_id": None, "item_list_name": None, "item_list_index": None, "promotion_id": None,
        "item_params": [],
    }  # fmt: skip


#: GA4 events: (user, session, second offset, event name, [(sku, quantity)]).
GA4_EVENTS = [
    ("1234.111", 1709288000, 0, "session_start", []),
    ("1234.111", 1709288000, 5, "view_item_list", [("MUG-B-S", None), ("MUG-B-L", None), ("KET-R", None)]),
    ("1234.111", 1709288000, 20, "view_item", [("MUG-B-S", None)]),
    ("1234.111", 1709288000, 60, "add_to_cart", [("MUG-B-S", 2)]),
    ("1234.111", 1709288000, 90, "view_item", [("KET-R", None)]),
    ("1234.111", 1709288000, 200, "purchase", [("MUG-B-S", 2), ("KET-R", 1)]),
    ("5678.222", 1709288000, 30, "view_item", [("SHI-L-M", None)]),
    ("5678.222", 1709288000, 45, "view_item", [("SHI-L-L", None)]),
    ("5678.222", 1709288000, 50, "page_view", []),
    ("1234.111", 1709374000, 0, "view_item", [("OAK-1", None)]),
    ("1234.111", 1709374000, 40, "view_item", [("MUG-B-L", None)]),
]  # fmt: skip


def _ga4_records() -> list[dict]:
    out = []
    for user, session, dt, name, items in GA4_EVENTS:
        ts = GA4_T0 + dt * 1_000_000 + (session - 1709288000) * 1_000_000
        params = [
            {"key": "ga_session_id", "value": {"string_value": None, "int_value": str(session),
                                               "float_value": None, "double_value": None}},
            {"key": "page_location", "value": {"string_value": "https://shop.example.invalid/p",
                                               "int_value": None, "float_value": None, "double_value": None}},
            {"key": "engaged_session_event", "value": {"string_value": None, "int_value": "1",
                                                       "float_value": None, "double_value": None}},
        ]  # fmt: skip
        out.append(
            {
                "event_date": "20240301", "event_timestamp": str(ts), "event_name": name, "event_params": params,
                "event_previous_timestamp": None, "event_value_in_usd": None, "event_bundle_sequence_id": "7",
                "user_id": None, "user_pseudo_id": user, "privacy_info": {"analytics_storage": "Yes"},
                "user_properties": [], "user_first_touch_timestamp": str(GA4_T0 - 10**9),
                "device": {"category": "desktop", "operating_system": "Windows"},
                "geo": {"country": "France", "city": "Lyon"}, "stream_id": "4200000001", "platform": "WEB",
                "ecommerce": {"transaction_id": "T1", "purchase_revenue": 63.9} if name == "purchase" else None,
                "items": [_ga4_item(sku, qty) for sku, qty in items],
            }
        )  # fmt: skip
    return out


def ga4_json(folder: Path) -> dict[str, Path]:
    """GA4's BigQuery export (``events_YYYYMMDD`` extracted as newline-delimited JSON, as ``bq
    extract`` writes it: INT64 as strings, ``event_params`` as key / typed-value structs, an
    ``items`` array of structs on e-commerce events, an empty array on the others)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events_20240301.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in _ga4_records()), encoding="utf-8")
    return {"events": path}


def ga4_parquet(folder: Path) -> dict[str, Path]:
    """The same export extracted as Parquet (``bq extract --destination_format PARQUET``): the
    nested fields as lists of structs, INT64 as integers."""
    import pandas as pd

    records = _ga4_records()
    for r in records:
        r["event_timestamp"] = int(r["event_timestamp"])
        for p in r["event_params"]:
            v = p["value"]["int_value"]
            p["value"]["int_value"] = None if v is None else int(v)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events_20240301.parquet"
    pd.DataFrame(records).to_parquet(path, index=False)
    return {"events": path}


GA4_FLAT_COLUMNS = [
    "event_date", "event_timestamp", "event_name", "user_pseudo_id", "ga_session_id", "item_id", "item_name",
    "item_brand", "item_category", "item_category2", "price", "quantity",
]  # fmt: skip


def ga4_flat_csv(folder: Path, session: bool = True) -> dict[str, Path]:
    """The same events flattened to CSV by ``SELECT event_date, event_timestamp, event_name,
    user_pseudo_id, (SELECT value.int_value FROM UNNEST(event_params) WHERE key = 'ga_session_id')
    AS ga_session_id, item.item_id, ... FROM events_*, UNNEST(items) AS item`` (events without
    items drop out of the join); ``session=False`` leaves the session id out of the query."""
    rows = []
    for r in _ga4_records():
        session_id = next(p["value"]["int_value"] for p in r["event_params"] if p["key"] == "ga_session_id")
        for item in r["items"]:
            row = {k: r[k] for k in ("event_date", "event_timestamp", "event_name", "user_pseudo_id")}
            row["ga_session_id"] = session_id
            row.update({k: item[k] for k in GA4_FLAT_COLUMNS if k in item})
            rows.append(row)
    header = GA4_FLAT_COLUMNS if session else [c for c in GA4_FLAT_COLUMNS if c != "ga_session_id"]
    return {"events": _csv(folder / "bq-results-20240305.csv", header, rows)}


MERCHANT_COLUMNS = [
    "id", "title", "description", "link", "image_link", "availability", "price", "sale_price", "brand", "gtin",
    "mpn", "condition", "google_product_category", "product_type", "gender", "age_group", "color", "size",
    "item_group_id", "shipping",
]  # fmt: skip


def _merchant_rows() -> list[dict]:
    rows = []
    for handle, title, vendor, taxonomy, kind, variants in PRODUCTS:
        for k, (opt, sku, price) in enumerate(variants):
            rows.append(
                {
                    "id": sku, "title": title if opt == "Default Title" else f"{title} {opt}",
                    "description": f"A {title.lower()} from {vendor}.", "link": f"https://shop.example.invalid/{handle}",
                    "image_link": f"https://cdn.example.invalid/{handle}-1.jpg",
                    "availability": "out of stock" if sku == "SHI-L-L" else "in stock", "price": f"{price} USD",
                    "sale_price": "", "brand": vendor, "gtin": f"0001234{k}", "mpn": sku, "condition": "new",
                    "google_product_category": "212" if kind == "Board" else taxonomy,
                    "product_type": "" if kind in ("Kettle", "Board") else f"Shop > {kind}s",
                    "gender": "unisex" if kind == "Shirt" else "", "age_group": "kids" if sku == "SHI-L-S" else "adult",
                    "color": "Blue", "size": opt if kind == "Shirt" else "",
                    "item_group_id": handle if len(variants) > 1 else "", "shipping": "US:CA:Overnight:16.00 USD",
                }
            )  # fmt: skip
    return rows


def merchant_tsv(folder: Path) -> dict[str, Path]:
    """A Google Merchant Center product feed as a tab-separated file (the spreadsheet upload):
    ``price`` like ``12.99 USD``, ``google_product_category`` a taxonomy path or its number,
    ``product_type`` the shop's own path, variants sharing an ``item_group_id``."""
    return {"catalog": _csv(folder / "products.tsv", MERCHANT_COLUMNS, _merchant_rows(), sep="\t")}


def merchant_atom(folder: Path) -> dict[str, Path]:
    """The same feed as Atom 1.0 XML: ``<entry>`` elements in the Atom namespace, every field in
    the ``g:`` namespace."""
    from xml.sax.saxutils import escape

    entries = []
    for r in _merchant_rows():
        fields = "".join(f"<g:{k}>{escape(str(v))}</g:{k}>" for k, v in r.items() if v != "")
        entries.append(f"<entry>{fields}</entry>")
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:g="http://base.google.com/ns/1.0">\n<title>Example shop</title>\n'
        '<link rel="self" href="https://shop.example.invalid"/>\n<updated>2024-03-05T10:00:00Z</updated>\n'
        + "\n".join(entries)
        + "\n</feed>\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feed_atom.xml"
    path.write_text(text, encoding="utf-8")
    return {"catalog": path}


def merchant_xml(folder: Path) -> dict[str, Path]:
    """The same feed as RSS 2.0 XML: ``<item>`` elements with the fields in the ``g:`` namespace
    (title, link and description plain, as Google's example feed writes them)."""
    from xml.sax.saxutils import escape

    items = []
    for r in _merchant_rows():
        fields = []
        for k, v in r.items():
            if v == "":
                continue
            tag = k if k in ("title", "link", "description") else f"g:{k}"
            fields.append(f"<{tag}>{escape(str(v))}</{tag}>")
        items.append("<item>" + "".join(fields) + "</item>")
    text = (
        '<?xml version="1.0"?>\n<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0">\n<channel>\n'
        "<title>Example shop</title>\n<link>https://shop.example.invalid</link>\n"
        "<description>Products</description>\n" + "\n".join(items) + "\n</channel>\n</rss>\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "feed.xml"
    path.write_text(text, encoding="utf-8")
    return {"catalog": path}


def shopify_orders_only(folder: Path) -> dict[str, Path]:
    return shopify_orders(folder, gift_card=True)


def magento_tsv(folder: Path) -> dict[str, Path]:
    return magento_order_items(folder, tsv=True)


def ga4_with_feed(folder: Path) -> dict[str, Path]:
    return {**ga4_json(folder), **merchant_xml(folder)}


#: The README's "Layouts tested" rows of the platforms' exports -> the writer of their files.
DOCUMENTED = {
    "Shopify (orders and products exports)": shopify,
    "Shopify orders export alone": shopify_orders_only,
    "Shopify products export alone": shopify_products,
    "WooCommerce (Customer/Order/Coupon Export, one row per item)": woocommerce_orders,
    "WooCommerce (Advanced Order Export)": woocommerce_advanced,
    "Magento 2 `sales_order_item` (CSV dump)": magento_order_items,
    "Magento 2 `sales_order_item` (`mysql --batch`, tab-separated)": magento_tsv,
    "GA4 BigQuery export (JSON lines)": ga4_json,
    "GA4 BigQuery export (Parquet)": ga4_parquet,
    "GA4 flattened by `UNNEST(items)` (CSV)": ga4_flat_csv,
    "GA4 events with the Merchant Center feed": ga4_with_feed,
    "Google Merchant Center feed (TSV)": merchant_tsv,
    "Google Merchant Center feed (RSS XML)": merchant_xml,
    "Google Merchant Center feed (Atom XML)": merchant_atom,
}
