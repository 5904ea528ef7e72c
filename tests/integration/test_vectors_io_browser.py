"""Browser: an analyst imports vectors on the Data page and reads the report; the Runs page
offers the export (headless Chromium; ``pytest --headless``)."""

from __future__ import annotations

import time

import numpy as np

from recsys.registry import Registry
from tests.integration._browser import click as _click
from tests.integration._browser import wait_until


def click(dash_duo, selector: str) -> None:
    _click(dash_duo, dash_duo.find_element(selector))


def test_import_vectors_from_the_data_page(dash_duo, dash_app_copy, demo_data_copy):
    from components import ids
    from recsys.config import import_dir
    from recsys.data.schema import load_stored_catalog

    folder = import_dir(demo_data_copy)
    item_ids = load_stored_catalog("demo", demo_data_copy)["item_id"].astype(str).tolist()[:120]
    np.save(folder / "team_vectors.npy", np.random.default_rng(1).normal(size=(120, 8)).astype(np.float32))
    (folder / "team_ids.txt").write_text("\n".join(item_ids) + "\n")

    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/data")
    dash_duo.wait_for_element(f"#{ids.VIO_SUBMIT}", timeout=30)
    dash_duo.find_element(f"#{ids.VIO_NAME}").send_keys("team vectors")
    dash_duo.find_element(f"#{ids.VIO_PATH}").send_keys("team_vectors.npy")
    dash_duo.find_element(f"#{ids.VIO_IDS}").send_keys("team_ids.txt")
    click(dash_duo, f"#{ids.VIO_SUBMIT}")
    dash_duo.wait_for_contains_text(f"#{ids.VIO_REPORT}", "stored", timeout=120)
    report = dash_duo.find_element(f"#{ids.VIO_REPORT}").text
    assert "team vectors" in report and "120 / 120" in report
    runs = Registry(demo_data_copy).list_runs("external")
    assert [r["label"] for r in runs] == ["team vectors"]

    # a path outside the import folder: a message, no job, no run
    name = dash_duo.find_element(f"#{ids.VIO_PATH}")
    name.clear()
    name.send_keys("/etc/passwd")
    click(dash_duo, f"#{ids.VIO_SUBMIT}")
    dash_duo.wait_for_contains_text(f"#{ids.VIO_MESSAGE}", "import folder", timeout=30)
    wait_until(lambda: len(Registry(demo_data_copy).list_runs("external")) == 1, 5, "no second run")

    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element(f"#{ids.VIO_EXPORT_BUTTON}", timeout=30)
    click(dash_duo, f"#{ids.VIO_EXPORT_BUTTON}")
    # let the download callback finish before the fixture restores RECSYS_DATA_DIR
    wait_until(lambda: dash_duo.driver.title != "Updating...", 30, "the download callback")
    time.sleep(2)
    assert not dash_duo.find_element(f"#{ids.VIO_EXPORT_MSG}").text  # no error message
    assert dash_duo.get_logs() == []
