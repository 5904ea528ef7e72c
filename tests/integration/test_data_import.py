"""Data page in Chromium: reading options, the parsed preview and the import of a headerless tab file."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from recsys.data.schema import load_dataset
from tests.integration._browser import click as _click


def test_reading_options_preview_then_import(dash_duo, dash_app_copy, demo_data_copy):
    from components import ids

    imports = demo_data_copy / "imports"
    imports.mkdir(exist_ok=True)
    log = imports / "user log.txt"
    log.write_text("u1\tA\thover\t1511544070\nu1\tB\tbuy\t1511544170\nu2\tA\thover\t1511550000\n")

    dash_duo.driver.set_window_size(1400, 2400)  # the whole form in view: no scrolling under a re-render
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/data")
    dash_duo.wait_for_element(f"#{ids.DATA_PATH}", timeout=15)

    def option(name: str):
        return dash_duo.find_element(f'#data-read-options input[id*=\'"option":"{name}"\']')

    _click(dash_duo, dash_duo.find_element("#data-read-options summary"))
    option("columns").send_keys("user_id,item_id,event_type,timestamp\n")
    option("session_gap").send_keys("30m\n")
    path = dash_duo.find_element(f"#{ids.DATA_PATH}")
    path.send_keys(str(log) + "\n")
    dash_duo.wait_for_contains_text(f"#{ids.DATA_MAPPING}", "separator: tab (detected)", timeout=15)

    # codes unknown: with "Bad rows: drop" the preview drops them and says how to fix it, in form words
    _click(dash_duo, dash_duo.find_element(f"#{ids.DATA_PREVIEW}"))
    dash_duo.wait_for_contains_text(f"#{ids.DATA_PREVIEW_OUT}", "unknown event_type", timeout=15)
    text = dash_duo.find_element(f"#{ids.DATA_PREVIEW_OUT}").text
    assert "Event codes “hover=view" in text and "--" not in text

    option("event_map").send_keys("hover=view buy=purchase\n")
    _click(dash_duo, dash_duo.find_element(f"#{ids.DATA_PREVIEW}"))
    dash_duo.wait_for_contains_text(f"#{ids.DATA_PREVIEW_OUT}", "Parsed events", timeout=15)
    assert "purchase" in dash_duo.find_element(f"#{ids.DATA_PREVIEW_OUT}").text
    assert not (demo_data_copy / "datasets" / "preview").exists()

    dash_duo.find_element(f"#{ids.DATA_NAME}").send_keys("userlog")
    _click(dash_duo, dash_duo.find_element(f"#{ids.DATA_IMPORT}"))
    dash_duo.wait_for_contains_text(f"#{ids.DATA_REPORT}", "separator: tab (detected)", timeout=60)
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.DATA_MESSAGE} .alert-danger") == []
    ds = load_dataset("userlog", demo_data_copy)
    assert sorted(ds.interactions["event_type"]) == ["purchase", "view", "view"]
    assert dash_duo.get_logs() == []


def test_upload_through_the_file_chooser_then_import(dash_duo, dash_app_copy, demo_data_copy, tmp_path):
    """A file picked in the upload box (its hidden file input, as the browser's chooser fills
    it) lands in the import folder, fills the path box, and imports as a dataset."""
    from components import ids
    from tests.integration._browser import wait_until

    rows = [
        ("s1", "A", "view", 1511544070),
        ("s1", "B", "purchase", 1511544170),
        ("s2", "A", "view", 1511550000),
    ]
    local = tmp_path / "my events.csv"  # outside the import folder: only the upload can bring it
    local.write_text(
        "session_id,item_id,event_type,timestamp\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)
    )

    dash_duo.driver.set_window_size(1400, 2400)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/data")
    dash_duo.wait_for_element(f"#{ids.DATA_UPLOAD} input[type=file]", timeout=15).send_keys(str(local))
    dash_duo.wait_for_contains_text(f"#{ids.DATA_UPLOAD_INFO}", "Uploaded my_events.csv", timeout=20)
    uploaded = demo_data_copy / "imports" / "uploads" / "my_events.csv"  # a safe file name
    assert uploaded.read_text() == local.read_text()
    wait_until(
        lambda: dash_duo.find_element(f"#{ids.DATA_PATH}").get_attribute("value") == str(uploaded),
        timeout=10,
        what="the uploaded file's path in the path box",
    )
    dash_duo.wait_for_contains_text(f"#{ids.DATA_MAPPING}", "session_id", timeout=20)

    dash_duo.find_element(f"#{ids.DATA_NAME}").send_keys("uploaded")
    _click(dash_duo, dash_duo.find_element(f"#{ids.DATA_IMPORT}"))
    dash_duo.wait_for_contains_text(f"#{ids.DATA_REPORT}", "separator", timeout=90)
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.DATA_MESSAGE} .alert-danger") == []
    ds = load_dataset("uploaded", demo_data_copy)
    got = sorted(
        zip(ds.interactions["item_id"].astype(str), ds.interactions["event_type"].astype(str), strict=True)
    )
    assert got == sorted((b, c) for _a, b, c, _d in rows)
    dash_duo.wait_for_contains_text(f"#{ids.DATA_DATASETS}", "uploaded", timeout=20)
    # the form's "Import started (job ...)" gives way to the outcome (s33-u: it stayed, in blue)
    dash_duo.wait_for_contains_text(f"#{ids.DATA_MESSAGE}", "Imported dataset 'uploaded'", timeout=20)
    assert "Import started" not in dash_duo.find_element(f"#{ids.DATA_MESSAGE}").text
    assert dash_duo.get_logs() == []
