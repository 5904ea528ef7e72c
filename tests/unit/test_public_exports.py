"""Public e-commerce / recsys exports import as their publishers ship them.

Each layout is written small inside the test (``tests/_export_layouts.py``: the publisher's
column names, separator, header or none, suffix and time format; invented values), then
imported with the command the README's "Layouts tested" table gives for it, through the
command line as a user runs it. Without the flags a file cannot say for itself, the import
stops with a message naming them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from recsys.__main__ import main
from recsys.data.schema import load_dataset
from tests import _export_layouts as layouts

README = Path(__file__).resolve().parents[2] / "README.md"

WRITERS = {
    "RetailRocket": layouts.retailrocket,
    "Diginetica": layouts.diginetica,
    "YooChoose": layouts.yoochoose,
    "H&M": layouts.hm,
    "Online Retail II (`.xlsx`, one sheet a year)": layouts.online_retail_ii_xlsx,
    "Online Retail II (CSV)": layouts.online_retail_ii_csv,
    "Online Retail II, its own importer": layouts.online_retail_ii_xlsx,
    "Amazon reviews 2014/2018": layouts.amazon_2018,
    "Amazon reviews 2023": layouts.amazon_2023,
    "MovieLens": layouts.movielens,
    "MovieLens 1M (`.dat`, `::`)": layouts.movielens_1m,
    "Olist": layouts.olist,
}


def documented_commands() -> dict[str, str]:
    section = README.read_text(encoding="utf-8").split("**Layouts tested:", 1)[1].split("\n#", 1)[0]
    return dict(re.findall(r"^\| ([^|]+?) \| `(recsys import [a-z_]+ [^`]+)` \|", section, flags=re.M))


COMMANDS = documented_commands()


def test_every_layout_has_one_documented_command():
    from tests._platform_layouts import DOCUMENTED  # the platforms' rows: test_platform_exports.py

    assert sorted(COMMANDS) == sorted([*WRITERS, *DOCUMENTED])


def run_import(layout: str, tmp_path: Path, capsys, drop_flags: bool = False) -> tuple[int, str, str]:
    files = WRITERS[layout](tmp_path / "in")
    by_name = {p.name: str(p) for p in files.values()}
    argv = shlex.split(COMMANDS[layout])[1:]  # without the program name
    if drop_flags:  # the files alone, as a first try would be
        argv = argv[:3] + (["--catalog", argv[4]] if "--catalog" in argv else [])
    argv = [by_name.get(a, a) for a in argv]
    assert all(p in argv for p in by_name.values())
    rc = main(["--data-dir", str(tmp_path / "data"), "-q", *argv, "--name", "shop"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def imported(layout: str, tmp_path: Path, capsys):
    rc, _, err = run_import(layout, tmp_path, capsys)
    assert rc == 0, err
    return load_dataset("shop", tmp_path / "data")


def reading(ds, table: str = "interactions") -> str:
    return " ".join(f"{k}: {v}" for k, v in ds.report.reading.get(table, {}).items())


def test_retailrocket_events(tmp_path, capsys):
    ds = imported("RetailRocket", tmp_path, capsys)
    ev = ds.interactions
    assert ev["event_type"].value_counts().to_dict() == {"view": 8, "cart": 8, "purchase": 8}
    assert ev["timestamp"].min() == pd.Timestamp(layouts.EPOCH * 1000 + 117, unit="ms")
    assert ev["sequence_id"].nunique() == 8 and ev["user_id"].nunique() == 8
    assert "unix milliseconds" in reading(ds) and "'transactionid' not used as sequence_id" in reading(ds)


def test_diginetica_semicolon_views_and_products(tmp_path, capsys):
    ds = imported("Diginetica", tmp_path, capsys)
    ev = ds.interactions
    assert len(ev) == 24 and ev["sequence_id"].nunique() == 8
    assert sorted(ev["user_id"].unique()) == ["", "5000", "5003", "5006"]  # NA is no user
    first = ev[ev["sequence_id"] == "1"].sort_values("position")
    assert first["item_id"].tolist() == ["81766", "81767", "81768"]
    assert first["timestamp"].iloc[0] == pd.Timestamp("2016-05-09")
    assert "without a time zone" in reading(ds)
    cat = ds.catalog.set_index("item_id")
    assert len(cat) == 10 and cat["price"].isna().all()  # pricelog2 is no price
    assert cat.loc["81766", "product.name.tokens"] == "4875,1,1000"


def test_yoochoose_headerless_dat(tmp_path, capsys):
    ds = imported("YooChoose", tmp_path, capsys)
    ev = ds.interactions
    assert len(ev) == 24 and ev["sequence_id"].nunique() == 8
    assert ev["timestamp"].min() == pd.Timestamp("2014-04-07 10:51:09.277")
    assert set(ds.catalog["item_id"]) == {str(214536502 + i) for i in range(10)}


def test_hm_transactions_and_articles(tmp_path, capsys):
    ds = imported("H&M", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["0108775015", "title"] == "Blue Mug"
    assert cat.loc["0108775015", "category"] == "Vest top"
    assert "soft jersey" in cat.loc["0108775015", "description"]
    assert cat.loc["0108775015", "price"] == pytest.approx(0.0508)
    ev = ds.interactions
    assert ds.kind == "baskets" and ev["sequence_id"].nunique() == 8  # one basket per customer and day
    assert set(ev["item_id"]) <= set(cat.index)


@pytest.mark.parametrize("layout", ["Online Retail II (`.xlsx`, one sheet a year)", "Online Retail II (CSV)"])
def test_online_retail_ii(layout, tmp_path, capsys):
    ds = imported(layout, tmp_path, capsys)
    ev = ds.interactions
    assert len(ev) == 33 and ev["sequence_id"].nunique() == 11  # the cancelled invoice dropped
    assert sum(ds.report.rows_dropped.values()) == 3
    assert "13085" in set(ev["user_id"]) and not ev["user_id"].str.endswith(".0").any()
    assert "" in set(ev["user_id"])  # a line with no customer is kept
    assert ev["timestamp"].min() == pd.Timestamp("2009-12-01 07:45:00")
    assert ds.catalog.set_index("item_id").loc["21232", "price"] == pytest.approx(1.25)
    if layout.endswith("year)"):
        assert "2 sheets with the same columns" in reading(ds)


def test_online_retail_ii_workbook_through_the_online_retail_importer(tmp_path, capsys):
    ds = imported("Online Retail II, its own importer", tmp_path, capsys)
    assert ds.kind == "baskets" and len(ds.interactions) == 33
    assert ds.report.rows_dropped == {"cancellation (InvoiceNo starts with 'C')": 3}
    assert ds.catalog.set_index("item_id").loc["21232", "title"] == "Blue Mug"
    assert "13085" in set(ds.interactions["user_id"])


def test_amazon_2018_gzipped_json_lines(tmp_path, capsys):
    ds = imported("Amazon reviews 2014/2018", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["0000013710", "title"] == "Blue Mug"
    assert cat.loc["0000013710", "category"] == "Home & Kitchen > Kitchen"
    assert cat.loc["0000013710", "price"] == pytest.approx(3.99)
    assert cat.loc["0000013710", "description"] == "A blue mug. Dishwasher safe."
    assert ds.interactions["timestamp"].min() == pd.Timestamp(layouts.EPOCH, unit="s")
    assert ds.interactions["user_id"].nunique() == 8


def test_amazon_2023_jsonl(tmp_path, capsys):
    ds = imported("Amazon reviews 2023", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["B00BBQ29N5", "title"] == "Blue Mug"  # the product's, not a review's title
    assert cat.loc["B00BBQ29N5", "category"] == "All Beauty"
    assert set(ds.interactions["item_id"]) <= set(cat.index)  # parent_asin, the metadata's key
    assert ds.interactions["timestamp"].min() == pd.Timestamp(layouts.EPOCH * 1000 + 948, unit="ms")


def test_amazon_2023_reviews_alone_do_not_title_the_products(tmp_path, capsys):
    files = layouts.amazon_2023(tmp_path / "in")
    rc = main(
        ["--data-dir", str(tmp_path / "data"), "-q", "import", "csv", str(files["events"]),
         "--session-gap", "1d", "--name", "shop"]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    ds = load_dataset("shop", tmp_path / "data")
    assert (ds.catalog["title"] == "").all()
    assert "'title' left out" in reading(ds)


def test_movielens_ratings_and_movies(tmp_path, capsys):
    ds = imported("MovieLens", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["1", "title"] == "Blue Mug, The (1990)"
    assert cat.loc["1", "category"] == "Adventure|Animation|Children"
    assert ds.interactions["timestamp"].min() == pd.Timestamp(layouts.EPOCH, unit="s")
    assert ds.interactions["sequence_id"].nunique() == 8


def test_movielens_1m_double_colon_dat_files(tmp_path, capsys):
    ds = imported("MovieLens 1M (`.dat`, `::`)", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert (
        cat.loc["1", "title"] == "Blue Mug, La Cité (1990)" and cat.loc["1", "category"] == "Animation|Comedy"
    )
    assert len(ds.interactions) == 24 and ds.interactions["sequence_id"].nunique() == 8
    assert ds.interactions["timestamp"].min() == pd.Timestamp(layouts.EPOCH, unit="s")
    assert "'::' (detected)" in reading(ds)


def test_olist_order_items_and_products(tmp_path, capsys):
    ds = imported("Olist", tmp_path, capsys)
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["4244733e06e7ecb4970a6e2683c13e60", "category"] == "perfumaria"
    assert cat.loc["4244733e06e7ecb4970a6e2683c13e60", "price"] == pytest.approx(58.9)
    ev = ds.interactions
    assert ds.kind == "baskets" and ev["sequence_id"].nunique() == 8 and len(ev) == 16


@pytest.mark.parametrize(
    "layout, words",
    [
        ("RetailRocket", ["no column holds a session", "--session-gap 30m"]),
        ("H&M", ["no column holds a session", "--session-gap"]),
        ("MovieLens", ["no column holds a session", "--session-gap"]),
        ("Amazon reviews 2023", ["no column holds a session", "--session-gap"]),
        (
            "YooChoose",
            ["no header row", "2014-04-07T10:51:09.277Z", "--columns sequence_id,timestamp,item_id,category"],
        ),
        ("Online Retail II (`.xlsx`, one sheet a year)", ["non-positive quantity", "--errors drop"]),
        ("MovieLens 1M (`.dat`, `::`)", ["not valid utf-8", "--catalog-encoding cp1252"]),
    ],
)
def test_without_the_flags_the_message_names_them(layout, words, tmp_path, capsys):
    rc, _, err = run_import(layout, tmp_path, capsys, drop_flags=True)
    assert rc == 2 and err.startswith("error: ")
    for word in words:
        assert word in err, err
