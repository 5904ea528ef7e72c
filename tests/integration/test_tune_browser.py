"""The Runs page's Tune button in Chromium: an editor starts a tuning job, watches it, and reads
the trials of the run it trained (``pytest --headless``)."""

from __future__ import annotations

from recsys.registry import Registry
from tests.integration._browser import click as _click
from tests.integration._browser import wait_until


def _type(dash_duo, selector: str, text: str) -> None:
    box = dash_duo.find_element(selector)
    dash_duo.clear_input(box)
    box.send_keys(text)


def test_tune_button_runs_a_search_and_shows_the_trials_of_the_run_it_trained(
    dash_duo, dash_app_copy, demo_data_copy
):
    before = {r["run_id"] for r in Registry(demo_data_copy).list_runs()}
    dash_duo.driver.set_window_size(1400, 2400)
    dash_duo.start_server(dash_app_copy)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/runs")
    dash_duo.wait_for_element("#tune-submit", timeout=30)
    _type(dash_duo, "#tune-budget", "2m")
    _type(dash_duo, "#tune-trials", "2")
    _type(dash_duo, "#tune-label", "tuned in the browser")
    _click(dash_duo, dash_duo.find_element("#tune-submit"))
    wait_until(lambda: "Tuning started" in dash_duo.find_element("#tune-msg").text, 20, "the job to start")
    assert "at most 2 trials" in dash_duo.find_element("#tune-msg").text
    wait_until(lambda: "Tuning done" in dash_duo.find_element("#tune-status").text, 240, "the tuning job")
    (new,) = [r for r in Registry(demo_data_copy).list_runs() if r["run_id"] not in before]
    assert new["label"] == "tuned in the browser" and new["tuning"]["n_trials"] == 2
    status = dash_duo.find_element("#tune-status")
    assert new["run_id"] in status.text and "2 trials" in status.text
    assert len(status.find_elements("css selector", "tbody tr")) == 2
    assert status.find_elements("css selector", ".js-plotly-plot")  # the parallel-coordinates chart
    assert dash_duo.get_logs() == []
