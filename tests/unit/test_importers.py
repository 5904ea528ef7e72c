"""Importers: exact answers on tiny files in each dataset's format, then the real datasets.

The real-data tests need ../shared/datasets (see its README.md for the counts used
here) and are skipped with a reason when it is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.adapters import (
    import_dataset,
    import_instacart,
    import_online_retail,
    import_rees46,
    rees46_category,
)
from recsys.data.schema import dataset_meta, list_datasets, load_dataset
from recsys.errors import DataValidationError
from tests._instacart_data import instacart_catalogue, instacart_kaggle_folder

ONLINE_RETAIL = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536365,POST,POSTAGE,1,2010-12-01 08:26:00,18.00,17850.0,United Kingdom
536366,85123a,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 09:00:00,2.95,,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-01 09:00:00,1.85,,United Kingdom
C536367,71053,WHITE METAL LANTERN,-6,2010-12-01 10:00:00,3.39,17850.0,United Kingdom
536368,POST,POSTAGE,1,2010-12-02 10:00:00,18.00,12583.0,France
536368,M,Manual,1,2010-12-02 10:00:00,0.85,12583.0,France
536369,22633,damaged,-4,2010-12-02 11:00:00,0.0,,United Kingdom
536370,21116,Found,5,2010-12-02 12:00:00,0.0,,United Kingdom
536371,85123A,CREAM HANGING HEART T-LIGHT HOLDER,1,2010-12-03 12:00:00,3.10,12583.0,France
536371,gift_0001_20,Dotcomgiftshop Gift Voucher £20.00,1,2010-12-03 12:00:00,16.67,12583.0,France
"""

REES46 = """event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:05 UTC,view,1307067,2053013558920217191,computers.notebook,lenovo,251.74,550050854,sess-a
2019-10-01 00:00:01 UTC,view,1307068,2053013558920217191,computers.notebook,lenovo,260.00,550050854,sess-a
2019-10-01 00:00:09 UTC,cart,1307067,2053013558920217191,computers.notebook,lenovo,249.00,550050854,sess-a
2019-10-01 00:01:00 UTC,view,17200506,2053013559792632471,furniture.living_room.sofa,,543.10,519107250,sess-b
2019-10-01 00:02:00 UTC,remove_from_cart,17200506,2053013559792632471,furniture.living_room.sofa,,543.10,519107250,sess-b
2019-10-01 00:03:00 UTC,purchase,44600062,2103807459595387724,,shiseido,35.79,541312140,sess-c
2019-10-01 00:04:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,
"""


def _instacart_folder(folder: Path) -> Path:
    instacart_catalogue(folder)
    (folder / "order_products.csv").write_text(
        "order_id,product_id,add_to_cart_order,reordered\n10,2,2,0\n10,1,1,1\n2,3,1,0\n2,1,2,1\n36,2,1,0\n"
    )
    return folder


def _invariant(ds) -> None:
    """Every event line of the source is either kept or counted as dropped."""
    assert sum(ds.report.rows_dropped.values()) + len(ds.interactions) == ds.report.rows_read["interactions"]


# --------------------------------------------------------------------------------------
# tiny files with known answers
# --------------------------------------------------------------------------------------


def test_online_retail_format(tmp_path):
    path = tmp_path / "online_retail.csv"
    path.write_text(ONLINE_RETAIL, encoding="utf-8")
    ds = import_online_retail(path)
    assert ds.kind == "baskets"
    assert ds.report.rows_dropped == {
        "cancellation (InvoiceNo starts with 'C')": 1,
        "non-product code POST": 2,
        "non-product code M": 1,
        "non-product code GIFT_* (gift voucher)": 1,
        "non-positive quantity (stock adjustment)": 1,
        "zero or negative unit price (adjustment or free item)": 1,
    }
    _invariant(ds)
    inter = ds.interactions
    assert sorted(inter["sequence_id"].unique()) == ["536365", "536366", "536371"]  # 536368 was only fees
    assert set(inter["user_id"]) == {"17850", "", "12583"}
    assert (inter["event_type"] == "purchase").all()
    cat = ds.catalog.set_index("item_id")
    assert sorted(cat.index) == ["22633", "71053", "85123A"]  # 85123a merged into 85123A
    assert cat.loc["85123A", "title"] == "White Hanging Heart T-Light Holder"  # the most frequent description
    assert cat.loc["85123A", "price"] == pytest.approx(2.95)  # median of 2.55, 2.95, 3.10
    assert cat.loc["85123A", "category"] == "Home Decor > Candles & Lights"
    assert inter.loc[inter["sequence_id"] == "536365", "quantity"].tolist() == [6.0, 6.0]
    assert any("no CustomerID" in w for w in ds.report.warnings)


