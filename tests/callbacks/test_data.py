"""Data page callbacks and helpers, called as plain functions."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import pandas as pd
import pytest
from dash import dcc, no_update

from components import ids
from recsys.errors import DataValidationError
from recsys.jobs import JobStore
from tests.callbacks._pages import find, page, text_of

EVENTS = "session_id,product_id,price,Brand\ns1,a,1.5,Acme\ns1,b,2,Bolt\ns2,a,1.5,Acme\ns2,c,3,Dune\n"


@pytest.fixture
def data_page(tmp_path, monkeypatch):
    """The Data page module, with the test's tmp_path as the import folder it may read."""
    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path))
    return page("data")


def _mapping_dropdowns(children) -> dict[str, dcc.Dropdown]:
    drops = find(children, lambda c: isinstance(c, dcc.Dropdown))
    return {d.id["field"]: d for d in drops if isinstance(d.id, dict)}


def test_inspect_reads_the_header_and_guesses_the_mapping(root, tmp_path, data_page):
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(EVENTS.encode()))
    children, message, _ = data_page.inspect_file(1, str(path), "csv")
    assert message is None
    drops = _mapping_dropdowns(children)
    assert drops["sequence_id"].value == "session_id" and drops["item_id"].value == "product_id"
    assert drops["price"].value == "price" and drops["brand"].value == "Brand"
    assert drops["title"].value is None
    assert [o["value"] for o in drops["item_id"].options] == ["session_id", "product_id", "price", "Brand"]
    assert "4 columns" in text_of(children)

    parquet = tmp_path / "events.parquet"
    pd.read_csv(path).to_parquet(parquet)
    children, _, _ = data_page.inspect_file(1, str(parquet), "csv")
    assert _mapping_dropdowns(children)["item_id"].value == "product_id"


def test_a_missing_or_broken_file_gets_a_readable_alert_not_a_traceback(root, tmp_path, data_page):
    children, alert, _ = data_page.inspect_file(1, str(tmp_path / "nope.csv"), "csv")
    assert children == [] and isinstance(alert, dbc.Alert) and alert.color == "danger"
    assert "nope.csv" in text_of(alert) and "no such file in the import folder" in text_of(alert)
    assert "Traceback" not in text_of(alert)

    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"this is not gzip")
    _, alert, _ = data_page.inspect_file(1, str(broken), "csv")
    assert "broken.csv.gz" in text_of(alert) and "not a readable gzip file" in text_of(alert)

    # Outside the import folder: one message, whether or not the file exists, and no byte of it.
    secret = tmp_path.parent / "secret.csv"
    secret.write_text("user,password\nana,hunter2\n")
    _, outside, _ = data_page.inspect_file(1, str(secret), "csv")
    _, missing, _ = data_page.inspect_file(1, str(tmp_path.parent / "missing.csv"), "csv")
    assert "import folder" in text_of(outside) and "hunter2" not in text_of(outside)
    assert text_of(outside).replace("secret.csv", "X") == text_of(missing).replace("missing.csv", "X")
    (tmp_path / "link.csv").symlink_to(secret)  # a link inside that leads out
    _, linked, _ = data_page.inspect_file(1, str(tmp_path / "link.csv"), "csv")
    assert "import folder" in text_of(linked) and "hunter2" not in text_of(linked)

    # The named importers need no mapping, so nothing is inspected for them.
    assert data_page.inspect_file(1, str(tmp_path / "nope.csv"), "rees46") == ([], None, no_update)


def test_upload_is_stored_on_the_server_and_bad_types_are_refused(root, tmp_path, data_page, monkeypatch):
    url = "data:text/csv;base64," + base64.b64encode(EVENTS.encode()).decode()
    store, info, path = data_page.receive_upload(url, "my events.csv")
    assert Path(path).read_text() == EVENTS and Path(path).parent == tmp_path / "uploads"

    assert store == {"path": path} and "Uploaded" in text_of(info)

    store, info, path = data_page.receive_upload(url, "payload.exe")
    assert store is None and "unsupported file type" in text_of(info)

    monkeypatch.setattr(data_page, "UPLOAD_MAX_BYTES", len(EVENTS) - 1)
    store, info, _ = data_page.receive_upload(url, "big.csv")
    assert store is None and "at most" in text_of(info) and not (tmp_path / "uploads" / "big.csv").exists()


