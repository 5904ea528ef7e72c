"""Shop platforms' own exports import with no hand-work and (almost) no flags.

Each export is written small inside the test in its platform's documented layout
(``tests/_platform_layouts.py``: invented values), then imported with the command the README's
"Layouts tested" table gives for it, through the command line as a user runs it
(``recsys import csv ...``). Where something cannot be guessed, the message names the flag.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd
import pytest

from recsys.__main__ import main
from recsys.data.schema import load_dataset
from tests import _platform_layouts as layouts
from tests.unit.test_public_exports import documented_commands, reading

COMMANDS = {k: v for k, v in documented_commands().items() if k in layouts.DOCUMENTED}


def test_every_platform_layout_has_its_documented_command():
    assert sorted(COMMANDS) == sorted(layouts.DOCUMENTED)


def run(argv: list[str], tmp_path: Path, capsys) -> tuple[int, str]:
    rc = main(["--data-dir", str(tmp_path / "data"), "-q", *argv, "--name", "shop"])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, err


def imported(layout: str, tmp_path: Path, capsys, extra: tuple[str, ...] = ()):
    files = layouts.DOCUMENTED[layout](tmp_path / "in")
    by_name = {p.name: str(p) for p in files.values()}
    argv = [by_name.get(a, a) for a in shlex.split(COMMANDS[layout])[1:]]
    assert sorted(a for a in argv if a in by_name.values()) == sorted(by_name.values())
    rc, err = run([*argv, *extra], tmp_path, capsys)
    assert rc == 0, err
    return load_dataset("shop", tmp_path / "data")


def test_shopify_orders_with_the_products_export(tmp_path, capsys):
    ds = imported("Shopify (orders and products exports)", tmp_path, capsys)
    ev = ds.interactions
    assert ds.kind == "baskets" and set(ev["event_type"]) == {"purchase"}
    assert sorted(ev["sequence_id"].unique()) == ["#1001", "#1002", "#1004", "#1005"]  # #1003 cancelled
    order = ev[ev["sequence_id"] == "#1002"]
    assert order["item_id"].tolist() == ["SHI-L-M", "MUG-B-L", "OAK-1"]
    assert set(order["user_id"]) == {"bo@example.invalid"}  # on the order's first row only in the file
    assert set(order["timestamp"]) == {pd.Timestamp("2024-03-01 22:40:12")}  # +0100 -> UTC
    assert ev[ev["sequence_id"] == "#1001"]["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 15:15:00")
    assert ev[(ev["sequence_id"] == "#1005") & (ev["item_id"] == "MUG-B-S")]["quantity"].item() == 4
    cat = ds.catalog.set_index("item_id")
    assert sorted(cat.index) == sorted(layouts.SKUS)  # one item per variant; image rows are none
    assert cat.loc["MUG-B-L", "title"] == "Blue Mug" and cat.loc["MUG-B-L", "brand"] == "Acme"
    assert cat.loc["SHI-L-L", "category"] == "Apparel & Accessories > Clothing > Shirts & Tops"
    assert cat.loc["SHI-L-L", "price"] == pytest.approx(47.0)
    assert cat.loc["OAK-1", "price"] == pytest.approx(1099.0)
    assert cat.loc["MUG-B-L", "image_url"].endswith("blue-mug-1.jpg")  # the product's image
    assert cat.loc["SHI-L-M", "image_url"].endswith("linen-shirt-m.jpg")  # the variant's own
    assert cat.loc["KET-R", "description"] == "A red kettle & more."
    assert "Shopify orders export" in reading(ds) and "Shopify products export" in reading(ds, "catalog")


def test_shopify_orders_alone_name_a_line_without_sku(tmp_path, capsys):
    ds = imported("Shopify orders export alone", tmp_path, capsys)
    order = ds.interactions[ds.interactions["sequence_id"] == "#1004"]
    assert order["item_id"].tolist() == ["SHI-L-S", "SHI-L-L", "Gift Card - $25"]
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["SHI-L-S", "title"] == "Linen Shirt - S" and cat.loc["OAK-1", "brand"] == "Cork & Co"
    assert cat.loc["MUG-B-S", "price"] == pytest.approx(12.0)


def test_shopify_variants_without_sku_join_the_orders_lines(tmp_path, capsys):
    """A variant with no SKU is named as the orders export names its line (title - options)."""
    orders = layouts.shopify_orders(tmp_path / "in", no_sku="SHI-")["events"]
    products = layouts.shopify_products(tmp_path / "in", no_sku="linen-shirt")["catalog"]
    rc, err = run(["import", "csv", str(orders), "--catalog", str(products)], tmp_path, capsys)
    assert rc == 0, err
    ds = load_dataset("shop", tmp_path / "data")
    cat = ds.catalog.set_index("item_id")
    assert {"Linen Shirt - S", "Linen Shirt - M", "Linen Shirt - L"} <= set(cat.index)
    assert cat.loc["Linen Shirt - L", "price"] == pytest.approx(47.0)
    order = ds.interactions[ds.interactions["sequence_id"] == "#1004"]
    assert order["item_id"].tolist() == ["Linen Shirt - S", "Linen Shirt - L"]
    assert ds.report.unknown_items == 0


def test_shopify_products_alone_are_the_catalogue(tmp_path, capsys):
    ds = imported("Shopify products export alone", tmp_path, capsys)
    assert len(ds.interactions) == 0 and sorted(ds.catalog["item_id"]) == sorted(layouts.SKUS)
    assert "read as the catalogue" in reading(ds, "catalog")


def test_woocommerce_order_export_one_row_per_item(tmp_path, capsys):
    ds = imported("WooCommerce (Customer/Order/Coupon Export, one row per item)", tmp_path, capsys)
    ev = ds.interactions
    assert ds.kind == "baskets" and sorted(ev["sequence_id"].unique()) == ["4711", "4712", "4714"]
    assert set(ev["item_id"]) == {"101", "205", "310"}  # the product, not the line's item_id
    assert set(ev[ev["sequence_id"] == "4712"]["user_id"]) == {"guest@example.invalid"}
    assert set(ev[ev["sequence_id"] == "4711"]["user_id"]) == {"12"}
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["101", "price"] == pytest.approx(12.0)  # item_total 24.00 for 2
    assert cat.loc["310", "title"] == "Linen Shirt - M"
    assert "cancelled (1)" in reading(ds)


def test_woocommerce_advanced_order_export(tmp_path, capsys):
    ds = imported("WooCommerce (Advanced Order Export)", tmp_path, capsys)
    ev = ds.interactions
    assert sorted(ev["sequence_id"].unique()) == ["4711", "4712", "4714"]
    second = ev[ev["sequence_id"] == "4712"]
    assert second["item_id"].tolist() == ["KET-R", "SHI-310"]
    assert set(second["user_id"]) == {"guest@example.invalid"}  # filled down to the second line
    assert set(second["timestamp"]) == {pd.Timestamp("2024-03-01 11:02")}
    assert ds.catalog.set_index("item_id").loc["KET-R", "price"] == pytest.approx(39.9)


@pytest.mark.parametrize(
    "layout",
    [
        "Magento 2 `sales_order_item` (CSV dump)",
        "Magento 2 `sales_order_item` (`mysql --batch`, tab-separated)",
    ],
)
def test_magento_order_items_count_a_configurable_once(layout, tmp_path, capsys):
    ds = imported(layout, tmp_path, capsys)
    ev = ds.interactions
    assert ds.kind == "baskets" and len(ev) == 6
    assert set(ev["item_id"]) == {"11", "12", "71", "73"}  # the parent product 70 is no line
    assert ev[ev["sequence_id"] == "3"].set_index("item_id").loc["71", "quantity"] == 2
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["71", "price"] == pytest.approx(45.0)  # the child's 0 price is its parent's
    assert cat.loc["71", "title"] == "Linen Shirt-M" and cat.loc["11", "description"] == ""
    assert ev["timestamp"].min() == pd.Timestamp("2024-03-01 15:15:00")


def test_magento_with_a_map_in_the_dumps_own_names(tmp_path, capsys):
    ds = imported(
        "Magento 2 `sales_order_item` (CSV dump)", tmp_path, capsys, ("--map", "sku=item_id", "product_id=-")
    )
    assert set(ds.interactions["item_id"]) == {"MUG-B", "KET-R", "SHI-L-M", "SHI-L-L"}


def _ga4_expected(ds) -> None:
    ev = ds.interactions
    assert ev["event_type"].value_counts().to_dict() == {"view": 6, "purchase": 2, "cart": 1}
    assert ev["sequence_id"].nunique() == 3 and set(ev["user_id"]) == {"1234.111", "5678.222"}
    first = ev[ev["sequence_id"] == "1234.111:1709288000"].sort_values("position")
    assert first["item_id"].tolist() == ["MUG-B-S", "MUG-B-S", "KET-R", "MUG-B-S", "KET-R"]
    assert first["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 10:15:20.123456")  # microseconds
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["SHI-L-M", "category"] == "Apparel > Shirts" and cat.loc["KET-R", "brand"] == "Bolt"
    assert "view_item_list" in " ".join(ds.report.rows_dropped)


def test_ga4_bigquery_json_export(tmp_path, capsys):
    ds = imported("GA4 BigQuery export (JSON lines)", tmp_path, capsys)
    _ga4_expected(ds)
    assert "2 event row(s) without items left out" in reading(ds)


@pytest.mark.parametrize(
    "layout", ["GA4 flattened by `UNNEST(items)` (CSV)", "GA4 BigQuery export (Parquet)"]
)
def test_ga4_flattened_csv_and_parquet_give_the_same_dataset(layout, tmp_path, capsys):
    ds = imported(layout, tmp_path, capsys)
    _ga4_expected(ds)
    from_json = imported("GA4 BigQuery export (JSON lines)", tmp_path / "json", capsys)
    pd.testing.assert_frame_equal(ds.interactions, from_json.interactions)


def test_ga4_events_with_the_merchant_feed(tmp_path, capsys):
    ds = imported("GA4 events with the Merchant Center feed", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert set(ds.interactions["item_id"]) <= set(cat.index) and len(cat) == len(layouts.SKUS)
    assert cat.loc["MUG-B-S", "title"] == "Blue Mug Small"  # the feed's, not the events'
    assert ds.report.unknown_items == 0


@pytest.mark.parametrize(
    "layout",
    [
        "Google Merchant Center feed (TSV)",
        "Google Merchant Center feed (RSS XML)",
        "Google Merchant Center feed (Atom XML)",
    ],
)
def test_merchant_center_feed(layout, tmp_path, capsys):
    ds = imported(layout, tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert len(ds.interactions) == 0 and sorted(cat.index) == sorted(layouts.SKUS)
    assert cat.loc["MUG-B-S", "price"] == pytest.approx(12.0)  # "12.00 USD"
    assert cat.loc["OAK-1", "price"] == pytest.approx(1099.0)  # "1,099.00 USD"
    assert cat.loc["MUG-B-S", "category"] == "Shop > Mugs"  # product_type
    assert cat.loc["KET-R", "category"] == (
        "Home & Garden > Kitchen & Dining > Kitchen Appliances"
    )  # no product_type: Google's path
    assert cat.loc["OAK-1", "category"] == ""  # Google's category number is no path
    assert cat.loc["SHI-L-S", "gender"] == "kids" and cat.loc["SHI-L-M", "gender"] == "unisex"
    assert not cat.loc["SHI-L-L", "in_stock"] and cat.loc["SHI-L-M", "in_stock"]
    assert cat.loc["MUG-B-L", "brand"] == "Acme" and cat.loc["MUG-B-L", "item_group_id"] == "blue-mug"
    assert cat.loc["KET-R", "image_url"] == "https://cdn.example.invalid/red-kettle-1.jpg"


def test_ga4_csv_without_a_session_column_names_the_session_gap(tmp_path, capsys):
    path = layouts.ga4_flat_csv(tmp_path / "in", session=False)["events"]
    rc, err = run(["import", "csv", str(path)], tmp_path, capsys)
    assert rc == 2 and "no column holds a session" in err and "--session-gap 30m" in err
    rc, err = run(["import", "csv", str(path), "--session-gap", "30m"], tmp_path, capsys)
    assert rc == 0, err
    assert load_dataset("shop", tmp_path / "data").interactions["sequence_id"].nunique() == 3


def test_a_products_export_before_an_events_file_names_catalog(tmp_path, capsys):
    files = layouts.shopify(tmp_path / "in")
    rc, err = run(
        ["import", "csv", str(files["catalog"]), "--catalog", str(files["events"])], tmp_path, capsys
    )
    assert rc == 2 and "--catalog" in err and "Shopify" in err


def test_the_kind_given_wins_over_the_layouts(tmp_path, capsys):
    ds = imported("Magento 2 `sales_order_item` (CSV dump)", tmp_path, capsys, ("--kind", "sessions"))
    assert ds.kind == "sessions"


def test_a_bad_value_is_reported_at_its_row_in_the_file(tmp_path, capsys):
    """Lines left out by the layout (a cancelled order's) do not shift the row a message names."""
    path = layouts.shopify_orders(tmp_path / "in")["events"]
    lines = path.read_text(encoding="utf-8").splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("#1004"))  # after #1003, cancelled
    lines[row] = lines[row].replace(",1,Linen Shirt - S,", ",two,Linen Shirt - S,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rc, err = run(["import", "csv", str(path)], tmp_path, capsys)
    assert rc == 2 and f"'two' at row {row}" in err, err
