"""The Data page on public exports as their publishers ship them (``tests/_export_layouts.py``):
Inspect guesses the mapping a user then sends back with Preview or Import, with the form's
values as the browser sends them."""

from __future__ import annotations

import base64

import pytest
from dash import dcc

from components import ids
from recsys.data.schema import load_dataset
from recsys.jobs import JobStore
from tests import _export_layouts as layouts
from tests.callbacks._pages import find, page, text_of


@pytest.fixture
def data_page(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path))
    return page("data")


def _options(**values) -> tuple[list, list]:
    from pages.data import READ_FORM

    option_ids = [{"type": ids.DATA_OPT, "option": o} for o, *_ in READ_FORM]
    values.setdefault("role", "events")
    return [values.get(i["option"], "") for i in option_ids], option_ids


def inspect(data_page, path, **options):
    values, option_ids = _options(**options)
    children, message, _ = data_page.inspect_file(1, str(path), "csv", values, option_ids)
    assert message is None, text_of(message)
    drops = [d for d in find(children, lambda c: isinstance(c, dcc.Dropdown)) if isinstance(d.id, dict)]
    guessed = {d.id["field"]: d.value for d in drops}
    return guessed, text_of(children)


def preview(data_page, path, guessed, kind="sessions", errors="raise", **options):
    values, option_ids = _options(**options)
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in guessed]
    out = data_page.preview_import(
        1, "csv", str(path), list(guessed.values()), map_ids, kind, errors, values, option_ids
    )
    return text_of(out)


def test_diginetica_views_with_products_from_the_form(root, tmp_path, data_page):
    files = layouts.diginetica(tmp_path / "digi")
    guessed, text = inspect(data_page, files["events"], catalog=str(files["catalog"]))
    assert "separator: semicolon (detected)" in text
    assert (guessed["sequence_id"], guessed["item_id"], guessed["timestamp"]) == (
        "sessionId",
        "itemId",
        "eventdate",
    )
    out = preview(data_page, files["events"], guessed, catalog=str(files["catalog"]))
    assert "Parsed events" in out and "81766" in out and "The import would stop" not in out


def test_retailrocket_needs_only_the_session_gap(root, tmp_path, data_page):
    path = layouts.retailrocket(tmp_path / "rr")["events"]
    guessed, _ = inspect(data_page, path, session_gap="30m")
    assert guessed["sequence_id"] is None  # transactionid is blank on views: no session id
    assert (guessed["user_id"], guessed["item_id"], guessed["event_type"]) == ("visitorid", "itemid", "event")
    out = preview(data_page, path, guessed, session_gap="30m")
    assert "unix milliseconds" in out and "cart" in out and "purchase" in out


def test_amazon_2023_jsonl_keeps_review_titles_off_the_products(root, tmp_path, data_page):
    path = layouts.amazon_2023(tmp_path / "amz")["events"]
    guessed, text = inspect(data_page, path, session_gap="1d")
    assert "JSON lines" in text
    assert guessed["item_id"] == "parent_asin" and guessed["title"] is None
    out = preview(data_page, path, guessed, session_gap="1d")
    assert "Parsed events" in out and "B00BBQ29N5" in out


def test_online_retail_ii_workbook_imports_from_the_form(root, tmp_path, data_page):
    path = layouts.online_retail_ii_xlsx(tmp_path / "ori")["events"]
    guessed, text = inspect(data_page, path)
    assert "2 sheets with the same columns" in text
    assert (guessed["sequence_id"], guessed["user_id"], guessed["item_id"]) == (
        "Invoice",
        "Customer ID",
        "StockCode",
    )
    values, option_ids = _options()
    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in guessed]
    message, current = data_page.start_import(
        1, "csv", str(path), "retail2", list(guessed.values()), map_ids, "baskets", "drop", values, option_ids
    )
    assert "Import started" in text_of(message)
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")
    ds = load_dataset("retail2", root)
    assert len(ds.interactions) == 33 and ds.interactions["sequence_id"].nunique() == 11


@pytest.mark.parametrize("name", ["reviews.jsonl", "clicks.dat", "meta.json.gz"])
def test_exports_of_these_kinds_can_be_uploaded(root, tmp_path, data_page, name):
    url = "data:application/octet-stream;base64," + base64.b64encode(b"x").decode()
    assert data_page.save_upload(url, name).name == name


def test_the_drop_zone_names_the_file_kinds_an_upload_accepts(data_page):
    """The upload takes JSON lines and workbooks since they are read; its hint still said
    "CSV, CSV.gz, Parquet", so a user with an .xlsx or .jsonl export thought it refused."""
    upload = find(data_page.layout(), lambda c: getattr(c, "id", None) == ids.DATA_UPLOAD)
    hint = text_of(upload[0].children)
    for kind in ("CSV", "JSON lines", "Excel", "Parquet"):
        assert kind in hint, hint