def test_online_retails_count_of_lines_without_a_customer_reads_as_a_count(tmp_path):
    """The import prints it: 131421 read as a code, 131,421 as a count."""
    lines = [
        f"5{i // 4:05d},2{i % 50:04d},MUG {i % 50},1,2010-12-01 09:00:00,1.50,,United Kingdom"
        for i in range(1200)
    ]
    path = tmp_path / "retail.csv"
    path.write_text(ONLINE_RETAIL.splitlines()[0] + "\n" + "\n".join(lines) + "\n")
    ds = import_online_retail(path)
    assert "1,200 invoice lines have no CustomerID (kept, user_id '')" in ds.report.warnings


def test_instacart_format(tmp_path):
    ds = import_instacart(_instacart_folder(tmp_path / "ic"))
    assert ds.kind == "baskets"
    cat = ds.catalog.set_index("item_id")
    assert len(cat) == 4  # the whole catalogue, ordered or not
    assert cat.loc["1", "category"] == "Snacks > Cookies Cakes"
    assert cat.loc["2", "category"] == "Pantry > Spices Seasonings"
    assert cat.loc["3", "category"] == ""  # the "missing" aisle/department
    assert cat["price"].isna().all() and ds.report.missing_prices == 4
    assert cat.loc["1", "aisle_id"] == "61"
    inter = ds.interactions
    # position from add_to_cart_order, not from file order
    assert inter.loc[inter["sequence_id"] == "10", "item_id"].tolist() == ["1", "2"]
    # synthetic time: monotone in order_id (2 < 10 < 36), spread over 90 days
    first = inter.groupby("sequence_id")["timestamp"].first()
    assert first["2"] < first["10"] < first["36"]
    assert first["2"] == pd.Timestamp("2017-01-01")
    assert any("synthetic" in w for w in ds.report.warnings)
    _invariant(ds)


@pytest.mark.parametrize("gz", [False, True])
def test_instacart_kaggle_layout(tmp_path, gz):
    """Kaggle's files (orders.csv, order_products__prior.csv, order_products__train.csv) are read:
    baskets = orders (prior and train lines), users from orders.csv, and a time that holds out
    each user's last order."""
    ds = import_instacart(instacart_kaggle_folder(tmp_path / "kg", gz=gz))
    assert ds.kind == "baskets"
    cat = ds.catalog.set_index("item_id")
    assert len(cat) == 4 and cat.loc["1", "category"] == "Snacks > Cookies Cakes"
    inter = ds.interactions
    assert ds.report.rows_read["interactions"] == 9  # 7 prior + 2 train lines
    assert sorted(inter["sequence_id"].unique()) == ["10", "2", "36", "50"]  # 99: not in orders.csv
    assert sum(ds.report.rows_dropped.values()) == 1
    _invariant(ds)
    users = inter.groupby("sequence_id")["user_id"].first()
    assert users.to_dict() == {"10": "7", "2": "7", "36": "7", "50": "8"}
    assert inter.loc[inter["sequence_id"] == "10", "item_id"].tolist() == ["1", "2"]  # add_to_cart_order
    first = inter.groupby("sequence_id")["timestamp"].first()
    end = pd.Timestamp("2017-12-31")
    # user 7's last order (10) on the last day, the earlier ones 5 and 10 days before it
    assert first["10"] == end + pd.Timedelta(hours=9)
    assert first["36"] == end - pd.Timedelta(days=5) + pd.Timedelta(hours=8)
    assert first["2"] == end - pd.Timedelta(days=10) + pd.Timedelta(hours=14)
    # user 8's last order (51, test set) has no lines: order 50 sits 30 days before it
    assert first["50"] == end - pd.Timedelta(days=30) + pd.Timedelta(hours=23)
    assert any("synthetic" in w and "last order" in w for w in ds.report.warnings)


