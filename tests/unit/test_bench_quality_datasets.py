"""``bench/quality.py`` scores datasets it has never seen: every folder of the datasets directory
it has no command for is read by the generic import's own detection (the largest table the
interactions, a file named like a catalogue its catalogue), a dataset the user imported with
``recsys import`` is scored by name (``--stored``), and what cannot be read is listed under
``skipped_datasets`` with the reason, never dropped in silence."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.adapters import import_dataset
from recsys.data.synthetic import generate_demo

# Loaded from its file, not by putting bench/ on sys.path (bench/umap.py would shadow umap-learn).
_spec = importlib.util.spec_from_file_location(
    "_bench_quality_datasets", Path(__file__).resolve().parents[2] / "bench" / "quality.py"
)
quality = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = quality
_spec.loader.exec_module(quality)

CHEAP = ["--models", "popularity", "cooccurrence", "--no-knn-tuning", "--max-cases", "100"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A datasets directory with a shop's own export under names no importer knows, a catalogue
    alone, a folder without a table, and a damaged table."""
    base = tmp_path_factory.mktemp("datasets")
    ds = generate_demo(n_items=300, seed=3)
    (base / "shop_export").mkdir()
    events = ds.interactions.rename(
        columns={"sequence_id": "order_id", "item_id": "product_id", "timestamp": "created_at"}
    )[["order_id", "product_id", "created_at"]]
    events.to_csv(base / "shop_export" / "order_lines.csv", index=False)
    catalog = ds.catalog.rename(columns={"item_id": "product_id", "title": "name"})[
        ["product_id", "name", "category", "price"]
    ]
    catalog.to_csv(base / "shop_export" / "products.csv", index=False)
    (base / "shop_export" / "README.txt").write_text("order lines of our shop, 2024\n")
    (base / "clicks").mkdir()  # a clickstream with visitors and times but no session column
    clicks = ds.interactions.rename(columns={"user_id": "visitorid", "item_id": "itemid", "timestamp": "ts"})
    clicks[["ts", "visitorid", "itemid"]].to_csv(base / "clicks" / "events.csv", index=False)
    # a European point-of-sale export: semicolons, decimal commas, day-first dotted dates, "... No"
    # headers, and a full article list larger than the sample of receipt lines
    (base / "pos_export").mkdir()
    lines = ds.interactions.head(400)
    pd.DataFrame(
        {
            "Receipt No": lines["sequence_id"],
            "Date": lines["timestamp"].dt.strftime("%d.%m.%Y %H:%M:%S"),
            "Customer No": lines["user_id"],
            "Article No": lines["item_id"],
            "Quantity": "1,5",
        }
    ).to_csv(base / "pos_export" / "receipt_lines.csv", sep=";", index=False)
    arts = ds.catalog.rename(columns={"item_id": "Article No", "title": "Name", "category": "Category"})
    arts = arts[["Article No", "Name", "Category"]].assign(Notes="x" * 400)
    arts.to_csv(base / "pos_export" / "articles.csv", sep=";", index=False)
    # a GA4-style event export (ISO times with an offset, GA4's event names, no session column)
    # with a product feed keyed by "id"
    (base / "ga_export").mkdir()
    ev = ds.interactions.head(600)
    names = {"view": "view_item", "cart": "add_to_cart", "purchase": "purchase"}
    pd.DataFrame(
        {
            "event_datetime": (ev["timestamp"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")).map(
                lambda t: t.isoformat()
            ),
            "event_name": ev["event_type"].map(names),
            "item_id": ev["item_id"],
            "client_id": ev["user_id"],
        }
    ).to_csv(base / "ga_export" / "events_export.csv", index=False)
    ds.catalog.rename(columns={"item_id": "id"})[["id", "title", "price"]].to_csv(
        base / "ga_export" / "product_feed.csv", index=False
    )
    (base / "catalog_only").mkdir()
    catalog.to_csv(base / "catalog_only" / "items.csv", index=False)
    (base / "no_table").mkdir()
    (base / "no_table" / "notes.md").write_text("# nothing to read\n")
    (base / "damaged").mkdir()
    (base / "damaged" / "events.csv.gz").write_bytes(b"\x1f\x8b\x08\x00 not gzip at all")
    return base


def test_a_folder_it_has_no_command_for_is_read_by_the_generic_import_and_scored(shop, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(shop))
    data, skipped, read_as = quality.load_datasets(
        ["shop_export", "clicks", "catalog_only", "no_table", "damaged"], False, 300
    )
    assert list(data) == ["shop_export", "clicks"]
    # the catalogue was found and joined: its titles and categories are the dataset's
    assert read_as["shop_export"] == "recsys import csv order_lines.csv --catalog products.csv --errors drop"
    assert data["shop_export"].catalog["title"].notna().mean() > 0.99
    assert data["shop_export"].interactions["sequence_id"].nunique() > 100
    # no session column: each visitor's events cut on a 30-minute gap, as the README's RetailRocket
    assert read_as["clicks"] == "recsys import csv events.csv --session-gap 30m --errors drop"
    assert (
        data["clicks"].interactions["sequence_id"].nunique()
        > data["clicks"].interactions["user_id"].nunique()
    )
    # a catalogue alone is said to be one, with why it did not read as events
    assert skipped["catalog_only"].startswith(
        "no interactions (a catalogue alone; as events: recsys import csv items.csv --errors drop: "
    )
    assert "'sequence_id' is missing" in skipped["catalog_only"]
    assert skipped["no_table"] == "could not import: no file the import can read"
    assert skipped["damaged"].startswith("could not import: recsys import csv events.csv.gz")

    # and the whole bench scores it as it scores the shared ones, saying how it read it
    assert quality.main(["--only", "shop_export", "damaged", *CHEAP]) == 0
    out = json.loads(capsys.readouterr().out)
    entry = out["datasets"]["shop_export"]
    assert entry["read_as"] == read_as["shop_export"]
    assert set(entry["models"]) == {"popularity", "cooccurrence"}
    assert entry["models"]["cooccurrence"]["hr@20"] > entry["models"]["popularity"]["hr@20"]
    assert entry["recommended"] == "cooccurrence"
    assert set(out["skipped_datasets"]) == {"damaged"}


def test_a_dataset_the_user_imported_is_scored_by_name(shop, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tmp_path / "absent"))
    import_dataset(
        "csv",
        shop / "shop_export" / "order_lines.csv",
        name="ours",
        root=tmp_path,
        catalog_path=shop / "shop_export" / "products.csv",
        kind="baskets",
    )
    assert quality.main(["--stored", "ours", "nobody", *CHEAP]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["datasets"]) == ["ours", "ours:collapsed"]
    assert out["datasets"]["ours"]["read_as"] == "stored dataset 'ours' (recsys datasets)"
    assert out["datasets"]["ours"]["n_cases"] == 100
    assert out["skipped_datasets"]["nobody"].startswith("could not import:")


