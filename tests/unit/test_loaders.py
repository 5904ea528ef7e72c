"""Loaders and validation: normalisation rules, the drop report, and malformed inputs.

Every malformed input must give a DataValidationError that names the file, the 1-based
data row and the column, and must leave an already stored dataset byte-identical.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.adapters import import_dataset, import_generic
from recsys.data.loaders import build_dataset, load_catalog, load_interactions, read_table
from recsys.data.schema import CATALOG_COLUMNS, INTERACTION_COLUMNS, load_dataset
from recsys.errors import DataValidationError

CATALOG = [
    "item_id,title,category,brand,gender,price,adult",
    "A1,Red Shoe,Women>Shoes,Nimbus,women,49.99,false",
    "A2,Blue Shoe,Women > Shoes,Nimbus,F,59.50,no",
    "A3,Laptop,Electronics > Computers,Voltix,,899,0",
    "A4,Mouse,Electronics > Computers,Voltix,,19.99,",
    "A5,Socks,Unisex > Sports,Trek,Unisex,,false",
    "A6,Massager,Adult > Wellness,Aura,,39,yes",
    "A7,Kids Tee,Kids > Clothing,Tiny,girls,9.5,false",
]
INTERACTIONS = [
    "sequence_id,user_id,item_id,timestamp,event_type",
    "s1,u1.0,A1,2024-01-01 10:00:05 UTC,view",
    "s1,u1.0,A2,2024-01-01 10:00:01 UTC,view",
    "s1,u1.0,A2,2024-01-01 10:01:00 UTC,purchase",
    "s2,17850.0,A3,2024-01-02 09:00:00 UTC,view",
    "s2,17850.0,A4,2024-01-02 09:00:10 UTC,add_to_cart",
    "s3,,A5,2024-01-03 09:00:00 UTC,view",
    "s3,,A7,2024-01-03 09:00:00 UTC,click",
]


def _set(lines: list[str], row: int, column: str, value: str) -> list[str]:
    """Copy of CSV ``lines`` with data row ``row`` (1-based), ``column`` set to ``value``."""
    header = lines[0].split(",")
    out = list(lines)
    cells = out[row].split(",")
    cells[header.index(column)] = value
    out[row] = ",".join(cells)
    return out


def _write(
    folder: Path,
    catalog: list[str] | bytes | None = CATALOG,
    interactions=INTERACTIONS,
    cat_name="catalog.csv",
):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ((cat_name, catalog), ("interactions.csv", interactions)):
        if content is None:
            continue
        data = content if isinstance(content, bytes) else ("\n".join(content) + "\n").encode()
        (folder / name).write_bytes(data)
    return folder


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def stored(tmp_data_dir: Path, tmp_path: Path):
    """A good dataset named "shop" already stored; returns (root, snapshot of its bytes)."""
    import_dataset("csv", _write(tmp_path / "good"), name="shop", root=tmp_data_dir)
    return tmp_data_dir, _snapshot(tmp_data_dir)


# --------------------------------------------------------------------------------------
# malformed inputs: (case id, files to write, mapping, file named, row, column, words in the message)
# --------------------------------------------------------------------------------------
_MALFORMED = [
    (
        "missing_required_column",
        {"interactions": [INTERACTIONS[0].replace("sequence_id", "grp")] + INTERACTIONS[1:]},
        None,
        "interactions.csv",
        None,
        "sequence_id",
        ["required column 'sequence_id' is missing", "columns present: grp"],
    ),
    (
        "non_numeric_price",
        {"catalog": _set(CATALOG, 7, "price", "abc")},
        None,
        "catalog.csv",
        7,
        "price",
        ["non-numeric price", "'abc'", "--errors drop"],
    ),
    ("empty_file", {"catalog": b""}, None, "catalog.csv", None, None, ["empty"]),
    ("header_only", {"catalog": [CATALOG[0]]}, None, "catalog.csv", None, None, ["no data rows"]),
    (
        "non_utf8_bytes",
        {"catalog": ("\n".join(CATALOG) + "\n").encode().replace(b"Laptop", b"Lapt\xe9p")},
        None,
        "catalog.csv",
        3,
        "title",
        ["0xe9", "byte offset", "--catalog-encoding latin-1"],
    ),
    (
        "negative_price",
        {"catalog": _set(CATALOG, 2, "price", "-5")},
        None,
        "catalog.csv",
        2,
        "price",
        ["negative price", "'-5'"],
    ),
    (
        "unparseable_timestamp",
        {"interactions": _set(INTERACTIONS, 4, "timestamp", "yesterday")},
        None,
        "interactions.csv",
        4,
        "timestamp",
        ["unparseable timestamp", "'yesterday'", "ISO 8601"],
    ),
    (
        "unknown_gender",
        {"catalog": _set(CATALOG, 5, "gender", "martian")},
        None,
        "catalog.csv",
        5,
        "gender",
        ["unknown gender value", "'martian'", "women, men, unisex, kids"],
    ),
    (
        "duplicate_id",
        {"catalog": _set(CATALOG, 4, "item_id", "A1")},
        None,
        "catalog.csv",
        4,
        "item_id",
        ["duplicate item_id", "first seen at row 1", "'A1'"],
    ),
    (
        "unknown_item",
        {"interactions": _set(INTERACTIONS, 6, "item_id", "ZZZ")},
        None,
        "interactions.csv",
        6,
        "item_id",
        ["not in the catalog", "'ZZZ'"],
    ),
    (
        "mapping_names_missing_column",
        {},
        {"sku": "item_id"},
        "interactions.csv",
        None,
        "sku",
        ["names column 'sku'", "columns present"],
    ),
    (
        "ragged_row",
        {"catalog": CATALOG[:3] + [CATALOG[3] + ",extra"] + CATALOG[4:]},
        None,
        "catalog.csv",
        3,
        None,
        ["8 fields", "header has 7"],
    ),
    (
        "unknown_event_type",
        {"interactions": _set(INTERACTIONS, 5, "event_type", "teleport")},
        None,
        "interactions.csv",
        5,
        "event_type",
        ["unknown event_type", "'teleport'"],
    ),
    (
        "zero_quantity",
        {"interactions": [INTERACTIONS[0] + ",quantity"] + [line + ",1" for line in INTERACTIONS[1:2]]
         + [INTERACTIONS[2] + ",0"] + [line + ",2" for line in INTERACTIONS[3:]]},
        None,
        "interactions.csv",
        2,
        "quantity",
        ["non-positive quantity", "'0'"],
    ),
    (
        "unreadable_adult_flag",
        {"catalog": _set(CATALOG, 6, "adult", "maybe")},
        None,
        "catalog.csv",
        6,
        "adult",
        ["unreadable adult flag", "'maybe'"],
    ),
    (
        "missing_item_id",
        {"catalog": _set(CATALOG, 3, "item_id", "")},
        None,
        "catalog.csv",
        3,
        "item_id",
        ["missing item_id"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "files, mapping, file, row, column, words",
    [case[1:] for case in _MALFORMED],
    ids=[case[0] for case in _MALFORMED],
)
def test_malformed_input_names_file_row_column_and_keeps_stored_data(
    stored, tmp_path, files, mapping, file, row, column, words
):
    root, before = stored
    folder = _write(tmp_path / "bad", files.get("catalog", CATALOG), files.get("interactions", INTERACTIONS))
    with pytest.raises(DataValidationError) as info:
        import_dataset("csv", folder, name="shop", root=root, mapping=mapping)
    err = info.value
    message = str(err)
    assert err.file is not None and Path(err.file).name == file, message
    assert file in message
    assert err.row == row, message
    if row is not None:
        assert f"row {row}" in message
    assert err.column == column, message
    if column is not None:
        assert f"column '{column}'" in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert _snapshot(root) == before, "a failed import changed the stored dataset"
    assert len(load_dataset("shop", root).catalog) == 7


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet"])
def test_corrupt_compressed_or_parquet_file_is_refused(stored, tmp_path, suffix):
    root, before = stored
    folder = _write(tmp_path / "bad", b"this is not a gzip or parquet file\n", cat_name="catalog" + suffix)
    with pytest.raises(DataValidationError, match="not a readable") as info:
        import_dataset("csv", folder, name="shop", root=root)
    assert Path(info.value.file).name == "catalog" + suffix
    assert _snapshot(root) == before


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.xls").write_bytes(b"PK")
    with pytest.raises(DataValidationError, match="unsupported file type '.xls'"):
        read_table(tmp_path / "x.xls")


# --------------------------------------------------------------------------------------
# normalisation of a good import
# --------------------------------------------------------------------------------------


def test_good_import_is_normalised(tmp_path, tmp_data_dir):
    ds = import_dataset("csv", _write(tmp_path / "good"), name="shop", root=tmp_data_dir)
    cat = ds.catalog.set_index("item_id")
    assert tuple(ds.catalog.columns) == CATALOG_COLUMNS
    assert tuple(ds.interactions.columns) == INTERACTION_COLUMNS
    assert cat.loc["A1", "category"] == "Women > Shoes"
    assert cat.loc["A2", "gender"] == "women"  # "F"
    assert cat.loc["A5", "gender"] == "unisex"  # "Unisex"
    assert cat.loc["A7", "gender"] == "kids"  # "girls"
    assert cat.loc["A3", "gender"] == ""
    assert np.isnan(cat.loc["A5", "price"]) and cat.loc["A2", "price"] == 59.5
    assert ds.report.missing_prices == 1
    assert cat["adult"].tolist() == [False, False, False, False, False, True, False]
    inter = ds.interactions
    assert inter["timestamp"].dtype == "datetime64[ns]"
    s1 = inter[inter["sequence_id"] == "s1"]
    # ordered by timestamp, not by file order
    assert s1["item_id"].tolist() == ["A2", "A1", "A2"]
    assert s1["event_type"].tolist() == ["view", "view", "purchase"]
    assert s1["position"].tolist() == [0, 1, 2]
    assert s1["user_id"].tolist() == ["u1.0"] * 3  # not an integral float: kept as is
    s2 = inter[inter["sequence_id"] == "s2"]
    assert s2["user_id"].tolist() == ["17850", "17850"]  # "17850.0" -> "17850"
    assert s2["event_type"].tolist() == ["view", "cart"]  # add_to_cart -> cart
    s3 = inter[inter["sequence_id"] == "s3"]
    # equal timestamps keep file order; click -> view; blank user -> ""
    assert s3["item_id"].tolist() == ["A5", "A7"]
    assert s3["event_type"].tolist() == ["view", "view"]
    assert s3["user_id"].tolist() == ["", ""]
    assert inter["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 10:00:01")
    assert ds.report.rows_read == {"interactions": 7, "catalog": 7}
    assert ds.report.rows_dropped == {}
    stored = load_dataset("shop", tmp_data_dir)
    assert stored.fingerprint() == ds.fingerprint()


def test_drop_mode_drops_bad_rows_and_reports_each_reason(tmp_path):
    cat = _set(_set(_set(CATALOG, 2, "price", "-1"), 4, "item_id", "A1"), 5, "gender", "martian")
    inter = _set(_set(INTERACTIONS, 4, "timestamp", "not a time"), 6, "item_id", "ZZZ")
    folder = _write(tmp_path / "f", cat, inter)
    ds = import_generic(folder / "catalog.csv", folder / "interactions.csv", errors="drop")
    r = ds.report
    assert r.rows_dropped == {
        "catalog: negative price": 1,
        "catalog: duplicate item_id": 1,
        "interactions: unparseable timestamp": 1,
        # ZZZ, plus A2 twice and A4 once: their catalog rows were dropped (A4's row became a duplicate A1)
        "interactions: item not in catalog": 4,
    }
    assert r.duplicate_ids == 1 and r.unknown_items == 4
    assert ds.catalog["item_id"].tolist() == ["A1", "A3", "A5", "A6", "A7"]
    assert ds.catalog.set_index("item_id").loc["A5", "gender"] == ""  # unknown gender cleared...
    assert any("martian" in w for w in r.warnings)  # ...and reported
    assert sum(r.rows_dropped.values()) + len(ds.interactions) + len(ds.catalog) == 7 + 7
    assert ds.interactions["item_id"].tolist() == ["A1", "A7"]


def test_everything_dropped_is_an_error(tmp_path):
    inter = [INTERACTIONS[0]] + [line.replace(",A", ",Q") for line in INTERACTIONS[1:]]
    folder = _write(tmp_path / "f", CATALOG, inter)
    with pytest.raises(DataValidationError, match="no valid interaction is left"):
        import_generic(folder / "catalog.csv", folder / "interactions.csv", errors="drop")


def test_csv_gzip_and_parquet_give_the_same_dataset(tmp_path):
    folder = _write(tmp_path / "f")
    plain = import_generic(folder / "catalog.csv", folder / "interactions.csv")
    with gzip.open(folder / "catalog.csv.gz", "wb") as fh:
        fh.write((folder / "catalog.csv").read_bytes())
    read_table(folder / "catalog.csv").to_parquet(folder / "catalog.parquet")
    zipped = import_generic(folder / "catalog.csv.gz", folder / "interactions.csv")
    parquet = import_generic(folder / "catalog.parquet", folder / "interactions.csv")
    assert plain.fingerprint() == zipped.fingerprint() == parquet.fingerprint()


def test_latin1_file_imports_with_the_suggested_encoding(tmp_path):
    data = ("\n".join(CATALOG) + "\n").encode().replace(b"Laptop", b"Lapt\xe9p")
    folder = _write(tmp_path / "f", data)
    ds = import_generic(folder / "catalog.csv", folder / "interactions.csv", encoding="latin-1")
    assert ds.catalog.set_index("item_id").loc["A3", "title"] == "Laptép"


def test_column_mapping_flat_and_per_file(tmp_path):
    cat = [CATALOG[0].replace("item_id", "sku").replace("title", "name")] + CATALOG[1:]
    inter = [INTERACTIONS[0].replace("item_id", "sku").replace("sequence_id", "order")] + INTERACTIONS[1:]
    folder = _write(tmp_path / "f", cat, inter)
    good = _write(tmp_path / "g")
    reference = import_generic(good / "catalog.csv", good / "interactions.csv")
    flat = import_generic(
        folder / "catalog.csv",
        folder / "interactions.csv",
        {"sku": "item_id", "name": "title", "order": "sequence_id"},
    )
    per_file = import_generic(
        folder / "catalog.csv",
        folder / "interactions.csv",
        {
            "catalog": {"sku": "item_id", "name": "title"},
            "interactions": {"sku": "item_id", "order": "sequence_id"},
        },
    )
    assert flat.fingerprint() == reference.fingerprint() == per_file.fingerprint()
    with pytest.raises(DataValidationError, match="several columns to 'title'") as info:
        load_catalog(folder / "catalog.csv", {"name": "title", "brand": "title"})
    assert info.value.column == "title"
    with pytest.raises(DataValidationError, match="already has a column 'title'"):
        load_catalog(good / "catalog.csv", {"brand": "title"})
    with pytest.raises(DataValidationError, match="required column 'item_id'") as info:
        load_interactions(folder / "interactions.csv", {"order": "sequence_id"})
    assert "columns present: sequence_id, user_id, sku, timestamp" in str(info.value)


def test_catalog_derived_from_interactions(tmp_path):
    inter = pd.DataFrame(
        {
            "sequence_id": ["s1", "s1", "s2", "s2", "s3"],
            "item_id": ["1", "2", "1", "2", "1"],
            "title": ["Mug", "Pan", "Mug", "", "MUG"],
            "price": ["2.0", "10", "4.0", "", "3.0"],
            "category": ["home.kitchen", "home.kitchen", "", "", ""],
        }
    )
    ds = build_dataset("derived", None, inter, kind="baskets", category_sep=".")
    cat = ds.catalog.set_index("item_id")
    assert cat.loc["1", "title"] == "Mug"  # most frequent non-empty value
    assert cat.loc["1", "price"] == 3.0  # median
    assert cat.loc["2", "price"] == 10.0
    assert cat.loc["2", "category"] == "home > kitchen"
    assert (ds.interactions["event_type"] == "purchase").all()  # the default for baskets
    assert "catalog" not in ds.report.rows_read


def test_the_derived_catalogues_size_is_written_with_thousands_separators():
    """The Data page prints this warning: 55368 read as a code, 55,368 as a count."""
    inter = pd.DataFrame(
        {"sequence_id": [f"s{i // 2}" for i in range(2400)], "item_id": [str(i) for i in range(2400)]}
    )
    ds = build_dataset("many", None, inter, kind="baskets")
    assert "no catalog given: 2,400 items derived from the interactions" in ds.report.warnings


def test_typed_frames_and_position_column():
    catalog = pd.DataFrame({"item_id": [1, 2, 3], "price": [1.0, np.nan, 2.5], "adult": [False, True, False]})
    inter = pd.DataFrame(
        {
            "sequence_id": [10.0, 10.0, 10.0, 11.0],
            "item_id": [3, 1, 2, 1],
            "position": [3, 1, 2, 1],
            "user_id": [np.nan, np.nan, np.nan, 7.0],
        }
    )
    ds = build_dataset("typed", catalog, inter, kind="baskets")
    assert ds.catalog["item_id"].tolist() == ["1", "2", "3"]
    assert ds.catalog["adult"].tolist() == [False, True, False]
    basket = ds.interactions[ds.interactions["sequence_id"] == "10"]
    assert basket["item_id"].tolist() == ["1", "2", "3"]  # by the given position
    assert basket["position"].tolist() == [0, 1, 2]
    assert ds.interactions["user_id"].tolist() == ["", "", "", "7"]


def test_timestamp_formats():
    inter = pd.DataFrame(
        {
            "sequence_id": ["a", "a", "a", "b"],
            "item_id": ["x"] * 4,
            "timestamp": ["2024-03-01T10:00:00Z", "2024-03-01 12:00:00+02:00", "", "2024-03-01 10:30:00 UTC"],
        }
    )
    ds = build_dataset("ts", None, inter)
    ts = ds.interactions.set_index(["sequence_id", "position"])["timestamp"]
    assert ts[("a", 0)] == pd.Timestamp("2024-03-01 10:00:00")
    assert ts[("a", 1)] == pd.Timestamp("2024-03-01 10:00:00")  # +02:00 converted to UTC
    assert pd.isna(ts[("a", 2)])  # blank -> NaT, ordered last
    assert ts[("b", 0)] == pd.Timestamp("2024-03-01 10:30:00")
    epoch = build_dataset("ts", None, inter.assign(timestamp=["1704067200", "1704067260", "", "1704067200"]))
    assert epoch.interactions["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 00:00:00")


def test_bad_arguments_are_refused():
    inter = pd.DataFrame({"sequence_id": ["a"], "item_id": ["x"]})
    with pytest.raises(ValueError, match="kind must be one of"):
        build_dataset("ok", None, inter, kind="clicks")
    with pytest.raises(ValueError, match="errors must be"):
        build_dataset("ok", None, inter, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not allowed"):
        build_dataset("../escape", None, inter)


def test_a_bad_number_is_quoted_as_written_not_as_a_numpy_repr():
    catalog = pd.DataFrame({"item_id": ["a", "b"], "price": [3.0, -1.5]})
    inter = pd.DataFrame({"sequence_id": ["s", "s"], "item_id": ["a", "b"]})
    with pytest.raises(DataValidationError) as exc:
        build_dataset("numbers", catalog, inter)
    assert "negative price, e.g. -1.5 at row 2" in str(exc.value) and "np.float64" not in str(exc.value)
    assert exc.value.row == 2 and exc.value.column == "price"


# -- the optional in_stock column (the "in stock only" filter rule) ---------------------------
def test_in_stock_is_read_as_nullable_booleans_and_kept_on_disk(tmp_path, tmp_data_dir):
    values = ["true", "no", "1", "", "false", "yes", "0"]
    catalog = [CATALOG[0] + ",in_stock"] + [line + "," + v for line, v in zip(CATALOG[1:], values)]
    ds = import_dataset("csv", _write(tmp_path / "stock", catalog), name="stock", root=tmp_data_dir)
    assert tuple(ds.catalog.columns[: len(CATALOG_COLUMNS)]) == CATALOG_COLUMNS
    stored = load_dataset("stock", tmp_data_dir).catalog.set_index("item_id")["in_stock"]
    assert stored.tolist()[:3] == [True, False, True] and stored.tolist()[4:] == [False, True, False]
    assert pd.isna(stored.iloc[3])  # blank: unknown, not "out of stock"


def test_in_stock_unreadable_value_names_row_and_column(tmp_path, tmp_data_dir):
    catalog = [CATALOG[0] + ",in_stock"] + [line + ",true" for line in CATALOG[1:]]
    catalog[4] = catalog[4][: -len("true")] + "soon"
    with pytest.raises(DataValidationError) as info:
        import_dataset("csv", _write(tmp_path / "bad_stock", catalog), name="bad", root=tmp_data_dir)
    msg = str(info.value)
    assert "unreadable in_stock flag" in msg and "'soon'" in msg and "in_stock" in msg


def test_without_in_stock_the_catalogue_has_no_such_column(tmp_path, tmp_data_dir):
    ds = import_dataset("csv", _write(tmp_path / "plain"), name="plain", root=tmp_data_dir)
    assert "in_stock" not in ds.catalog.columns
    assert "in_stock" not in load_dataset("plain", tmp_data_dir).catalog.columns
