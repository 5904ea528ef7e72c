"""`recsys import csv` on files as shops export them: each quirk with a small file written here.

Every test goes through the command line (``main([...])``), as a user would, and checks
what is stored and what the report says.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.__main__ import main
from recsys.data.schema import list_datasets, load_dataset

EVENTS = [
    ["SessionId", "ItemId", "Time"],
    ["s1", "A", "2024-01-01 10:00:00"],
    ["s1", "B", "2024-01-01 10:01:00"],
    ["s2", "B", "2024-01-02 09:00:00"],
    ["s2", "C", "2024-01-02 09:05:00"],
    ["s3", "A", "2024-01-03 12:00:00"],
]
SESSION_MAP = ["--map", "SessionId=sequence_id", "ItemId=item_id", "Time=timestamp"]


def write(path: Path, rows: list[list[str]] | str, sep: str = ",", encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = rows if isinstance(rows, str) else "".join(sep.join(r) + "\n" for r in rows)
    path.write_bytes(text.encode(encoding))
    return path


def run(capsys, root: Path, *argv: str) -> tuple[int, str, str]:
    rc = main(["--data-dir", str(root), "-q", "import", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def report_of(out: str) -> dict:
    return json.loads(out)["report"]


# ------------------------------------------------------------------------------------------
# separators, headers, encodings
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sep, name, suffix",
    [(",", "comma", ".csv"), (";", "semicolon", ".csv"), ("\t", "tab", ".txt"), ("|", "pipe", ".csv")],
)
def test_separator_is_detected_and_reported(tmp_path, capsys, sep, name, suffix):
    f = write(tmp_path / f"events{suffix}", EVENTS, sep)
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(f), "--name", "s", *SESSION_MAP)
    assert rc == 0, err
    assert report_of(out)["reading"]["interactions"]["separator"] == f"{name} (detected)"
    ds = load_dataset("s", tmp_path / "d")
    assert ds.interactions.groupby("sequence_id")["item_id"].apply(list).to_dict() == {
        "s1": ["A", "B"],
        "s2": ["B", "C"],
        "s3": ["A"],
    }


def test_a_given_separator_wins_and_a_wrong_one_says_so(tmp_path, capsys):
    f = write(tmp_path / "events.txt", EVENTS, "\t")
    rc, out, _ = run(capsys, tmp_path / "d", "csv", str(f), "--sep", "tab", *SESSION_MAP)
    assert rc == 0 and report_of(out)["reading"]["interactions"]["separator"] == "tab (given)"
    rc, _, err = run(capsys, tmp_path / "d2", "csv", str(f), "--sep", "comma", *SESSION_MAP)
    assert rc == 2
    assert "The header is one column holding tabs: pass --sep tab" in err
    assert not list_datasets(tmp_path / "d2")


def test_headerless_file_with_columns_or_positions(tmp_path, capsys):
    rows = [
        ["u1", "A", "pv", "1511544070"],
        ["u1", "B", "buy", "1511544170"],
        ["u2", "A", "pv", "1511550000"],
    ]
    f = write(tmp_path / "log.csv", rows)
    rc, out, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        str(f),
        "--name",
        "named",
        "--columns",
        "sequence_id,item_id,event_type,timestamp",
        "--event-map",
        "pv=view",
        "buy=purchase",
    )
    assert rc == 0, err
    reading = report_of(out)["reading"]["interactions"]
    assert reading["header"].startswith("none (detected")
    assert reading["timestamps"].startswith("unix seconds")
    rc, out, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        str(f),
        "--name",
        "positional",
        "--no-header",
        "--map",
        "0=sequence_id",
        "1=item_id",
        "2=event_type",
        "3=timestamp",
        "--event-map",
        "pv=view",
        "buy=purchase",
    )
    assert rc == 0, err
    a, b = load_dataset("named", tmp_path / "d"), load_dataset("positional", tmp_path / "d")
    assert a.fingerprint() == b.fingerprint()
    assert len(a.interactions) == 3  # the first row is data, not a header
    assert list(a.interactions["event_type"]) == ["view", "purchase", "view"]
    assert a.interactions["timestamp"].iloc[0] == pd.Timestamp("2017-11-24 17:21:10")


def test_headerless_catalogue_mapped_by_position(tmp_path, capsys):
    f = write(tmp_path / "cat.csv", [["101", "Red mug", "£3.42"], ["102", "Tea pot", "£12.00"]])
    rc, out, err = run(
        capsys, tmp_path / "d", "csv", "--catalog", str(f), "--map", "0=item_id", "1=title", "2=price"
    )
    assert rc == 0, err
    cat = load_dataset("imported", tmp_path / "d").catalog
    assert list(cat["item_id"]) == ["101", "102"] and list(cat["price"]) == [3.42, 12.0]


def test_mapping_a_named_column_on_a_headerless_file_explains_positions(tmp_path, capsys):
    f = write(tmp_path / "cat.csv", [["101", "Red mug"], ["102", "Tea pot"]])
    rc, _, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(f), "--map", "sku=item_id")
    assert rc == 2
    assert "no header row" in err and "--map 0=item_id" in err and "--columns" in err


def test_encodings_per_file(tmp_path, capsys):
    events = write(tmp_path / "ev.csv", [["order", "sku"], ["o1", "CAFÉ"], ["o1", "THÉ"]], encoding="cp1252")
    cat = write(
        tmp_path / "cat.csv", [["sku", "name"], ["CAFÉ", "Café crème"], ["THÉ", "Thé"]], encoding="utf-8"
    )
    argv = [
        "csv",
        str(events),
        "--catalog",
        str(cat),
        "--map",
        "order=sequence_id",
        "sku=item_id",
        "name=title",
    ]
    rc, _, err = run(capsys, tmp_path / "d", *argv)
    assert rc == 2 and "--encoding cp1252" in err and "row 1" in err
    rc, _, err = run(capsys, tmp_path / "d", *argv, "--encoding", "cp1252", "--catalog-encoding", "utf-8")
    assert rc == 0, err
    cat_df = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")
    assert cat_df.loc["CAFÉ", "title"] == "Café crème"


def test_a_utf16_file_is_read_by_its_byte_order_mark(tmp_path, capsys):
    # Excel's "Unicode Text" export: UTF-16 with a byte-order mark, tabs, CRLF, accented names
    rows = [["sku", "name", "price"], ["CAFÉ", "Café crème", "3.50"], ["THÉ", "Thé à la menthe", "2.00"]]
    cat = write(tmp_path / "products.txt", "".join("\t".join(r) + "\r\n" for r in rows), encoding="utf-16")
    assert cat.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    rc, out, err = run(
        capsys, tmp_path / "d", "csv", "--catalog", str(cat), "--map", "sku=item_id", "name=title"
    )
    assert rc == 0, err
    reading = report_of(out)["reading"]["catalog"]
    assert reading["encoding"] == "utf-16 (detected from its byte-order mark)"
    assert reading["separator"] == "tab (detected)"
    cat_df = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")
    assert cat_df.loc["THÉ", "title"] == "Thé à la menthe" and cat_df.loc["CAFÉ", "price"] == 3.5


def test_a_zipped_export_is_read_and_an_archive_it_cannot_read_says_why(tmp_path, capsys):
    import zipfile

    text = "".join(",".join(r) + "\n" for r in EVENTS)
    one = tmp_path / "events.zip"
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED) as zf:  # as macOS's "Compress" writes it
        zf.writestr("export/events.csv", text)
        zf.writestr("__MACOSX/export/._events.csv", "\x00\x05\x16\x07")
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(one), *SESSION_MAP)
    assert rc == 0, err
    assert report_of(out)["reading"]["interactions"]["format"] == "export/events.csv inside the zip archive"
    stored = load_dataset("imported", tmp_path / "d").interactions
    assert sorted(stored["item_id"]) == ["A", "A", "B", "B", "C"]

    two = tmp_path / "both.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("events.csv", text)
        zf.writestr("products.csv", "sku,name\nA,a\n")
    rc, _, err = run(capsys, tmp_path / "d2", "csv", str(two), *SESSION_MAP)
    assert rc == 2 and "holds 2 data files (events.csv, products.csv)" in err and "both.zip" in err
    book = tmp_path / "book.zip"
    with zipfile.ZipFile(book, "w") as zf:
        zf.writestr("orders.xlsx", b"PK")
    rc, _, err = run(capsys, tmp_path / "d2", "csv", str(book))
    assert rc == 2 and "holds orders.xlsx" in err and "unzip it" in err
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    rc, _, err = run(capsys, tmp_path / "d2", "csv", str(tmp_path / "bad.zip"))
    assert rc == 2 and "not a readable zip archive" in err
    assert not list_datasets(tmp_path / "d2")


def test_header_rows_repeated_in_the_file_are_left_out_and_said(tmp_path, capsys):
    # daily exports joined into one file, each with its header: no time or price column to
    # trip over, so each repeated header would be a session "SessionId" of an item "ItemId"
    rows = [["SessionId", "ItemId"], ["s1", "A"], ["s1", "B"], ["SessionId", "ItemId"], ["s2", "B"]]
    rows += [[" SessionId", "ItemId "], ["s2", "C"], ["s3", "A"], ["s3", ""]]
    events = write(tmp_path / "ev.csv", rows)
    rc, _, err = run(capsys, tmp_path / "d", "csv", str(events))
    # the bad row is named by its row in the file (8), not its row once the headers are gone
    assert rc == 2 and "row 8" in err and "missing item_id" in err
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(events), "--errors", "drop")
    assert rc == 0, err
    said = report_of(out)["reading"]["interactions"]["repeated header"]
    assert said.startswith("2 row(s) repeating the header left out (row 3, 5")
    ds = load_dataset("imported", tmp_path / "d")
    assert sorted(ds.interactions["item_id"]) == ["A", "A", "B", "B", "C"]
    assert set(ds.catalog["item_id"]) == {"A", "B", "C"}


def test_a_totals_row_at_the_end_of_a_report_is_left_out_and_said(tmp_path, capsys):
    # a stock report saved from a spreadsheet: its last row sums it up, and a catalogue has no
    # other column to trip over, so it was stored as an item "Total"
    rows = [["sku", "name", "stock", "price"], ["A", "Mug", "3", "£4.50"], ["B", "Plate", "9", "£6.00"]]
    cat = write(tmp_path / "stock.csv", rows + [["Total", "", "12", "£10.50"]])
    rc, out, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(cat))
    assert rc == 0, err
    said = report_of(out)["reading"]["catalog"]["totals row"]
    assert said == "the last row, 'Total' followed by numbers only, left out as the file's totals (row 3)"
    assert sorted(load_dataset("imported", tmp_path / "d").catalog["item_id"]) == ["A", "B"]
    # a last row with text beside the word is a product (sku TOTAL), not the totals: it stays
    kept = write(tmp_path / "kept.csv", rows + [["TOTAL", "Total Cereal", "5", "£3.99"]])
    rc, out, err = run(capsys, tmp_path / "d2", "csv", "--catalog", str(kept))
    assert rc == 0, err
    assert "totals row" not in report_of(out)["reading"]["catalog"]
    assert sorted(load_dataset("imported", tmp_path / "d2").catalog["item_id"]) == ["A", "B", "TOTAL"]


# ------------------------------------------------------------------------------------------
# values: prices, timestamps, whitespace, quoting
# ------------------------------------------------------------------------------------------


def test_prices_with_currency_marks_and_separators(tmp_path, capsys):
    rows = [["sku", "price"], ["a", "£3.42"], ["b", '"₹1,099"'], ["c", "$ 1 234.50"], ["d", "12"], ["e", ""]]
    f = write(tmp_path / "cat.csv", rows)
    rc, out, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(f), "--map", "sku=item_id")
    assert rc == 0, err
    price = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")["price"]
    assert price[["a", "b", "c", "d"]].tolist() == [3.42, 1099.0, 1234.5, 12.0] and np.isnan(price["e"])
    assert "currency marks removed" in report_of(out)["reading"]["catalog"]["prices"]


def test_decimal_comma_detected_or_forced(tmp_path, capsys):
    f = write(
        tmp_path / "cat.csv", [["sku", "price"], ["a", "1.234,50 €"], ["b", "3,42"], ["c", "7"]], sep=";"
    )
    rc, out, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(f), "--map", "sku=item_id")
    assert rc == 0, err
    price = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")["price"]
    assert price.tolist() == [1234.5, 3.42, 7.0]
    assert "decimal comma (detected)" in report_of(out)["reading"]["catalog"]["prices"]
    # "1,099" alone reads as one thousand and ninety-nine; --decimal , says it is 1.099
    g = write(tmp_path / "cat2.csv", [["sku", "price"], ["a", '"1,099"']])
    run(capsys, tmp_path / "d", "csv", "--catalog", str(g), "--map", "sku=item_id", "--name", "dot")
    run(
        capsys,
        tmp_path / "d",
        "csv",
        "--catalog",
        str(g),
        "--map",
        "sku=item_id",
        "--name",
        "comma",
        "--decimal",
        ",",
    )
    assert load_dataset("dot", tmp_path / "d").catalog["price"].iloc[0] == 1099.0
    assert load_dataset("comma", tmp_path / "d").catalog["price"].iloc[0] == pytest.approx(1.099)


def test_timestamps_unix_ms_iso_offsets_and_tz_for_naive(tmp_path, capsys):
    rows = [["s", "i", "t"], ["a", "x", "1704103200000"], ["a", "y", "1704103260000"]]
    f = write(tmp_path / "ms.csv", rows)
    rc, out, _ = run(
        capsys,
        tmp_path / "d",
        "csv",
        str(f),
        "--name",
        "ms",
        "--map",
        "s=sequence_id",
        "i=item_id",
        "t=timestamp",
    )
    assert rc == 0 and report_of(out)["reading"]["interactions"]["timestamps"].startswith("unix milliseconds")
    assert load_dataset("ms", tmp_path / "d").interactions["timestamp"].iloc[0] == pd.Timestamp(
        "2024-01-01 10:00"
    )
    rows = [["s", "i", "t"], ["a", "x", "2024-01-01 18:00:00"], ["a", "y", "2024-01-01T12:00:00+02:00"]]
    g = write(tmp_path / "iso.csv", rows)
    rc, out, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        str(g),
        "--name",
        "iso",
        "--tz",
        "UTC+8",
        "--map",
        "s=sequence_id",
        "i=item_id",
        "t=timestamp",
    )
    assert rc == 0, err
    ts = load_dataset("iso", tmp_path / "d").interactions.set_index("item_id")["timestamp"]
    assert ts["x"] == pd.Timestamp("2024-01-01 10:00") and ts["y"] == pd.Timestamp("2024-01-01 10:00")
    assert "read in UTC+08:00" in report_of(out)["reading"]["interactions"]["timestamps"]


def test_numeric_dates_read_day_first_where_the_column_says_so(tmp_path, capsys):
    """02.01.2024 is 2 January (dotted dates are day first); 02/01/2024 beside 13/01/2024 too (13
    can only be a day); slashed dates with no number over 12 stay month first, as pandas reads them."""
    cases = {
        "dotted": (
            ["02.01.2024 10:00", "03.01.2024 11:00"],
            ["2024-01-02 10:00", "2024-01-03 11:00"],
            "dotted",
        ),
        "slashed": (
            ["02/01/2024 10:00", "13/01/2024 11:00"],
            ["2024-01-02 10:00", "2024-01-13 11:00"],
            "over 12",
        ),
        "us": (
            ["02/01/2024 10:00", "03/01/2024 11:00"],
            ["2024-02-01 10:00", "2024-03-01 11:00"],
            "month first",
        ),
    }
    for name, (cells, want, note) in cases.items():
        f = write(
            tmp_path / f"{name}.csv",
            [["Order Number", "Item Code", "Date"], ["o1", "x", cells[0]], ["o2", "y", cells[1]]],
            sep=";",
        )
        rc, out, err = run(capsys, tmp_path / "d", "csv", str(f), "--name", name)
        assert rc == 0, err
        ts = load_dataset(name, tmp_path / "d").interactions.set_index("item_id")["timestamp"]
        assert ts.tolist() == [pd.Timestamp(w) for w in want], name
        assert note in report_of(out)["reading"]["interactions"]["timestamps"]


def test_a_click_log_as_json_lines_reads_without_flags_but_the_gap(tmp_path, capsys):
    """uid / sku / action (pv, view_item, add_to_cart, purchase) / time with an offset, and
    decimal-comma quantities: nothing dropped, times in UTC."""
    lines = [
        {"uid": "7", "sku": "a", "action": "pv", "time": "2017-11-25T01:21:10+08:00", "qty": "1,0"},
        {"uid": "7", "sku": "b", "action": "view_item", "time": "2017-11-25T01:25:00+08:00", "qty": "1,0"},
        {"uid": "7", "sku": "b", "action": "add_to_cart", "time": "2017-11-25T01:26:00+08:00", "qty": "2,5"},
        {"uid": "8", "sku": "a", "action": "purchase", "time": "2017-11-25T09:00:00+08:00", "qty": "1,0"},
    ]
    f = write(tmp_path / "actions.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(f), "--session-gap", "30m")
    assert rc == 0, err
    inter = load_dataset("imported", tmp_path / "d").interactions.sort_values("timestamp")
    assert report_of(out)["rows_dropped"] == {}
    assert inter["user_id"].tolist() == ["7", "7", "7", "8"]
    assert inter["event_type"].tolist() == ["view", "view", "cart", "purchase"]
    assert inter["quantity"].tolist() == [1.0, 1.0, 2.5, 1.0]
    assert inter["timestamp"].iloc[0] == pd.Timestamp("2017-11-24 17:21:10")
    assert inter["sequence_id"].nunique() == 2


def test_a_few_bad_unix_times_are_counted_per_value_not_every_row(tmp_path, capsys):
    rows = [["s", "i", "t"]] + [[f"s{k // 3}", f"i{k % 7}", str(1511544070 + 60 * k)] for k in range(1795)]
    for row in (17, 90):
        rows[row][2] = "n.a."
    rows[500][2] = "later"
    rows[501][2] = "later"
    f = write(tmp_path / "ev.csv", rows)
    argv = ["csv", str(f), "--map", "s=sequence_id", "i=item_id", "t=timestamp"]
    rc, _, err = run(capsys, tmp_path / "d", *argv)
    assert rc == 2
    assert (
        "4 of 1,795 rows: unparseable timestamp, e.g. 'n.a.' at rows 17, 90; 'later' at rows 500, 501" in err
    )
    assert "--errors drop" in err and "errors='drop'" not in err
    rc, out, err = run(capsys, tmp_path / "d", *argv, "--errors", "drop")
    assert rc == 0, err
    assert report_of(out)["rows_dropped"] == {"interactions: unparseable timestamp": 4}
    assert len(load_dataset("imported", tmp_path / "d").interactions) == 1791


def test_a_fix_that_drops_most_rows_is_not_suggested(tmp_path, capsys):
    rows = [["s", "i", "price"], ["a", "x", "cheap"], ["a", "y", "free"], ["b", "x", "3"]]
    f = write(tmp_path / "ev.csv", rows)
    rc, _, err = run(capsys, tmp_path / "d", "csv", str(f), "--map", "s=sequence_id", "i=item_id")
    assert rc == 2
    assert "2 of 3 rows: non-numeric price" in err
    assert "--errors drop" not in err and "check the --map of column 'price'" in err


def test_quoted_line_breaks_trailing_empty_columns_and_whitespace(tmp_path, capsys):
    text = (
        "sku,name,brand,category,notes,,\r\n"
        '" A1 ",Mug,"Acme ","Kitchen , Mugs","line one\nline two",,\r\n'
        "B2, Pot ,  Acme,Kitchen > Pots,plain,,4.1\r\n"
    ) + "".join(f"C{k},Cup {k},Brand,Kitchen,x,,\r\n" for k in range(120))
    f = write(tmp_path / "my shop export.csv", text)
    rc, out, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        "--catalog",
        str(f),
        "--map",
        "sku=item_id",
        "name=title",
        "--category-sep",
        ",",
    )
    assert rc == 0, err
    cat = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")
    assert cat.loc["A1", "notes"] == "line one\nline two"
    assert cat.loc["A1", "brand"] == "Acme" == cat.loc["B2", "brand"]
    assert cat.loc["A1", "category"] == "Kitchen > Mugs" and cat.loc["B2", "title"] == "Pot"
    assert not any(c.startswith("Unnamed") or c.startswith("column_") for c in cat.columns)
    assert "'4.1' at row 2" in report_of(out)["reading"]["catalog"]["unnamed columns"]


def test_extra_attribute_whitespace_is_trimmed(tmp_path, capsys):
    f = write(tmp_path / "cat.csv", [["sku", "colour"], ["a", " Black"], ["b", "Red "]])
    rc, _, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(f), "--map", "sku=item_id")
    assert rc == 0, err
    assert load_dataset("imported", tmp_path / "d").catalog["colour"].tolist() == ["Black", "Red"]


# ------------------------------------------------------------------------------------------
# shapes
# ------------------------------------------------------------------------------------------


def test_catalogue_only_import_and_models_that_need_events_refuse(tmp_path, capsys):
    rows = [["sku", "name", "dept"]] + [[f"p{k}", f"thing {k}", f"d{k % 3}"] for k in range(30)]
    f = write(tmp_path / "products.csv", rows)
    root = tmp_path / "d"
    rc, out, err = run(
        capsys,
        root,
        "csv",
        "--catalog",
        str(f),
        "--name",
        "cat",
        "--map",
        "sku=item_id",
        "name=title",
        "dept=category",
    )
    assert rc == 0, err
    summary = json.loads(out)["summary"]
    assert summary["items"] == 30 and summary["interactions"] == 0
    rc = main(["--data-dir", str(root), "-q", "train", "popularity", "--dataset", "cat"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "popularity learns from interactions" in err and "content" in err


def test_event_attributes_fill_the_catalogue_per_field(tmp_path, capsys):
    cat = write(tmp_path / "cat.csv", [["sku", "name", "price"], ["a", "Apple", ""], ["b", "Bread", "2.50"]])
    ev = write(
        tmp_path / "lines.csv",
        [
            ["order", "sku", "unit_price", "dept"],
            ["o1", "a", "£0.40", "Fruit"],
            ["o1", "b", "£9.99", "Bakery"],
            ["o2", "a", "£0.50", ""],
        ],
    )
    rc, out, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        str(ev),
        "--catalog",
        str(cat),
        "--kind",
        "baskets",
        "--map",
        "order=sequence_id",
        "sku=item_id",
        "name=title",
        "unit_price=price",
        "dept=category",
    )
    assert rc == 0, err
    c = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")
    assert c.loc["a", "price"] == pytest.approx(0.45)  # filled: median of its lines
    assert c.loc["b", "price"] == 2.5  # the catalogue's own price wins
    assert c.loc["a", "category"] == "Fruit" and c.loc["b", "category"] == "Bakery"
    assert report_of(out)["filled"] == {"category": 2, "price": 1}


def test_sessions_cut_on_a_time_gap(tmp_path, capsys):
    rows = [["user", "sku", "time"]]
    times = ["10:00", "10:10", "10:50", "10:55", "12:00"]
    rows += [["u1", f"i{k}", f"2024-01-01 {t}:00"] for k, t in enumerate(times)]
    rows += [["u2", "i9", "2024-01-01 10:01:00"]]
    f = write(tmp_path / "ev.csv", rows)
    rc, out, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        str(f),
        "--session-gap",
        "30m",
        "--map",
        "user=user_id",
        "sku=item_id",
        "time=timestamp",
    )
    assert rc == 0, err
    inter = load_dataset("imported", tmp_path / "d").interactions
    sessions = inter.groupby("sequence_id")["item_id"].apply(list)
    assert sorted(sessions.tolist()) == [["i0", "i1"], ["i2", "i3"], ["i4"], ["i9"]]
    assert "30 minutes" in report_of(out)["reading"]["interactions"]["sessions"]
    # without the gap (and no session column) the message says how to get sessions
    rc, _, err = run(
        capsys, tmp_path / "d", "csv", str(f), "--map", "user=user_id", "sku=item_id", "time=timestamp"
    )
    assert rc == 2 and "--session-gap 30m" in err


def test_event_codes_mapped_and_unknown_codes_explained(tmp_path, capsys):
    rows = [["s", "i", "e"], ["a", "x", "hover"], ["a", "y", "fav"], ["a", "y", "buy"], ["b", "x", "hover"]]
    f = write(tmp_path / "ev.csv", rows)
    base = ["csv", str(f), "--map", "s=sequence_id", "i=item_id", "e=event_type"]
    rc, _, err = run(capsys, tmp_path / "d", *base)
    assert rc == 2 and "--event-map" in err and "hover (2)" in err and "fav (1)" in err
    rc, out, err = run(capsys, tmp_path / "d", *base, "--event-map", "hover=view", "fav=drop", "buy=purchase")
    assert rc == 0, err
    inter = load_dataset("imported", tmp_path / "d").interactions
    assert sorted(inter["event_type"]) == ["purchase", "view", "view"]
    assert report_of(out)["rows_dropped"] == {"interactions: event type fav (--event-map fav=drop)": 1}


def test_several_category_columns_join_in_order(tmp_path, capsys):
    rows = [["sku", "aisle", "department"], ["a", "Frozen Pizza", "Frozen"], ["b", "", "Bakery"]]
    f = write(tmp_path / "cat.csv", rows)
    rc, _, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        "--catalog",
        str(f),
        "--map",
        "sku=item_id",
        "department=category",
        "aisle=category",
    )
    assert rc == 0, err
    cat = load_dataset("imported", tmp_path / "d").catalog.set_index("item_id")["category"]
    assert cat["a"] == "Frozen > Frozen Pizza" and cat["b"] == "Bakery"


# ------------------------------------------------------------------------------------------
# mapping messages, --help, --dry-run
# ------------------------------------------------------------------------------------------


def test_unknown_target_field_is_refused_with_the_valid_fields(tmp_path, capsys):
    f = write(tmp_path / "cat.csv", [["sku", "product_category_name"], ["a", "toys"]])
    rc, _, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        "--catalog",
        str(f),
        "--map",
        "sku=item_id",
        "product_category_name=category_name",
    )
    assert rc == 2
    assert "'category_name' is not a field of the schema" in err and "Did you mean category?" in err
    for field in ("item_id", "sequence_id", "timestamp", "price", "category"):
        assert f"\n  {field}" in err
    assert not list_datasets(tmp_path / "d")


def test_unknown_source_column_gets_did_you_mean(tmp_path, capsys):
    f = write(tmp_path / "ev.csv", EVENTS)
    rc, _, err = run(
        capsys, tmp_path / "d", "csv", str(f), "--map", "SessionID=sequence_id", "ItemId=item_id"
    )
    assert rc == 2 and "did you mean 'SessionId'" in err and "columns present: SessionId, ItemId, Time" in err


def test_import_help_lists_the_fields(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    for field in (
        "sequence_id",
        "item_id",
        "user_id",
        "timestamp",
        "event_type",
        "category",
        "price",
        "brand",
    ):
        assert f"  {field} " in out
    for option in (
        "--sep",
        "--no-header",
        "--columns",
        "--decimal",
        "--tz",
        "--session-gap",
        "--event-map",
        "--dry-run",
    ):
        assert option in out


def test_dry_run_prints_report_and_rows_and_stores_nothing(tmp_path, capsys):
    rows = [["SessionId", "ItemId", "Time"]] + [
        [f"s{k // 2}", f"i{k}", f"2024-01-01 10:{k:02d}:00"] for k in range(12)
    ]
    f = write(tmp_path / "events.txt", rows, "\t")
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(f), *SESSION_MAP, "--dry-run")
    assert rc == 0, err
    assert "separator: tab (detected)" in out and "nothing stored" in out
    table = out.split("events:\n", 1)[1].split("catalogue:")[0].strip().splitlines()
    assert table[0].split()[:3] == ["sequence_id", "user_id", "item_id"] and len(table) == 6
    assert not (tmp_path / "d").exists() or not list_datasets(tmp_path / "d")


@pytest.mark.slow
def test_content_model_trains_on_a_catalogue_alone(tmp_path, capsys, monkeypatch):
    from recsys.registry import Registry

    rng = np.random.default_rng(0)
    words = ["red", "blue", "mug", "cup", "tea", "pot", "plate", "bowl", "green", "large", "small", "glass"]
    rows = [["sku", "name", "dept", "aisle", "price"]]
    for k in range(120):
        dept, aisle = rng.choice(["Kitchen", "Garden", "Bath"]), rng.choice(["A", "B"])
        rows.append([f"p{k}", " ".join(rng.choice(words, 3)), dept, aisle, f"£{k % 40 + 1}.99"])
    f = write(tmp_path / "catalogue.csv", rows)
    root = tmp_path / "d"
    rc, _, err = run(
        capsys,
        root,
        "csv",
        "--catalog",
        str(f),
        "--name",
        "cat",
        "--map",
        "sku=item_id",
        "name=title",
        "dept=category",
        "aisle=category",
    )
    assert rc == 0, err
    rc = main(["--data-dir", str(root), "-q", "train", "content", "--dataset", "cat", "--param", "epochs=1"])
    err = capsys.readouterr().err
    assert rc == 0, err
    run_meta = Registry(root).list_runs("content")[0]
    assert run_meta["metrics"] == {} and "no interactions" in run_meta["split"]["note"]
    ids, _ = Registry(root).load_model(run_meta["run_id"]).similar(["p0"], 5)
    assert len([i for i in ids[0] if i]) == 5

    # the rest of the tool works on it: REST, Explore, Map; the tfidf baseline trains too,
    # and a family that needs interactions says so and names those that work
    import flask

    from recsys.serving import register_api
    from tests.callbacks._pages import page

    run_id = run_meta["run_id"]
    app = flask.Flask("catalogue-only")
    register_api(app, root=root)
    resp = app.test_client().get(f"/api/v1/similar/p0?run={run_id}&k=5")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert len(resp.get_json()["items"]) == 5
    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    out = page("explore").explore_results(run_id, "p0", 5, {})
    assert out["message"] is None and "5" in str(out["summary"])
    frame = page("map").projection_frame(run_id, "pca")
    assert frame is not None and len(frame) == 120
    rc = main(["--data-dir", str(root), "-q", "train", "tfidf", "--dataset", "cat"])
    assert rc == 0, capsys.readouterr().err
    rc = main(["--data-dir", str(root), "-q", "train", "prod2vec", "--dataset", "cat"])
    err = capsys.readouterr().err
    assert rc == 2 and "content" in err and "tfidf" in err


def test_without_map_columns_named_like_fields_are_used_and_reported(tmp_path, capsys):
    # the first example: a tab-separated .txt with SessionId, ItemId, Time and no option at all
    f = write(tmp_path / "clicks.txt", EVENTS, "\t")
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(f))
    assert rc == 0, err
    reading = report_of(out)["reading"]["interactions"]
    assert reading["mapping"].startswith("sequence_id <- SessionId (guessed), item_id <- ItemId (guessed)")
    ds = load_dataset("imported", tmp_path / "d")
    assert ds.interactions["timestamp"].notna().all() and len(ds.interactions) == 5
    # a --map overrides the guesses for what it names; the other columns keep theirs
    rc, out, _ = run(capsys, tmp_path / "d", "csv", str(f), "--map", "SessionId=sequence_id", "Time=-")
    reading = report_of(out)["reading"]["interactions"]
    assert rc == 0 and reading["mapping"].startswith(
        "sequence_id <- SessionId (--map), item_id <- ItemId (guessed)"
    )
    assert "Time left out (--map)" in reading["mapping"] and "timestamp" not in reading["mapping"]
    assert load_dataset("imported", tmp_path / "d").interactions["timestamp"].isna().all()


# A grocer's catalogue as BigBasket exports it: a row number, the product's *name* in a column
# called "product" (two rows share a name), no product id.
NAMED_PRODUCTS = [
    ["index", "product", "category", "brand", "sale_price"],
    ["1", "Garlic Oil - Vegetarian Capsule 500 mg", "Beauty & Hygiene", "Sri Sri Ayurveda", "220"],
    ["2", "Water Bottle - Orange", "Kitchen, Garden & Pets", "Mastercook", "180"],
    ["3", "Water Bottle - Orange", "Kitchen, Garden & Pets", "Cello", "175"],
    ["4", "Creme Soft Soap - For Hands & Body", "Beauty & Hygiene", "Nivea", "162"],
]


def test_a_column_of_product_names_is_not_guessed_as_the_item_id(tmp_path, capsys):
    """Without --map, 'product' holding names became item_id: rows sharing a name were dropped
    as duplicate ids (4,014 of BigBasket's 27,555). Now it is the title, and the import asks
    for the id column instead of dropping products."""
    rows = [[f'"{v}"' if "," in v else v for v in r] for r in NAMED_PRODUCTS]
    path = write(tmp_path / "BigBasket Products.csv", rows)
    rc, _, err = run(
        capsys, tmp_path / "d", "csv", "--catalog", str(path), "--name", "bb", "--errors", "drop"
    )
    assert rc != 0
    assert "required column 'item_id' is missing" in err and "title" in err
    assert list_datasets(tmp_path / "d") == []

    rc, _, err = run(
        capsys,
        tmp_path / "d",
        "csv",
        "--catalog",
        str(path),
        "--name",
        "bb",
        "--map",
        "index=item_id",
        "product=title",
    )
    assert rc == 0, err
    ds = load_dataset("bb", tmp_path / "d")
    assert len(ds.catalog) == 4 and ds.catalog["title"].tolist()[1] == "Water Bottle - Orange"

    # a 'product' column holding codes is still the id
    codes = [["InvoiceNo", "product"], ["i1", "85123A"], ["i1", "71053"], ["i2", "85123A"]]
    rc, _, err = run(
        capsys, tmp_path / "d", "csv", str(write(tmp_path / "lines.csv", codes)), "--name", "lines"
    )
    assert rc == 0, err
    assert sorted(load_dataset("lines", tmp_path / "d").catalog["item_id"]) == ["71053", "85123A"]


# BigBasket's whole layout (made-up rows): the header ends with two unnamed columns.
BIGBASKET = (
    "index,product,category,sub_category,brand,sale_price,market_price,type,rating,description,,\r\n"
    "1,Garlic Oil - Vegetarian Capsule 500 mg,Beauty & Hygiene,Hair Care,Sri Sri Ayurveda ,220,220,"
    "Hair Oil & Serum,4.1,Garlic oil in soft capsules,,4.1\r\n"
    '2,Water Bottle - Orange,"Kitchen, Garden & Pets",Storage & Accessories,Mastercook,180,180,'
    "Water & Fridge Bottles,2.3,A plastic bottle,,\r\n"
    "3,Brass Angle Deep - Plain No.2,Cleaning & Household,Pooja Needs,Trm,119,250,Lamp & Lamp Oil,3.4,,,\r\n"
    "4,Cereal Flip Lid Container - Assorted,Cleaning & Household,Bins & Bathroom Ware,Nakoda,149,176,"
    "Laundry & Storage Baskets,,Stores cereals,,\r\n"
)


def test_a_partial_map_keeps_the_other_guesses_and_says_which(tmp_path, capsys):
    """--map index=item_id on BigBasket's catalogue stored empty titles and no price: the guesses
    the refusal named (product as title, sale_price as price) were dropped once one column was
    mapped. A --map overrides only what it names; the report says what was guessed."""
    path = write(tmp_path / "BigBasket Products.csv", BIGBASKET)
    rc, _, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(path), "--name", "bb")
    assert rc != 0 and "title (guessed from 'product')" in err and "price (guessed from 'sale_price')" in err

    rc, out, err = run(
        capsys, tmp_path / "d", "csv", "--catalog", str(path), "--name", "bb", "--map", "index=item_id"
    )
    assert rc == 0, err
    cat = load_dataset("bb", tmp_path / "d").catalog.set_index("item_id")
    assert cat.loc["2", "title"] == "Water Bottle - Orange" and cat.loc["3", "price"] == 119
    assert cat["title"].ne("").all() and cat["price"].notna().all()
    assert cat.loc["1", "description"] == "Garlic oil in soft capsules"
    assert cat.loc["3", "market_price"] == "250" and cat.loc["4", "type"] == "Laundry & Storage Baskets"
    report = report_of(out)
    mapping = report["reading"]["catalog"]["mapping"]
    for said in ("item_id <- index (--map)", "title <- product (guessed)", "price <- sale_price (guessed)"):
        assert said in mapping
    assert not [w for w in report["warnings"] if w.startswith(("no title", "no price"))]

    # the guess a --map names is the user's; what is left without a title or a price is said
    argv = ["--map", "index=item_id", "product=-", "sale_price=-"]
    rc, out, err = run(capsys, tmp_path / "d", "csv", "--catalog", str(path), "--name", "bb", *argv)
    assert rc == 0, err
    warnings = report_of(out)["warnings"]
    assert any(w.startswith("no title for 4 of 4 items") for w in warnings)
    assert any("no price for 4 of 4 items" in w and "--map market_price=price" in w for w in warnings)


def test_a_json_array_of_records_is_read_and_its_fields_guessed(tmp_path, capsys):
    path = tmp_path / "export.json"
    path.write_text(
        '[{"session": "s1", "sku": "a", "ts": 1511544070, "tags": ["x", "y"]},\n'
        ' {"session": "s1", "sku": "b", "ts": 1511544170, "tags": []},\n'
        ' {"session": "s2", "sku": "a", "ts": 1511545170, "tags": null}]'
    )
    rc, out, err = run(capsys, tmp_path / "data", "csv", str(path), "--name", "arr")
    assert rc == 0, err
    reading = report_of(out)["reading"]["interactions"]
    assert reading["format"] == "JSON array of records" and "timestamp <- ts (guessed)" in reading["mapping"]
    ds = load_dataset("arr", tmp_path / "data")
    assert ds.interactions["timestamp"].min() == pd.Timestamp(1511544070, unit="s")
    assert ds.interactions["sequence_id"].nunique() == 2


def test_a_workbook_whose_first_row_is_data_is_named_by_columns(tmp_path, capsys):
    path = tmp_path / "log.xlsx"
    pd.DataFrame([["s1", 17, 1511544070], ["s1", 18, 1511544170], ["s2", 17, 1511545170]]).to_excel(
        path, header=False, index=False
    )
    rc, _, err = run(capsys, tmp_path / "data", "csv", str(path), "--name", "x")
    assert rc == 2 and "no header row" in err and "--columns" in err
    rc, out, err = run(
        capsys,
        tmp_path / "data",
        "csv",
        str(path),
        "--columns",
        "sequence_id,item_id,timestamp",
        "--name",
        "x",
    )
    assert rc == 0, err
    assert report_of(out)["reading"]["interactions"]["header"].startswith("none (detected")
    ds = load_dataset("x", tmp_path / "data")
    assert (
        sorted(ds.interactions["item_id"]) == ["17", "17", "18"]
        and ds.interactions["sequence_id"].nunique() == 2
    )


@pytest.mark.parametrize(
    "value, unit",
    [("1704103200", "seconds"), ("1704103200000", "milliseconds"), ("1704103200000000", "microseconds")]
    + [("1704103200000000000", "nanoseconds")],
)
def test_unix_time_unit_is_read_from_the_size_of_the_values(tmp_path, capsys, value, unit):
    rows = [["session", "sku", "ts"], ["a", "x", value], ["a", "y", value[:-1] + "9"]]
    rc, out, err = run(capsys, tmp_path / "d", "csv", str(write(tmp_path / "t.csv", rows)), "--name", "t")
    assert rc == 0, err
    assert report_of(out)["reading"]["interactions"]["timestamps"].startswith(f"unix {unit}")
    assert load_dataset("t", tmp_path / "d").interactions["timestamp"].iloc[0] == pd.Timestamp(
        "2024-01-01 10:00"
    )
