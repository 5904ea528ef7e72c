"""Browser tests of the shell, Overview, Runs and Data pages (headless Chromium).

Kept few and lean: each loads real pages in a real browser and ends with no console errors.
"""

from __future__ import annotations

import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from recsys.registry import Registry
from tests.integration._browser import click as _click
from tests.integration.conftest import DEMO_ITEMS


def _grid_row_ids(dash_duo, grid_id: str) -> set[str]:
    rows = dash_duo.find_elements(f"#{grid_id} .ag-center-cols-container .ag-row")
    return {r.get_attribute("row-id") for r in rows}


def test_overview_runs_and_data_pages_load(dash_duo, dash_app, demo_data_dir, tmp_path, monkeypatch):
    from components import ids

    runs = {r["run_id"]: r for r in Registry(demo_data_dir).list_runs()}
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(dash_app)

    # Overview: dataset counts, both runs in the metrics grid, active variant cards, links.
    dash_duo.wait_for_contains_text(f"#{ids.OVERVIEW_DATASET}", f"{DEMO_ITEMS:,}", timeout=15)
    dash_duo.wait_for_element(f"#{ids.OVERVIEW_RUNS_GRID} .ag-row", timeout=15)
    assert _grid_row_ids(dash_duo, ids.OVERVIEW_RUNS_GRID) == set(runs)
    text = dash_duo.find_element(f"#{ids.OVERVIEW_DATASET}").text
    assert "Prod2Vec" in text and "Popularity" in text  # active variant cards
    assert dash_duo.find_element(f"#{ids.OVERVIEW_LINKS} a[href='/explore']")

    # Runs, reached through the navbar: the form shows prod2vec's parameters, the grid both runs.
    dash_duo.find_element(f"#{ids.NAVBAR} a[href='/runs']").click()
    dash_duo.wait_for_element(f"#{ids.RUNS_PARAMS} input", timeout=15)
    params_text = dash_duo.find_element(f"#{ids.RUNS_PARAMS}").text
    assert "vector_size" in params_text and "window" in params_text
    dash_duo.wait_for_element(f"#{ids.RUNS_GRID} .ag-row", timeout=15)
    assert _grid_row_ids(dash_duo, ids.RUNS_GRID) == set(runs)

    # Data: the stored dataset is listed with its item count.
    dash_duo.find_element(f"#{ids.NAVBAR} a[href='/data']").click()
    dash_duo.wait_for_contains_text(f"#{ids.DATA_DATASETS}", "demo", timeout=15)
    assert f"{DEMO_ITEMS:,}" in dash_duo.find_element(f"#{ids.DATA_DATASETS}").text

    # Data: a path that does not exist gets a readable message, not a traceback.
    monkeypatch.setenv("RECSYS_IMPORT_DIR", str(tmp_path))  # the folder the Data page may read
    path_input = dash_duo.find_element(f"#{ids.DATA_PATH}")
    path_input.send_keys(str(tmp_path / "missing.csv"))
    dash_duo.find_element(f"#{ids.DATA_INSPECT}").click()
    dash_duo.wait_for_contains_text(f"#{ids.DATA_MESSAGE}", "no such file", timeout=10)
    alert = dash_duo.find_element(f"#{ids.DATA_MESSAGE} .alert-danger")
    assert "missing.csv" in alert.text and "Traceback" not in alert.text

    # Data: a real file's header becomes the mapping dropdowns, guessed from the column names.
    good = tmp_path / "events.csv"
    good.write_text("session_id,product_id,price\ns1,a,1.5\ns1,b,2\n")
    path_input.clear()
    path_input.send_keys(str(good))
    dash_duo.find_element(f"#{ids.DATA_INSPECT}").click()
    dash_duo.wait_for_contains_text(f"#{ids.DATA_MAPPING}", "session_id", timeout=10)
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.DATA_MESSAGE} .alert-danger") == []

    assert dash_duo.get_logs() == []


def test_training_job_started_from_runs_page_finishes_and_its_run_appears(
    dash_duo, dash_app_copy, demo_data_copy
):
    from components import ids

    before = {r["run_id"] for r in Registry(demo_data_copy).list_runs()}
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element(f"#{ids.RUNS_GRID} .ag-row", timeout=15)

    # pick the family as a user does with a long list: open the menu, type, press Enter
    _click(dash_duo, dash_duo.find_element(f"#{ids.RUNS_FAMILY}"))
    dash_duo.find_element("input.dash-dropdown-search").send_keys("popularity")
    _click(dash_duo, dash_duo.find_element(".dash-dropdown-option"))  # the one left after filtering
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_PARAMS}", "event_weights", timeout=10)
    label = dash_duo.find_element(f"#{ids.RUNS_LABEL}")
    label.send_keys(Keys.ESCAPE)  # close the family menu, which would cover the button
    label.send_keys("from the browser")
    submit = dash_duo.find_element(f"#{ids.RUNS_SUBMIT}")
    _click(dash_duo, submit)
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_SUBMIT_MSG}", "Training started", timeout=10)

    # The job card shows up, then the new run lands in the grid without a reload.
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_JOBS}", "Training popularity", timeout=15)
    deadline = time.monotonic() + 90
    new: set[str] = set()
    while time.monotonic() < deadline:
        new = _grid_row_ids(dash_duo, ids.RUNS_GRID) - before
        if new:
            break
        time.sleep(0.5)
    assert len(new) == 1, "the trained run did not appear in the runs grid"
    new_id = new.pop()
    run = Registry(demo_data_copy).get(new_id)
    assert run["family"] == "popularity" and run["label"] == "from the browser"
    assert "hr@10" in run["metrics"]
    dash_duo.wait_for_element(f"#{ids.RUNS_JOBS} .job-done", timeout=10)  # the card says the job is done
    assert "ready" in dash_duo.find_element(f"#{ids.RUNS_JOBS} .job-done").text

    # ... and in Compare, among the runs to compare and in the metrics of all runs.
    dash_duo.wait_for_page(f"{dash_duo.server_url}/compare")
    dash_duo.wait_for_element(f"#{ids.COMPARE_METRICS} .ag-row", timeout=15)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and new_id not in _grid_row_ids(dash_duo, ids.COMPARE_METRICS):
        time.sleep(0.3)
    assert new_id in _grid_row_ids(dash_duo, ids.COMPARE_METRICS), "the new run is missing from Compare"

    assert dash_duo.get_logs() == []
