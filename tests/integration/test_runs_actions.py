"""Runs page in Chromium: a training job submitted from the form is cancelled from its card
while it runs (no run is left behind), and "Activate" makes the selected run its family's
active run of its dataset (``pytest --headless``). Train, and delete with the hand-over, are
in ``test_shell.py`` and ``test_run_lifecycle.py``.
"""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys

from recsys.jobs import JobStore
from recsys.registry import Registry
from tests.integration._browser import add_spare_run, css_id, wait_until
from tests.integration._browser import click as _click
from tests.integration.test_run_lifecycle import _select_row


def test_cancel_a_running_training_job_and_activate_a_run(dash_duo, dash_app_copy, demo_data_copy):
    from components import ids

    root = demo_data_copy
    registry = Registry(root)
    runs = {r["family"]: r["run_id"] for r in registry.list_runs()}
    spare = add_spare_run(root, "prod2vec", "spare prod2vec")
    assert registry.active("demo")["prod2vec"] == runs["prod2vec"]
    before = {r["run_id"] for r in registry.list_runs()}

    dash_duo.driver.set_window_size(1400, 2400)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element(f"#{ids.RUNS_GRID} .ag-row[row-id='{spare}']", timeout=40)

    # Activate: the spare run becomes prod2vec's active run of demo, and the page says so
    _select_row(dash_duo, spare)
    _click(dash_duo, dash_duo.find_element(f"#{ids.RUNS_ACTIVATE}"))
    dash_duo.wait_for_contains_text(
        f"#{ids.RUNS_ACTION_MSG}", "spare prod2vec is now the active prod2vec run of dataset demo", timeout=20
    )
    assert Registry(root).active("demo")["prod2vec"] == spare

    # the trained prod2vec selected: its summary says who serves the items (issue 13), and the
    # grid's served shares read in words and as percentages (they read "fallback_share 0.025")
    served = registry.get(runs["prod2vec"])["served"]
    _select_row(dash_duo, runs["prod2vec"])
    cat, seeds = served["catalog"], served["test_seeds"]
    dash_duo.wait_for_contains_text(
        f"#{ids.RUNS_TUNING}",
        f"Catalogue items as seeds ({cat['catalog_items']:,}): {cat['model']:.1%} by the model itself",
        timeout=20,
    )
    summary = dash_duo.find_element(f"#{ids.RUNS_TUNING}").text
    assert f"Test seeds ({seeds['n_cases']:,} cases): {seeds['model']:.1%} by the model itself" in summary
    headers = [h.text.strip() for h in dash_duo.find_elements(f"#{ids.RUNS_GRID} .ag-header-cell-text")]
    assert "Seeds by fallback" in headers and "fallback_share" not in headers, headers
    share = registry.get(runs["prod2vec"])["metrics"]["fallback_share"]
    cell = f"#{ids.RUNS_GRID} .ag-row[row-id='{runs['prod2vec']}'] .ag-cell[col-id='fallback_share']"
    assert dash_duo.find_element(cell).text.strip() == f"{share:.1%}"

    # Train a long prod2vec from the form (many epochs), then cancel it while it runs
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_PARAMS}", "epochs", timeout=20)
    epochs = dash_duo.find_element(css_id({"type": ids.RUNS_PARAM, "name": "epochs"}))
    epochs.send_keys(Keys.CONTROL, "a")
    epochs.send_keys("5000" + Keys.TAB)
    dash_duo.find_element(f"#{ids.RUNS_LABEL}").send_keys("to be cancelled")
    _click(dash_duo, dash_duo.find_element(f"#{ids.RUNS_SUBMIT}"))
    dash_duo.wait_for_contains_text(f"#{ids.RUNS_SUBMIT_MSG}", "Training started", timeout=20)
    [job] = [j for j in JobStore(root).list_jobs() if j["kind"] == "train"]
    assert job["params"]["params"]["epochs"] == 5000, job["params"]
    wait_until(lambda: JobStore(root).get(job["job_id"])["status"] == "running", timeout=60, what="running")
    card = f"#{ids.RUNS_JOBS} .job-running"
    dash_duo.wait_for_element(card, timeout=20)
    _click(dash_duo, dash_duo.find_element(css_id({"type": ids.JOB_CANCEL, "job": job["job_id"]})))
    dash_duo.wait_for_element(f"#{ids.RUNS_JOBS} .job-cancelled", timeout=30)
    assert JobStore(root).get(job["job_id"])["status"] == "cancelled"
    assert {r["run_id"] for r in Registry(root).list_runs()} == before  # no run left behind
    assert Registry(root).active("demo")["prod2vec"] == spare
    assert dash_duo.get_logs() == []
