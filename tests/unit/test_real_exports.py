"""Each real dataset in ../shared/datasets imports with the one command the README documents.

The commands are read from the README's "Importing real exports" table, so the documented
command is the tested one. Skipped (with a reason) when the datasets folder is absent.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from recsys.__main__ import main
from recsys.data.schema import load_dataset

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_commands() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Importing real exports", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `(recsys import [^`]+)` \|", section, flags=re.M)
    return dict(rows)


COMMANDS = documented_commands()


def test_every_shared_dataset_has_one_documented_command():
    assert sorted(COMMANDS) == sorted(
        [
            "online_retail",
            "instacart_sample",
            "rees46_sample",
            "taobao_userbehavior",
            "dunnhumby_completejourney",
            "myntra_products",
            "bigbasket_products",
        ]
    )


def import_documented(folder: str, shared: Path, root: Path, capsys) -> object:
    command = COMMANDS[folder].replace("../shared/datasets", str(shared))
    argv = shlex.split(command)[1:]  # without the program name
    assert "--dry-run" not in argv
    rc = main(["--data-dir", str(root), "-q", *argv])
    _, err = capsys.readouterr()
    assert rc == 0, err
    names = [argv[i + 1] for i, a in enumerate(argv) if a == "--name"]
    return load_dataset(names[0] if names else argv[1], root)


@pytest.mark.realdata
def test_taobao(shared_datasets, tmp_path, capsys):
    ds = import_documented("taobao_userbehavior", shared_datasets, tmp_path, capsys)
    s = ds.summary()
    assert (s["interactions"], s["users"], s["items"], s["categories"]) == (84475, 815, 55368, 2914)
    assert s["sequences"] == 14122  # the README's 30-minute-gap figure
    assert ds.interactions["event_type"].value_counts().to_dict() == {
        "view": 75872,
        "cart": 4497 + 2356,
        "purchase": 1750,
    }
    assert ds.report.reading["interactions"]["header"].startswith("none (detected")
    # unix seconds: the first event of user 1 (the file's first line) is 2017-11-24 17:21:10 UTC
    first = ds.interactions[ds.interactions["user_id"] == "1"]["timestamp"].min()
    assert str(first) <= "2017-11-24 17:21:10"


@pytest.mark.realdata
def test_dunnhumby(shared_datasets, tmp_path, capsys):
    ds = import_documented("dunnhumby_completejourney", shared_datasets, tmp_path, capsys)
    r = ds.report
    assert r.rows_read == {"interactions": 75000, "catalog": 92331}
    assert r.rows_dropped["interactions: non-positive quantity"] == 416
    assert sum(r.rows_dropped.values()) + len(ds.interactions) == 75000
    assert ds.kind == "baskets" and len(ds.catalog) == 92331
    cat = ds.catalog.set_index("item_id")["category"]
    assert cat["25671"] == "GROCERY > FRZN ICE > ICE - CRUSHED/CUBED" and cat["26081"] == "MISCELLANEOUS"
    assert ds.interactions["timestamp"].min().year == 2017


@pytest.mark.realdata
def test_myntra(shared_datasets, tmp_path, capsys):
    ds = import_documented("myntra_products", shared_datasets, tmp_path, capsys)
    cat = ds.catalog
    assert len(cat) == 12491 and len(ds.interactions) == 0
    assert cat["brand"].nunique() == 677
    assert cat["gender"].value_counts().to_dict() == {
        "women": 5126,
        "men": 4591,
        "kids": 1100 + 440 + 46,
        "unisex": 1188,
    }
    assert (cat["price"].min(), cat["price"].max()) == (90, 63090)
    assert not cat["Primary_Color"].str.startswith(" ").any()
    assert cat["description"].str.contains("\n").sum() > 0  # quoted line breaks kept inside the field
    assert not any(c.startswith(("Unnamed", "column_")) for c in cat.columns)
    # no category column: the product type read off the titles, on most items, and said so
    assert (cat["category"] != "").mean() > 0.9 and ds.summary()["categories"] > 100
    assert ds.report.reading["catalog"]["category"].startswith("inferred from title: ")
    assert cat.set_index("item_id").loc["10017413", "category"] == "Bag"  # a Trolley Bag


@pytest.mark.realdata
def test_bigbasket(shared_datasets, tmp_path, capsys):
    ds = import_documented("bigbasket_products", shared_datasets, tmp_path, capsys)
    cat = ds.catalog
    assert len(cat) == 27555
    assert ds.summary()["top_categories"] == 11
    assert not cat["brand"].str.endswith(" ").any()
    assert (cat["price"].min(), cat["price"].max()) == (2.45, 12500)
    assert cat.set_index("item_id").loc["2", "category"].startswith("Kitchen, Garden & Pets > ")
    assert "'4.1' at row 1" in ds.report.reading["catalog"]["unnamed columns"]
    # the command maps only the id and the category path: the title and price are the guesses
    mapping = ds.report.reading["catalog"]["mapping"]
    assert "title <- product (guessed)" in mapping and "price <- sale_price (guessed)" in mapping
    assert (cat["title"] == "").sum() == 1 and cat["price"].notna().all()  # one product has no name


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail(shared_datasets, tmp_path, capsys):
    ds = import_documented("online_retail", shared_datasets, tmp_path, capsys)
    assert ds.report.rows_read["interactions"] == 541909
    assert sum(ds.report.rows_dropped.values()) + len(ds.interactions) == 541909


@pytest.mark.realdata
def test_instacart(shared_datasets, tmp_path, capsys):
    ds = import_documented("instacart_sample", shared_datasets, tmp_path, capsys)
    assert (len(ds.interactions), ds.summary()["sequences"], len(ds.catalog)) == (107192, 10166, 49688)


@pytest.mark.realdata
def test_rees46(shared_datasets, tmp_path, capsys):
    ds = import_documented("rees46_sample", shared_datasets, tmp_path, capsys)
    assert ds.report.rows_read["interactions"] == 17434
    assert sum(ds.report.rows_dropped.values()) + len(ds.interactions) == 17434