def test_form_checks_name_what_is_wrong(root, tmp_path, data_page):
    # the mapping's own checks: tests/unit/test_mapping.py
    (tmp_path / "f.csv").write_text(EVENTS)
    with pytest.raises(DataValidationError, match="folder"):
        data_page.import_params("instacart", str(tmp_path / "f.csv"), "x", None)
    with pytest.raises(DataValidationError, match="name"):
        data_page.import_params("csv", str(tmp_path / "f.csv"), "bad name!", {})
    params = data_page.import_params("csv", str(tmp_path / "f.csv"), "shop", {"s": "sequence_id"}, "baskets")
    assert params == {
        "source": "csv",
        "path": str((tmp_path / "f.csv").resolve()),
        "name": "shop",
        "mapping": {"s": "sequence_id"},
        "kind": "baskets",
        "errors": "drop",
        "guess": False,
    }

    # The Import button: without a mapping it explains what to do and submits nothing.
    alert, job = data_page.start_import(1, "csv", str(tmp_path / "f.csv"), "shop", [], [])
    assert "Inspect" in text_of(alert) and JobStore(root).list_jobs() == []


def test_import_job_runs_and_the_page_shows_its_validation_report(root, tmp_path, data_page):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS + "s3,,2,Acme\n")  # one row without an item id: dropped and reported
    children, _, _ = data_page.inspect_file(1, str(path), "csv")
    drops = _mapping_dropdowns(children)
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in drops]
    message, current = data_page.start_import(
        1, "csv", str(path), "shop", [d.value for d in drops.values()], map_ids, "sessions", "drop"
    )
    assert "Import started" in text_of(message)
    store = JobStore(root)
    job = store.wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")

    card, report, datasets, _message = data_page.show_import(None, current)
    report_text = text_of(report)
    assert "shop" in report_text and "missing item_id" in report_text  # the drop, with its reason
    assert "shop" in text_of(datasets)
    assert "sessions" in report_text and "catalogue only" not in report_text


def test_a_failed_import_shows_its_error_and_keeps_the_stored_data(root, tmp_path, data_page):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    before = (root / "datasets" / "demo" / "report.json").read_text()
    mapping_ids = [{"type": ids.DATA_MAP, "field": f} for f in ("sequence_id", "item_id")]
    # Map a column that holds no item ids of any use: strict mode stops at the first bad price.
    (tmp_path / "bad.csv").write_text("s,p,price\ns1,a,-3\n")
    _, current = data_page.start_import(
        1, "csv", str(tmp_path / "bad.csv"), "demo", ["s", "p"], mapping_ids, "sessions", "raise"
    )
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "failed"
    _card, report, _, _message = data_page.show_import(None, current)
    assert isinstance(report, dbc.Alert) and report.color == "danger"
    assert "nothing stored was changed" in text_of(report) and "price" in text_of(report)
    assert (root / "datasets" / "demo" / "report.json").read_text() == before


def _options(**values) -> tuple[list, list]:
    """The reading-option controls as the page sends them (every option, blank unless given)."""
    from pages.data import READ_FORM

    option_ids = [{"type": ids.DATA_OPT, "option": o} for o, *_ in READ_FORM]
    defaults = {"role": "events"}
    return [values.get(i["option"], defaults.get(i["option"], "")) for i in option_ids], option_ids


