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
