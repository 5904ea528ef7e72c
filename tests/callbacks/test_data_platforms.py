"""The Data page on shop platforms' own exports (``tests/_platform_layouts.py``): Inspect
recognises the layout and pre-fills the mapping a user then sends back with Preview or
Import, with the form's values as the browser sends them."""

from __future__ import annotations

import base64

import pytest
from dash import no_update

from components import ids
from recsys.data.schema import load_dataset
from recsys.jobs import JobStore
from tests import _platform_layouts as layouts
from tests.callbacks._pages import page, text_of, triggered
from tests.callbacks.test_data_exports import _options, inspect, preview


@pytest.fixture
def data_page(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path))
    return page("data")


def test_shopify_orders_and_products_import_from_the_form(root, tmp_path, data_page):
    files = layouts.shopify(tmp_path / "shop")
    guessed, text = inspect(data_page, files["events"], catalog=str(files["catalog"]))
    assert "Shopify orders export" in text
    assert (guessed["sequence_id"], guessed["item_id"], guessed["user_id"], guessed["timestamp"]) == (
        "sequence_id",
        "item_id",
        "user_id",
        "timestamp",
    )  # Name, Lineitem sku, Email, Created at, renamed by the layout
    out = preview(data_page, files["events"], guessed, catalog=str(files["catalog"]))  # Kind left as is
    assert "Kind: Baskets on the Data page" in out
    out = preview(data_page, files["events"], guessed, kind="baskets", catalog=str(files["catalog"]))
    assert "Parsed events" in out and "#1001" in out and "The import would stop" not in out
    values, option_ids = _options(catalog=str(files["catalog"]))

    map_ids = [{"type": ids.DATA_MAP, "field": f} for f in guessed]
    message, current = data_page.start_import(
        1, "csv", str(files["events"]), "shopify", list(guessed.values()), map_ids, "baskets", "raise",
        values, option_ids,
    )  # fmt: skip
    assert "Import started" in text_of(message)
    job = JobStore(root).wait(current["job_id"], timeout=60)
    assert job["status"] == "done", job.get("error")
    ds = load_dataset("shopify", root)
    assert ds.kind == "baskets" and ds.interactions["sequence_id"].nunique() == 4
    assert ds.catalog.set_index("item_id").loc["MUG-B-L", "title"] == "Blue Mug"


def test_ga4_json_export_previews_from_the_form(root, tmp_path, data_page):
    path = layouts.ga4_json(tmp_path / "ga4")["events"]
    guessed, text = inspect(data_page, path)
    assert "Google Analytics 4" in text
    assert (guessed["sequence_id"], guessed["item_id"], guessed["event_type"], guessed["timestamp"]) == (
        "sequence_id",
        "item_id",
        "event_type",
        "timestamp",
    )
    out = preview(data_page, path, guessed)
    assert "The import would stop" not in out, out
    assert "unix microseconds" in out and "1234.111:1709288000" in out and "cart" in out


def test_a_merchant_feed_in_xml_can_be_uploaded(root, data_page):
    url = "data:application/xml;base64," + base64.b64encode(b"<rss/>").decode()
    assert data_page.save_upload(url, "feed.xml").name == "feed.xml"


def _inspect_fired_by(data_page, prop_id, path, **options):
    """Inspect as Dash runs it when ``prop_id`` changed (the context a browser's request sets)."""
    values, option_ids = _options(**options)
    return triggered(prop_id, data_page.inspect_file, 1, str(path), "csv", values, option_ids)


def test_choosing_an_orders_export_sets_kind_to_baskets_and_a_later_option_leaves_it(tmp_path, data_page):
    files = layouts.shopify(tmp_path / "shop")
    _, message, kind = _inspect_fired_by(data_page, f"{ids.DATA_PATH}.value", files["events"])
    assert message is None and kind == "baskets"
    _, _, kind = _inspect_fired_by(data_page, f"{ids.DATA_INSPECT}.n_clicks", files["events"])
    assert kind == "baskets"
    option = f'{{"option":"encoding","type":"{ids.DATA_OPT}"}}.value'
    _, _, kind = _inspect_fired_by(data_page, option, files["events"])
    assert kind is no_update  # the user's own Kind choice stands when a reading option changes
    path = layouts.ga4_json(tmp_path / "ga4")["events"]  # events, not orders
    _, _, kind = _inspect_fired_by(data_page, f"{ids.DATA_PATH}.value", path)
    assert kind is no_update
