"""Malformed files and options on `recsys import`: a clear message, in CLI words, and no change.

Each case writes its own small files, runs the command a user would type against a data
directory that already holds a good dataset of the same name, and checks the exit code,
the words of the message (what is wrong, where, what to do), that no Python syntax or
traceback leaks out, and that the stored dataset is byte for byte unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from recsys.__main__ import main

EV = "order,sku,when\no1,a,2024-01-01 10:00:00\no1,b,2024-01-01 10:01:00\no2,a,2024-01-02 10:00:00\n"
CAT = "sku,name,price\na,Apple,1.5\nb,Bread,2.0\n"
MAP = ["--map", "order=sequence_id", "sku=item_id", "when=timestamp", "name=title"]
BOTH = ["csv", "{ev}", "--catalog", "{cat}", *MAP]


def _ev(*rows: str, header: str = "order,sku,when") -> str:
    return header + "\n" + "".join(r + "\n" for r in rows)


# (case id, files {name: text or bytes}, argv after "import" ({ev}/{cat} are the files), words)
CASES = [
    ("events_missing", {}, ["csv", "{ev}"], ["file or folder not found"]),
    ("catalogue_missing", {"ev.csv": EV}, ["csv", "{ev}", "--catalog", "{cat}"], ["catalogue file not found"]),
    ("catalogue_is_a_folder", {"ev.csv": EV, "cat.csv/x": ""}, BOTH, ["is a folder"]),
    ("unsupported_type", {"ev.xls": b"\xd0\xcf\x11\xe0"}, ["csv", "{ev}"], ["unsupported file type '.xls'", "save it as .xlsx"]),
    ("broken_workbook", {"ev.xlsx": b"PK\x03\x04"}, ["csv", "{ev}"], ["not a readable Excel workbook"]),
    ("broken_json_line", {"ev.jsonl": '{"order": "o1", "sku": "a"}\n{broken\n'}, ["csv", "{ev}"], ["row 2", "this line is not a JSON object: '{broken'"]),
    ("empty_file", {"ev.csv": ""}, ["csv", "{ev}"], ["file is empty"]),
    ("header_only", {"ev.csv": "order,sku,when\n"}, ["csv", "{ev}", *MAP[:3]], ["header but no data rows"]),
    ("extra_field", {"ev.csv": _ev("o1,a,2024-01-01", "o1,b,x,y")}, ["csv", "{ev}", *MAP[:3]], ["row 2", "has 4 fields but the header has 3", "--sep"]),
    ("bad_utf8", {"ev.csv": _ev("o1,caf\xe9,2024-01-01").encode("latin-1")}, ["csv", "{ev}", *MAP[:4]], ["0xe9", "row 1", "column 'sku'", "--encoding cp1252"]),
    ("bad_catalogue_utf8", {"ev.csv": EV, "cat.csv": CAT.replace("Apple", "Appl\xe9").encode("latin-1")}, BOTH, ["0xe9", "--catalog-encoding cp1252"]),
    ("unknown_encoding", {"ev.csv": EV}, ["csv", "{ev}", "--encoding", "klingon", *MAP[:4]], ["--encoding 'klingon' is not a known text encoding"]),
    ("corrupt_gzip", {"ev.csv.gz": b"not gzip at all"}, ["csv", "{ev}"], ["not a readable gzip file"]),
    ("corrupt_parquet", {"ev.parquet": b"PAR1 broken"}, ["csv", "{ev}"], ["not a readable Parquet file"]),
    ("bad_sep_option", {"ev.csv": EV}, ["csv", "{ev}", "--sep", "spaces", *MAP[:4]], ["--sep 'spaces' is not a separator"]),
    ("columns_count", {"ev.csv": EV}, ["csv", "{ev}", "--columns", "sequence_id,item_id"], ["--columns names 2 columns but the first row has 3 fields"]),
    ("unknown_target", {"ev.csv": EV}, ["csv", "{ev}", "--map", "order=session", "sku=item_id"], ["'session' is not a field of the schema", "Valid fields", "sequence_id"]),
    ("unknown_source", {"ev.csv": EV}, ["csv", "{ev}", "--map", "ordre=sequence_id", "sku=item_id"], ["column 'ordre'", "did you mean 'order'", "columns present: order, sku, when"]),
    ("map_without_equals", {"ev.csv": EV}, ["csv", "{ev}", "--map", "order"], ["--map 'order' is not of the form COLUMN=FIELD"]),
    ("two_columns_one_field", {"ev.csv": EV}, ["csv", "{ev}", "--map", "order=item_id", "sku=item_id"], ["several columns to 'item_id'"]),
    ("rename_onto_existing", {"ev.csv": _ev("o1,a,x", header="order,sku,title")}, ["csv", "{ev}", "--map", "order=sequence_id", "sku=title"], ["already has a column 'title'"]),
    ("no_sequence_column", {"ev.csv": EV}, ["csv", "{ev}", "--map", "sku=item_id"], ["required column 'sequence_id' is missing", "--map <your column>=sequence_id", "--session-gap 30m"]),
    ("catalogue_as_events", {"ev.csv": CAT}, ["csv", "{ev}"], ["required column 'sequence_id' is missing", "looks like a catalogue (item_id with title, price", "pass it as the catalogue, with --catalog"]),
    ("no_item_column", {"ev.csv": EV.replace("sku", "code")}, ["csv", "{ev}", "--map", "order=sequence_id"], ["required column 'item_id' is missing", "columns present: sequence_id, code, when."]),
    ("catalogue_without_item_id", {"cat.csv": CAT.replace("sku", "code")}, ["csv", "--catalog", "{cat}"], ["required column 'item_id' is missing", "columns present: code, title (guessed from 'name'), price"]),
    ("missing_item_id", {"ev.csv": _ev("o1,a,2024-01-01", "o1,,2024-01-01", "o2,b,2024-01-01")}, ["csv", "{ev}", *MAP[:4]], ["missing item_id", "row 2", "--errors drop"]),
    ("missing_sequence_id", {"ev.csv": _ev("o1,a,2024-01-01", ",b,2024-01-01", "o2,b,2024-01-01")}, ["csv", "{ev}", *MAP[:4]], ["missing sequence_id", "row 2"]),
    ("duplicate_item_id", {"ev.csv": EV, "cat.csv": CAT + "a,Apricot,3\n"}, BOTH, ["duplicate item_id (first seen at row 1)", "'a' at row 3"]),
    ("negative_price", {"ev.csv": EV, "cat.csv": CAT.replace("2.0", "-2")}, BOTH, ["negative price", "'-2' at row 2"]),
    ("non_numeric_price", {"ev.csv": EV, "cat.csv": CAT + "c,Cake,ask us\n"}, BOTH, ["1 of 3 rows: non-numeric price", "'ask us' at row 3", "--decimal"]),
    ("unparseable_timestamp", {"ev.csv": _ev("o1,a,2024-01-01", "o1,b,someday", "o2,a,2024-01-02")}, ["csv", "{ev}", *MAP[:4]], ["1 of 3 rows: unparseable timestamp", "'someday' at row 2", "unix seconds"]),
    ("unknown_event_code", {"ev.csv": _ev("o1,a,hover", "o1,b,view", "o2,a,view", header="order,sku,what")}, ["csv", "{ev}", "--map", "order=sequence_id", "sku=item_id", "what=event_type"], ["unknown event_type", "'hover' at row 1", "--event-map hover=view"]),
    ("bad_event_map_target", {"ev.csv": EV}, ["csv", "{ev}", *MAP[:4], "--event-map", "pv=like"], ["--event-map pv=like", "view, cart, purchase"]),
    ("non_numeric_quantity", {"ev.csv": _ev("o1,a,2", "o1,b,two", "o2,a,1", header="order,sku,quantity")}, ["csv", "{ev}", *MAP[:3]], ["non-numeric quantity", "'two' at row 2"]),
    ("non_positive_quantity", {"ev.csv": _ev("o1,a,2", "o1,b,-1", "o2,a,1", header="order,sku,quantity")}, ["csv", "{ev}", *MAP[:3]], ["non-positive quantity", "'-1' at row 2"]),
    ("non_numeric_position", {"ev.csv": _ev("o1,a,1", "o1,b,second", "o2,a,1", header="order,sku,position")}, ["csv", "{ev}", *MAP[:3]], ["non-numeric position", "'second' at row 2"]),
    ("unknown_gender", {"ev.csv": EV, "cat.csv": "sku,gender\na,women\nb,martian\n"}, ["csv", "{ev}", "--catalog", "{cat}", *MAP[:4]], ["unknown gender value", "'martian' at row 2"]),
    ("unreadable_adult_flag", {"ev.csv": EV, "cat.csv": "sku,adult\na,no\nb,perhaps\n"}, ["csv", "{ev}", "--catalog", "{cat}", *MAP[:4]], ["unreadable adult flag", "'perhaps' at row 2"]),
    ("item_not_in_catalogue", {"ev.csv": _ev("o1,a,2024-01-01", "o1,zz,2024-01-01", "o2,b,2024-01-01"), "cat.csv": CAT}, BOTH, ["item_id not in the catalog", "'zz' at row 2"]),
    ("bad_tz", {"ev.csv": EV}, ["csv", "{ev}", *MAP[:4], "--tz", "Mars/Olympus"], ["--tz 'Mars/Olympus' is not a time zone"]),
    ("bad_session_gap", {"ev.csv": EV}, ["csv", "{ev}", *MAP[:4], "--session-gap", "soon"], ["--session-gap 'soon' is not a duration", "30m"]),
    ("session_gap_without_time", {"ev.csv": "user,sku\nu,a\nu,b\n"}, ["csv", "{ev}", "--map", "user=user_id", "sku=item_id", "--session-gap", "30m"], ["no 'timestamp' column"]),
    ("everything_dropped", {"ev.csv": _ev("o1,a,x", "o1,b,y", "o2,a,z", header="order,sku,quantity")}, ["csv", "{ev}", *MAP[:3], "--errors", "drop"], ["no valid interaction is left", "non-numeric quantity: 3 rows"]),
    ("most_rows_bad", {"ev.csv": _ev("o1,a,x", "o1,b,y", "o2,a,2", header="order,sku,quantity")}, ["csv", "{ev}", *MAP[:3]], ["2 of 3 rows", "check the --map of column 'quantity'"]),
    ("nothing_to_import", {}, ["csv"], ["give the file to import", "--catalog"]),
    ("csv_option_on_named_source", {"ev.csv": EV}, ["online_retail", "{ev}", "--sep", "tab"], ["--sep", "only for 'import csv'"]),
    ("bad_dataset_name", {"ev.csv": EV}, ["csv", "{ev}", *MAP[:4], "--name", "../escape"], ["is not allowed"]),
    ("catalogue_all_dropped", {"cat.csv": "sku,price\na,x\nb,y\n"}, ["csv", "--catalog", "{cat}", "--map", "sku=item_id", "--errors", "drop"], ["no valid catalog row is left", "non-numeric price: 2 rows"]),
]  # fmt: skip


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A data directory already holding a good dataset named "shop"."""
    base = tmp_path_factory.mktemp("malformed")
    (base / "ev.csv").write_text(EV)
    (base / "cat.csv").write_text(CAT)
    root = base / "data"
    rc = main(
        [
            "--data-dir",
            str(root),
            "-q",
            "import",
            *[a.format(ev=base / "ev.csv", cat=base / "cat.csv") for a in BOTH],
            "--name",
            "shop",
        ]
    )
    assert rc == 0
    return root


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("files, argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_import_is_refused_clearly_and_changes_nothing(
    stored, tmp_path, capsys, files, argv, words
):
    paths = {"ev": tmp_path / "ev.csv", "cat": tmp_path / "cat.csv"}
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/x"):
            continue  # a folder where a file is expected
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths["ev" if name.startswith("ev") else "cat"] = path
    before = _snapshot(stored)
    args = [a.format(ev=paths["ev"], cat=paths["cat"]) for a in argv]
    if "--name" not in args:
        args += ["--name", "shop"]
    rc = main(["--data-dir", str(stored), "-q", "import", *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    for python_words in ("errors='drop'", "encoding='", "mapping={", "method='"):
        assert python_words not in err
    assert _snapshot(stored) == before