def test_instacart_folder_without_order_lines_names_both_layouts(tmp_path):
    folder = instacart_kaggle_folder(tmp_path / "kg")
    (folder / "order_products__prior.csv").unlink()
    (folder / "order_products__train.csv").unlink()
    with pytest.raises(DataValidationError, match="order_products__prior.csv") as info:
        import_instacart(folder)
    assert "order_products.csv" in str(info.value) and "orders.csv" in str(info.value)


def test_cli_imports_instacart_in_kaggle_layout(tmp_path, capsys):
    from recsys.cli import main

    folder = instacart_kaggle_folder(tmp_path / "kg")
    assert main(["--data-dir", str(tmp_path / "d"), "import", "instacart", str(folder), "--name", "kag"]) == 0
    stored = load_dataset("kag", tmp_path / "d")
    assert stored.interactions["sequence_id"].nunique() == 4
    assert set(stored.interactions["user_id"]) == {"7", "8"}


def test_rees46_format(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(REES46)
    ds = import_rees46(path)
    assert ds.kind == "sessions"
    assert ds.report.rows_dropped == {"event type remove_from_cart": 1, "no user_session": 1}
    _invariant(ds)
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["1307067", "category"] == "Computers > Notebook"
    assert cat.loc["17200506", "category"] == "Furniture > Living Room > Sofa"
    assert cat.loc["44600062", "category"] == ""
    assert cat.loc["17200506", "brand"] == ""
    assert cat.loc["1307067", "brand"] == "lenovo"
    assert cat.loc["1307067", "price"] == pytest.approx((251.74 + 249.00) / 2)
    assert cat.loc["1307067", "title"] == "Lenovo Notebook (1307067)"
    assert cat.loc["44600062", "title"] == "Shiseido (44600062)"
    assert cat.loc["1307067", "category_id"] == "2053013558920217191"
    a = ds.interactions[ds.interactions["sequence_id"] == "sess-a"]
    assert a["item_id"].tolist() == ["1307068", "1307067", "1307067"]  # by event_time
    assert a["event_type"].tolist() == ["view", "view", "cart"]
    assert a["timestamp"].iloc[0] == pd.Timestamp("2019-10-01 00:00:01")


def test_rees46_category_codes():
    assert rees46_category("appliances.kitchen.washer") == "Appliances > Kitchen > Washer"
    assert rees46_category("furniture.living_room.sofa") == "Furniture > Living Room > Sofa"
    assert rees46_category("") == ""


def test_import_dataset_dispatches_and_stores(tmp_path, tmp_data_dir):
    path = tmp_path / "or.csv"
    path.write_text(ONLINE_RETAIL)
    ds = import_dataset("online_retail", path, root=tmp_data_dir)
    assert list_datasets(tmp_data_dir) == ["online_retail"]
    assert load_dataset("online_retail", tmp_data_dir).fingerprint() == ds.fingerprint()
    assert dataset_meta("online_retail", tmp_data_dir)["report"]["rows_dropped"]["non-product code POST"] == 2
    import_dataset("instacart", _instacart_folder(tmp_path / "ic"), name="ic", root=tmp_data_dir)
    ev = tmp_path / "events.csv"
    ev.write_text(REES46)
    import_dataset("rees46", ev, name="clicks", root=tmp_data_dir)
    assert list_datasets(tmp_data_dir) == ["clicks", "ic", "online_retail"]
    with pytest.raises(ValueError, match="unknown source"):
        import_dataset("excel", path, root=tmp_data_dir)
    with pytest.raises(ValueError, match="only applies to source 'csv'"):
        import_dataset("rees46", ev, root=tmp_data_dir, mapping={"a": "b"})
    with pytest.raises(DataValidationError, match="not found"):
        import_dataset("rees46", tmp_path / "nope.csv", root=tmp_data_dir)


def test_importer_refuses_a_file_of_the_wrong_format(tmp_path, tmp_data_dir):
    ev = tmp_path / "events.csv"
    ev.write_text(REES46)
    import_dataset("rees46", ev, name="shop", root=tmp_data_dir)
    before = (tmp_data_dir / "datasets" / "shop" / "interactions.parquet").read_bytes()
    with pytest.raises(DataValidationError, match="required column 'InvoiceNo' is missing") as info:
        import_dataset("online_retail", ev, name="shop", root=tmp_data_dir)
    assert info.value.file == str(ev)
    assert (tmp_data_dir / "datasets" / "shop" / "interactions.parquet").read_bytes() == before
    with pytest.raises(DataValidationError, match="no products.csv"):
        import_instacart(tmp_path)


# --------------------------------------------------------------------------------------
# the real datasets (../shared/datasets)
# --------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_online_retail(shared_datasets):
    t0 = time.process_time()
    ds = import_online_retail(shared_datasets / "online_retail" / "online_retail.csv.gz")
    cpu = time.process_time() - t0
    assert cpu < 30, f"import took {cpu:.1f} s of CPU"
    r = ds.report
    assert r.rows_read["interactions"] == 541_909
    _invariant(ds)
    assert r.rows_dropped["cancellation (InvoiceNo starts with 'C')"] == 9288
    assert r.rows_dropped["non-product code POST"] > 1000
    assert {"non-product code DOT", "non-product code M", "non-product code BANK CHARGES"} <= set(
        r.rows_dropped
    )
    s = ds.summary()
    # 22,064 non-cancelled invoices, less those holding only fees, postage or adjustments
    assert 19_000 <= s["sequences"] <= 22_064
    assert 3_500 <= s["items"] <= 4_070
    assert 4_200 <= s["users"] <= 4_339
    assert not ds.interactions["sequence_id"].str.startswith("C").any()
    assert not ds.interactions["user_id"].str.endswith(".0").any()
    assert (ds.interactions["quantity"] > 0).all() and (ds.catalog["price"] > 0).all()
    ts = ds.interactions["timestamp"]
    assert ts.min() == pd.Timestamp("2010-12-01 08:26:00") and ts.max() < pd.Timestamp("2011-12-10")
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["85123A", "title"] == "White Hanging Heart T-Light Holder"
    assert (ds.catalog["category"] != "").mean() > 0.5


@pytest.mark.realdata
def test_real_instacart(shared_datasets):
    ds = import_instacart(shared_datasets / "instacart_sample")
    s = ds.summary()
    assert s["items"] == 49_688
    assert s["interactions"] == 107_192
    assert s["sequences"] == 10_166
    assert s["top_categories"] >= 19
    assert ds.report.rows_dropped == {}
    assert ds.catalog.set_index("item_id").loc["1", "category"] == "Snacks > Cookies Cakes"
    # positions follow add_to_cart_order
    raw = pd.read_csv(shared_datasets / "instacart_sample" / "order_products.csv", nrows=200, dtype=str)
    first = raw[raw["order_id"] == raw["order_id"].iloc[0]].sort_values(
        "add_to_cart_order", key=lambda s: s.astype(int)
    )
    got = ds.interactions[ds.interactions["sequence_id"] == first["order_id"].iloc[0]]
    assert got["item_id"].tolist() == first["product_id"].tolist()
    order_ids = ds.interactions.groupby("sequence_id")["timestamp"].first()
    order_ids.index = order_ids.index.astype(int)
    assert order_ids.sort_index().is_monotonic_increasing


@pytest.mark.realdata
def test_real_rees46(shared_datasets):
    ds = import_rees46(shared_datasets / "rees46_sample" / "events.csv")
    s = ds.summary()
    assert s["interactions"] == 17_434
    assert s["sequences"] == 5_066
    assert s["items"] == 6_493
    assert s["brands"] == 864  # README's 865 counts the blank brand
    _invariant(ds)
    assert set(ds.interactions["event_type"]) <= {"view", "cart", "purchase"}
    assert ds.interactions["timestamp"].notna().all()
    assert ds.interactions["timestamp"].min() >= pd.Timestamp("2019-10-01")
    # category_code blank on about a third of events, brand on about 14%
    ev = ds.interactions.merge(ds.catalog[["item_id", "category", "brand"]], on="item_id")
    assert 0.2 < (ev["category"] == "").mean() < 0.45
    assert 0.08 < (ev["brand"] == "").mean() < 0.2
    assert ds.catalog.set_index("item_id").loc["1307067", "category"] == "Computers > Notebook"
    assert np.isfinite(ds.catalog["price"]).all()