def test_exports_as_other_platforms_write_them_read_right(shop, monkeypatch):
    """A point-of-sale export and a GA4-style export of the same kind of data read as the data:
    the dates day first, the decimal-comma quantities, GA4's event names as views, carts and
    purchases, the "... No" columns as ids, the catalogue (larger than the events, or keyed by
    "id") paired; and ``--quick`` scores such folders, not only the shared ones it knows."""
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(shop))
    demo = generate_demo(n_items=300, seed=3)
    data, skipped, read_as = quality.load_datasets(["pos_export", "ga_export"], False, 300)
    assert skipped == {} and list(data) == ["pos_export", "ga_export"]
    assert read_as["pos_export"] == "recsys import csv receipt_lines.csv --catalog articles.csv --errors drop"
    pos = data["pos_export"].interactions.set_index("sequence_id")
    want = demo.interactions.head(400).drop_duplicates("sequence_id").set_index("sequence_id")
    assert (pos["timestamp"].groupby(level=0).first() == want["timestamp"].dt.floor("s")).all()
    assert (pos["quantity"] == 1.5).all() and len(pos) == 400
    assert pos["user_id"].notna().all()
    assert data["pos_export"].catalog["title"].notna().mean() > 0.99
    ga = data["ga_export"]
    assert read_as["ga_export"] == (
        "recsys import csv events_export.csv --catalog product_feed.csv --session-gap 30m --errors drop"
    )
    assert len(ga.interactions) == 600  # no event dropped as unknown
    counts = demo.interactions.head(600)["event_type"].value_counts().to_dict()
    assert ga.interactions["event_type"].value_counts().to_dict() == counts and len(counts) == 3
    assert ga.interactions["timestamp"].min() == demo.interactions.head(600)["timestamp"].dt.floor("s").min()
    assert (
        ga.catalog.set_index("item_id")["title"].to_dict()
        == demo.catalog.set_index("item_id")["title"].to_dict()
    )

    data, skipped, read_as = quality.load_datasets(None, True, 300)  # --quick on this directory
    assert {"pos_export", "ga_export", "shop_export", "clicks"} <= set(data)
    assert {"rees46", "instacart", "catalog_only", "damaged"} <= set(skipped)