def test_reading_options_preview_and_import_a_headerless_tab_file(root, tmp_path, data_page):
    path = tmp_path / "log export.txt"
    path.write_text("u1\tA\thover\t1511544070\nu1\tB\tbuy\t1511544170\nu2\tA\thover\t1511550000\n")
    values, option_ids = _options(columns="user_id,item_id,event_type,timestamp", session_gap="30m")
    children, message, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    assert message is None
    text = text_of(children)
    assert "separator: tab (detected)" in text and "header: none (detected" in text
    drops = _mapping_dropdowns(children)
    assert drops["item_id"].value == "item_id" and drops["user_id"].value == "user_id"
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in drops]
    chosen = [d.value for d in drops.values()]

    # codes not given yet: the preview stops and names the form's option, not a CLI flag
    alert = data_page.preview_import(
        1, "csv", str(path), chosen, map_ids, "sessions", "raise", values, option_ids
    )
    assert "Event codes" in text_of(alert) and "--event-map" not in text_of(alert)
    values, option_ids = _options(
        columns="user_id,item_id,event_type,timestamp", session_gap="30m", event_map="hover=view buy=purchase"
    )
    out = data_page.preview_import(
        1, "csv", str(path), chosen, map_ids, "sessions", "raise", values, option_ids
    )
    text = text_of(out)
    assert "Parsed events" in text and "purchase" in text and "unix seconds (detected" in text
    assert not (root / "datasets" / "preview").exists()  # a preview stores nothing

    message, current = data_page.start_import(
        1, "csv", str(path), "taobao_like", chosen, map_ids, "sessions", "raise", values, option_ids
    )
    assert "Import started" in text_of(message)
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")
    _card, report, _, _message = data_page.show_import(None, current)
    assert "separator: tab (detected)" in text_of(report)
    from recsys.data.schema import load_dataset

    ds = load_dataset("taobao_like", root)
    assert sorted(ds.interactions["event_type"]) == ["purchase", "view", "view"]
    assert ds.interactions["sequence_id"].nunique() == 2


def test_catalogue_only_from_the_form_with_joined_categories(root, tmp_path, data_page):
    path = tmp_path / "products.csv"
    path.write_text("sku;name;dept;aisle;price\np1;Mug;Kitchen;Cups;£3.42\np2;Pot;Kitchen;Pots;£12\n")
    values, option_ids = _options(role="catalog")
    children, _, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    drops = _mapping_dropdowns(children)
    assert drops["category"].multi
    chosen = {f: None for f in drops}
    chosen.update(item_id="sku", title="name", category=["dept", "aisle"], price="price")
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in chosen]
    message, current = data_page.start_import(
        1,
        "csv",
        str(path),
        "cat_only",
        list(chosen.values()),
        map_ids,
        "sessions",
        "raise",
        values,
        option_ids,
    )
    assert "Import started" in text_of(message), text_of(message)
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")
    from recsys.data.schema import load_dataset

    ds = load_dataset("cat_only", root)
    assert len(ds.interactions) == 0
    assert ds.catalog.set_index("item_id")["category"].to_dict() == {
        "p1": "Kitchen > Cups",
        "p2": "Kitchen > Pots",
    }
    assert ds.catalog["price"].tolist() == [3.42, 12.0]
    # the report and the stored datasets' table say what it is (its stored kind is the form's
    # default, "sessions": Myntra's catalogue read "Dataset myntra · sessions")
    _card, report, datasets, _message = data_page.show_import(None, current)
    assert "catalogue only" in text_of(report) and "sessions" not in text_of(report)
    assert "catalogue only" in text_of(datasets)


def test_form_words_replace_command_line_flags(data_page):
    msg = "To fix: x; or pass --errors drop to drop this row. pass --encoding cp1252 or --sep tab"
    out = data_page.form_words(msg)
    assert "--" not in out and "Bad rows: drop and report" in out and "Encoding “cp1252”" in out


def test_inspect_does_not_guess_a_column_of_names_as_the_item_id(root, tmp_path, data_page):
    """BigBasket's catalogue: 'product' holds names. Inspect pre-filled it as item_id, and the
    import then dropped every product sharing a name as a duplicate id; now it pre-fills the
    title and leaves the id to the user, and Import asks for it."""
    path = tmp_path / "BigBasket Products.csv"
    path.write_text(
        "index,product,category,brand,sale_price,,\n"
        "1,Garlic Oil - Vegetarian Capsule 500 mg,Beauty & Hygiene,Sri Sri Ayurveda ,220,,4.1\n"
        '2,Water Bottle - Orange,"Kitchen, Garden & Pets",Mastercook,180,,\n'
        '3,Water Bottle - Orange,"Kitchen, Garden & Pets",Cello,175,,\n'
    )
    values, option_ids = _options(role="catalog")
    children, message, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    assert message is None
    drops = _mapping_dropdowns(children)
    assert drops["item_id"].value is None and drops["title"].value == "product"
    assert drops["price"].value == "sale_price"
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in drops]

    def press_import():
        chosen = [d.value for d in drops.values()]
        return data_page.start_import(
            1, "csv", str(path), "bb", chosen, map_ids, "sessions", "drop", values, option_ids
        )

    message, current = press_import()
    assert "required field 'item_id'" in text_of(message) and current is dash.no_update
    # the user picks the id; the pre-filled title and price are imported with it
    drops["item_id"].value = "index"
    message, current = press_import()
    assert JobStore(root).wait(current["job_id"], timeout=60)["status"] == "done"
    from recsys.data.schema import load_dataset

    cat = load_dataset("bb", root).catalog.set_index("item_id")
    assert cat.loc["2", "title"] == "Water Bottle - Orange" and cat.loc["3", "price"] == 175


