"""The Vetting panels in Chromium, on a test page of their own (the Vetting page of issue 16
includes them): vetted precision follows a stored judgment, "Run checks" shows pass/fail rows.

The test page holds the Vetting page's contract ids (``vetting-run``, ``vetting-preset``,
``vetting-judged-rev``) and a "judge" button standing in for the judging queue: it stores one
thumbs-down in the judgments SQLite file and bumps the counter, as the Vetting page does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests._checks_data import make_shop, write_judgments
from tests.integration._browser import wait_until


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("vetting-browser")
    return {"root": root, **make_shop(root)}


def vetting_test_app(root: Path, run: str, monkeypatch: pytest.MonkeyPatch):
    from dash import Dash, Input, Output, State, _callback, dcc, html

    monkeypatch.setenv("RECSYS_DATA_DIR", str(root))
    for name in list(sys.modules):
        if name.split(".")[0] == "components":
            del sys.modules[name]
    _callback.GLOBAL_CALLBACK_LIST.clear()
    _callback.GLOBAL_CALLBACK_MAP.clear()
    from components.vetting_panels import checks_panel, precision_panel
    from recsys.registry import Registry
    from recsys.search import similar_items

    app = Dash(__name__, suppress_callback_exceptions=True)
    app.layout = html.Div(
        [
            dcc.Dropdown(id="vetting-run", options=[run], value=run, clearable=False),
            dcc.Dropdown(id="vetting-preset", options=["plain", "same-cat"], value="plain"),
            dcc.Store(id="vetting-judged-rev", data=0),
            html.Button("judge", id="test-judge", n_clicks=0),
            precision_panel(),
            checks_panel(),
        ]
    )

    @app.callback(
        Output("vetting-judged-rev", "data"),
        Input("test-judge", "n_clicks"),
        State("vetting-judged-rev", "data"),
        prevent_initial_call=True,
    )
    def judge(_n: int, rev: int) -> int:
        shown = similar_items(Registry(root), run, "P0002", None, 10).item_ids
        write_judgments(root, [("P0002", shown[0], 1, "ann", "2026-01-01T10:00:00+00:00")])
        write_judgments(root, [("P0002", shown[1], -1, "ann", "2026-01-01T10:00:00+00:00")])
        return (rev or 0) + 1

    return app


def test_panels_follow_judgments_and_run_checks(dash_duo, shop, monkeypatch) -> None:
    root, run = shop["root"], shop["run"]
    dash_duo.start_server(vetting_test_app(root, run, monkeypatch))
    dash_duo.wait_for_contains_text("#vetting-precision", "No judgments yet", timeout=30)
    dash_duo.find_element("#test-judge").click()
    dash_duo.wait_for_text_to_equal("#vetting-precision-value", "0.500", timeout=30)
    assert "1 thumbs-up shown, 1 thumbs-down still shown" in dash_duo.find_element("#vetting-precision").text
    # the checks run on the button only
    assert not dash_duo.driver.find_elements("css selector", "[data-check]")
    dash_duo.select_dcc_dropdown("#vetting-preset", "same-cat")
    dash_duo.find_element("#vetting-checks-run").click()
    wait_until(
        lambda: len(dash_duo.driver.find_elements("css selector", "#vetting-checks [data-check]")) == 5,
        what="five check rows",
    )
    rows = {
        e.get_attribute("data-check"): e.get_attribute("data-passed")
        for e in dash_duo.driver.find_elements("css selector", "#vetting-checks [data-check]")
    }
    assert rows["adult"] == "true" and rows["duplicates"] == "false"
    assert "Every blocking check passes" in dash_duo.find_element("#vetting-checks").text
    assert dash_duo.get_logs() == []
