"""Runs and Overview grids show each metric with ± half its 95% interval, and the case count."""

from __future__ import annotations

import re


def test_grids_show_intervals_and_cases(dash_duo, dash_app, demo_data_dir):
    from components import ids
    from recsys.registry import Registry

    run = Registry(demo_data_dir).list_runs("prod2vec")[0]
    n_cases = run["metrics"]["n_cases"]
    dash_duo.driver.set_window_size(1600, 1000)
    dash_duo.start_server(dash_app)
    for page, grid in (("runs", ids.RUNS_GRID), ("", ids.OVERVIEW_RUNS_GRID)):
        dash_duo.wait_for_page(f"{dash_duo.server_url}/{page}")
        dash_duo.wait_for_element(f"#{grid} .ag-row", timeout=15)
        dash_duo.wait_for_contains_text(f"#{grid}", "±", timeout=15)
        text = dash_duo.find_element(f"#{grid}").text
        assert f"{n_cases:,}" in text
        assert "NaN" not in text and re.search(r"\d\.\d{3} ±0\.\d{3}", text), text[:300]
    assert dash_duo.get_logs() == []