def test_the_instacart_hint_names_the_files_the_importer_reads(data_page):
    """The hint names both layouts the importer reads: the sample's order_products.csv and
    Kaggle's orders.csv with order_products__prior.csv / __train.csv."""
    hint, _style, example = data_page.source_hint("instacart")
    for name in ("order_products.csv", "products.csv", "aisles.csv", "departments.csv", "orders.csv"):
        assert name in hint
    assert "order_products__prior.csv" in hint and "order_products__train.csv" in hint
    # the path box's example is a folder, not the events file it shows for the other sources
    assert "folder" in example and ".csv" not in example
    assert data_page.source_hint("rees46")[2].endswith(".csv.gz")


def test_the_data_page_imports_instacart_in_kaggle_layout(root, tmp_path, data_page):
    from recsys.data.schema import load_dataset
    from tests._instacart_data import instacart_kaggle_folder

    folder = instacart_kaggle_folder(tmp_path / "instacart")
    message, current = data_page.start_import(1, "instacart", str(folder), "kaggle", [], [])
    assert "Import started" in text_of(message)
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")
    _card, report, datasets, _message = data_page.show_import(None, current)
    assert "kaggle" in text_of(datasets) and "synthetic" in text_of(report)
    inter = load_dataset("kaggle", root).interactions
    assert inter["sequence_id"].nunique() == 4 and set(inter["user_id"]) == {"7", "8"}


def test_a_catalogue_alone_does_not_star_the_sequence_column(root, tmp_path, data_page):
    """Myntra's catalogue: the form starred sequence_id as required ("session, order or basket
    id") although a catalogue has none and the import does not ask for it."""
    path = tmp_path / "myntra.csv"
    path.write_text("Product_ID,Product_Name,Price\n1,Black Kurta,920\n2,Blue Shirt,799\n")

    def starred(children) -> set[str]:
        labels = find(children, lambda c: isinstance(c, dbc.Label))
        return {str(lab.children[0]) for lab in labels if isinstance(lab.children, list) and lab.children[1]}

    values, option_ids = _options(role="catalog")
    children, _, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    assert starred(children) == {"item_id"}
    assert _mapping_dropdowns(children)["sequence_id"].clearable
    values, option_ids = _options()
    children, _, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    assert starred(children) == {"sequence_id", "item_id"}


def test_a_catalogue_named_as_the_field_says_is_read_beside_the_events(root, tmp_path, data_page):
    """The catalogue field says "e.g. products.csv beside the events", but "products.csv" typed
    beside dunnhumby_completejourney/transactions_sample.csv got "no such file in the import
    folder": it was looked for in the folder's root only. It is read beside the events file
    first; a name that leads out of the import folder is still refused."""
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "events.csv").write_text("basket_id,product_id\nb1,a\nb1,b\nb2,a\n")
    (shop / "products.csv").write_text("product_id,product_name\na,Apple\nb,Bread\n")
    option_ids = [{"type": ids.DATA_OPT, "option": "role"}, {"type": ids.DATA_OPT, "option": "catalog"}]
    children, message, _ = data_page.inspect_file(
        1, "shop/events.csv", "csv", ["events", "products.csv"], option_ids
    )
    assert message is None, text_of(message)
    assert "product_name" in [o["value"] for o in _mapping_dropdowns(children)["title"].options]
    (tmp_path.parent / "products.csv").write_text("product_id,secret\na,hunter2\n")
    (tmp_path / "events.csv").write_text("basket_id,product_id\nb1,a\n")
    _, outside, _ = data_page.inspect_file(1, "events.csv", "csv", ["events", "../products.csv"], option_ids)
    assert "import folder" in text_of(outside) and "hunter2" not in text_of(outside)


def test_the_path_box_names_the_import_folder_and_shows_a_path_inside_it(root, tmp_path, data_page):
    """The path box read "Path on the server" with the example "/path/to/events.csv.gz": a newcomer
    typed a server path, and only the vectors section named the folder paths are read from. The
    label names the import folder and the examples are paths inside it, for a file or a folder."""
    text = " ".join(text_of(data_page.layout()).split())
    assert f"Path in the import folder {tmp_path.resolve()}" in text
    for source in ("csv", "instacart"):
        example = data_page.source_hint(source)[2]
        assert example.startswith("e.g. ") and "/path/to" not in example, example


def test_a_catalogue_without_category_previews_its_inferred_types_and_none_turns_them_off(
    root, tmp_path, data_page
):
    path = tmp_path / "fashion.csv"
    names = [f"{b} Women {c} Printed Kurta" for b in "ABCDEF" for c in ("Red", "Blue")]
    path.write_text("sku,name\n" + "".join(f"s{i},{n}\n" for i, n in enumerate(names)))
    values, option_ids = _options(role="catalog")
    children, _, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    drops = _mapping_dropdowns(children)
    assert drops["category"].value == []  # no column to offer: the form leaves it empty
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in drops]
    chosen = [d.value for d in drops.values()]
    out = text_of(
        data_page.preview_import(
            1, "csv", str(path), chosen, map_ids, "sessions", "raise", values, option_ids
        )
    )
    assert "category: inferred from title: 1 type, 100% of items" in out and "Categories 1 " in out, out
    assert "leave it out with “Category when no column is mapped to it: none”" in out
    values, option_ids = _options(role="catalog", infer_category="off")
    out = text_of(
        data_page.preview_import(
            1, "csv", str(path), chosen, map_ids, "sessions", "raise", values, option_ids
        )
    )
    assert "inferred from title" not in out and "Categories 0 " in out, out
    # the import job stores what the preview showed
    message, current = data_page.start_import(
        1, "csv", str(path), "no_types", chosen, map_ids, "sessions", "raise", values, option_ids
    )
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")
    from recsys.data.schema import load_dataset

    assert (load_dataset("no_types", root).catalog["category"] == "").all()


def test_the_preview_lists_sessions_by_time_then_in_natural_order(root, tmp_path, data_page):
    """The preview listed the parsed events in the stored string order: s1, s10, s11, s12, s2.
    Sessions now read by their first event's time, and sessions of one time by their ids'
    natural order (s2 before s10)."""

    def first_sessions(lines: list[str], header: str) -> list[str]:
        path = tmp_path / "events.csv"
        path.write_text(header + "\n" + "\n".join(lines) + "\n")
        values, option_ids = _options()
        children, message, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
        assert message is None
        drops = _mapping_dropdowns(children)
        map_ids = [{"type": ids.DATA_MAP, "field": f} for f in drops]
        chosen = [d.value for d in drops.values()]
        out = data_page.preview_import(
            1, "csv", str(path), chosen, map_ids, "sessions", "drop", values, option_ids
        )
        tables = find(out, lambda c: isinstance(c, dbc.Table))
        (events,) = [t for t in tables if "sequence_id" in text_of(t)]
        rows = find(events, lambda c: type(c).__name__ == "Tr")[1:]  # after the header row
        return [text_of(r.children[0]) for r in rows]

    numbers = [7, 12, 1, 10, 3, 11, 2, 9, 4, 8, 5, 6]
    same_time = [f"s{n},p{n},2024-01-01 10:00:00" for n in numbers]
    assert first_sessions(same_time, "session_id,product_id,timestamp") == ["s1", "s2", "s3", "s4", "s5"]
    # by time first: s12 began first, then s11, ...
    by_time = [f"s{n},p{n},2024-01-01 10:{60 - 4 * n:02d}:00" for n in numbers]
    assert first_sessions(by_time, "session_id,product_id,timestamp") == ["s12", "s11", "s10", "s9", "s8"]
